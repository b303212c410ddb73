/**
 * The analysis config: validated against config-schemas/analysis_config.schema.json,
 * completed with defaults, and checked for the cross-field rules a schema cannot say.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import jmespath from 'jmespath';
import { ConfigError, type ConfigProblem, errorMessage } from '../errors.js';
import { defaultBudget } from '../explain/kernel-shap.js';
import { MIN_CALLS_PER_PLAYER, adjustedOutputCount, treeAdjustedSeconds } from '../explain/tree-adjusted.js';
import { EXPLANATION_REVISION } from '../explain/revision.js';
import { locationProblem } from '../storage/location.js';
import { explanationBytes, mib, workingBytes } from '../compute/memory.js';
import { formatCount } from '../output/format.js';

export type ModelType = 'IMAGE_CLASSIFICATION' | 'OBJECT_DETECTION';
export type ContentType = 'image/jpeg' | 'image/png' | 'application/x-npy';
export type AcceptType = 'application/json' | 'application/jsonlines' | 'text/csv';
export type AggMethod = 'mean_abs' | 'median' | 'mean_sq';
export type DetectionFormat = 'clarify' | 'mask_rcnn';

/** Detections read from separate arrays, one JMESPath expression per field. */
export interface DetectionFields {
  boxes: string;
  scores?: string;
  classes?: string;
  labels?: string;
  class_names?: string;
  coordinates: 'normalized' | 'pixels';
}

export interface ImageConfig {
  model_type: ModelType;
  /** Accepted as the SDK writes it; ignored. */
  debug?: Record<string, unknown>;
  num_segments: number;
  segment_compactness: number;
  feature_extraction_method: 'segmentation';
  max_objects: number;
  iou_threshold: number;
  context: number;
}

export interface ShapConfig {
  baseline?: string;
  num_samples?: number;
  use_logit: boolean;
  agg_method: AggMethod;
  save_local_shap_values: boolean;
  seed?: number;
  image_config: ImageConfig;
}

export interface ReportConfig {
  name: string;
  title?: string;
}

export interface PredictorConfig {
  endpoint_name?: string;
  endpoint_name_prefix?: string;
  model_name?: string;
  instance_type?: string;
  initial_instance_count?: number;
  accelerator_type?: string;
  target_model?: string;
  custom_attributes?: string;
  content_type: ContentType;
  accept_type: AcceptType;
  probability?: string | number;
  label?: string | number;
  label_headers: string[];
}

/** Options Clarify does not have, all under the one key `clarify_images`. */
export interface ExtensionConfig {
  endpoint_url?: string;
  wire_content_type?: string;
  wire_accept?: string;
  /** How the payload travels: its bytes, or their base64 text (for servers that decode it). */
  wire_encoding: 'none' | 'base64';
  concurrency: 'adaptive' | 'fixed';
  region?: string;
  max_concurrency: number;
  max_retries: number;
  retry_base_delay_ms: number;
  retry_max_delay_ms: number;
  request_timeout_ms: number;
  max_response_bytes: number;
  /** Job-wide retry allowance (AWS standard retry mode's quota): a retry costs 5, a timeout 10, a success returns 1. */
  retry_budget: number;
  /** Memory for the images in flight, in MiB (admitted by estimated working size). */
  max_memory_mb: number;
  /** Images with a longer side are shrunk to it before anything else (recorded in predictions.jsonl). */
  max_image_side?: number;
  /** Worker threads for segmentation, masking and the solve (default: every core). */
  cpu_workers?: number;
  s3_max_attempts: number;
  s3_retry_base_delay_ms: number;
  s3_idle_timeout_ms: number;
  /** How long one call may keep being throttled (429) before it fails; throttles spend neither max_retries nor the budget. */
  max_throttle_seconds: number;
  /** Stop the job when this many images in a row fail at the endpoint (0: never). */
  stop_after_failed_images: number;
  max_image_pixels: number;
  jpeg_quality: number;
  detection_format: DetectionFormat;
  detection_fields?: DetectionFields;
  missing_label_score: number | 'error';
  baseline_fill: 'noise' | 'mean' | 'blur';
  report_max_images: number;
  stop_grace_seconds: number;
  batch_size: number;
  max_payload_bytes: number;
  output_uri?: string;
  merge_timeout_seconds: number;
  shadow_endpoint_timeout_seconds: number;
  shap_tolerance?: number;
  estimator: 'tree-adjusted' | 'kernel';
  guided_sampling: boolean;
}

/** The effective config: what was given plus every default, as written to the output. */
export interface AnalysisConfig {
  version?: string;
  dataset_type: 'application/x-image';
  dataset_uri?: string;
  probability_threshold: number;
  methods: { shap: ShapConfig; report: ReportConfig };
  predictor: PredictorConfig;
  clarify_images: ExtensionConfig;
}

export const DEFAULT_DATASET_URI = '/opt/ml/processing/input/data';
export const DEFAULT_OUTPUT_URI = '/opt/ml/processing/output';

const schemaPath = fileURLToPath(new URL('../../../config-schemas/analysis_config.schema.json', import.meta.url));

let compiled: ValidateFunction | undefined;
function validator(): ValidateFunction {
  if (!compiled) {
    const schema: unknown = JSON.parse(readFileSync(schemaPath, 'utf8'));
    const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: true, strictTypes: false });
    compiled = ajv.compile(schema as object);
  }
  return compiled;
}

/** JSON-pointer `/a/b/0` → `a.b[0]`, the form users see in their config. */
function toJsonPath(pointer: string): string {
  if (!pointer) return '';
  return pointer
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : path ? `${path}.${part}` : part), '');
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function describeError(error: ErrorObject): ConfigProblem {
  const path = toJsonPath(error.instancePath);
  const got = error.data === undefined ? '' : `, got ${JSON.stringify(error.data)}`;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String(params['additionalProperty']);
      const properties = (error.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {};
      return {
        path: join(path, key),
        message: `unknown key "${key}"; allowed keys here: ${Object.keys(properties).join(', ')}`,
      };
    }
    case 'required':
      return { path: join(path, String(params['missingProperty'])), message: 'is required' };
    case 'enum':
      return {
        path,
        message: `must be one of ${(params['allowedValues'] as unknown[]).map((v) => JSON.stringify(v)).join(', ')}${got}`,
      };
    case 'const':
      if (path === 'dataset_type') {
        return {
          path,
          message: `this job explains images: dataset_type must be "application/x-image"${got}`,
        };
      }
      return { path, message: `must be ${JSON.stringify(params['allowedValue'])}${got}` };
    case 'type':
      return { path, message: `must be ${String(params['type'])}${got}` };
    case 'pattern':
      if (String(params['pattern']).includes('\\r\\n')) return { path, message: 'must not contain a line break (CR or LF): it is sent as an HTTP header' };
      return { path, message: `${error.message ?? 'is invalid'}${got}` };
    case 'oneOf':
      return { path, message: `must be a string (JMESPath expression) or a non-negative integer (CSV column index)${got}` };
    default:
      return { path, message: `${error.message ?? 'is invalid'}${got}` };
  }
}

/** Ajv reports every branch of a failed oneOf; keep the one summary line per path. */
function problemsFrom(errors: readonly ErrorObject[]): ConfigProblem[] {
  const oneOfPaths = new Set(errors.filter((e) => e.keyword === 'oneOf').map((e) => e.instancePath));
  const kept = errors.filter((e) => e.keyword === 'oneOf' || !oneOfPaths.has(e.instancePath));
  const seen = new Set<string>();
  const problems: ConfigProblem[] = [];
  for (const error of kept) {
    const problem = describeError(error);
    const id = `${problem.path}\u0000${problem.message}`;
    if (!seen.has(id)) {
      seen.add(id);
      problems.push(problem);
    }
  }
  return problems;
}

/**
 * A JMESPath expression that does not parse, or names a function JMESPath lacks, as a problem at
 * its path; undefined when it is valid. Searching null finds both. A function given null where it
 * wants an object or a list (`values(@)`, `keys(@)`) fails on null only: that depends on the answer.
 */
function jmespathProblem(path: string, expression: unknown): ConfigProblem | undefined {
  if (typeof expression !== 'string') return undefined;
  try {
    jmespath.search(null, expression);
    return undefined;
  } catch (error) {
    if (/^TypeError: /.test(errorMessage(error))) return undefined;
    return { path, message: `is not a valid JMESPath expression: ${errorMessage(error)}, got ${JSON.stringify(expression)}` };
  }
}

function detectionFieldProblems(config: AnalysisConfig): ConfigProblem[] {
  const fields = config.clarify_images.detection_fields;
  if (!fields) return [];
  const at = 'clarify_images.detection_fields';
  const problems: ConfigProblem[] = [];
  if (config.methods.shap.image_config.model_type !== 'OBJECT_DETECTION') problems.push({ path: at, message: 'only applies to OBJECT_DETECTION' });
  if (config.clarify_images.detection_format !== 'clarify') problems.push({ path: at, message: 'give either detection_fields or detection_format, not both' });
  if ((fields.classes === undefined) === (fields.labels === undefined)) problems.push({ path: at, message: 'give exactly one of classes (indices) or labels (names)' });
  if (fields.class_names !== undefined && fields.classes === undefined) problems.push({ path: `${at}.class_names`, message: 'turns class indices into names: give classes too' });
  for (const key of ['boxes', 'scores', 'classes', 'labels', 'class_names'] as const) {
    const problem = jmespathProblem(`${at}.${key}`, fields[key]);
    if (problem) problems.push(problem);
  }
  return problems;
}

/**
 * The solver's work per image grows as num_samples × num_segments² (a least-squares fit over
 * every sampled coalition); this bound keeps one solve under about a minute on one core.
 */
export const MAX_SOLVER_WORK = 5e9;

/**
 * The tree-adjusted estimator's surrogates cost more than the least-squares fit (forests and
 * regressions with odd terms for each of the top outputs, and the forests that guide its
 * sampling): at most this many seconds of one core per image, estimated by `treeAdjustedSeconds`.
 * The benchmark's largest case, 10,000 calls over 100 segments, takes about 110 s for its 3 labels;
 * past a few minutes the estimator, not the endpoint, would set the job's pace.
 */
export const MAX_TREE_ADJUSTED_SECONDS = 300;

/** Endpoint calls an image is planned for: num_samples (or its default) and the unmasked image. */
export function plannedCallsPerImage(config: AnalysisConfig): number {
  const { num_samples: samples, image_config } = config.methods.shap;
  return (samples ?? defaultBudget(image_config.num_segments)) + 1;
}

/**
 * Outputs whose answers to every call an image's explanation holds at once: a classifier's labels;
 * a detection image's objects, up to max_objects, when they share one set of calls (context 1),
 * else one object at a time.
 */
function explainedOutputs(config: AnalysisConfig): number {
  const { model_type, context, max_objects } = config.methods.shap.image_config;
  if (model_type === 'IMAGE_CLASSIFICATION') return config.predictor.label_headers.length;
  return context >= 1 ? max_objects : 1;
}

/** clarify_images.max_memory_mb in bytes: the budget images, and the files read for them, are held to. */
export function memoryBudgetBytes(config: AnalysisConfig): number {
  return config.clarify_images.max_memory_mb * 1024 * 1024;
}

/**
 * What a dataset's listing may hold all run, each of its two parts (a manifest's entries, the
 * output names): a quarter of max_memory_mb, as their refusals say.
 */
export function listingBudgetBytes(config: AnalysisConfig): number {
  return memoryBudgetBytes(config) / 4;
}

/** The outputs of explainedOutputs in the config's own terms, for a message. */
export function explainedOutputsSaid(config: AnalysisConfig): string {
  const count = formatCount(explainedOutputs(config));
  return config.methods.shap.image_config.model_type === 'IMAGE_CLASSIFICATION' ? `${count} labels (predictor.label_headers)` : `${count} objects (methods.shap.image_config.max_objects, with context 1)`;
}

/** What an image's explanation holds for those answers beside its pixels (explanationBytes), admitted with each image. */
export function answerBytesPerImage(config: AnalysisConfig): number {
  return explanationBytes(explainedOutputs(config), plannedCallsPerImage(config), config.methods.shap.image_config.num_segments);
}

function feasibilityProblems(config: AnalysisConfig): ConfigProblem[] {
  const { num_samples: samples, image_config } = config.methods.shap;
  const segments = image_config.num_segments;
  if (samples !== undefined && samples * segments * segments > MAX_SOLVER_WORK) {
    return [
      {
        path: 'methods.shap.num_samples',
        message: `${samples} samples over ${segments} segments is more than one image's solve can do (num_samples × num_segments² ≤ ${MAX_SOLVER_WORK.toExponential(0)}): with num_segments ${segments}, use num_samples ≤ ${Math.floor(MAX_SOLVER_WORK / (segments * segments))}`,
      },
    ];
  }
  const budget = memoryBudgetBytes(config);
  // Every output's answer to every call is held while an image is explained (the smallest image: no pixels).
  const leastPerImage = workingBytes(0, 0) + answerBytesPerImage(config);
  if (leastPerImage > budget) {
    return [
      {
        path: 'clarify_images.max_memory_mb',
        message: `${explainedOutputsSaid(config)} at ${formatCount(plannedCallsPerImage(config))} calls per image need about ${mib(leastPerImage)} per image, more than max_memory_mb (${mib(budget)}): raise max_memory_mb if the container has the memory, or lower num_samples${config.methods.shap.image_config.model_type === 'OBJECT_DETECTION' ? ' or max_objects' : ''}`,
      },
    ];
  }
  if (config.clarify_images.estimator !== 'tree-adjusted') return [];
  const work = treeAdjustedWork(config);
  if (work.seconds <= MAX_TREE_ADJUSTED_SECONDS) return [];
  return [
    {
      path: samples === undefined ? 'methods.shap.image_config.num_segments' : 'methods.shap.num_samples',
      message: `${work.given} would keep the tree-adjusted estimator busy for about ${Math.round(work.seconds / 60)} min of CPU per image (at most ${MAX_TREE_ADJUSTED_SECONDS / 60} min): set clarify_images.estimator to "kernel" (as many calls, solved by Kernel SHAP alone)${work.mostSamples === undefined ? '' : `, or use num_samples ≤ ${work.mostSamples}`}`,
    },
  ];
}

/**
 * The tree-adjusted solve's estimated CPU per image for this config, the config said in its terms,
 * and the largest num_samples within the bound (undefined when none lets the forests answer).
 */
function treeAdjustedWork(config: AnalysisConfig): { seconds: number; given: string; mostSamples?: number } {
  const { num_samples: samples, image_config } = config.methods.shap;
  const segments = image_config.num_segments;
  const calls = samples ?? defaultBudget(segments);
  // A classifier's top labels (how many it has shows only in its answers) and a detection image's
  // first objects share one solve, as the explainers ask `solveOptionsFor`; with less than the
  // whole image as context, each object is solved on its own (over fewer segments).
  const { model_type, context, max_objects } = image_config;
  const outputs = model_type === 'OBJECT_DETECTION' ? (context < 1 ? max_objects : adjustedOutputCount(max_objects)) : adjustedOutputCount(Number.POSITIVE_INFINITY);
  const guided = config.clarify_images.guided_sampling;
  const seconds = treeAdjustedSeconds(calls, segments, outputs, guided);
  const each = model_type === 'OBJECT_DETECTION' && context < 1 ? `, for each of up to ${max_objects} objects,` : '';
  const given = (samples === undefined ? `the default num_samples (${calls}) over ${segments} segments` : `${samples} samples over ${segments} segments`) + each;
  let most = calls;
  while (most > 0 && treeAdjustedSeconds(most, segments, outputs, guided) > MAX_TREE_ADJUSTED_SECONDS) most = Math.floor(most * 0.98);
  return { seconds, given, ...(most >= MIN_CALLS_PER_PLAYER * segments ? { mostSamples: most } : {}) };
}

/** A base URL the container route can call: http(s), a host, a valid port, no query or fragment. */
function endpointUrlProblem(url: string | undefined): ConfigProblem | undefined {
  if (url === undefined) return undefined;
  const at = 'clarify_images.endpoint_url';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { path: at, message: `"${url}" is not a valid URL (expected e.g. http://localhost:8080)` };
  }
  if (!parsed.hostname) return { path: at, message: `"${url}" has no host (expected e.g. http://localhost:8080)` };
  if (parsed.search || parsed.hash) return { path: at, message: `"${url}" must be a base URL without ?query or #fragment: the job calls <url>/invocations and <url>/ping` };
  if (parsed.username || parsed.password) return { path: at, message: 'must not carry a user name or password (they would be written to analysis_config.json)' };
  return undefined;
}

/** Rules across fields that the JSON Schema does not express. */
function crossFieldProblems(config: AnalysisConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [...detectionFieldProblems(config), ...feasibilityProblems(config)];
  const urlProblem = endpointUrlProblem(config.clarify_images.endpoint_url);
  if (urlProblem) problems.push(urlProblem);
  for (const [at, uri] of [['dataset_uri', config.dataset_uri], ['clarify_images.output_uri', config.clarify_images.output_uri]] as const) {
    const message = uri === undefined ? undefined : locationProblem(uri);
    if (message) problems.push({ path: at, message });
  }
  const { predictor } = config;
  for (const key of ['probability', 'label'] as const) {
    const problem = jmespathProblem(`predictor.${key}`, predictor[key]);
    if (problem && predictor.accept_type !== 'text/csv') problems.push(problem);
  }
  if (config.clarify_images.missing_label_score !== 'error' && predictor.label === undefined) {
    problems.push({ path: 'clarify_images.missing_label_score', message: 'applies when the answer names its labels: set predictor.label too' });
  }
  if (config.clarify_images.batch_size > 1) {
    if (predictor.content_type !== 'application/x-npy') {
      problems.push({ path: 'clarify_images.batch_size', message: `batches are sent as (N, H, W, 3) arrays: set predictor.content_type to application/x-npy, got "${predictor.content_type}"` });
    }
    if (predictor.accept_type === 'text/csv') {
      problems.push({ path: 'clarify_images.batch_size', message: 'batch answers must be application/json (a list) or application/jsonlines (a line per image)' });
    }
    if (config.clarify_images.wire_encoding !== 'none') {
      problems.push({ path: 'clarify_images.batch_size', message: `batches are sent as NPY bytes: set wire_encoding to "none" or batch_size to 1, got wire_encoding "${config.clarify_images.wire_encoding}"` });
    }
  }
  if (predictor.accept_type === 'text/csv') {
    if (typeof predictor.probability === 'string') {
      problems.push({ path: 'predictor.probability', message: 'with accept_type text/csv, probability must be a column index (integer)' });
    }
    if (typeof predictor.label === 'string') {
      problems.push({ path: 'predictor.label', message: 'with accept_type text/csv, label must be a column index (integer)' });
    }
    if (config.methods.shap.image_config.model_type === 'OBJECT_DETECTION') {
      problems.push({ path: 'predictor.accept_type', message: 'object detection answers must be application/json or application/jsonlines, got "text/csv"' });
    }
  } else {
    if (typeof predictor.probability === 'number') {
      problems.push({ path: 'predictor.probability', message: `with accept_type ${predictor.accept_type}, probability must be a JMESPath expression (string)` });
    }
    if (typeof predictor.label === 'number') {
      problems.push({ path: 'predictor.label', message: `with accept_type ${predictor.accept_type}, label must be a JMESPath expression (string)` });
    }
  }
  return problems;
}

const asRecord = (value: unknown): Record<string, unknown> | undefined =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;

/**
 * What the SageMaker Python SDK accepts and normalises, normalised the same way: dataset_type,
 * content_type and accept_type in any case (the SDK lower-cases them), integer label_headers
 * (read as their decimal strings).
 */
function normaliseAsSdk(candidate: Record<string, unknown>): void {
  if (typeof candidate['dataset_type'] === 'string') candidate['dataset_type'] = candidate['dataset_type'].toLowerCase();
  const predictor = asRecord(candidate['predictor']);
  if (!predictor) return;
  for (const key of ['content_type', 'accept_type']) {
    if (typeof predictor[key] === 'string') predictor[key] = (predictor[key] as string).toLowerCase();
  }
  const headers = predictor['label_headers'];
  if (Array.isArray(headers)) predictor['label_headers'] = headers.map((h) => (typeof h === 'number' && Number.isInteger(h) ? String(h) : h));
}

/** Things worth saying about a valid config that change nothing (printed on stderr by the CLI). */
export function configNotes(config: AnalysisConfig): string[] {
  const notes: string[] = [];
  if ((config.methods.shap.image_config as { debug?: unknown }).debug !== undefined) {
    notes.push('methods.shap.image_config.debug is accepted as the SDK writes it and ignored.');
  }
  const { num_samples: samples, image_config } = config.methods.shap;
  if (config.clarify_images.estimator === 'kernel') {
    const work = treeAdjustedWork(config);
    if (work.seconds > MAX_TREE_ADJUSTED_SECONDS) {
      notes.push(
        `Kernel SHAP solves these images (clarify_images.estimator "kernel"): at ${work.given} the tree-adjusted estimator would keep about ` +
          `${Math.round(work.seconds / 60)} min of CPU busy per image, more than its ${MAX_TREE_ADJUSTED_SECONDS / 60} min${work.mostSamples === undefined ? '' : `; it runs with num_samples ≤ ${work.mostSamples}`}.`,
      );
    }
  }
  const needed = 2 * (image_config.num_segments - 1);
  if (samples !== undefined && samples < needed) {
    notes.push(
      `methods.shap.num_samples ${samples} is below 2 × (num_segments − 1) = ${needed}: unless an image has fewer segments, ` +
        'the samples cannot determine every SHAP value, and its standard errors are written as null (unknown).',
    );
  }
  return notes;
}

/** Validate a parsed config object and return it completed with defaults. Throws ConfigError. */
export function validateConfig(input: unknown): AnalysisConfig {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ConfigError([{ path: '', message: 'the config must be a JSON object' }]);
  }
  const candidate: Record<string, unknown> = structuredClone(input as Record<string, unknown>);
  // Objects whose fields all have defaults may be left out; create them so Ajv fills them in.
  if (candidate['clarify_images'] === undefined) candidate['clarify_images'] = {};
  const methods = candidate['methods'];
  if (typeof methods === 'object' && methods !== null && !Array.isArray(methods)) {
    const m = methods as Record<string, unknown>;
    if (m['report'] === undefined) m['report'] = {};
  }
  normaliseAsSdk(candidate);
  const explicit = (input as { clarify_images?: { baseline_fill?: unknown; estimator?: unknown } }).clarify_images;
  const validate = validator();
  if (!validate(candidate)) {
    throw new ConfigError(problemsFrom(validate.errors ?? []));
  }
  const config = candidate as unknown as AnalysisConfig;
  // The default estimator yields to Kernel SHAP where its solve would be unreasonable, so a
  // Clarify config with a large budget runs unchanged (configNotes says so); only an explicit
  // "tree-adjusted" is refused there.
  if (explicit?.estimator === undefined && config.clarify_images.estimator === 'tree-adjusted' && treeAdjustedWork(config).seconds > MAX_TREE_ADJUSTED_SECONDS) {
    config.clarify_images.estimator = 'kernel';
  }
  const problems = crossFieldProblems(config);
  if (explicit?.baseline_fill !== undefined && config.methods.shap.baseline !== undefined) {
    problems.push({ path: 'clarify_images.baseline_fill', message: 'give either methods.shap.baseline (an image) or clarify_images.baseline_fill, not both' });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** Read, parse and validate a config file. */
export async function loadConfig(file: string): Promise<AnalysisConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConfigError([{ path: '', message: `the config file ${file} does not exist` }]);
    if (code === 'EISDIR') throw new ConfigError([{ path: '', message: `${file} is a folder; give the config file (analysis_config.json) itself` }]);
    throw new ConfigError([{ path: '', message: `cannot read config file ${file}: ${errorMessage(error)}` }]);
  }
  let parsed: unknown;
  try {
    // Editors on Windows save UTF-8 with a byte-order mark; JSON.parse does not skip it.
    parsed = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (error) {
    throw new ConfigError([{ path: '', message: `${file} is not valid JSON: ${errorMessage(error)}` }]);
  }
  let config: AnalysisConfig;
  try {
    config = validateConfig(parsed);
  } catch (error) {
    // A pathologically nested config overflows the validator's recursion: say so, not "Maximum call stack size exceeded".
    if (error instanceof RangeError) throw new ConfigError([{ path: '', message: `${file} is nested too deeply to be an analysis config` }]);
    throw error;
  }
  return resolveRelativePaths(config, path.dirname(path.resolve(file)));
}

const isLocalRelative = (uri: string): boolean => !/^[a-z][a-z0-9+.-]*:\/\//i.test(uri) && !path.isAbsolute(uri);

/**
 * Local paths in a config file (dataset_uri, methods.shap.baseline) are relative to the file's
 * folder, not to where the command runs, so a config works from anywhere.
 */
export function resolveRelativePaths(config: AnalysisConfig, base: string): AnalysisConfig {
  const resolved = structuredClone(config);
  if (resolved.dataset_uri !== undefined && isLocalRelative(resolved.dataset_uri)) resolved.dataset_uri = path.resolve(base, resolved.dataset_uri);
  const shap = resolved.methods.shap;
  if (shap.baseline !== undefined && isLocalRelative(shap.baseline)) shap.baseline = path.resolve(base, shap.baseline);
  return resolved;
}

/**
 * Where the job will send its calls, or a ConfigError saying how to give it one. With only
 * predictor.model_name, the job creates a shadow endpoint (as Clarify does) and runs against it.
 */
export function endpointTarget(
  config: AnalysisConfig,
): { kind: 'url'; url: string } | { kind: 'sagemaker'; endpointName: string } | { kind: 'shadow'; modelName: string } {
  if (config.clarify_images.endpoint_url) return { kind: 'url', url: config.clarify_images.endpoint_url };
  if (config.predictor.endpoint_name) return { kind: 'sagemaker', endpointName: config.predictor.endpoint_name };
  if (config.predictor.model_name) {
    if (!config.predictor.instance_type) {
      throw new ConfigError([{ path: 'predictor.instance_type', message: `is required with predictor.model_name "${config.predictor.model_name}": the shadow endpoint runs on it` }]);
    }
    return { kind: 'shadow', modelName: config.predictor.model_name };
  }
  throw new ConfigError([
    {
      path: 'predictor.endpoint_name',
      message: 'no endpoint to call: set predictor.endpoint_name to an existing SageMaker endpoint, predictor.model_name (+ instance_type) for a shadow endpoint, or clarify_images.endpoint_url to a server speaking the SageMaker container contract',
    },
  ]);
}

/**
 * Config fields that shape predictions and explanations. Runs that agree on these can be compared
 * and resumed; the endpoint and performance settings (concurrency, retries, timeouts) may differ.
 * Every field of the schema is either here or in NOT_RESULT_SHAPING (a test holds that).
 */
export const RESULT_SHAPING_FIELDS: readonly string[] = [
  'dataset_type',
  'probability_threshold',
  'methods.shap.baseline',
  'methods.shap.num_samples',
  'methods.shap.use_logit',
  'methods.shap.seed',
  'methods.shap.save_local_shap_values',
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
  'clarify_images.estimator',
  'clarify_images.guided_sampling',
  'clarify_images.jpeg_quality',
  'clarify_images.detection_format',
  'clarify_images.detection_fields',
  'clarify_images.missing_label_score',
  'clarify_images.wire_content_type',
  'clarify_images.wire_accept',
  'clarify_images.wire_encoding',
  'clarify_images.max_image_side',
];

/** The schema's other fields, and why a result does not depend on them. */
export const NOT_RESULT_SHAPING: Readonly<Record<string, string>> = {
  version: 'names the config format',
  dataset_uri: 'in the fingerprint on its own, as the URI this run lists',
  'methods.shap.agg_method': "global importance, computed from every image's values in each run",
  'methods.shap.image_config.debug': 'accepted and ignored',
  'methods.report.name': 'the report, drawn again in each run',
  'methods.report.title': 'the report, drawn again in each run',
  'clarify_images.report_max_images': 'the report, drawn again in each run',
  'predictor.endpoint_name': 'the endpoint identity',
  'predictor.model_name': 'the endpoint identity',
  'predictor.target_model': 'the endpoint identity',
  'predictor.custom_attributes': 'the endpoint identity (hashed)',
  'clarify_images.endpoint_url': 'the endpoint identity',
  'clarify_images.region': 'the endpoint identity (SageMaker routes)',
  'predictor.endpoint_name_prefix': "a shadow endpoint's name; its model is the identity",
  'predictor.instance_type': 'where a shadow endpoint runs, not what it answers',
  'predictor.initial_instance_count': 'where a shadow endpoint runs, not what it answers',
  'predictor.accelerator_type': 'where a shadow endpoint runs, not what it answers',
  'clarify_images.shadow_endpoint_timeout_seconds': 'how long to wait for a shadow endpoint',
  'clarify_images.batch_size': 'how the same masked images are sent, one or several per request',
  'clarify_images.max_payload_bytes': 'how the same masked images are sent, one or several per request',
  'clarify_images.max_image_pixels': 'a guard: refuses an image, never changes a result (a stored result over a lowered limit is not reused)',
  'clarify_images.max_memory_mb': 'how many images are explained at once',
  'clarify_images.cpu_workers': 'how many threads do the same work',
  'clarify_images.concurrency': 'how many calls are in flight',
  'clarify_images.max_concurrency': 'how many calls are in flight',
  'clarify_images.max_retries': 'how a failing call is retried',
  'clarify_images.retry_base_delay_ms': 'how a failing call is retried',
  'clarify_images.retry_max_delay_ms': 'how a failing call is retried',
  'clarify_images.retry_budget': 'how a failing call is retried',
  'clarify_images.max_throttle_seconds': 'how a throttled call is retried',
  'clarify_images.request_timeout_ms': 'when a call has failed',
  'clarify_images.max_response_bytes': 'when a call has failed',
  'clarify_images.stop_after_failed_images': 'when the job stops',
  'clarify_images.stop_grace_seconds': 'when the job stops',
  'clarify_images.merge_timeout_seconds': 'how long scale-out parts are awaited',
  'clarify_images.output_uri': 'where the results are written',
  'clarify_images.s3_max_attempts': 'how S3 is retried',
  'clarify_images.s3_retry_base_delay_ms': 'how S3 is retried',
  'clarify_images.s3_idle_timeout_ms': 'how S3 is retried',
};

/** The AWS region the SageMaker clients use: the config's, else the environment's, else us-east-1. */
export function awsRegion(region: string | undefined): string {
  return region ?? process.env['AWS_REGION'] ?? process.env['AWS_DEFAULT_REGION'] ?? 'us-east-1';
}

export function configValue(config: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((value, key) => (value && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined), config);
}

/** Shadow endpoints are named `<prefix>-<time base 36>-<6 hex>` (see predictor/shadow-endpoint.ts). */
export function isShadowEndpointName(name: string, prefix = 'sm-clarify'): boolean {
  return name.startsWith(`${prefix}-`) && /-[0-9a-z]+-[0-9a-f]{6}$/.test(name.slice(prefix.length));
}

/**
 * Which model answers, for resume: a result is reused only from the same endpoint (name or URL;
 * for a shadow endpoint, its model), target model and custom attributes (hashed: they may hold a
 * token). The shadow endpoint's own name changes every run, so the model stands for it.
 */
export function endpointIdentity(config: AnalysisConfig): Record<string, string | null> {
  const p = config.predictor;
  const attributes = p.custom_attributes === undefined ? null : createHash('sha256').update(p.custom_attributes).digest('hex').slice(0, 16);
  const url = config.clarify_images.endpoint_url;
  return {
    endpoint_url: url ?? null,
    // An endpoint name means another endpoint in another region.
    region: url ? null : awsRegion(config.clarify_images.region),
    endpoint: url ? null : p.model_name && (!p.endpoint_name || isShadowEndpointName(p.endpoint_name, p.endpoint_name_prefix)) ? `model:${p.model_name}` : (p.endpoint_name ?? null),
    target_model: p.target_model ?? null,
    custom_attributes_sha256: attributes,
  };
}

/**
 * The config as written to the output: custom_attributes often carries a token, so only its length
 * and a hash are kept (enough to tell two runs apart, not to replay the token).
 */
export function configForWriting(config: AnalysisConfig): AnalysisConfig {
  const attributes = config.predictor.custom_attributes;
  if (attributes === undefined) return config;
  const hash = createHash('sha256').update(attributes).digest('hex').slice(0, 16);
  return { ...config, predictor: { ...config.predictor, custom_attributes: `[redacted: ${attributes.length} characters, sha256 ${hash}…]` } };
}

/**
 * A stable fingerprint of everything that shapes a result (for resume): the fields, the endpoint,
 * the dataset, this code's way of explaining, and the content of methods.shap.baseline (its
 * SHA-256, or why it could not be read), which may be replaced under the same URI.
 */
export function resultFingerprint(config: AnalysisConfig, baselineContent?: string): string {
  return JSON.stringify([
    ...RESULT_SHAPING_FIELDS.map((p) => [p, configValue(config, p) ?? null]),
    ['endpoint', endpointIdentity(config)],
    ['dataset_uri', config.dataset_uri ?? null],
    ['explanation_revision', EXPLANATION_REVISION],
    ...(config.methods.shap.baseline === undefined ? [] : [['baseline_content', baselineContent ?? null]]),
  ]);
}
