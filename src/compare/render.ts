/** The comparison as a pull-request comment (Markdown) and as JUnit XML for CI systems. */
import path from 'node:path';
import type { Comparison } from './compare.js';
import type { Thresholds } from './thresholds.js';

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, '<br>');

/** A heatmap reference usable from where the Markdown file is written (local paths become relative). */
function imageRef(uri: string | undefined, markdownDir: string | undefined): string | undefined {
  if (!uri) return undefined;
  if (/^s3:\/\//i.test(uri)) return undefined; // not viewable from a PR comment
  return markdownDir ? path.relative(markdownDir, uri).split(path.sep).join('/') : uri;
}

export function renderMarkdown(comparison: Comparison, baseline: string, candidate: string, thresholds: Thresholds, markdownFile?: string): string {
  const dir = markdownFile ? path.dirname(path.resolve(markdownFile)) : undefined;
  const lines: string[] = [];
  const total = comparison.images.length;
  lines.push(
    comparison.regressions > 0
      ? `## ❌ clarify-images: ${comparison.regressions} of ${total} images regressed`
      : `## ✅ clarify-images: ${total} images within tolerance`,
  );
  lines.push('', `Baseline \`${baseline}\` → candidate \`${candidate}\`.`, '');
  lines.push(
    `Thresholds: score change ≤ ${thresholds.max_score_change}, rank correlation ≥ ${thresholds.min_rank_correlation}, top-5 overlap ≥ ${thresholds.min_top5_overlap}, significant sign flips ≤ ${thresholds.max_significant_sign_flips}, label flips ${thresholds.fail_on_label_flip ? 'fail' : 'allowed'}, objects appearing or disappearing ${thresholds.fail_on_object_change ? 'fail' : 'allowed'}.`,
    '',
  );
  lines.push('| image | result | why |', '| --- | --- | --- |');
  for (const image of comparison.images) {
    lines.push(`| \`${cell(image.key)}\` | ${image.problems.length > 0 ? '❌ regression' : '✅ ok'} | ${cell((image.problems.length > 0 ? image.problems : image.notes.slice(0, 2)).join('; '))} |`);
  }
  const worst = comparison.images.filter((i) => i.problems.length > 0);
  if (worst.length > 0) {
    lines.push('', '### Regressions, worst first', '');
    for (const image of worst.slice(0, 20)) {
      lines.push(`#### \`${image.key}\``, '', ...image.problems.map((p) => `- ${p}`), ...image.notes.map((n) => `- (${n})`), '');
      const a = imageRef(image.heatmaps.baseline, dir);
      const b = imageRef(image.heatmaps.candidate, dir);
      if (a || b) {
        lines.push('| baseline | candidate |', '| --- | --- |', `| ${a ? `<img src="${a}" width="320">` : '–'} | ${b ? `<img src="${b}" width="320">` : '–'} |`, '');
      }
    }
  }
  return `${lines.join('\n')}\n`;
}

export function renderJunit(comparison: Comparison): string {
  const failures = comparison.regressions;
  const cases = comparison.images.map((image) => {
    const name = escapeXml(image.key);
    const detail = escapeXml([...image.problems, ...image.notes].join('\n'));
    if (image.problems.length === 0) return `  <testcase classname="clarify-images.compare" name="${name}"><system-out>${detail}</system-out></testcase>`;
    return `  <testcase classname="clarify-images.compare" name="${name}">\n    <failure message="${escapeXml(image.problems[0]!)}" type="regression">${detail}</failure>\n  </testcase>`;
  });
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="clarify-images compare" tests="${comparison.images.length}" failures="${failures}" errors="0">\n${cases.join('\n')}\n</testsuite>\n`;
}
