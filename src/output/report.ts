/**
 * The report (`methods.report.name`, default "report"): report.html, self-contained (every image
 * embedded), and report.pdf with the same content. Per image: the original, its segments, the
 * heatmap(s), the top labels or objects, and the most influential segments. Bounded: at most
 * `maxImages` images are shown (the summary counts them all).
 */
import PDFDocument from 'pdfkit';
import sharp from 'sharp';
import type { AnalysisConfig } from '../config/config.js';
import type { AnalysisSummary } from './records.js';

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
  readonly original?: Buffer;
  readonly segments?: Buffer;
  readonly numSegments?: number;
  readonly calls?: number;
  /** Classification: the top labels with scores; detection: the kept objects. */
  readonly ranking: readonly { label: string; score: number }[];
  readonly overview?: Buffer;
  readonly panels: readonly ReportPanel[];
  readonly failure?: { stage: string; message: string };
}

const THUMB_WIDTH = 360;

async function thumbnail(jpeg: Buffer, width = THUMB_WIDTH): Promise<Buffer> {
  return sharp(jpeg).resize({ width, withoutEnlargement: true }).jpeg({ quality: 82 }).toBuffer();
}

/** The most influential segments: largest |value| first. */
export function topSegments(values: readonly number[], errors: readonly number[], count = 5): InfluentialSegment[] {
  return values
    .map((value, segment) => ({ segment, value, standardError: errors[segment] ?? 0 }))
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
      original: image.original && (await thumbnail(image.original)),
      segments: image.segments && (await thumbnail(image.segments)),
      overview: image.overview && (await thumbnail(image.overview, 480)),
      panels: await Promise.all(image.panels.map(async (p) => ({ ...p, heatmap: await thumbnail(p.heatmap, 420) }))),
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
const fmt = (v: number): string => (Math.abs(v) >= 0.001 || v === 0 ? v.toFixed(4) : v.toExponential(2));

export interface ReportFacts {
  readonly title: string;
  readonly rows: readonly [string, string][];
  readonly failures: readonly { image: string; stage: string; message: string }[];
  readonly importance?: readonly { label: string; value: number }[];
  readonly aggMethod?: string;
  readonly shown: number;
  readonly total: number;
}

export function reportFacts(config: AnalysisConfig, summary: AnalysisSummary, shown: number): ReportFacts {
  const ic = config.methods.shap.image_config;
  const shap = config.methods.shap;
  const baseline = shap.baseline ?? `${config.clarify_images.baseline_fill} fill`;
  const rows: [string, string][] = [
    ['Model type', summary.model_type],
    ['Endpoint', summary.endpoint],
    ['Dataset', summary.dataset.uri],
    ['Images', `${summary.dataset.images_found} found, ${summary.images.succeeded} succeeded, ${summary.images.failed} failed, ${summary.dataset.files_skipped} non-image files skipped`],
    ['Segments', `SLIC, num_segments ${ic.num_segments}, compactness ${ic.segment_compactness}`],
    ['SHAP', `Kernel SHAP, num_samples ${shap.num_samples ?? 'default (min(2M + 2048, 2^M − 2))'}, baseline ${baseline}, seed ${shap.seed ?? 0}${shap.use_logit ? ', log-odds' : ''}`],
    ['Endpoint calls', `${summary.endpoint_calls.calls} (${summary.endpoint_calls.retries} retries, ${summary.endpoint_calls.failed_calls} failed), mean latency ${summary.endpoint_calls.mean_latency_ms} ms`],
    ['Time', `${summary.durations.total_seconds} s (${summary.durations.started_at} → ${summary.durations.finished_at})`],
  ];
  if (ic.model_type === 'OBJECT_DETECTION') {
    rows.splice(5, 0, ['Detection', `probability_threshold ${config.probability_threshold}, max_objects ${ic.max_objects}, iou_threshold ${ic.iou_threshold}, context ${ic.context}`]);
  }
  return {
    // Clarify's title when the config gives none (the SageMaker SDK itself writes "Analysis Report").
    title: config.methods.report.title ?? 'SageMaker Analysis Report',
    rows,
    failures: summary.failures,
    importance: summary.explanations?.global_importance?.labels,
    aggMethod: summary.explanations?.global_importance?.agg_method,
    shown,
    total: summary.dataset.images_found,
  };
}

export function renderHtml(facts: ReportFacts, images: readonly ReportImage[]): string {
  const head = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(facts.title)}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} h2{margin-top:2.5rem;border-bottom:1px solid #ddd;padding-bottom:.3rem;word-break:break-all}
table{border-collapse:collapse;margin:.5rem 0} td,th{border:1px solid #ddd;padding:.25rem .6rem;text-align:left;vertical-align:top}
.figs{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start} figure{margin:0} figcaption{font-size:.85rem;color:#555}
.panel{margin:1rem 0;padding:.5rem 0;border-top:1px dashed #ddd} .pos{color:#1e3cff} .neg{color:#d62a1e} .fail{color:#b00}
.note{color:#666;font-size:.9rem}
</style></head><body>`;
  const parts: string[] = [head, `<h1>${escapeHtml(facts.title)}</h1>`, '<p class="note">Blue segments raise the score, red ones lower it; values are SHAP values (they sum to prediction − base value).</p>'];
  parts.push('<h2>Run</h2><table>', ...facts.rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`), '</table>');
  if (facts.importance && facts.importance.length > 0) {
    parts.push(`<h2>Global importance (${escapeHtml(facts.aggMethod ?? '')} over all segments)</h2><table><tr><th>label</th><th>value</th></tr>`);
    parts.push(...facts.importance.map((l) => `<tr><td>${escapeHtml(l.label)}</td><td>${fmt(l.value)}</td></tr>`), '</table>');
  }
  if (facts.failures.length > 0) {
    parts.push(`<h2>Failures (${facts.failures.length})</h2><table><tr><th>image</th><th>stage</th><th>reason</th></tr>`);
    parts.push(...facts.failures.slice(0, 200).map((f) => `<tr class="fail"><td>${escapeHtml(f.image)}</td><td>${escapeHtml(f.stage)}</td><td>${escapeHtml(f.message)}</td></tr>`), '</table>');
  }
  if (facts.shown < facts.total) parts.push(`<p class="note">Showing the first ${facts.shown} of ${facts.total} images.</p>`);
  for (const image of images) {
    parts.push(`<h2>${escapeHtml(image.uri)}</h2>`);
    if (image.failure) {
      parts.push(`<p class="fail">Failed at ${escapeHtml(image.failure.stage)}: ${escapeHtml(image.failure.message)}</p>`);
      continue;
    }
    parts.push(`<p class="note">${image.width}×${image.height} px, ${image.numSegments ?? '?'} segments, ${image.calls ?? 0} endpoint calls for the explanation.</p>`);
    parts.push('<div class="figs">');
    if (image.original) parts.push(`<figure><img src="${dataUri(image.original)}" alt="original"><figcaption>original</figcaption></figure>`);
    if (image.segments) parts.push(`<figure><img src="${dataUri(image.segments)}" alt="segments"><figcaption>segments</figcaption></figure>`);
    if (image.overview) parts.push(`<figure><img src="${dataUri(image.overview)}" alt="detections"><figcaption>kept detections</figcaption></figure>`);
    parts.push('</div>');
    if (image.ranking.length > 0) {
      parts.push('<table><tr><th>label</th><th>score</th></tr>', ...image.ranking.map((r) => `<tr><td>${escapeHtml(r.label)}</td><td>${fmt(r.score)}</td></tr>`), '</table>');
    } else {
      parts.push('<p class="note">No detection above the threshold.</p>');
    }
    for (const panel of image.panels) {
      parts.push(`<div class="panel"><h3>${escapeHtml(panel.title)}</h3><div class="figs"><figure><img src="${dataUri(panel.heatmap)}" alt="heatmap ${escapeHtml(panel.title)}"><figcaption>heatmap</figcaption></figure>`);
      parts.push(`<div><p>prediction ${fmt(panel.prediction)}, base value ${fmt(panel.baseValue)}</p><table><tr><th>segment</th><th>SHAP value ± SE</th></tr>`);
      parts.push(...panel.topSegments.map((s) => `<tr><td>${s.segment}</td><td class="${s.value >= 0 ? 'pos' : 'neg'}">${fmt(s.value)} ± ${fmt(s.standardError)}</td></tr>`));
      parts.push('</table></div></div></div>');
    }
  }
  parts.push('</body></html>');
  return parts.join('\n');
}

/** The same content as the HTML, laid out with pdfkit (pure JavaScript, no browser). */
export function renderPdf(facts: ReportFacts, images: readonly ReportImage[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const doc = new PDFDocument({ size: 'A4', margin: 40, info: { Title: facts.title, Creator: 'clarify-images' } });
    const chunks: Buffer[] = [];
    doc.on('data', (c: Buffer) => chunks.push(c));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
    const width = doc.page.width - 80;
    const ensure = (height: number): void => {
      if (doc.y + height > doc.page.height - 40) doc.addPage();
    };
    doc.fontSize(20).text(facts.title);
    doc.moveDown(0.5).fontSize(9).fillColor('#555').text('Blue segments raise the score, red ones lower it; values are SHAP values (they sum to prediction − base value).').fillColor('#000');
    doc.moveDown().fontSize(13).text('Run');
    doc.fontSize(9);
    for (const [k, v] of facts.rows) doc.text(`${k}: ${v}`, { width });
    if (facts.importance && facts.importance.length > 0) {
      doc.moveDown().fontSize(13).text(`Global importance (${facts.aggMethod ?? ''})`).fontSize(9);
      for (const l of facts.importance) doc.text(`${l.label}: ${fmt(l.value)}`);
    }
    if (facts.failures.length > 0) {
      doc.moveDown().fontSize(13).text(`Failures (${facts.failures.length})`).fontSize(9).fillColor('#b00');
      for (const f of facts.failures.slice(0, 100)) doc.text(`${f.image} [${f.stage}]: ${f.message}`, { width });
      doc.fillColor('#000');
    }
    if (facts.shown < facts.total) doc.moveDown().text(`Showing the first ${facts.shown} of ${facts.total} images.`);
    for (const image of images) {
      doc.addPage();
      doc.fontSize(12).text(image.uri, { width });
      if (image.failure) {
        doc.fontSize(9).fillColor('#b00').text(`Failed at ${image.failure.stage}: ${image.failure.message}`, { width }).fillColor('#000');
        continue;
      }
      doc.fontSize(9).fillColor('#555').text(`${image.width}×${image.height} px, ${image.numSegments ?? '?'} segments, ${image.calls ?? 0} endpoint calls for the explanation.`).fillColor('#000');
      doc.moveDown(0.5);
      const figures = [image.original, image.segments, image.overview].filter((b): b is Buffer => b !== undefined);
      const figWidth = (width - 10 * (figures.length - 1)) / Math.max(1, figures.length);
      const top = doc.y;
      const figHeight = Math.min(200, (figWidth * image.height) / image.width);
      ensure(figHeight);
      figures.forEach((jpeg, i) => doc.image(jpeg, 40 + i * (figWidth + 10), top, { fit: [figWidth, figHeight] }));
      doc.y = top + figHeight + 8;
      doc.x = 40;
      for (const r of image.ranking) doc.text(`${r.label}: ${fmt(r.score)}`);
      if (image.ranking.length === 0) doc.text('No detection above the threshold.');
      for (const panel of image.panels) {
        ensure(230);
        doc.moveDown(0.5).fontSize(11).text(panel.title).fontSize(9);
        const panelTop = doc.y;
        doc.image(panel.heatmap, 40, panelTop, { fit: [300, 200] });
        let y = panelTop;
        doc.text(`prediction ${fmt(panel.prediction)}, base value ${fmt(panel.baseValue)}`, 350, y, { width: width - 310 });
        y += 14;
        for (const s of panel.topSegments) {
          doc.fillColor(s.value >= 0 ? '#1e3cff' : '#d62a1e').text(`segment ${s.segment}: ${fmt(s.value)} ± ${fmt(s.standardError)}`, 350, y);
          y += 12;
        }
        doc.fillColor('#000');
        doc.x = 40;
        doc.y = panelTop + 208;
      }
    }
    doc.end();
  });
}
