/** Regression thresholds for `compare`, with documented defaults; a JSON file may override any. */
import { readFile } from 'node:fs/promises';

export interface Thresholds {
  /** Largest allowed change of any label's score (classification) or a matched object's score. */
  max_score_change: number;
  /** Top-1 label changes fail the image. */
  fail_on_label_flip: boolean;
  /** Smallest allowed Spearman rank correlation of the top class's (or object's) SHAP values. */
  min_rank_correlation: number;
  /** Smallest allowed share of the top-5 segments (by |value|) kept. */
  min_top5_overlap: number;
  /** Most segments allowed to change sign while exceeding their standard error in both runs. */
  max_significant_sign_flips: number;
  /** IoU for matching objects across runs. */
  object_iou: number;
  /** Objects appearing or disappearing fail the image. */
  fail_on_object_change: boolean;
  /** Images present in only one run fail the comparison. */
  fail_on_missing_images: boolean;
}

export const DEFAULT_THRESHOLDS: Thresholds = {
  max_score_change: 0.05,
  fail_on_label_flip: true,
  min_rank_correlation: 0.8,
  min_top5_overlap: 0.6,
  max_significant_sign_flips: 0,
  object_iou: 0.5,
  fail_on_object_change: true,
  fail_on_missing_images: true,
};

export async function loadThresholds(file: string | undefined): Promise<Thresholds> {
  if (!file) return { ...DEFAULT_THRESHOLDS };
  const parsed = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  const result: Thresholds = { ...DEFAULT_THRESHOLDS };
  for (const [key, value] of Object.entries(parsed)) {
    if (!(key in DEFAULT_THRESHOLDS)) throw new Error(`${file}: unknown threshold "${key}"; known: ${Object.keys(DEFAULT_THRESHOLDS).join(', ')}`);
    const expected = typeof DEFAULT_THRESHOLDS[key as keyof Thresholds];
    if (typeof value !== expected) throw new Error(`${file}: "${key}" must be a ${expected}`);
    (result as unknown as Record<string, unknown>)[key] = value;
  }
  return result;
}
