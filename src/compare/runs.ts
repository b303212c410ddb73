/** Reading one job output (local folder or S3 prefix) for comparison. */
import { ConfigError, errorMessage } from '../errors.js';
import { type AnalysisConfig, configValue, RESULT_SHAPING_FIELDS } from '../config/config.js';
import type { ExplanationLine } from '../output/explanations.js';
import type { PredictionRecord } from '../output/records.js';
import { openStorage, type Storage } from '../storage/storage.js';

export interface RunOutput {
  readonly uri: string;
  readonly storage: Storage;
  readonly config: AnalysisConfig;
  readonly predictions: Map<string, PredictionRecord>;
  readonly explanations: Map<string, ExplanationLine>;
}

/**
 * Only what the comparison reads: a classifier's record keeps the explanation of its top class.
 * An output's out.jsonl holds every label's values (about 2 MB an image at 1,000 labels and 50
 * segments), so keeping them all would grow with the run, and reading the file whole fails past
 * V8's longest string (about 512 MB: some 270 such images).
 */
function slimExplanation(record: ExplanationLine): ExplanationLine {
  if ('objects' in record) return record;
  return { ...record, explanations: record.explanations.filter((e) => e.label === record.predicted_label) };
}

export async function readRun(uri: string, role: 'baseline' | 'candidate'): Promise<RunOutput> {
  const storage = openStorage(uri);
  const cannotRead = (key: string, error: unknown): ConfigError =>
    new ConfigError([{ path: `--${role}`, message: `cannot read ${storage.uri(key)}: ${errorMessage(error)}; is ${uri} the output of a clarify-images run?` }]);
  /** Each JSON line of the file, read a chunk at a time; a missing optional file has none. */
  const eachLine = async (key: string, required: boolean, take: (line: string) => void): Promise<void> => {
    if (!required && !(await storage.exists(key))) return;
    try {
      for await (const line of storage.readLines(key)) if (line.trim() !== '') take(line);
    } catch (error) {
      throw error instanceof SyntaxError ? cannotRead(key, `a line is not JSON (${error.message})`) : cannotRead(key, error);
    }
  };
  let config: AnalysisConfig;
  try {
    config = JSON.parse((await storage.read('analysis_config.json')).toString('utf8')) as AnalysisConfig;
  } catch (error) {
    throw cannotRead('analysis_config.json', error);
  }
  const predictions = new Map<string, PredictionRecord>();
  await eachLine('predictions.jsonl', true, (line) => {
    const record = JSON.parse(line) as PredictionRecord;
    predictions.set(record.key, record);
  });
  const explanations = new Map<string, ExplanationLine>();
  await eachLine('explanations_shap/out.jsonl', false, (line) => {
    const record = slimExplanation(JSON.parse(line) as ExplanationLine);
    explanations.set(record.key, record);
  });
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
