/** Reading one job output (local folder or S3 prefix) for comparison. */
import { ConfigError, errorMessage } from '../errors.js';
import { type AnalysisConfig, configValue, RESULT_SHAPING_FIELDS } from '../config/config.js';
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

/** The compared fields whose values differ, with both values. */
export function configDifferences(a: AnalysisConfig, b: AnalysisConfig): { path: string; baseline: unknown; candidate: unknown }[] {
  return RESULT_SHAPING_FIELDS.filter((p) => JSON.stringify(configValue(a, p)) !== JSON.stringify(configValue(b, p))).map((p) => ({
    path: p,
    baseline: configValue(a, p),
    candidate: configValue(b, p),
  }));
}
