/**
 * A Clarify user swaps the container image and changes nothing else: the two official image
 * explainability notebooks' configs, exactly as the SageMaker SDK writes them (predictor.model_name,
 * so a shadow endpoint), run through the Processing entrypoint against a local SageMaker control
 * plane and model servers that answer like the notebooks' (the detection server answers a batch
 * even for one image); then the notebooks' own file-opening code finds the results.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { shadowJobKey } from '../src/predictor/shadow-endpoint.js';
import { runCli, startCli } from './support/cli.js';
import { ensureAptPackage } from './support/debian.js';
import { runProcess } from './support/process.js';
import { colourShareModel, startEndpointServer, type TestEndpointServer, type TestModel } from './support/endpoint-server.js';
import { startControlPlane, type ControlPlane } from './support/sagemaker-control-plane.js';
import { detectSquares, squaresImage } from './support/square-detector.js';
import { startS3Server, type TestS3Server } from './support/s3-server.js';
import { scratchDir } from './support/scratch-dir.js';

/** The Caltech-256 categories the classification notebook passes as label_headers (257 with clutter). */
const CALTECH = Array.from({ length: 257 }, (_, i) => `${String(i + 1).padStart(3, '0')}.${['ak47', 'american-flag', 'backpack'][i] ?? `category-${i + 1}`}`);

/** The built-in image classification algorithm answers a JSON list of one probability per class. */
const caltechClassifier: TestModel = (request) => {
  const shares = colourShareModel(request) as number[];
  return CALTECH.map((_, i) => (i < 3 ? shares[i]! * 0.97 : 0.03 / 254));
};

/** The notebook's detection_server_batch.py: rows [class id (float), score, x0, y0, x1, y1] per image. */
const NOTEBOOK_CLASSES = ['dog', 'elephant', 'zebra', 'bear'];
const notebookDetector: TestModel = (request) =>
  detectSquares(request.pixels, request.width, request.height).map((d) => [[0, 1, 3][d.classIndex]! + 0.0, d.score, ...d.box]);

/** What `SageMakerClarifyProcessor.run_explainability` writes for the classification notebook. */
function sdkClassificationNotebookConfig(): Record<string, unknown> {
  return {
    dataset_type: 'application/x-image',
    methods: {
      shap: {
        use_logit: false,
        save_local_shap_values: true,
        num_samples: 500,
        image_config: { model_type: 'IMAGE_CLASSIFICATION', num_segments: 20, feature_extraction_method: 'segmentation', segment_compactness: 5 },
      },
      report: { name: 'report', title: 'Analysis Report' },
    },
    predictor: { model_name: 'ic-caltech-257', instance_type: 'ml.m5.xlarge', initial_instance_count: 1, content_type: 'image/jpeg', label_headers: CALTECH },
  };
}

/** ... and for the object-detection notebook. */
function sdkDetectionNotebookConfig(baseline: string): Record<string, unknown> {
  return {
    dataset_type: 'application/x-image',
    probability_threshold: 0.8,
    methods: {
      shap: {
        baseline,
        use_logit: false,
        save_local_shap_values: true,
        num_samples: 500,
        image_config: { model_type: 'OBJECT_DETECTION', num_segments: 20, feature_extraction_method: 'segmentation', segment_compactness: 5, max_objects: 5, iou_threshold: 0.5, context: 1.0 },
      },
      report: { name: 'report', title: 'Analysis Report' },
    },
    predictor: { model_name: 'yolo3-darknet53-coco-1a2b3c4d', instance_type: 'ml.g4dn.xlarge', initial_instance_count: 1, content_type: 'application/x-npy', label_headers: NOTEBOOK_CLASSES },
  };
}

async function png(image: { width: number; height: number; data: Uint8Array }): Promise<Buffer> {
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toBuffer();
}

async function jpeg(image: { width: number; height: number; data: Uint8Array }): Promise<Buffer> {
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).jpeg({ quality: 95 }).toBuffer();
}

describe('Coming from SageMaker Clarify: the notebooks run unchanged', () => {
  let tmp: string;
  let s3: TestS3Server;
  let control: ControlPlane;
  let classifier: TestEndpointServer;
  let detector: TestEndpointServer;

  before(async () => {
    tmp = await scratchDir('ci-dropin-');
    s3 = await startS3Server();
    control = await startControlPlane({ creatingDescribes: 2, models: ['ic-caltech-257', 'yolo3-darknet53-coco-1a2b3c4d', 'failing-model'], failingModels: { 'failing-model': 'The primary container for production variant AllTraffic did not pass the ping health check.' } });
    classifier = await startEndpointServer({ model: caltechClassifier, endpointInService: control.inService });
    detector = await startEndpointServer({ model: notebookDetector, endpointInService: control.inService, alwaysBatch: true });
    await s3.createBucket('notebook');
    // The detection notebook uploads its noise baseline to S3.
    const noise = new Uint8Array(64 * 64 * 3).map((_, i) => (i * 7919) % 256);
    await s3.put('notebook', 'clarify_object_detection/noise_rgb.png', await png({ width: 64, height: 64, data: noise }));
  });

  after(async () => {
    await classifier.stop();
    await detector.stop();
    await control.stop();
    await s3.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  const env = (runtime: TestEndpointServer): Record<string, string> => ({ ...control.env(), ...s3.env(), AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: runtime.url });

  /** A fake /opt/ml tree as SageMaker Processing lays it out for the SDK's processor. */
  async function mlTree(name: string, config: Record<string, unknown>, images: Record<string, Buffer>): Promise<string> {
    const root = path.join(tmp, name);
    await mkdir(path.join(root, 'processing', 'input', 'config'), { recursive: true });
    await mkdir(path.join(root, 'processing', 'input', 'data'), { recursive: true });
    await writeFile(path.join(root, 'processing', 'input', 'config', 'analysis_config.json'), JSON.stringify(config, null, 4));
    for (const [file, bytes] of Object.entries(images)) await writeFile(path.join(root, 'processing', 'input', 'data', file), bytes);
    return root;
  }

  function assertNothingLeft(): void {
    assert.deepEqual([...control.endpoints.keys()], [], 'no endpoint left');
    assert.deepEqual([...control.configs.keys()], [], 'no endpoint config left');
  }

  it('the image-classification notebook: model_name → shadow endpoint, 257 labels, *.jpeg heatmaps at the prefix, report.ipynb', async () => {
    const root = await mlTree('ml-classification', sdkClassificationNotebookConfig(), {
      '201.spaghetti_0001.jpg': await jpeg({ width: 64, height: 48, data: new Uint8Array(64 * 48 * 3).map((_, i) => [220, 30, 30][i % 3]!) }),
      '145.motorbikes-101_0002.jpg': await jpeg({ width: 48, height: 64, data: new Uint8Array(48 * 64 * 3).map((_, i) => [30, 40, 210][i % 3]!) }),
    });
    const run = await runCli(['processing'], { CLARIFY_IMAGES_ML_ROOT: root, ...env(classifier) });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stderr, /shadow endpoint sm-clarify-[a-z0-9]+-[0-9a-f]{6}: creating from model ic-caltech-257 \(1 × ml\.m5\.xlarge\)/);
    assert.match(run.stderr, /shadow endpoint sm-clarify-\S+: InService/);
    assert.match(run.stderr, /shadow endpoint sm-clarify-\S+: deleted/);
    assertNothingLeft();
    assert.deepEqual(control.variants.at(-1), { model: 'ic-caltech-257', instanceType: 'ml.m5.xlarge', count: 1, accelerator: undefined });
    assert.ok(classifier.requests.length >= 2 * 500, `${classifier.requests.length} calls`);
    assert.ok(classifier.requests.every((r) => r.route === 'sagemaker' && /^sm-clarify-/.test(r.endpointName ?? '')));
    // The notebook's reading code: every *.jpeg at the output prefix is a result image.
    const output = path.join(root, 'processing', 'output');
    const jpegs = (await readdir(output)).filter((f) => path.extname(f) === '.jpeg').sort();
    assert.deepEqual(jpegs, ['shap_145.motorbikes-101_0002.jpeg', 'shap_201.spaghetti_0001.jpeg']);
    for (const file of jpegs) assert.equal((await sharp(path.join(output, file)).metadata()).format, 'jpeg');
    const predictions = (await readFile(path.join(output, 'predictions.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { key: string; predicted_label: string });
    assert.deepEqual(predictions.map((p) => [p.key, p.predicted_label]), [['145.motorbikes-101_0002.jpg', '003.backpack'], ['201.spaghetti_0001.jpg', '001.ak47']]);
    for (const file of ['report.html', 'report.pdf', 'report.ipynb']) assert.ok((await readFile(path.join(output, file))).length > 0, file);
    const notebook = JSON.parse(await readFile(path.join(output, 'report.ipynb'), 'utf8')) as { cells: { cell_type: string; source: string[] }[] };
    assert.match(notebook.cells[1]!.source.join(''), /^# Analysis Report/, 'the title the SDK wrote');
  });

  it('the object-detection notebook: batched answers, an S3 baseline, the notebook opens shap_<stem>_box1.jpeg and <stem>_objects.jpeg', async () => {
    const scene = (x: number): { width: number; height: number; data: Uint8Array } =>
      squaresImage(160, 120, [
        { colour: 0, x, y: 20, w: 40, h: 40 },
        { colour: 2, x: 100, y: 60, w: 40, h: 40 },
      ]);
    const root = await mlTree('ml-detection', sdkDetectionNotebookConfig('s3://notebook/clarify_object_detection/noise_rgb.png'), {
      '009.bear_009_0002.jpg': await png(scene(10)),
      '064.elephant-101_064_0003.jpg': await png(scene(20)),
    });
    const run = await runCli(['processing'], { CLARIFY_IMAGES_ML_ROOT: root, ...env(detector) });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assertNothingLeft();
    assert.ok(detector.requests.every((r) => r.contentType === 'application/x-npy'));
    const output = path.join(root, 'processing', 'output');
    // The notebook's cells, by name:
    for (const file of ['shap_064.elephant-101_064_0003_box1.jpeg', 'shap_064.elephant-101_064_0003_box2.jpeg', '064.elephant-101_064_0003_objects.jpeg', 'shap_064.elephant-101_064_0003_box1_object.jpeg']) {
      const meta = await sharp(path.join(output, file)).metadata();
      assert.equal(meta.format, 'jpeg', file);
    }
    const predictions = (await readFile(path.join(output, 'predictions.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { objects: { label: string; score: number }[] });
    for (const p of predictions) assert.deepEqual(p.objects.map((o) => o.label).sort(), ['bear', 'dog']);
  });

  it('a shadow endpoint that fails to start: the job says why, and nothing is left behind', async () => {
    const config = { ...sdkClassificationNotebookConfig(), predictor: { ...(sdkClassificationNotebookConfig()['predictor'] as object), model_name: 'failing-model' } };
    const root = await mlTree('ml-failing', config, { 'a.png': await png({ width: 32, height: 32, data: new Uint8Array(32 * 32 * 3).fill(200) }) });
    const run = await runCli(['processing'], { CLARIFY_IMAGES_ML_ROOT: root, ...env(classifier) });
    assert.equal(run.code, 1);
    const message = await readFile(path.join(root, 'output', 'message'), 'utf8');
    assert.match(message, /shadow endpoint sm-clarify-\S+ is Failed: The primary container for production variant AllTraffic did not pass the ping health check/);
    assertNothingLeft();
  });

  it('a role without a permission: the error names the IAM action, and what was created is deleted', async () => {
    const denied = await startControlPlane({ deniedActions: ['CreateEndpoint'] });
    try {
      const root = await mlTree('ml-denied', sdkClassificationNotebookConfig(), { 'a.png': await png({ width: 32, height: 32, data: new Uint8Array(32 * 32 * 3).fill(200) }) });
      const run = await runCli(['processing'], { CLARIFY_IMAGES_ML_ROOT: root, ...env(classifier), AWS_ENDPOINT_URL_SAGEMAKER: denied.url });
      assert.equal(run.code, 1);
      assert.match(await readFile(path.join(root, 'output', 'message'), 'utf8'), /the job's role lacks permission sagemaker:CreateEndpoint \(needed to create the shadow endpoint for model ic-caltech-257\)/);
      assert.ok(denied.actions.includes('DeleteEndpointConfig'), 'the endpoint config created before the refusal is deleted');
      assert.deepEqual([...denied.configs.keys()], []);
    } finally {
      await denied.stop();
    }
  });

  it('SIGTERM during the run deletes the shadow endpoint; a crash leaves one that the next run of the same job removes', async () => {
    const data = path.join(tmp, 'sigterm-data');
    await mkdir(data, { recursive: true });
    for (let i = 0; i < 3; i++) await writeFile(path.join(data, `img-${i}.png`), await png({ width: 40 + i, height: 40, data: new Uint8Array((40 + i) * 40 * 3).fill(90 + i * 20) }));
    const configFile = path.join(tmp, 'sigterm.json');
    // The notebook's config with a smaller budget: the shadow endpoint's life does not depend on it.
    const config = sdkClassificationNotebookConfig() as { methods: { shap: Record<string, unknown> } };
    config.methods.shap['num_samples'] = 100;
    await writeFile(configFile, JSON.stringify(config));
    const out = path.join(tmp, 'sigterm-out');
    const run = startCli(['run', '--config', configFile, '--dataset-uri', data, '--output', out], env(classifier));
    while (![...control.endpoints.values()].some((e) => e.status === 'InService') || classifier.requests.length === 0) await new Promise((r) => setTimeout(r, 10));
    run.child.kill('SIGTERM');
    assert.equal(await run.exited, 143, run.stderr);
    assert.match(run.stderr, /deleted/);
    assertNothingLeft();

    // A crashed earlier run of the same job (same output): its endpoint is found by its tags and removed.
    const jobKey = shadowJobKey(out);
    control.seedLeftover('sm-clarify-crashed-0001', [{ Key: 'clarify-images:created-by', Value: 'clarify-images' }, { Key: 'clarify-images:job', Value: jobKey }]);
    control.seedLeftover('sm-clarify-someone-else', [{ Key: 'clarify-images:created-by', Value: 'clarify-images' }, { Key: 'clarify-images:job', Value: 'another-job' }]);
    const again = await runCli(['run', '--config', configFile, '--dataset-uri', data, '--output', out], env(classifier));
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /sm-clarify-crashed-0001: left behind by an earlier run of this job; deleting it/);
    assert.deepEqual([...control.endpoints.keys()], ['sm-clarify-someone-else'], "another job's endpoint is not touched");
    control.endpoints.clear();
    control.configs.clear();
  });

  it('report.ipynb is a valid nbformat 4 notebook (checked by Debian\'s nbformat), with a first cell that loads out.jsonl', async (t) => {
    const output = path.join(tmp, 'ml-classification', 'processing', 'output');
    const missing = await ensureAptPackage('python3-nbformat', async () => (await runProcess('/usr/bin/python3', ['-c', 'import nbformat'])).code === 0);
    if (missing) {
      t.skip(missing.reason);
      return;
    }
    const validate = await runProcess('/usr/bin/python3', ['-c', 'import nbformat, sys; nb = nbformat.read(sys.argv[1], as_version=4); nbformat.validate(nb); print(nb.nbformat, nb.nbformat_minor, len(nb.cells))', path.join(output, 'report.ipynb')]);
    assert.equal(validate.code, 0, validate.stderr);
    assert.match(validate.stdout, /^4 5 \d+/);
    const notebook = JSON.parse(await readFile(path.join(output, 'report.ipynb'), 'utf8')) as { cells: { cell_type: string; source: string[]; attachments?: Record<string, Record<string, string>> }[] };
    const first = notebook.cells[0]!;
    assert.equal(first.cell_type, 'code');
    // Run the first cell where the notebook sits: it loads this run's explanations.
    const ran = await runProcess('/usr/bin/python3', ['-c', first.source.join('')], { cwd: output });
    assert.equal(ran.code, 0, ran.stderr);
    assert.match(ran.stdout, /^2 images explained, 2 predictions/);
    const markdown = notebook.cells.filter((c) => c.cell_type === 'markdown').map((c) => c.source.join('')).join('\n');
    assert.match(markdown, /\| Model type \| IMAGE_CLASSIFICATION \|/);
    assert.match(markdown, /\| segment \| SHAP value ± SE \|/);
    const attachments = notebook.cells.flatMap((c) => Object.values(c.attachments ?? {}));
    assert.ok(attachments.length >= 4, `${attachments.length} pictures embedded (original|heatmap and numbered segments per image)`);
    for (const a of attachments) assert.equal((await sharp(Buffer.from(a['image/jpeg']!, 'base64')).metadata()).format, 'jpeg');
  });
});
