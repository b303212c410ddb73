import assert from 'node:assert/strict';
import { mkdir, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { validateConfig } from '../src/config/config.js';
import { runJob } from '../src/job.js';
import type { ProgressRecord } from '../src/output/progress.js';
import { startEndpointServer, type TestEndpointServer } from './support/endpoint-server.js';
import { blockImage, REGION_LABELS, regionModel } from './support/region-model.js';

describe('progress', () => {
  let endpoint: TestEndpointServer;
  let data: string;
  before(async () => {
    endpoint = await startEndpointServer({ model: (r) => ({ prediction: regionModel(r.pixels, r.width, r.height) }), faults: () => ({ delayMs: 2 }) });
    data = await mkdtemp(path.join(os.tmpdir(), 'clarify-progress-'));
    await mkdir(path.join(data, 'in'));
    for (let i = 0; i < 4; i++) {
      const image = blockImage(2, 3, 20 + i);
      await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toFile(path.join(data, 'in', `${i}.png`));
    }
  });
  after(async () => endpoint.stop());

  async function run(isTTY: boolean): Promise<string> {
    let text = '';
    const config = validateConfig({
      dataset_type: 'application/x-image',
      methods: { shap: { num_samples: 80, image_config: { model_type: 'IMAGE_CLASSIFICATION', num_segments: 12 } } },
      predictor: { content_type: 'application/x-npy', probability: 'prediction', label_headers: REGION_LABELS },
      clarify_images: { endpoint_url: endpoint.url, max_concurrency: 2 },
    });
    await runJob(config, { datasetUri: path.join(data, 'in'), outputUri: await mkdtemp(path.join(os.tmpdir(), 'clarify-progress-out-')), force: true, progress: { isTTY, write: (t) => (text += t) }, progressIntervalMs: 15 });
    return text;
  }

  it('writes single-line JSON records when not on a terminal', async () => {
    const lines = (await run(false)).trim().split('\n');
    assert.ok(lines.length >= 2, `${lines.length} records`);
    const records = lines.map((l) => JSON.parse(l) as ProgressRecord);
    assert.ok(records.every((r) => r.event === 'progress' && typeof r.calls_per_second === 'number'));
    assert.ok(records.at(-1)!.calls >= records[0]!.calls);
    assert.ok(records.some((r) => r.calls_per_second > 0));
  });

  it('redraws one line on a terminal: images, calls/s, ETA', async () => {
    const text = await run(true);
    const frames = text.split('\r').filter((f) => f.trim() !== '');
    assert.ok(frames.length >= 2);
    assert.match(frames.at(-1)!, /\d+\/\d+\+? images · \d+ calls\/s · ETA (\?|\d+s)/);
    assert.ok(text.endsWith('\n'));
  });
});
