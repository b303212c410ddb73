/**
 * The report (`methods.report.name`, default "report"): report.html, self-contained (every image
 * embedded), and report.pdf with the same content. Per image: the original, its segments, the
 * heatmap(s), the top labels or objects, and the most influential segments. Bounded: at most
 * `maxImages` images are shown (the summary counts them all).
 */
import sharp from 'sharp';
import type { AnalysisConfig } from '../config/config.js';
import { ADJUSTED_OUTPUTS, MIN_CALLS_PER_PLAYER } from '../explain/tree-adjusted.js';
import { dejaVuSans } from './fonts.js';
import { formatCount, formatStandardError, formatValue } from './format.js';
import type { AnalysisSummary } from './records.js';
import { fewSegmentsSaid } from './segment-note.js';

export interface InfluentialSegment {
  readonly segment: number;
  readonly value: number;
  readonly standardError: number;
}

export interface ReportPanel {
  /** What the panel explains: a label, or an object "1. face 0.97". */
  readonly title: string;
  readonly heatmap: Buffer;
  readonly prediction: number;
  readonly baseValue: number;
  readonly topSegments: readonly InfluentialSegment[];
}

export interface ReportImage {
  readonly uri: string;
  readonly name: string;
  readonly width: number;
  readonly height: number;
  /** The original and the (first) heatmap side by side, the same size: what a reader looks at first. */
  readonly pair?: Buffer;
  readonly original?: Buffer;
  /** The segments, each with its number where it is. */
  readonly segments?: Buffer;
  readonly numSegments?: number;
  readonly calls?: number;
  /** What the values are in: probability, log-odds, detection score. */
  readonly unit?: string;
  /** Classification: the top labels with scores; detection: the kept objects. */
  readonly ranking: readonly { label: string; score: number }[];
  readonly overview?: Buffer;
  readonly panels: readonly ReportPanel[];
  readonly failure?: { stage: string; message: string };
}

/** Widths the report shows pictures at (the HTML page is 1100 px wide). */
const PAIR_WIDTH = 1060;
const FIGURE_WIDTH = 520;

async function thumbnail(jpeg: Buffer, width: number): Promise<Buffer> {
  return sharp(jpeg).resize({ width, withoutEnlargement: true }).jpeg({ quality: 85 }).toBuffer();
}

/** The most influential segments: largest |value| first. */
export function topSegments(values: readonly number[], errors: readonly (number | null)[], count = 5): InfluentialSegment[] {
  return values
    .map((value, segment) => ({ segment, value, standardError: errors[segment] ?? Number.NaN }))
    .sort((a, b) => Math.abs(b.value) - Math.abs(a.value) || a.segment - b.segment)
    .slice(0, count);
}

/** The report shows the first `maxImages` images in dataset order. */
export function shownInReport(index: number, maxImages: number): boolean {
  return index < maxImages;
}

/** Collects what the report shows while the job runs; keeps at most `maxImages` images (in dataset order). */
export class ReportCollector {
  private readonly items = new Map<number, ReportImage>();
  constructor(readonly maxImages: number) {}

  wants(index: number): boolean {
    return shownInReport(index, this.maxImages);
  }

  async add(index: number, image: ReportImage): Promise<void> {
    if (!this.wants(index)) return;
    this.items.set(index, {
      ...image,
      pair: image.pair && (await thumbnail(image.pair, PAIR_WIDTH)),
      original: image.original && (await thumbnail(image.original, FIGURE_WIDTH)),
      segments: image.segments && (await thumbnail(image.segments, FIGURE_WIDTH)),
      overview: image.overview && (await thumbnail(image.overview, FIGURE_WIDTH)),
      panels: await Promise.all(image.panels.map(async (p) => ({ ...p, heatmap: await thumbnail(p.heatmap, FIGURE_WIDTH) }))),
    });
  }

  images(): ReportImage[] {
    return [...this.items.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v);
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const dataUri = (jpeg: Buffer): string => `data:image/jpeg;base64,${jpeg.toString('base64')}`;
const fmt = formatValue;
const fmtSe = formatStandardError;
const count = formatCount;

export interface ReportFacts {
  readonly title: string;
  readonly rows: readonly [string, string][];
  readonly failures: readonly { image: string; stage: string; message: string }[];
  /** Every failed image, listed or not (analysis.json lists the first MAX_LISTED_FAILURES). */
  readonly failed: number;
  /** Sorted, largest first; undefined when no image was explained ("no data"). */
  readonly importance?: readonly { label: string; value: number }[];
  readonly aggMethod?: string;
  /** Detection runs have no per-label importance. */
  readonly classification: boolean;
  readonly shown: number;
  readonly total: number;
}

/** What a report says of the failures it does not show, `shown` of them being listed. */
export function moreFailures(facts: ReportFacts, shown: number): string | undefined {
  if (facts.failed <= shown) return undefined;
  const more = facts.failed - shown;
  return facts.failed > facts.failures.length ? `… and ${count(more)} more: analysis.json lists the first ${count(facts.failures.length)}, predictions.jsonl every one.` : `… and ${count(more)} more in analysis.json.`;
}

/** How many labels the report lists before folding the rest away. */
export const IMPORTANCE_SHOWN = 10;

const AGG_WORDS: Record<string, string> = { mean_abs: 'mean |SHAP value|', mean_sq: 'mean squared SHAP value', median: 'median SHAP value' };

/** One sentence on what the global number is, for readers who expect "the most predicted label". */
export function importanceExplanation(aggMethod: string | undefined): string {
  return `Each label's ${AGG_WORDS[aggMethod ?? ''] ?? aggMethod ?? 'importance'} over every segment of every explained image: how strongly the segments move that label's score, whichever label was predicted — a label can rank high without being predicted for any image.`;
}

/** The estimator that solved the run, as the config resolved it (the default is not Kernel SHAP alone). */
export function estimatorDescription(config: AnalysisConfig): string {
  const { estimator, guided_sampling: guided } = config.clarify_images;
  if (estimator === 'kernel') return 'Kernel SHAP';
  return `Tree-adjusted Kernel SHAP (a random-forest surrogate for the top ${ADJUSTED_OUTPUTS} labels or objects of each image${guided ? ', guided sampling' : ''}; Kernel SHAP alone for the others, and for an image with under ${MIN_CALLS_PER_PLAYER} calls per segment or every coalition)`;
}

export function reportFacts(config: AnalysisConfig, summary: AnalysisSummary, shown: number): ReportFacts {
  const ic = config.methods.shap.image_config;
  const shap = config.methods.shap;
  const baseline = shap.baseline ?? `${config.clarify_images.baseline_fill} fill`;
  const few = fewSegmentsSaid(summary.explanations?.few_segments);
  const rows: [string, string][] = [
    ['Model type', summary.model_type],
    ['Endpoint', summary.endpoint],
    ['Dataset', summary.dataset.uri],
    ['Images', `${count(summary.dataset.images_found)} found, ${count(summary.images.succeeded)} succeeded, ${count(summary.images.failed)} failed, ${count(summary.dataset.files_skipped)} non-image files skipped`],
    ['Segments', `SLIC, num_segments ${ic.num_segments}, compactness ${ic.segment_compactness}${few ? `. Note: ${few}` : ''}`],
    ['SHAP', `${estimatorDescription(config)}, num_samples ${shap.num_samples ?? 'default (min(2M + 2048, 2^M − 2))'}, baseline ${baseline}, seed ${shap.seed ?? 0}${shap.use_logit ? ', log-odds' : ''}`],
    ['Endpoint calls', `${count(summary.endpoint_calls.calls)} (${count(summary.endpoint_calls.retries)} retries, ${count(summary.endpoint_calls.failed_calls)} failed), mean latency ${summary.endpoint_calls.mean_latency_ms} ms`],
    ['Time', `${summary.durations.total_seconds} s (${summary.durations.started_at} → ${summary.durations.finished_at})`],
  ];
  if (summary.pace) rows.push(['Pace', `${summary.pace.said.charAt(0).toUpperCase()}${summary.pace.said.slice(1)}`]);
  if (ic.model_type === 'OBJECT_DETECTION') {
    rows.splice(5, 0, ['Detection', `probability_threshold ${config.probability_threshold}, max_objects ${ic.max_objects}, iou_threshold ${ic.iou_threshold}, context ${ic.context}`]);
  }
  return {
    // Clarify's title when the config gives none (the SageMaker SDK itself writes "Analysis Report").
    title: config.methods.report.title ?? 'SageMaker Analysis Report',
    rows,
    failures: summary.failures,
    failed: summary.images.failed,
    importance:
      (summary.explanations?.images_explained ?? 0) > 0 ? [...(summary.explanations?.global_importance?.labels ?? [])].sort((a, b) => b.value - a.value || a.label.localeCompare(b.label)) : undefined,
    aggMethod: summary.explanations?.global_importance?.agg_method ?? config.methods.shap.agg_method,
    classification: ic.model_type === 'IMAGE_CLASSIFICATION',
    shown,
    total: summary.dataset.images_found,
  };
}

export function renderHtml(facts: ReportFacts, images: readonly ReportImage[]): string {
  const head = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(facts.title)}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem;overflow-wrap:anywhere}
table{border-collapse:collapse;margin:.5rem 0} td,th{border:1px solid #ddd;padding:.25rem .6rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}
table.failures td:last-child{max-width:640px} table.facts th{white-space:nowrap;overflow-wrap:normal} table.facts td{max-width:760px}
.figs{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start} figure{margin:0} figcaption{font-size:.85rem;color:#555}
img{max-width:100%;height:auto}
.panel{margin:1rem 0;padding:.5rem 0;border-top:1px dashed #ddd} .pos{color:#1e3cff} .neg{color:#d62a1e} .fail{color:#b00}
.note{color:#666;font-size:.9rem} details summary{cursor:pointer;color:#444;margin:.3rem 0}
</style></head><body>`;
  const parts: string[] = [head, `<h1>${escapeHtml(facts.title)}</h1>`, '<p class="note">Blue segments raise the score, red ones lower it. Values are SHAP values: per image they sum to prediction − base value.</p>'];
  parts.push('<h2 id="run">Run</h2><table class="facts">', ...facts.rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`), '</table>');
  if (facts.failed > 0) {
    const listed = facts.failures.slice(0, 200);
    parts.push(`<h2 id="failures">Failures (${count(facts.failed)})</h2><table class="failures"><tr><th>image</th><th>stage</th><th>reason</th></tr>`);
    parts.push(...listed.map((f) => `<tr class="fail"><td>${escapeHtml(f.image)}</td><td>${escapeHtml(f.stage)}</td><td>${escapeHtml(f.message)}</td></tr>`), '</table>');
    const more = moreFailures(facts, listed.length);
    if (more) parts.push(`<p class="note">${escapeHtml(more)}</p>`);
  }
  if (facts.classification) {
    parts.push(`<h2 id="importance">Global importance</h2>`);
    if (!facts.importance) {
      parts.push('<p class="note">No data: no image was explained.</p>');
    } else {
      parts.push(`<p class="note">${escapeHtml(importanceExplanation(facts.aggMethod))}</p>`);
      const row = (l: { label: string; value: number }, i: number): string => `<tr><td>${i + 1}</td><td>${escapeHtml(l.label)}</td><td>${fmt(l.value)}</td></tr>`;
      parts.push('<table><tr><th>rank</th><th>label</th><th>value</th></tr>', ...facts.importance.slice(0, IMPORTANCE_SHOWN).map(row), '</table>');
      if (facts.importance.length > IMPORTANCE_SHOWN) {
        parts.push(`<details><summary>All ${facts.importance.length} labels</summary><table><tr><th>rank</th><th>label</th><th>value</th></tr>`, ...facts.importance.map(row), '</table></details>');
      }
    }
  }
  parts.push(`<h2 id="images">Images</h2>`);
  if (facts.shown < facts.total) parts.push(`<p class="note">Showing the first ${count(facts.shown)} of ${count(facts.total)} images.</p>`);
  for (const image of images) {
    parts.push(`<h2>${escapeHtml(image.uri)}</h2>`);
    if (image.failure) {
      parts.push(`<p class="fail">Failed at ${escapeHtml(image.failure.stage)}: ${escapeHtml(image.failure.message)}</p>`);
      continue;
    }
    parts.push(`<p class="note">${image.width}×${image.height} px, ${image.numSegments ?? '?'} segments, ${image.calls ?? 0} endpoint calls for the explanation; values in ${escapeHtml(image.unit ?? 'probability')}.</p>`);
    if (image.pair) parts.push(`<figure><img src="${dataUri(image.pair)}" alt="original and heatmap"><figcaption>original | heatmap</figcaption></figure>`);
    const ranking =
      image.ranking.length > 0
        ? ['<table><tr><th>label</th><th>score</th></tr>', ...image.ranking.map((r) => `<tr><td>${escapeHtml(r.label)}</td><td>${fmt(r.score)}</td></tr>`), '</table>'].join('')
        : '<p class="note">No detection above the threshold.</p>';
    const panelText = (panel: ReportPanel): string =>
      [
        `<p>prediction ${fmt(panel.prediction)}, base value ${fmt(panel.baseValue)} (${escapeHtml(image.unit ?? 'probability')})</p><table><tr><th>segment</th><th>SHAP value ± SE</th></tr>`,
        ...panel.topSegments.map((s) => `<tr><td>${s.segment}</td><td class="${s.value >= 0 ? 'pos' : 'neg'}">${fmt(s.value)} ± ${fmtSe(s.standardError)}</td></tr>`),
        '</table>',
      ].join('');
    // The numbered segments beside the scores and the first panel's top segments, which name them.
    const [first, ...rest] = image.panels;
    parts.push('<div class="figs">');
    if (image.segments) parts.push(`<figure><img src="${dataUri(image.segments)}" alt="segments"><figcaption>segments, numbered as in the tables</figcaption></figure>`);
    parts.push(`<div>${ranking}${first && image.pair ? `<h3>${escapeHtml(first.title)}</h3>${panelText(first)}` : ''}</div>`);
    if (image.overview) parts.push(`<figure><img src="${dataUri(image.overview)}" alt="detections"><figcaption>kept detections</figcaption></figure>`);
    parts.push('</div>');
    for (const panel of first && image.pair ? rest : image.panels) {
      parts.push(`<div class="panel"><h3>${escapeHtml(panel.title)}</h3><div class="figs">`);
      parts.push(`<figure><img src="${dataUri(panel.heatmap)}" alt="heatmap ${escapeHtml(panel.title)}"><figcaption>heatmap</figcaption></figure>`);
      parts.push(`<div>${panelText(panel)}</div></div></div>`);
    }
  }
  parts.push('</body></html>');
  return parts.join('\n');
}


/** The same content as the HTML, laid out with pdfkit (pure JavaScript, no browser), with a real font embedded. */
export async function renderPdf(facts: ReportFacts, images: readonly ReportImage[]): Promise<Buffer> {
  // Loaded here, not at start-up: pdfkit and its fonts take ~0.13 s that only a finished run needs.
  const { default: PDFDocument } = await import('pdfkit');
  return new Promise((resolve, reject) => {
    const doc = new PDFDocument({ size: 'A4', margin: 40, info: { Title: facts.title, Creator: 'clarify-images' } });
    const chunks: Buffer[] = [];
    doc.on('data', (c: Buffer) => chunks.push(c));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
    // DejaVu Sans covers →, −, ±, φ and Latin text; Helvetica (WinAnsi) does not.
    doc.registerFont('Body', dejaVuSans(400));
    doc.registerFont('Bold', dejaVuSans(700));
    doc.font('Body');
    const width = doc.page.width - 80;
    const bottom = (): number => doc.page.height - 40;
    const ensure = (height: number): void => {
      if (doc.y + height > bottom()) doc.addPage();
    };
    const heading = (text: string, size = 13): void => {
      ensure(size * 3);
      doc.moveDown(0.6).font('Bold').fontSize(size).fillColor('#000').text(text, 40, doc.y, { width }).font('Body');
    };
    doc.font('Bold').fontSize(20).text(facts.title).font('Body');
    doc.moveDown(0.3).fontSize(9).fillColor('#555').text('Blue segments raise the score, red ones lower it. Values are SHAP values: per image they sum to prediction − base value.', { width }).fillColor('#000');
    heading('Run');
    doc.fontSize(9);
    for (const [k, v] of facts.rows) {
      ensure(14);
      doc.font('Bold').text(`${k}: `, { continued: true, width }).font('Body').text(v);
    }
    if (facts.failed > 0) {
      heading(`Failures (${count(facts.failed)})`);
      doc.fontSize(9).fillColor('#b00');
      const listed = facts.failures.slice(0, 100);
      for (const f of listed) {
        ensure(24);
        doc.text(`${f.image} [${f.stage}]: ${f.message}`, { width });
      }
      const more = moreFailures(facts, listed.length);
      if (more) doc.text(more);
      doc.fillColor('#000');
    }
    if (facts.classification) {
      heading('Global importance');
      doc.fontSize(9);
      if (!facts.importance) doc.text('No data: no image was explained.');
      else {
        doc.fillColor('#555').text(importanceExplanation(facts.aggMethod), { width }).fillColor('#000').moveDown(0.3);
        facts.importance.slice(0, IMPORTANCE_SHOWN).forEach((l, i) => doc.text(`${i + 1}. ${l.label}: ${fmt(l.value)}`, { width }));
        if (facts.importance.length > IMPORTANCE_SHOWN) doc.fillColor('#555').text(`The other ${facts.importance.length - IMPORTANCE_SHOWN} labels are listed at the end.`).fillColor('#000');
      }
    }
    heading('Images');
    if (facts.shown < facts.total) doc.fontSize(9).text(`Showing the first ${count(facts.shown)} of ${count(facts.total)} images.`);
    for (const image of images) {
      // Keep the heading with its picture: start a page when both would not fit.
      ensure(image.pair && !image.failure ? Math.min(260, width * sizeRatio(image.pair)) + 60 : 60);
      heading(image.uri, 11);
      if (image.failure) {
        doc.fontSize(9).fillColor('#b00').text(`Failed at ${image.failure.stage}: ${image.failure.message}`, { width }).fillColor('#000');
        continue;
      }
      doc.fontSize(8.5).fillColor('#555').text(`${image.width}×${image.height} px, ${image.numSegments ?? '?'} segments, ${image.calls ?? 0} endpoint calls for the explanation; values in ${image.unit ?? 'probability'}.`, { width }).fillColor('#000');
      if (image.pair) {
        const ratio = sizeRatio(image.pair);
        const pairHeight = Math.min(260, width * ratio);
        ensure(pairHeight + 8);
        doc.image(image.pair, 40, doc.y + 4, { fit: [width, pairHeight] });
        doc.y += pairHeight + 10;
      }
      // Below the pair: the numbered segments on the left, the ranking and each panel's top segments on the right.
      const side = (width - 16) / 2;
      const figure = image.segments ?? image.overview;
      const figHeight = figure ? Math.min(200, side * sizeRatio(figure)) : 0;
      ensure(Math.max(figHeight, 80));
      const top = doc.y;
      if (figure) doc.image(figure, 40, top, { fit: [side, figHeight] });
      const textX = figure ? 40 + side + 16 : 40;
      doc.fontSize(9).text('', textX, top);
      for (const r of image.ranking) doc.text(`${r.label}: ${fmt(r.score)}`, textX, doc.y, { width: side });
      if (image.ranking.length === 0) doc.text('No detection above the threshold.', textX, doc.y, { width: side });
      for (const panel of image.panels) {
        doc.moveDown(0.4).font('Bold').text(panel.title, textX, doc.y, { width: side }).font('Body');
        doc.text(`prediction ${fmt(panel.prediction)}, base ${fmt(panel.baseValue)}`, textX, doc.y, { width: side });
        for (const s of panel.topSegments) doc.fillColor(s.value >= 0 ? '#1e3cff' : '#d62a1e').text(`segment ${s.segment}: ${fmt(s.value)} ± ${fmtSe(s.standardError)}`, textX, doc.y, { width: side });
        doc.fillColor('#000');
      }
      doc.x = 40;
      doc.y = Math.max(doc.y, top + figHeight) + 6;
    }
    if (facts.importance && facts.importance.length > IMPORTANCE_SHOWN) {
      heading(`Global importance: all ${facts.importance.length} labels`);
      doc.fontSize(8);
      facts.importance.forEach((l, i) => {
        ensure(11);
        doc.text(`${i + 1}. ${l.label}: ${fmt(l.value)}`, 40, doc.y, { width });
      });
    }
    doc.end();
  });
}

/** Height ÷ width of a JPEG, read from its header. */
function sizeRatio(jpeg: Buffer): number {
  for (let i = 2; i + 9 < jpeg.length; ) {
    if (jpeg[i] !== 0xff) break;
    const marker = jpeg[i + 1]!;
    const length = jpeg.readUInt16BE(i + 2);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return jpeg.readUInt16BE(i + 5) / Math.max(1, jpeg.readUInt16BE(i + 7));
    }
    i += 2 + length;
  }
  return 0.75;
}
