/**
 * The event loop is never blocked (issue #12, part 2): segmentation, masking and the solve run on
 * worker threads, so a large image cannot make other images' calls time out and a stop is
 * honoured while it is being segmented. Times are compared with the segmentation's own duration
 * measured in the same test, never with a fixed limit.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { runCli, startCli } from './support/cli.js';
import { colourShareModel, startEndpointServer, type TestEndpointServer } from './support/endpoint-server.js';
import * as fx from './support/fixtures.js';
import { createRgbImage, type RgbImage } from '../src/image/rgb.js';
import { slic } from '../src/segment/slic.js';
import { inlineStages, WorkerStages } from '../src/compute/stages.js';
import { KernelShapDesign } from '../src/explain/kernel-shap.js';
import { seededRandom } from '../src/explain/random.js';
import type { AnalysisSummary } from '../src/output/records.js';
import { scratchDir } from './support/scratch-dir.js';

/** Smooth colour waves: SLIC finds about as many segments as asked. */
function waves(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      data[o] = 128 + 100 * Math.sin(x / 37);
      data[o + 1] = 128 + 100 * Math.sin(y / 23);
      data[o + 2] = 128 + 100 * Math.sin((x + y) / 51);
    }
  }
  return createRgbImage(width, height, data);
}

const BIG = { width: 1600, height: 1200, segments: 300 };

describe('CPU-heavy stages on worker threads', () => {
  let tmp: string;
  let endpoint: TestEndpointServer;
  let slicMs: number;
  /** When each call reached the endpoint. */
  const arrivals: number[] = [];
  before(async () => {
    tmp = await scratchDir('ci-workers-');
    endpoint = await startEndpointServer({
      model: (r) => {
        arrivals.push(performance.now());
        return { prediction: colourShareModel(r) };
      },
      faults: () => ({ delayMs: 30 }),
    });
    const big = waves(BIG.width, BIG.height);
    const started = performance.now();
    slic(big, { numSegments: BIG.segments, compactness: 5 });
    slicMs = performance.now() - started;
    await mkdir(path.join(tmp, 'mixed'), { recursive: true });
    await mkdir(path.join(tmp, 'big'), { recursive: true });
    const png = await sharp(big.data, { raw: { width: big.width, height: big.height, channels: 3 } }).png().toBuffer();
    await writeFile(path.join(tmp, 'mixed', 'a-big.png'), png);
    await writeFile(path.join(tmp, 'big', 'big.png'), png);
    // Six small images keep calls going for well over the segmentation (about 4× at 30 ms a call).
    for (const [i, colour] of ([[200, 30, 30], [30, 200, 30], [30, 30, 200], [200, 200, 30], [30, 200, 200], [200, 30, 200]] as const).entries()) {
      await writeFile(path.join(tmp, 'mixed', `b-small-${i}.png`), await fx.quadrantsPng(48, 48, [colour, [120, 120, 120], [20, 20, 20], colour]));
    }
  });
  after(async () => {
    await endpoint.stop();
  });

  async function config(name: string, shap: Record<string, unknown>, clarify: Record<string, unknown>): Promise<string> {
    const file = path.join(tmp, `${name}.json`);
    await writeFile(
      file,
      JSON.stringify({
        dataset_type: 'application/x-image',
        methods: { shap: { image_config: { model_type: 'IMAGE_CLASSIFICATION', num_segments: BIG.segments }, ...shap } },
        predictor: { content_type: 'image/png', probability: 'prediction', label_headers: ['red', 'green', 'blue'] },
        clarify_images: { endpoint_url: endpoint.url, ...clarify },
      }),
    );
    return file;
  }

  it('the worker stages give what the inline stages give: segments, index, masked images, the solve and the guide', async () => {
    // Larger than INLINE_MASK_PIXELS, so masking goes to a worker too.
    const image = waves(400, 300);
    const stages = new WorkerStages(2);
    try {
      const here = await inlineStages.segment(image, { numSegments: 20, compactness: 5 });
      const there = await stages.segment(image, { numSegments: 20, compactness: 5 });
      assert.deepEqual([...there.segments.labels], [...here.segments.labels]);
      assert.deepEqual([...there.index.offsets], [...here.index.offsets]);
      assert.ok(there.segments.labels.buffer instanceof SharedArrayBuffer, 'labels are shared, not copied per task');
      const baseline = createRgbImage(400, 300);
      const mask = Uint8Array.from({ length: here.segments.count }, (_, j) => j % 2);
      assert.deepEqual((await stages.mask(image, baseline, there.index, mask)).data, (await inlineStages.mask(image, baseline, here.index, mask)).data);
      const m = here.segments.count;
      const design = KernelShapDesign.plan(m, 300, seededRandom(4));
      const values = design.masks.map((row) => Float64Array.of(row.reduce((a, b, i) => a + b * (i + 1), 0), row[0]! * row[1]!));
      const full = Float64Array.of((m * (m + 1)) / 2, 1);
      const empty = Float64Array.of(0, 0);
      const a = await inlineStages.solve(design, values, full, empty);
      const b = await stages.solve(design, values, full, empty);
      assert.deepEqual(b.values, a.values);
      assert.deepEqual(b.standardErrors, a.standardErrors);
      // The tree-adjusted solve (forests, jackknife, mixing) repeats exactly on a worker.
      const options = { estimator: 'tree-adjusted', seed: 9, adjusted: [1, 0] } as const;
      const c = await inlineStages.solve(design, values, full, empty, options);
      const d = await stages.solve(design, values, full, empty, options);
      assert.deepEqual(d.values, c.values);
      assert.deepEqual(d.standardErrors, c.standardErrors);
      assert.notDeepEqual(c.values, a.values);
      // A guided round's keep probabilities (its forests) are the same on a worker.
      const request = { evaluated: design.masks, values, full, empty, outputs: [0, 1], proposals: KernelShapDesign.enumerate(m, 300, seededRandom(5)).propose(40).map((p) => p.mask), own: { start: 5, end: 30 }, seed: 3 };
      const keepHere = await inlineStages.guide(request);
      assert.deepEqual(await stages.guide(request), keepHere);
      assert.equal(keepHere.length, 40);
      assert.ok(new Set(keepHere).size > 1, 'the probabilities follow the forests, not one constant');
    } finally {
      await stages.close();
    }
  });

  it('a large image being segmented neither stops the other images\' calls nor makes them time out', async () => {
    // A call that waits on a blocked event loop for a quarter of the segmentation would time out.
    const timeoutMs = Math.max(200, Math.round(slicMs / 4));
    const file = await config('mixed', { num_samples: 60 }, { request_timeout_ms: timeoutMs, max_retries: 0, concurrency: 'fixed', max_concurrency: 2, stop_after_failed_images: 0 });
    const out = path.join(tmp, 'mixed-out');
    arrivals.length = 0;
    const run = await runCli(['run', '--config', file, '--dataset-uri', path.join(tmp, 'mixed'), '--output', out]);
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    // A blocked event loop sends nothing: the endpoint would see a pause as long as the segmentation.
    const gaps = arrivals.slice(1).map((t, i) => t - arrivals[i]!);
    const longest = Math.max(...gaps);
    assert.ok(longest < slicMs / 2, `longest pause between calls ${longest.toFixed(0)} ms; the segmentation takes ${slicMs.toFixed(0)} ms`);
    const summary = JSON.parse(await readFile(path.join(out, 'analysis.json'), 'utf8')) as AnalysisSummary;
    assert.equal(summary.images.succeeded, 7);
    assert.equal(summary.endpoint_calls.retries, 0, `no call timed out at ${timeoutMs} ms (segmentation takes ${slicMs.toFixed(0)} ms)`);
  });

  it('SIGTERM while a large image is segmented is honoured at once, not after the segmentation', async () => {
    const file = await config('big', { num_samples: 200 }, { stop_grace_seconds: 0 });
    const out = path.join(tmp, 'big-out');
    const before = endpoint.requests.length;
    const run = startCli(['run', '--config', file, '--dataset-uri', path.join(tmp, 'big'), '--output', out]);
    // The prediction is the image's first call; segmentation starts right after it.
    while (endpoint.requests.length === before) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 100));
    const signalled = performance.now();
    run.child.kill('SIGTERM');
    assert.equal(await run.exited, 143, run.stderr);
    const stopMs = performance.now() - signalled;
    assert.ok(stopMs < slicMs / 2, `stopped ${stopMs.toFixed(0)} ms after SIGTERM; the segmentation alone takes ${slicMs.toFixed(0)} ms`);
    const summary = JSON.parse(await readFile(path.join(out, 'analysis.json'), 'utf8')) as AnalysisSummary;
    assert.equal(summary.status, 'partial');
    assert.equal(summary.images.not_processed, 1);
  });
});
