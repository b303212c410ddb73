/** What the job writes: one predictions.jsonl record per image and the analysis.json summary. */
import type { Stage } from '../errors.js';
import type { Prediction } from '../predictor/predictor.js';
import type { GlobalImportanceSummary } from './explanations.js';
import type { PaceSummary } from './pace.js';
import type { FewSegmentsSummary } from './segment-note.js';

export interface ImageFailure {
  readonly image: string;
  readonly stage: Stage;
  readonly message: string;
}

export interface PredictionRecord {
  image: string;
  key: string;
  width?: number;
  height?: number;
  /** The image's own size when clarify_images.max_image_side shrank it (width/height are what was explained). */
  original_width?: number;
  original_height?: number;
  predicted_label?: string;
  predicted_index?: number;
  predictions?: { label: string; index: number; score: number }[];
  objects?: {
    label: string;
    class_index: number;
    score: number;
    box: { x0: number; y0: number; x1: number; y1: number };
    box_pixels: { x0: number; y0: number; x1: number; y1: number };
  }[];
  detections_total?: number;
  error?: { stage: Stage; message: string };
}

export function predictionRecord(image: { uri: string; key: string }, size: { width: number; height: number; original?: { width: number; height: number } }, prediction: Prediction): PredictionRecord {
  const record: PredictionRecord = { image: image.uri, key: image.key, width: size.width, height: size.height };
  if (size.original && (size.original.width !== size.width || size.original.height !== size.height)) {
    record.original_width = size.original.width;
    record.original_height = size.original.height;
  }
  if (prediction.kind === 'classification') {
    record.predicted_label = prediction.predicted.label;
    record.predicted_index = prediction.predicted.index;
    record.predictions = prediction.scores.map((s) => ({ label: s.label, index: s.index, score: s.score }));
  } else {
    record.objects = prediction.objects.map((d) => ({
      label: d.label,
      class_index: d.classIndex,
      score: d.score,
      box: { ...d.box },
      box_pixels: {
        x0: Math.round(d.box.x0 * size.width),
        y0: Math.round(d.box.y0 * size.height),
        x1: Math.round(d.box.x1 * size.width),
        y1: Math.round(d.box.y1 * size.height),
      },
    }));
    record.detections_total = prediction.all.length;
  }
  return record;
}

export function failureRecord(image: { uri: string; key: string }, failure: ImageFailure, size?: { width: number; height: number }): PredictionRecord {
  return { image: image.uri, key: image.key, ...(size ?? {}), error: { stage: failure.stage, message: failure.message } };
}

export interface AnalysisSummary {
  tool: { name: 'clarify-images'; version: string };
  status: 'completed' | 'completed_with_failures' | 'partial';
  /** Why a partial run stopped before its images were done (a signal, a failing endpoint, a fault). */
  stop_reason?: string;
  model_type: string;
  endpoint: string;
  dataset: { uri: string; images_found: number; files_skipped: number };
  images: {
    succeeded: number;
    failed: number;
    without_detections?: number;
    /** A stopped run: images listed but not processed. */
    not_processed?: number;
    /** Of those succeeded, how many a previous run's stored results gave (when any did). */
    reused?: number;
  };
  /** The first MAX_LISTED_FAILURES failed images (in dataset order), sorted by image. */
  failures: ImageFailure[];
  /** Failed images beyond those listed (each is in predictions.jsonl). */
  failures_not_listed?: number;
  endpoint_calls: { calls: number; attempts: number; retries: number; failed_calls: number; mean_latency_ms: number };
  explanations?: {
    method: 'kernel_shap';
    /** How the coalitions became SHAP values (clarify_images.estimator, as the config resolved it). */
    estimator: 'tree-adjusted' | 'kernel';
    images_explained: number;
    /** Endpoint calls made for explanations (beyond one prediction per image). */
    calls: number;
    mean_calls_per_image: number;
    /** Classification: per-label importance over all segments of all images. */
    global_importance?: GlobalImportanceSummary;
    /** Object detection: objects explained over all images. */
    objects_explained?: number;
    /** Images whose segments came out fewer than a quarter of num_segments (absent when none did). */
    few_segments?: FewSegmentsSummary;
  };
  durations: { started_at: string; finished_at: string; total_seconds: number };
  /** What set the pace of the images: the endpoint, this machine's CPU, or neither (absent when they took under 10 s, or every image was reused). */
  pace?: PaceSummary;
  /** A merged scale-out run: each host's pace, in shard order (null for a host that judged none), when any host judged one. */
  pace_by_host?: (PaceSummary | null)[];
  report?: { html: string; notebook: string; pdf?: string; pdf_error?: string; images: number };
}
