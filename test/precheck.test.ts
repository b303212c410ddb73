import assert from 'node:assert/strict';
import { truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { colourShareModel, startEndpointServer, type TestEndpointServer } from './support/endpoint-server.js';
import { solidPng } from './support/fixtures.js';
import { runCli } from './support/cli.js';
import { scratchDir } from './support/scratch-dir.js';

describe('clarify-images precheck', () => {
  let endpoint: TestEndpointServer;
  let tmp: string;
  let image: string;
  let mode: 'ok' | 'short' | 'fail' = 'ok';

  before(async () => {
    tmp = await scratchDir('clarify-precheck-');
    image = path.join(tmp, 'red.png');
    await writeFile(image, await solidPng(20, 10, [200, 30, 30]));
    endpoint = await startEndpointServer({
      model: (r) => (r.accept === 'application/json' && mode === 'short' ? { prediction: [0.5, 0.5] } : { prediction: colourShareModel(r) }),
      faults: () => (mode === 'fail' ? { status: 424, message: 'model crashed' } : undefined),
    });
  });
  after(async () => endpoint.stop());

  async function config(extra: Record<string, unknown> = {}): Promise<string> {
    const file = path.join(tmp, `config-${Math.random().toString(36).slice(2)}.json`);
    await writeFile(
      file,
      JSON.stringify({
        dataset_type: 'application/x-image',
        dataset_uri: tmp,
        methods: { shap: { image_config: { model_type: 'IMAGE_CLASSIFICATION' } } },
        predictor: { content_type: 'image/png', probability: 'prediction', label_headers: ['red', 'green', 'blue'], custom_attributes: 'trace=1' },
        clarify_images: { endpoint_url: endpoint.url, max_retries: 0 },
        ...extra,
      }),
    );
    return file;
  }

  it('shows the request, the raw answer, the extracted scores and an OK verdict', async () => {
    mode = 'ok';
    const run = await runCli(['precheck', '--config', await config(), '--image', image]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /Content-Type: image\/png/);
    assert.match(run.stdout, /Accept: application\/json/);
    assert.match(run.stdout, /CustomAttributes: trace=1/);
    assert.match(run.stdout, /\{"prediction":\[/);
    assert.match(run.stdout, /red: 0\.76/);
    assert.match(run.stdout, /VERDICT: OK for IMAGE_CLASSIFICATION: 3 scores.*predicted "red"/);
    assert.equal(endpoint.requests.at(-1)!.contentType, 'image/png');
  });

  it('picks the first image of the dataset when --image is absent', async () => {
    mode = 'ok';
    const run = await runCli(['precheck', '--config', await config()]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /Image: .*red\.png \(20×10\)/);
  });

  it('says clearly when the answer does not fit the model type', async () => {
    mode = 'short';
    const run = await runCli(['precheck', '--config', await config(), '--image', image]);
    assert.equal(run.code, 1);
    assert.match(run.stdout, /VERDICT: the answer does not fit IMAGE_CLASSIFICATION: got 2 scores but label_headers has 3 labels/);
    const detection = await runCli([
      'precheck',
      '--config',
      await config({ methods: { shap: { image_config: { model_type: 'OBJECT_DETECTION' } } } }),
      '--image',
      image,
    ]);
    assert.equal(detection.code, 1);
    assert.match(detection.stdout, /VERDICT: the answer does not fit OBJECT_DETECTION: detection row 0/);
  });

  it('reports a failing call', async () => {
    mode = 'fail';
    const run = await runCli(['precheck', '--config', await config(), '--image', image]);
    assert.equal(run.code, 1);
    assert.match(run.stdout, /VERDICT: the call failed: HTTP 424.*model crashed/);
    mode = 'ok';
  });
});

describe('precheck sends the shapes the run sends; validate checks the baseline', () => {
  let tmp: string;
  let image: string;
  before(async () => {
    tmp = await scratchDir('clarify-precheck-batch-');
    image = path.join(tmp, 'red.png');
    await writeFile(image, await solidPng(20, 10, [200, 30, 30]));
  });

  async function npyConfig(url: string, extra: Record<string, unknown> = {}, shap: Record<string, unknown> = {}): Promise<string> {
    const file = path.join(tmp, `config-${Math.random().toString(36).slice(2)}.json`);
    await writeFile(
      file,
      JSON.stringify({
        dataset_type: 'application/x-image',
        methods: { shap: { image_config: { model_type: 'IMAGE_CLASSIFICATION' }, ...shap } },
        predictor: { content_type: 'application/x-npy', label_headers: ['red', 'green', 'blue'] },
        clarify_images: { endpoint_url: url, max_retries: 0, ...extra },
      }),
    );
    return file;
  }

  it('with batch_size > 1 it also sends a (2, H, W, 3) batch and reads both answers; a server that answers a batch of one for one image passes', async () => {
    const server = await startEndpointServer({ model: colourShareModel, alwaysBatch: true });
    try {
      const run = await runCli(['precheck', '--config', await npyConfig(server.url, { batch_size: 8 }), '--image', image]);
      assert.equal(run.code, 0, run.stdout);
      assert.match(run.stdout, /^ {2}\[\[0\.7/m, 'the single image was answered as a batch of one');
      assert.match(run.stdout, /VERDICT: OK for IMAGE_CLASSIFICATION: 3 scores/);
      assert.match(run.stdout, /Batch request, as the explanation sends masked images \(batch_size 8\): \(2, 10, 20, 3\)/);
      assert.match(run.stdout, /VERDICT: OK for batches too: 2 answers/);
      assert.deepEqual(server.batchSizes, [2]);
    } finally {
      await server.stop();
    }
  });

  it('a server that refuses batches fails the batch check with what to change', async () => {
    const server = await startEndpointServer({ model: colourShareModel, acceptBatches: false });
    try {
      const run = await runCli(['precheck', '--config', await npyConfig(server.url, { batch_size: 8 }), '--image', image]);
      assert.equal(run.code, 1, run.stdout);
      assert.match(run.stdout, /VERDICT: OK for IMAGE_CLASSIFICATION/);
      assert.match(run.stdout, /VERDICT: the batch answer does not fit: .*Set clarify_images.batch_size to 1/);
    } finally {
      await server.stop();
    }
  });

  it('validate refuses a baseline that is missing, a folder, not an image or larger than max_memory_mb, naming methods.shap.baseline; notes an SDK debug block', async () => {
    const text = path.join(tmp, 'notes.png');
    await writeFile(text, 'not an image');
    for (const [baseline, reason] of [
      [path.join(tmp, 'absent.png'), /does not exist/],
      [tmp, /is a folder, not an image/],
      [text, /not a readable image/],
    ] as const) {
      const run = await runCli(['validate', '--config', await npyConfig('http://127.0.0.1:9', {}, { baseline })]);
      assert.equal(run.code, 2, baseline);
      assert.match(run.stderr, /methods\.shap\.baseline: must be an image: /);
      assert.match(run.stderr, reason);
    }
    // A baseline file larger than the memory budget is refused without being read (sparse: 70 MiB as stat sees it).
    const huge = path.join(tmp, 'huge-baseline.png');
    await writeFile(huge, '');
    await truncate(huge, 70 * 1024 * 1024);
    const tooLarge = await runCli(['validate', '--config', await npyConfig('http://127.0.0.1:9', { max_memory_mb: 64 }, { baseline: huge })]);
    assert.equal(tooLarge.code, 2, tooLarge.stderr);
    assert.match(tooLarge.stderr, /methods\.shap\.baseline: .*huge-baseline\.png is 70 MB, more than clarify_images\.max_memory_mb \(64 MB\) holds, so it is not read/);
    const ok = await runCli(['validate', '--config', await npyConfig('http://127.0.0.1:9', {}, { baseline: image, image_config: { model_type: 'IMAGE_CLASSIFICATION', debug: {} } })]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /note: methods\.shap\.image_config\.debug is accepted as the SDK writes it and ignored/);
  });
});
