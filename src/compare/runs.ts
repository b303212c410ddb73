/** Reading one job output (local folder or S3 prefix) for comparison. */
import { ConfigError, errorMessage } from '../errors.js';
import type { AnalysisConfig } from '../config/config.js';
import type { DetectionExplanationRecord, ExplanationRecord } from '../output/explanations.js';
import type { PredictionRecord } from '../output/records.js';
import { openStorage, type Storage } from '../storage/storage.js';

export interface RunOutput {
  readonly uri: string;
  readonly storage: Storage;
  readonly config: AnalysisConfig;
  readonly predictions: Map<string, PredictionRecord>;
  readonly explanations: Map<string, ExplanationRecord | DetectionExplanationRecord>;
}

function jsonLines<T>(text: string): T[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);
}

export async function readRun(uri: string, role: 'baseline' | 'candidate'): Promise<RunOutput> {
  const storage = openStorage(uri);
  const read = async (key: string, required: boolean): Promise<string | undefined> => {
    try {
      return (await storage.read(key)).toString('utf8');
    } catch (error) {
      if (!required) return undefined;
      throw new ConfigError([{ path: `--${role}`, message: `cannot read ${storage.uri(key)}: ${errorMessage(error)}; is ${uri} the output of a clarify-images run?` }]);
    }
  };
  const config = JSON.parse((await read('analysis_config.json', true))!) as AnalysisConfig;
  const predictions = new Map(jsonLines<PredictionRecord>((await read('predictions.jsonl', true))!).map((r) => [r.key, r]));
  const out = await read('explanations_shap/out.jsonl', false);
  const explanations = new Map(jsonLines<ExplanationRecord | DetectionExplanationRecord>(out ?? '').map((r) => [r.key, r]));
  return { uri, storage, config, predictions, explanations };
}

/** Config fields that shape predictions and explanations; the endpoint and performance settings may differ. */
const COMPARED_PATHS = [
  'dataset_type',
  'probability_threshold',
  'methods.shap.baseline',
  'methods.shap.num_samples',
  'methods.shap.use_logit',
  'methods.shap.seed',
  'methods.shap.image_config.model_type',
  'methods.shap.image_config.num_segments',
  'methods.shap.image_config.segment_compactness',
  'methods.shap.image_config.feature_extraction_method',
  'methods.shap.image_config.max_objects',
  'methods.shap.image_config.iou_threshold',
  'methods.shap.image_config.context',
  'predictor.content_type',
  'predictor.accept_type',
  'predictor.probability',
  'predictor.label',
  'predictor.label_headers',
  'clarify_images.baseline_fill',
  'clarify_images.shap_tolerance',
  'clarify_images.jpeg_quality',
  'clarify_images.detection_format',
];

function at(config: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((value, key) => (value && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined), config);
}

/** The compared fields whose values differ, with both values. */
export function configDifferences(a: AnalysisConfig, b: AnalysisConfig): { path: string; baseline: unknown; candidate: unknown }[] {
  return COMPARED_PATHS.filter((p) => JSON.stringify(at(a, p)) !== JSON.stringify(at(b, p))).map((p) => ({ path: p, baseline: at(a, p), candidate: at(b, p) }));
}
