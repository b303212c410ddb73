/** The explanation outputs: one out.jsonl record per image, its segment map and its heatmap. */
import type { ClassificationExplanation } from '../explain/classification.js';
import type { RgbImage } from '../image/rgb.js';
import type { Storage } from '../storage/storage.js';
import { renderHeatmap } from './heatmap.js';
import { encodeGray16Png } from './png16.js';

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
  std_errors: number[];
}

export interface ExplanationRecord {
  image: string;
  key: string;
  name: string;
  width: number;
  height: number;
  num_segments: number;
  segments_path: string;
  heatmap_path: string;
  predicted_label: string;
  calls: number;
  budget: number;
  exact: boolean;
  stopped_early: boolean;
  explanations: LabelExplanation[];
}

export function segmentsPath(name: string): string {
  return `${EXPLANATIONS_DIR}/segments/${name}.png`;
}

export function heatmapPath(name: string): string {
  return `shap_${name}.jpeg`;
}

export function explanationRecord(
  image: { uri: string; key: string },
  name: string,
  rgb: RgbImage,
  labels: readonly string[],
  predictedIndex: number,
  explanation: ClassificationExplanation,
): ExplanationRecord {
  const { result, segments } = explanation;
  return {
    image: image.uri,
    key: image.key,
    name,
    width: rgb.width,
    height: rgb.height,
    num_segments: segments.count,
    segments_path: segmentsPath(name),
    heatmap_path: heatmapPath(name),
    predicted_label: labels[predictedIndex] ?? '',
    calls: result.calls,
    budget: explanation.budget,
    exact: result.exact,
    stopped_early: result.stoppedEarly,
    explanations: labels.map((label, o) => ({
      label,
      label_index: o,
      prediction: result.full[o]!,
      base_value: result.empty[o]!,
      shap_values: Array.from(result.values[o]!),
      std_errors: Array.from(result.standardErrors[o]!),
    })),
  };
}

/** Segment map (16-bit PNG) and the top class's heatmap, written before the record that names them. */
export async function writeExplanationArtifacts(storage: Storage, record: ExplanationRecord, rgb: RgbImage, explanation: ClassificationExplanation, predictedIndex: number): Promise<void> {
  const { segments, result } = explanation;
  await storage.write(record.segments_path, encodeGray16Png(segments.width, segments.height, segments.labels), 'image/png');
  const heatmap = await renderHeatmap(rgb, segments, result.values[predictedIndex]!, { title: record.predicted_label });
  await storage.write(record.heatmap_path, heatmap, 'image/jpeg');
}

/** Global importance per label over all explained images, per Clarify's agg_method. */
export class GlobalImportance {
  private readonly sums: number[];
  private readonly squares: number[];
  private readonly samples: number[][];
  private count = 0;
  constructor(private readonly labels: readonly string[], private readonly method: 'mean_abs' | 'median' | 'mean_sq') {
    this.sums = labels.map(() => 0);
    this.squares = labels.map(() => 0);
    this.samples = labels.map(() => []);
  }

  add(record: ExplanationRecord): void {
    record.explanations.forEach((e, o) => {
      for (const v of e.shap_values) {
        this.sums[o]! += Math.abs(v);
        this.squares[o]! += v * v;
        if (this.method === 'median') this.samples[o]!.push(v);
      }
    });
    this.count += record.num_segments;
  }

  summary(): { agg_method: string; segments: number; labels: { label: string; value: number }[] } {
    const value = (o: number): number => {
      if (this.count === 0) return 0;
      if (this.method === 'mean_abs') return this.sums[o]! / this.count;
      if (this.method === 'mean_sq') return this.squares[o]! / this.count;
      const sorted = [...this.samples[o]!].sort((a, b) => a - b);
      const mid = Math.floor(sorted.length / 2);
      return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
    };
    return { agg_method: this.method, segments: this.count, labels: this.labels.map((label, o) => ({ label, value: value(o) })) };
  }
}
