import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, type ConfigProblem } from '../src/errors.js';
import { readFileSync } from 'node:fs';
import { answerBytesPerImage, configNotes, endpointTarget, NOT_RESULT_SHAPING, RESULT_SHAPING_FIELDS, resultFingerprint, validateConfig } from '../src/config/config.js';
import { explanationBytes } from '../src/compute/memory.js';
import { type RawConfig, sdkClassificationConfig } from './support/configs.js';

function problemsOf(config: unknown): ConfigProblem[] {
  try {
    validateConfig(config);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return [...error.problems];
  }
  assert.fail('the config was accepted');
}

function withChange(change: (c: RawConfig) => void): RawConfig {
  const config = sdkClassificationConfig();
  change(config);
  return config;
}

const shapOf = (c: RawConfig): RawConfig => (c['methods'] as RawConfig)['shap'] as RawConfig;
const imageConfigOf = (c: RawConfig): RawConfig => shapOf(c)['image_config'] as RawConfig;
const predictorOf = (c: RawConfig): RawConfig => c['predictor'] as RawConfig;

interface SchemaNode {
  readonly properties?: Record<string, SchemaNode>;
}

/** Dotted paths of the schema's fields that hold values (objects with properties are walked into). */
function schemaLeaves(node: SchemaNode, prefix = ''): string[] {
  if (!node.properties) return [prefix];
  return Object.entries(node.properties).flatMap(([key, child]) => schemaLeaves(child, prefix ? `${prefix}.${key}` : key));
}

describe('config', () => {
  it('accepts a config as the SageMaker Python SDK writes it, unchanged', () => {
    const config = validateConfig(sdkClassificationConfig());
    assert.equal(config.methods.shap.use_logit, false);
    assert.equal(config.methods.shap.save_local_shap_values, true);
    assert.equal(config.methods.report.title, 'Analysis Report');
    assert.equal(config.probability_threshold, 0.5);
  });

  it('fills every documented default', () => {
    const config = validateConfig({
      dataset_type: 'application/x-image',
      methods: { shap: { image_config: { model_type: 'OBJECT_DETECTION' } } },
      predictor: { endpoint_name: 'e', label_headers: ['a'] },
    });
    const ic = config.methods.shap.image_config;
    assert.deepEqual(
      [ic.num_segments, ic.segment_compactness, ic.max_objects, ic.iou_threshold, ic.context, ic.feature_extraction_method],
      [20, 5, 3, 0.5, 1, 'segmentation'],
    );
    assert.equal(config.probability_threshold, 0.5);
    assert.equal(config.predictor.content_type, 'image/jpeg');
    assert.equal(config.predictor.accept_type, 'application/json');
    assert.deepEqual(config.methods.report, { name: 'report' });
    assert.equal(config.clarify_images.max_concurrency, 16);
    assert.equal(config.clarify_images.detection_format, 'clarify');
    assert.equal(config.clarify_images.concurrency, 'adaptive');
    assert.equal(config.clarify_images.missing_label_score, 'error');
    assert.equal(config.clarify_images.estimator, 'tree-adjusted');
  });

  it('counts a detector\'s objects against max_memory_mb as a classifier\'s labels: all of them with context 1, one at a time below', () => {
    const detector = (max_objects: number, context: number): RawConfig => ({
      dataset_type: 'application/x-image',
      methods: { shap: { num_samples: 2048, image_config: { model_type: 'OBJECT_DETECTION', max_objects, context } } },
      predictor: { endpoint_name: 'e', label_headers: ['face'] },
    });
    assert.equal(answerBytesPerImage(validateConfig(detector(100, 1))), explanationBytes(100, 2049, 20));
    assert.equal(answerBytesPerImage(validateConfig(detector(100, 0.5))), explanationBytes(1, 2049, 20));
    // A million objects' scores to 2,049 calls would be 65 GB an image: refused, naming what to lower.
    const problems = problemsOf(detector(1_000_000, 1));
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.path, 'clarify_images.max_memory_mb');
    assert.match(problems[0]!.message, /^1,000,000 objects \(methods\.shap\.image_config\.max_objects, with context 1\) at 2,049 calls per image need about [\d,]+ MB per image, .* or lower num_samples or max_objects$/);
    // One object at a time: the same count is no memory problem.
    assert.doesNotThrow(() => validateConfig(detector(1_000_000, 0.5)));
  });

  it('every field of the schema either shapes results (the resume fingerprint, compare) or is listed as not, with why', () => {
    const schema = JSON.parse(readFileSync(new URL('../../config-schemas/analysis_config.schema.json', import.meta.url), 'utf8')) as SchemaNode;
    const leaves = schemaLeaves(schema);
    assert.ok(leaves.length > 60, `${leaves.length} fields`);
    const shaping = (field: string): boolean => RESULT_SHAPING_FIELDS.some((f) => field === f || field.startsWith(`${f}.`));
    const unclassified = leaves.filter((field) => !shaping(field) && !(field in NOT_RESULT_SHAPING));
    assert.deepEqual(unclassified, [], 'each new field must be classified');
    assert.deepEqual(leaves.filter((field) => shaping(field) && field in NOT_RESULT_SHAPING), [], 'none both');
    assert.deepEqual(Object.keys(NOT_RESULT_SHAPING).filter((field) => !leaves.includes(field)), [], 'none the schema lacks');
    assert.deepEqual(RESULT_SHAPING_FIELDS.filter((field) => !leaves.some((leaf) => leaf === field || leaf.startsWith(`${field}.`))), [], 'none the schema lacks');
  });

  it('the fingerprint changes with max_image_side (another image is explained) and, on SageMaker routes, with the region', () => {
    const base = withChange(() => undefined);
    const fingerprint = (change: (c: RawConfig) => void): string => resultFingerprint(validateConfig(withChange(change)));
    const same = resultFingerprint(validateConfig(base));
    const ext = (c: RawConfig): Record<string, unknown> => ((c['clarify_images'] as Record<string, unknown> | undefined) ?? (c['clarify_images'] = {})) as Record<string, unknown>;
    assert.notEqual(fingerprint((c) => (ext(c)['max_image_side'] = 512)), same);
    assert.notEqual(fingerprint((c) => (ext(c)['region'] = 'eu-west-1')), fingerprint((c) => (ext(c)['region'] = 'us-west-2')));
    // Performance settings do not: a resumed run may go faster.
    assert.equal(fingerprint((c) => (ext(c)['max_concurrency'] = 4)), same);
    // A container URL is the endpoint whatever the region.
    const url = (region: string) => (c: RawConfig): void => void Object.assign(ext(c), { endpoint_url: 'http://localhost:8080', region });
    assert.equal(fingerprint(url('eu-west-1')), fingerprint(url('us-west-2')));
  });

  it('names the path of an unknown estimator and lists the two there are', () => {
    const problems = problemsOf(withChange((c) => ((c as { clarify_images?: Record<string, unknown> }).clarify_images = { estimator: 'lime' })));
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.path, 'clarify_images.estimator');
    assert.match(problems[0]!.message, /tree-adjusted.*kernel.*got "lime"/);
  });

  it('takes what the SDK accepts: any case for dataset_type, content_type and accept_type; integer label_headers; image_config.debug', () => {
    const config = validateConfig(
      withChange((c) => {
        c['dataset_type'] = 'Application/X-Image';
        Object.assign(predictorOf(c), { content_type: 'IMAGE/PNG', accept_type: 'Application/JSONLines', label_headers: [0, 1, 2] });
        imageConfigOf(c)['debug'] = { save_segments: true };
        imageConfigOf(c)['segment_compactness'] = 7.5;
      }),
    );
    assert.equal(config.dataset_type, 'application/x-image');
    assert.equal(config.predictor.content_type, 'image/png');
    assert.equal(config.predictor.accept_type, 'application/jsonlines');
    assert.deepEqual(config.predictor.label_headers, ['0', '1', '2']);
    assert.equal(config.methods.shap.image_config.segment_compactness, 7.5);
    assert.deepEqual(configNotes(config), ['methods.shap.image_config.debug is accepted as the SDK writes it and ignored.']);
    assert.deepEqual(configNotes(validateConfig(sdkClassificationConfig())), []);
  });

  it('catches a JMESPath probability or label that does not parse, before any image', () => {
    const problems = problemsOf(withChange((c) => Object.assign(predictorOf(c), { probability: 'prediction[?', label: 'labels' })));
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.path, 'predictor.probability');
    assert.match(problems[0]!.message, /is not a valid JMESPath expression.*got "prediction\[\?"/);
    // A function JMESPath lacks, or given the wrong number of arguments, is refused too.
    const unknown = problemsOf(withChange((c) => Object.assign(predictorOf(c), { probability: 'vals(@)', label: 'keys(@, @)' })));
    assert.deepEqual(unknown.map((p) => p.path), ['predictor.probability', 'predictor.label']);
    assert.match(unknown[0]!.message, /Unknown function: vals\(\)/);
    // Functions that want an object fail on null only, so they are not refused: TorchServe's label → score answers need them.
    const torchServe = validateConfig(withChange((c) => Object.assign(predictorOf(c), { probability: 'values(@)', label: 'keys(@)' })));
    assert.equal(torchServe.predictor.probability, 'values(@)');
  });

  it('checks detection_fields: object detection only, one of classes or labels, class_names with classes, valid JMESPath', () => {
    const detection = (fields: Record<string, unknown>, extra: RawConfig = {}): RawConfig =>
      withChange((c) => {
        imageConfigOf(c)['model_type'] = 'OBJECT_DETECTION';
        c['clarify_images'] = { detection_fields: fields, ...extra };
      });
    const ok = validateConfig(detection({ boxes: 'normalized_boxes', scores: 'scores', classes: 'classes', class_names: 'labels', coordinates: 'normalized' }));
    assert.equal(ok.clarify_images.detection_fields?.class_names, 'labels');
    const paths = (fields: Record<string, unknown>, extra?: RawConfig): string[] => problemsOf(detection(fields, extra)).map((p) => `${p.path}: ${p.message}`);
    assert.match(paths({ boxes: 'b', coordinates: 'pixels' })[0]!, /detection_fields: give exactly one of classes \(indices\) or labels \(names\)/);
    assert.match(paths({ boxes: 'b', labels: 'l', class_names: 'n', coordinates: 'pixels' })[0]!, /detection_fields.class_names: turns class indices into names/);
    assert.match(paths({ boxes: 'b[', labels: 'l', coordinates: 'pixels' })[0]!, /detection_fields.boxes: is not a valid JMESPath/);
    assert.match(paths({ boxes: 'b', labels: 'l', coordinates: 'pixels' }, { detection_format: 'mask_rcnn' })[0]!, /give either detection_fields or detection_format/);
    assert.match(paths({ boxes: 'b', labels: 'l' })[0]!, /detection_fields.coordinates: is required/);
    const classification = problemsOf(withChange((c) => (c['clarify_images'] = { detection_fields: { boxes: 'b', labels: 'l', coordinates: 'pixels' } })));
    assert.match(classification[0]!.message, /only applies to OBJECT_DETECTION/);
  });

  it('missing_label_score needs predictor.label; wire headers refuse CR/LF', () => {
    const missing = problemsOf(withChange((c) => (c['clarify_images'] = { missing_label_score: 0 })));
    assert.equal(missing[0]!.path, 'clarify_images.missing_label_score');
    const wire = problemsOf(withChange((c) => (c['clarify_images'] = { wire_accept: 'application/json\r\nX-Evil: 1' })));
    assert.equal(wire[0]!.path, 'clarify_images.wire_accept');
    const ok = validateConfig(withChange((c) => (c['clarify_images'] = { wire_content_type: 'application/x-image', wire_accept: 'application/json;verbose' })));
    assert.equal(ok.clarify_images.wire_content_type, 'application/x-image');
  });

  it('names the path of a wrong model_type and lists the allowed values', () => {
    const problems = problemsOf(withChange((c) => (imageConfigOf(c)['model_type'] = 'SEGMENTATION')));
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.path, 'methods.shap.image_config.model_type');
    assert.match(problems[0]!.message, /IMAGE_CLASSIFICATION.*OBJECT_DETECTION.*got "SEGMENTATION"/);
  });

  it('names the path of content_type image/jpg', () => {
    const problems = problemsOf(withChange((c) => (predictorOf(c)['content_type'] = 'image/jpg')));
    assert.deepEqual(problems.map((p) => p.path), ['predictor.content_type']);
    assert.match(problems[0]!.message, /"image\/jpeg", "image\/png", "application\/x-npy", got "image\/jpg"/);
  });

  it('rejects an unknown key, naming its path and the allowed keys', () => {
    const problems = problemsOf(withChange((c) => (imageConfigOf(c)['num_segmnets'] = 30)));
    assert.equal(problems[0]!.path, 'methods.shap.image_config.num_segmnets');
    assert.match(problems[0]!.message, /unknown key "num_segmnets"; allowed keys here: .*num_segments.*segment_compactness/);
    const top = problemsOf(withChange((c) => (c['concurrency'] = 8)));
    assert.equal(top[0]!.path, 'concurrency');
    assert.match(top[0]!.message, /clarify_images/);
  });

  it('rejects a float num_segments', () => {
    const problems = problemsOf(withChange((c) => (imageConfigOf(c)['num_segments'] = 20.5)));
    assert.deepEqual(problems, [{ path: 'methods.shap.image_config.num_segments', message: 'must be integer, got 20.5' }]);
  });

  it('requires label_headers', () => {
    const problems = problemsOf(withChange((c) => delete predictorOf(c)['label_headers']));
    assert.deepEqual(problems, [{ path: 'predictor.label_headers', message: 'is required' }]);
  });

  it('says this job explains images when dataset_type is not application/x-image', () => {
    const problems = problemsOf(withChange((c) => (c['dataset_type'] = 'text/csv')));
    assert.equal(problems[0]!.path, 'dataset_type');
    assert.match(problems[0]!.message, /this job explains images/);
  });

  it('reports every problem at once', () => {
    const problems = problemsOf(
      withChange((c) => {
        imageConfigOf(c)['num_segments'] = 'many';
        predictorOf(c)['accept_type'] = 'application/xml';
        shapOf(c)['agg_method'] = 'max';
      }),
    );
    assert.deepEqual(problems.map((p) => p.path).sort(), ['methods.shap.agg_method', 'methods.shap.image_config.num_segments', 'predictor.accept_type']);
  });

  it('checks probability against accept_type', () => {
    const csvWithPath = problemsOf(withChange((c) => Object.assign(predictorOf(c), { accept_type: 'text/csv', probability: 'prediction' })));
    assert.equal(csvWithPath[0]!.path, 'predictor.probability');
    assert.match(csvWithPath[0]!.message, /column index/);
    const jsonWithIndex = problemsOf(withChange((c) => Object.assign(predictorOf(c), { probability: 2 })));
    assert.match(jsonWithIndex[0]!.message, /JMESPath/);
    const notEither = problemsOf(withChange((c) => Object.assign(predictorOf(c), { probability: 1.5 })));
    assert.deepEqual(notEither.map((p) => p.path), ['predictor.probability']);
  });

  it('keeps Clarify-less options under clarify_images only, and validates them', () => {
    const problems = problemsOf(withChange((c) => (c['clarify_images'] = { max_concurrency: 0, bogus: true })));
    assert.deepEqual(problems.map((p) => p.path).sort(), ['clarify_images.bogus', 'clarify_images.max_concurrency']);
  });

  it('needs an endpoint to run: endpoint_name, model_name with instance_type (a shadow endpoint), or clarify_images.endpoint_url', () => {
    const config = validateConfig(sdkClassificationConfig());
    assert.deepEqual(endpointTarget(config), { kind: 'shadow', modelName: 'my-model' });
    const noInstance = validateConfig(withChange((c) => delete predictorOf(c)['instance_type']));
    assert.throws(() => endpointTarget(noInstance), (e: unknown) => e instanceof ConfigError && /predictor.instance_type: is required with predictor.model_name "my-model"/.test(e.message));
    const none = validateConfig(withChange((c) => delete predictorOf(c)['model_name']));
    assert.throws(() => endpointTarget(none), (e: unknown) => e instanceof ConfigError && /no endpoint to call/.test(e.message));
    const named = validateConfig(withChange((c) => (predictorOf(c)['endpoint_name'] = 'ep')));
    assert.deepEqual(endpointTarget(named), { kind: 'sagemaker', endpointName: 'ep' });
    const local = validateConfig(withChange((c) => (c['clarify_images'] = { endpoint_url: 'http://127.0.0.1:8080' })));
    assert.deepEqual(endpointTarget(local), { kind: 'url', url: 'http://127.0.0.1:8080' });
  });
});
