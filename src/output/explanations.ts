/** The explanation outputs: one out.jsonl record per image, its segment map and its heatmap. */
import type { ClassificationExplanation } from '../explain/classification.js';
import type { DetectionExplanation } from '../explain/detection.js';
import type { ExplanationOutcome } from '../explain/outcome.js';
import { seededRandom } from '../explain/random.js';
import type { RgbImage } from '../image/rgb.js';
import type { Storage } from '../storage/storage.js';
import { boxInView, type HeatmapOptions, type PictureView, renderDetections, renderHeatmap } from './heatmap.js';
import { encodeGray16Png } from './png16.js';
import { type ReportImage, type ReportPanel, topSegments } from './report.js';

export const EXPLANATIONS_DIR = 'explanations_shap';

export interface LabelExplanation {
  label: string;
  label_index: number;
  /** f(image), in the solver's scale (log-odds with use_logit). */
  prediction: number;
  /** f(all segments masked). */
  base_value: number;
  /** One per segment, in segment-id order; they sum to prediction − base_value. */
  shap_values: number[];
  /** Standard error per value: 0 where exact, null where unknown (too few coalitions). */
  std_errors: (number | null)[];
}

/** What every out.jsonl record has, whatever the model type. */
export interface ImageExplanationBase {
  image: string;
  key: string;
  name: string;
  width: number;
  height: number;
  num_segments: number;
  segments_path: string;
  /** Endpoint calls made for the explanation. */
  calls: number;
  budget: number;
}

export interface ExplanationRecord extends ImageExplanationBase {
  heatmap_path: string;
  predicted_label: string;
  exact: boolean;
  stopped_early: boolean;
  explanations: LabelExplanation[];
}

/** NaN (unknown) is written as null, explicitly, so readers never take it for a number. */
export function standardErrorsForJson(errors: ArrayLike<number>): (number | null)[] {
  return Array.from(errors, (e) => (Number.isFinite(e) ? e : null));
}

export function segmentsPath(name: string): string {
  return `${EXPLANATIONS_DIR}/segments/${name}.png`;
}

export function heatmapPath(name: string): string {
  return `shap_${name}.jpeg`;
}

function baseFields(image: { uri: string; key: string }, name: string, rgb: RgbImage, segmentCount: number, calls: number, budget: number): ImageExplanationBase {
  return {
    image: image.uri,
    key: image.key,
    name,
    width: rgb.width,
    height: rgb.height,
    num_segments: segmentCount,
    segments_path: segmentsPath(name),
    calls,
    budget,
  };
}

export function explanationRecord(image: { uri: string; key: string }, name: string, rgb: RgbImage, explanation: ClassificationExplanation): ExplanationRecord {
  const { result, segments } = explanation;
  const labels = explanation.scores.map((s) => s.label);
  return {
    ...baseFields(image, name, rgb, segments.count, result.calls, explanation.budget),
    heatmap_path: heatmapPath(name),
    predicted_label: labels[explanation.predicted.index] ?? '',
    exact: result.exact,
    stopped_early: result.stoppedEarly,
    explanations: labels.map((label, o) => ({
      label,
      label_index: o,
      prediction: result.full[o]!,
      base_value: result.empty[o]!,
      shap_values: Array.from(result.values[o]!),
      std_errors: standardErrorsForJson(result.standardErrors[o]!),
    })),
  };
}

/** Three decimals with a true minus sign, for pictures. */
const signed = (v: number): string => (v < 0 ? `−${(-v).toFixed(3)}` : v.toFixed(3));

/** The most influential segments (largest |value|), whose numbers the pictures show. */
export function topSegmentIds(values: ArrayLike<number>, count = 5): number[] {
  return Array.from(values, (v, i) => [Math.abs(v), i] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .slice(0, count)
    .map(([, i]) => i);
}

/**
 * Writes the segment map (16-bit PNG) and the top class's heatmap. With a `view` (the report
 * shows this image), also returns the heatmap drawn at the view's size, for the report's pictures.
 */
async function writeClassificationArtifacts(storage: Storage, record: ExplanationRecord, rgb: RgbImage, explanation: ClassificationExplanation, view?: PictureView): Promise<{ heatmap: Buffer; viewHeatmap?: Buffer }> {
  const { segments, result, unit } = explanation;
  const predictedIndex = explanation.predicted.index;
  await storage.write(record.segments_path, encodeGray16Png(segments.width, segments.height, segments.labels), 'image/png');
  const values = result.values[predictedIndex]!;
  const top = record.explanations[predictedIndex]!;
  const options = {
    title: `${record.predicted_label}: ${signed(top.prediction)} (${unit}); base value ${signed(top.base_value)}`,
    unit,
    numbered: topSegmentIds(values),
  };
  const heatmap = await renderHeatmap(rgb, segments, values, options);
  await storage.write(record.heatmap_path, heatmap, 'image/jpeg');
  if (!view) return { heatmap };
  return { heatmap, viewHeatmap: view.scale === 1 ? heatmap : await renderHeatmap(view.rgb, view.segments, values, options) };
}

/** Values the median keeps, over all labels together; beyond it each label keeps a uniform sample. */
export const MEDIAN_KEPT_VALUES = 1 << 21;

export interface GlobalImportanceSummary {
  agg_method: string;
  segments: number;
  labels: { label: string; value: number }[];
  /** `median` over more values than it keeps: the median of a uniform sample of `kept` of each label's `of` values. */
  median_sample?: { kept: number; of: number };
}

/** Global importance per label over all explained images, per Clarify's agg_method. */
export class GlobalImportance {
  private readonly sums: number[];
  private readonly squares: number[];
  private readonly samples: number[][];
  /** Per label, for `median`: the sample's size limit, and a seeded stream so a run repeats. */
  private readonly capacity: number;
  private readonly random = seededRandom(0x6d656469);
  private count = 0;
  constructor(
    private readonly labels: readonly string[],
    private readonly method: 'mean_abs' | 'median' | 'mean_sq',
    keptValues = MEDIAN_KEPT_VALUES,
  ) {
    this.sums = labels.map(() => 0);
    this.squares = labels.map(() => 0);
    this.samples = labels.map(() => []);
    this.capacity = Math.max(1, Math.floor(keptValues / Math.max(1, labels.length)));
  }

  add(record: ExplanationRecord): void {
    const seen = this.count;
    record.explanations.forEach((e, o) => {
      let n = seen;
      for (const v of e.shap_values) {
        this.sums[o]! += Math.abs(v);
        this.squares[o]! += v * v;
        if (this.method === 'median') this.keep(this.samples[o]!, v, n);
        n += 1;
      }
    });
    this.count += record.num_segments;
  }

  /** Reservoir sampling (Vitter's algorithm R): after n values, each is in the sample with equal chance. */
  private keep(sample: number[], value: number, seenBefore: number): void {
    if (sample.length < this.capacity) sample.push(value);
    else {
      const slot = Math.floor(this.random() * (seenBefore + 1));
      if (slot < this.capacity) sample[slot] = value;
    }
  }

  summary(): GlobalImportanceSummary {
    const value = (o: number): number => {
      if (this.count === 0) return 0;
      if (this.method === 'mean_abs') return this.sums[o]! / this.count;
      if (this.method === 'mean_sq') return this.squares[o]! / this.count;
      const sorted = [...this.samples[o]!].sort((a, b) => a - b);
      const mid = Math.floor(sorted.length / 2);
      return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
    };
    const sampled = this.method === 'median' && this.count > this.capacity;
    return {
      agg_method: this.method,
      segments: this.count,
      labels: this.labels.map((label, o) => ({ label, value: value(o) })),
      ...(sampled ? { median_sample: { kept: this.capacity, of: this.count } } : {}),
    };
  }
}

/** One explained object in a detection record. */
export interface ObjectRecord {
  /** 1 = highest score. */
  index: number;
  label: string;
  class_index: number;
  score: number;
  box: { x0: number; y0: number; x1: number; y1: number };
  box_pixels: { x0: number; y0: number; x1: number; y1: number };
  heatmap_path: string;
  /** f(image, or its context region) and f(all masked) under the matching rule. */
  prediction: number;
  base_value: number;
  /** One per segment, in segment-id order; 0 for segments outside the context region. */
  shap_values: number[];
  /** Standard error per value: 0 where exact, null where unknown (too few coalitions). */
  std_errors: (number | null)[];
  /** Segments that were players (all of them with context 1). */
  feature_segments: number[];
  context_region_pixels: { x0: number; y0: number; x1: number; y1: number };
  exact: boolean;
  stopped_early: boolean;
}

export interface DetectionExplanationRecord extends ImageExplanationBase {
  objects_path: string;
  objects: ObjectRecord[];
}

/** One image's out.jsonl record, whatever the model type. */
export type ExplanationLine = ExplanationRecord | DetectionExplanationRecord;

export function objectHeatmapPath(name: string, k: number): string {
  return `shap_${name}_box${k}_object.jpeg`;
}

/** The name the published Clarify object-detection notebook opens (`shap_<stem>_box1.jpeg`); the same picture. */
export function objectHeatmapNotebookPath(name: string, k: number): string {
  return `shap_${name}_box${k}.jpeg`;
}

export function objectsOverviewPath(name: string): string {
  return `${name}_objects.jpeg`;
}

export function pixelBox(box: { x0: number; y0: number; x1: number; y1: number }, width: number, height: number): { x0: number; y0: number; x1: number; y1: number } {
  return { x0: Math.round(box.x0 * width), y0: Math.round(box.y0 * height), x1: Math.round(box.x1 * width), y1: Math.round(box.y1 * height) };
}

export function detectionRecord(image: { uri: string; key: string }, name: string, rgb: RgbImage, explanation: DetectionExplanation): DetectionExplanationRecord {
  return {
    ...baseFields(image, name, rgb, explanation.segments.count, explanation.calls, explanation.budget),
    objects_path: objectsOverviewPath(name),
    objects: explanation.objects.map((o, i) => ({
      index: i + 1,
      label: o.object.label,
      class_index: o.object.classIndex,
      score: o.object.score,
      box: { ...o.object.box },
      box_pixels: pixelBox(o.object.box, rgb.width, rgb.height),
      heatmap_path: objectHeatmapPath(name, i + 1),
      prediction: o.prediction,
      base_value: o.baseValue,
      shap_values: Array.from(o.shapValues),
      std_errors: standardErrorsForJson(o.standardErrors),
      feature_segments: [...o.players],
      context_region_pixels: { ...o.region },
      exact: o.exact,
      stopped_early: o.stoppedEarly,
    })),
  };
}

/** The segment map, one heatmap per object (its box drawn) and the overview of all kept detections. */
async function writeDetectionArtifacts(
  storage: Storage,
  record: DetectionExplanationRecord,
  rgb: RgbImage,
  explanation: DetectionExplanation,
  view?: PictureView,
): Promise<{ heatmaps: Buffer[]; viewHeatmaps?: Buffer[]; overview: Buffer }> {
  const { segments } = explanation;
  await storage.write(record.segments_path, encodeGray16Png(segments.width, segments.height, segments.labels), 'image/png');
  const heatmaps: Buffer[] = [];
  const viewHeatmaps: Buffer[] = [];
  for (const [i, object] of record.objects.entries()) {
    const region = object.context_region_pixels;
    const whole = region.x0 <= 0 && region.y0 <= 0 && region.x1 >= rgb.width && region.y1 >= rgb.height;
    const values = explanation.objects[i]!.shapValues;
    const options = (scale: number): HeatmapOptions => ({
      title: `Object ${object.index}: ${object.label} ${object.score.toFixed(2)}`,
      unit: explanation.unit,
      box: boxInView(object.box_pixels, scale),
      contextRegion: whole ? undefined : boxInView(region, scale),
      numbered: topSegmentIds(values),
    });
    const heatmap = await renderHeatmap(rgb, segments, values, options(1));
    await storage.write(object.heatmap_path, heatmap, 'image/jpeg');
    await storage.write(objectHeatmapNotebookPath(record.name, object.index), heatmap, 'image/jpeg');
    heatmaps.push(heatmap);
    if (view) viewHeatmaps.push(view.scale === 1 ? heatmap : await renderHeatmap(view.rgb, view.segments, values, options(view.scale)));
  }
  const overview = await renderDetections(
    rgb,
    record.objects.map((o) => ({ box: o.box_pixels, caption: `${o.index}. ${o.label} ${o.score.toFixed(2)}` })),
  );
  await storage.write(record.objects_path, overview, 'image/jpeg');
  return { heatmaps, ...(view ? { viewHeatmaps } : {}), overview };
}

/** The report's part of one explained image that depends on its model type. */
export interface ExplanationPictures {
  readonly unit: string;
  /** The first heatmap at the view's size: what the report shows beside the original. */
  readonly firstHeatmap?: Buffer;
  readonly ranking: ReportImage['ranking'];
  readonly overview?: Buffer;
  readonly panels: readonly ReportPanel[];
}

export interface WrittenExplanation {
  readonly line: ExplanationLine;
  /** A detection image in which the model found nothing to explain (the summary counts them). */
  readonly withoutDetections: boolean;
  /** With a view (the report shows this image): its pictures and panels. */
  readonly pictures?: ExplanationPictures;
}

/**
 * Writes one image's segment map and heatmaps, and returns its out.jsonl record (written later, in
 * the dataset's order, by the run's writer) with, given a view, the report's part of it.
 */
export async function writeExplanation(storage: Storage, image: { uri: string; key: string }, name: string, rgb: RgbImage, outcome: ExplanationOutcome, view?: PictureView): Promise<WrittenExplanation> {
  if (outcome.kind === 'detection') {
    const line = detectionRecord(image, name, rgb, outcome);
    const drawn = await writeDetectionArtifacts(storage, line, rgb, outcome, view);
    const pictures: ExplanationPictures | undefined = view && {
      unit: outcome.unit,
      firstHeatmap: drawn.viewHeatmaps?.[0],
      ranking: line.objects.map((o) => ({ label: `${o.index}. ${o.label}`, score: o.score })),
      overview: drawn.overview,
      panels: line.objects.map((o, k) => ({
        title: `Object ${o.index}: ${o.label} ${o.score.toFixed(3)}`,
        heatmap: drawn.viewHeatmaps?.[k] ?? drawn.heatmaps[k]!,
        prediction: o.prediction,
        baseValue: o.base_value,
        topSegments: topSegments(o.shap_values, o.std_errors),
      })),
    };
    return { line, withoutDetections: outcome.objects.length === 0, pictures };
  }
  const line = explanationRecord(image, name, rgb, outcome);
  const drawn = await writeClassificationArtifacts(storage, line, rgb, outcome, view);
  const top = line.explanations[outcome.predicted.index]!;
  const pictures: ExplanationPictures | undefined = view && {
    unit: outcome.unit,
    firstHeatmap: drawn.viewHeatmap,
    ranking: [...outcome.scores].sort((a, b) => b.score - a.score).slice(0, 5).map((s) => ({ label: s.label, score: s.score })),
    panels: [{ title: `Predicted: ${top.label}`, heatmap: drawn.viewHeatmap ?? drawn.heatmap, prediction: top.prediction, baseValue: top.base_value, topSegments: topSegments(top.shap_values, top.std_errors) }],
  };
  return { line, withoutDetections: false, pictures };
}
