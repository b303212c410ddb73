import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import sharp from 'sharp';
import { validateConfig } from '../src/config/config.js';
import { ConfigError } from '../src/errors.js';
import { runJob } from '../src/job.js';
import { fittingBatch, splitBatchAnswer } from '../src/predictor/batcher.js';
import { createRgbImage } from '../src/image/rgb.js';
import { decodeNpy } from '../src/image/npy.js';
import { encodeNpyBatch } from '../src/image/encode.js';
import { startEndpointServer, type TestEndpointServer } from './support/endpoint-server.js';
import { blockImage, REGION_LABELS, regionModel } from './support/region-model.js';
import { scratchDir } from './support/scratch-dir.js';

const bytes = (text: string): Uint8Array => Buffer.from(text);

describe('NPY batching: encoder and answer splitting', () => {
  it('splits a JSON list and JSON Lines into one answer per image, and refuses a wrong count', () => {
    assert.deepEqual(splitBatchAnswer(bytes('[{"prediction":[1,0]},{"prediction":[0,1]}]'), 'application/json', 2).map((b) => Buffer.from(b).toString()), ['{"prediction":[1,0]}', '{"prediction":[0,1]}']);
    assert.deepEqual(splitBatchAnswer(bytes('[0.1,0.9]\n[0.8,0.2]\n'), 'application/jsonlines', 2).map((b) => Buffer.from(b).toString()), ['[0.1,0.9]', '[0.8,0.2]']);
    assert.throws(() => splitBatchAnswer(bytes('[{"prediction":[1,0]}]'), 'application/json', 2), /a batch of 2 got a list of 1/);
    assert.throws(() => splitBatchAnswer(bytes('{"prediction":[1,0]}'), 'application/json', 2), /got no list/);
    assert.throws(() => splitBatchAnswer(bytes('[1]\n'), 'application/jsonlines', 3), /got 1 JSON lines/);
  });

  it('sizes batches to the payload limit (6 MiB: 41 images of 224×224)', () => {
    assert.equal(fittingBatch(createRgbImage(224, 224), 64, 6 * 1024 * 1024), 41);
    assert.equal(fittingBatch(createRgbImage(224, 224), 8, 6 * 1024 * 1024), 8);
    assert.equal(fittingBatch(createRgbImage(4000, 3000), 8, 6 * 1024 * 1024), 1, 'never below one image');
  });

  it('encodes a batch as one (N, H, W, 3) array, frames in order', () => {
    const frames = [1, 2, 3].map((v) => createRgbImage(3, 2, new Uint8Array(18).fill(v)));
    const array = decodeNpy(encodeNpyBatch(frames));
    assert.deepEqual(array.shape, [3, 2, 3, 3]);
    assert.deepEqual([array.data[0], array.data[18], array.data[36]], [1, 2, 3]);
  });

  it('batch_size needs NPY payloads, JSON answers and the bytes on the wire', () => {
    const base = { dataset_type: 'application/x-image', methods: { shap: { image_config: { model_type: 'IMAGE_CLASSIFICATION' } } } };
    assert.throws(
      () => validateConfig({ ...base, predictor: { label_headers: ['a'], content_type: 'image/png' }, clarify_images: { batch_size: 8 } }),
      (e: unknown) => e instanceof ConfigError && e.problems[0]!.path === 'clarify_images.batch_size' && /application\/x-npy/.test(e.problems[0]!.message),
    );
    assert.throws(
      () => validateConfig({ ...base, predictor: { label_headers: ['a'], content_type: 'application/x-npy' }, clarify_images: { batch_size: 8, wire_encoding: 'base64' } }),
      (e: unknown) => e instanceof ConfigError && e.problems[0]!.path === 'clarify_images.batch_size' && /wire_encoding "base64"/.test(e.problems[0]!.message),
    );
  });
});

describe('NPY batching through a real endpoint', () => {
  const servers: TestEndpointServer[] = [];
  after(async () => Promise.all(servers.map((s) => s.stop())));

  async function setup(options: { acceptBatches?: boolean; maxBodyBytes?: number } = {}): Promise<TestEndpointServer> {
    const server = await startEndpointServer({ model: (r) => ({ prediction: regionModel(r.pixels, r.width, r.height) }), ...options });
    servers.push(server);
    return server;
  }

  const image = blockImage(2, 3, 20); // 60×40: 7,200 bytes per frame
  async function run(endpoint: TestEndpointServer, batchSize: number, accept: 'application/json' | 'application/jsonlines', extra: Record<string, unknown> = {}): Promise<{ out: string; logs: string[] }> {
    const tmp = await scratchDir('clarify-batch-');
    await mkdir(path.join(tmp, 'data'));
    await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toFile(path.join(tmp, 'data', 'blocks.png'));
    const config = validateConfig({
      dataset_type: 'application/x-image',
      methods: { shap: { num_samples: 120, seed: 2, image_config: { model_type: 'IMAGE_CLASSIFICATION', num_segments: 20 } } },
      predictor: { content_type: 'application/x-npy', accept_type: accept, probability: 'prediction', label_headers: REGION_LABELS },
      clarify_images: { endpoint_url: endpoint.url, max_concurrency: 4, batch_size: batchSize, ...extra },
    });
    const logs: string[] = [];
    const { summary } = await runJob(config, { datasetUri: path.join(tmp, 'data'), outputUri: path.join(tmp, 'out'), log: (l) => logs.push(l) });
    assert.equal(summary.images.failed, 0, JSON.stringify(summary.failures));
    return { out: path.join(tmp, 'out'), logs };
  }

  const values = async (out: string): Promise<string> => {
    const record = JSON.parse(await readFile(path.join(out, 'explanations_shap', 'out.jsonl'), 'utf8')) as { explanations: unknown; calls: number };
    return JSON.stringify(record.explanations);
  };

  let single: string;
  it('batches of 8 give the same values as one image per request, in far fewer requests', async () => {
    const one = await setup();
    single = (await run(one, 1, 'application/json')).out;
    const eight = await setup();
    for (const accept of ['application/json', 'application/jsonlines'] as const) {
      const before = eight.requests.length;
      const { out } = await run(eight, 8, accept);
      assert.equal(await values(out), await values(single), `${accept}: same explanation`);
      const requests = eight.requests.length - before;
      assert.ok(requests * 4 < one.requests.length, `${accept}: ${requests} requests vs ${one.requests.length}`);
    }
    assert.ok(eight.batchSizes.filter((n) => n === 8).length > 10, `batches: ${eight.batchSizes.slice(0, 20).join(',')}`);
  });

  it('shrinks batches that exceed the payload limit, and halves on 413', async () => {
    // The endpoint refuses bodies over 3 frames; the job first tries 8.
    const small = await setup({ maxBodyBytes: 3 * 7200 + 128 });
    const { out, logs } = await run(small, 8, 'application/json');
    assert.equal(await values(out), await values(single));
    assert.ok(small.answered.includes(413));
    // The first refused batch is as full as the masked images allowed (at most 8); the next ones are half of it.
    const refused = logs.map((l) => /refused a (\d+)-image request as too large \(413\): batches of (\d+)/.exec(l)).find((m) => m);
    assert.ok(refused && Number(refused[1]) <= 8 && Number(refused[2]) === Math.floor(Number(refused[1]) / 2), logs.join('\n'));
    assert.ok(Math.max(...small.batchSizes) <= 3);
    // max_payload_bytes keeps requests under the limit before sending.
    const limited = await setup();
    const run2 = await run(limited, 8, 'application/json', { max_payload_bytes: 2 * 7200 + 128 });
    assert.equal(await values(run2.out), await values(single));
    assert.ok(Math.max(...limited.batchSizes) <= 2 && !limited.answered.includes(413));
  });

  it('an answer in a batch that cannot be read is asked again alone: the same values', async () => {
    // Every 13th image the model answers gets a string for its scores, never the same image twice.
    let answered = 0;
    const spoilt = new Set<string>();
    const server = await startEndpointServer({
      model: (r) => {
        const key = Buffer.from(r.pixels).toString('base64');
        if (++answered % 13 === 0 && !spoilt.has(key)) {
          spoilt.add(key);
          return { prediction: 'CUDA out of memory' };
        }
        return { prediction: regionModel(r.pixels, r.width, r.height) };
      },
    });
    servers.push(server);
    const { out } = await run(server, 8, 'application/json');
    assert.equal(await values(out), await values(single));
    assert.ok(spoilt.size >= 5, `${spoilt.size} answers spoilt`);
    assert.ok(server.batchSizes.filter((n) => n === 8).length > 10, 'still batched');
  });

  it('falls back to one image per request, for good, when the endpoint rejects batches', async () => {
    const strict = await setup({ acceptBatches: false });
    const { out, logs } = await run(strict, 8, 'application/json');
    assert.equal(await values(out), await values(single));
    assert.equal(logs.filter((l) => /does not take batches/.test(l)).length, 1, 'said once');
    // Only the batches already in flight when the first refusal came back (at most max_concurrency) are refused.
    assert.ok(strict.answered.filter((s) => s === 400).length <= 4, `remembered: ${strict.answered.filter((s) => s === 400).length} refusals`);
    assert.deepEqual(strict.batchSizes, [], 'no batch was ever answered');
  });
});
