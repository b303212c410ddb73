/**
 * `<report name>.ipynb`, as SageMaker Clarify writes it beside the HTML and PDF: a Jupyter
 * notebook (nbformat 4.5) whose first cell loads `explanations_shap/out.jsonl` so the analysis can
 * go on, then the report's content as Markdown tables with the pictures embedded as attachments.
 */
import { formatCount, formatStandardError, formatValue } from './format.js';
import { importanceExplanation, moreFailures, type ReportFacts, type ReportImage } from './report.js';

interface Cell {
  readonly id: string;
  readonly cell_type: 'markdown' | 'code';
  readonly metadata: Record<string, never>;
  readonly source: string[];
  readonly attachments?: Record<string, { 'image/jpeg': string }>;
  readonly execution_count?: null;
  readonly outputs?: never[];
}

/** nbformat stores text as a list of lines, each but the last ending in "\n". */
function lines(text: string): string[] {
  const parts = text.split('\n');
  return parts.map((line, i) => (i < parts.length - 1 ? `${line}\n` : line)).filter((line) => line !== '');
}

/** A Markdown table cell: no pipes or line breaks inside. */
const cellText = (text: string): string => text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
const fmt = formatValue;
const fmtSe = formatStandardError;

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return [`| ${header.map(cellText).join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(cellText).join(' | ')} |`)].join('\n');
}

const LOAD_RESULTS = `# Load this run's explanations (one JSON object per image) to continue the analysis.
import json
from pathlib import Path

explanations = [json.loads(line) for line in Path("explanations_shap/out.jsonl").read_text().splitlines() if line.strip()]
predictions = [json.loads(line) for line in Path("predictions.jsonl").read_text().splitlines() if line.strip()]
print(f"{len(explanations)} images explained, {len(predictions)} predictions")`;

export function renderNotebook(facts: ReportFacts, images: readonly ReportImage[]): string {
  const cells: Cell[] = [];
  const markdown = (source: string, attachments?: Cell['attachments']): void => {
    cells.push({ id: `cell-${cells.length}`, cell_type: 'markdown', metadata: {}, source: lines(source), ...(attachments ? { attachments } : {}) });
  };
  cells.push({ id: 'load-results', cell_type: 'code', metadata: {}, execution_count: null, outputs: [], source: lines(LOAD_RESULTS) });
  markdown(`# ${facts.title}\n\nBlue segments raise the score, red ones lower it. Values are SHAP values: per image they sum to prediction − base value.\n\n## Run\n\n${table(['', ''], facts.rows)}`);
  if (facts.failed > 0) {
    const listed = facts.failures.slice(0, 200);
    const more = moreFailures(facts, listed.length);
    markdown(`## Failures (${formatCount(facts.failed)})\n\n${table(['image', 'stage', 'reason'], listed.map((f) => [f.image, f.stage, f.message]))}${more ? `\n\n${more}` : ''}`);
  }
  if (facts.classification) {
    markdown(
      facts.importance
        ? `## Global importance\n\n${importanceExplanation(facts.aggMethod)}\n\n${table(['rank', 'label', 'value'], facts.importance.map((l, r) => [String(r + 1), l.label, fmt(l.value)]))}`
        : '## Global importance\n\nNo data: no image was explained.',
    );
  }
  if (facts.shown < facts.total) markdown(`Showing the first ${formatCount(facts.shown)} of ${formatCount(facts.total)} images.`);
  images.forEach((image, i) => {
    if (image.failure) {
      markdown(`## ${image.uri}\n\nFailed at ${image.failure.stage}: ${image.failure.message}`);
      return;
    }
    const attachments: Record<string, { 'image/jpeg': string }> = {};
    const picture = (name: string, jpeg: Buffer | undefined, alt: string): string => {
      if (!jpeg) return '';
      attachments[name] = { 'image/jpeg': jpeg.toString('base64') };
      return `![${alt}](attachment:${name}) `;
    };
    const figures = [
      picture(`pair-${i}.jpeg`, image.pair ?? image.original, 'original and heatmap'),
      picture(`segments-${i}.jpeg`, image.segments, 'segments, numbered'),
      picture(`overview-${i}.jpeg`, image.overview, 'kept detections'),
    ].join('');
    const ranking = image.ranking.length > 0 ? table(['label', 'score'], image.ranking.map((r) => [r.label, fmt(r.score)])) : 'No detection above the threshold.';
    const panels = image.panels.map((panel, k) => {
      // The first heatmap is already in the side-by-side picture.
      const heatmap = k > 0 || !image.pair ? picture(`heatmap-${i}-${k}.jpeg`, panel.heatmap, `heatmap ${panel.title}`) : '';
      const segments = table(['segment', 'SHAP value ± SE'], panel.topSegments.map((s) => [String(s.segment), `${fmt(s.value)} ± ${fmtSe(s.standardError)}`]));
      return `### ${panel.title}\n\n${heatmap}\n\nprediction ${fmt(panel.prediction)}, base value ${fmt(panel.baseValue)}\n\n${segments}`;
    });
    markdown(
      [`## ${image.uri}`, `${image.width}×${image.height} px, ${image.numSegments ?? '?'} segments, ${formatCount(image.calls ?? 0)} endpoint calls for the explanation.`, figures, ranking, ...panels].join('\n\n'),
      attachments,
    );
  });
  const notebook = {
    cells,
    metadata: {
      kernelspec: { display_name: 'Python 3', language: 'python', name: 'python3' },
      language_info: { name: 'python' },
    },
    nbformat: 4,
    nbformat_minor: 5,
  };
  return `${JSON.stringify(notebook, null, 1)}\n`;
}
