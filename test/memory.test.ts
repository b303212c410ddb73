/**
 * Bounded memory (issue #12, part 3): images are admitted by their estimated working size against
 * one budget; an image too big for it alone is refused before it is decoded, with what to do;
 * max_image_side explains it shrunk and records its own size.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { largestSideThatFits, MemoryBudget, OverBudgetError, prepareAheadFor, workingBytes } from '../src/compute/memory.js';
import { validateConfig } from '../src/config/config.js';
import { decodedSize, fitWithin } from '../src/image/decode.js';
import type { PredictionRecord } from '../src/output/records.js';
import { runCli } from './support/cli.js';
import { writeColourShareConfig } from './support/configs.js';
import { colourShareModel, startEndpointServer, type TestEndpointServer } from './support/endpoint-server.js';
import { scratchDir } from './support/scratch-dir.js';

const MiB = 1024 * 1024;

describe('memory budget', () => {
  it('finds the largest side, in steps of 64, at which an image fits; none when its fixed part alone does not', () => {
    const needed = (fixed: number) => (size: { width: number; height: number }): number => fixed + 10 * size.width * size.height;
    const size = { width: 4000, height: 3000 };
    // 10 bytes a pixel and 1 MB fixed in 31 MB: 3 MP fit, about 2000 × 1500.
    const side = largestSideThatFits(size, needed(1e6), 31e6);
    assert.equal(side, 1984);
    assert.ok(needed(1e6)({ width: 1984, height: 1488 }) <= 31e6);
    assert.ok(needed(1e6)({ width: 2048, height: 1536 }) > 31e6);
    assert.equal(largestSideThatFits(size, needed(40e6), 31e6), undefined, 'the fixed part is over the budget');
    assert.equal(largestSideThatFits({ width: 60, height: 40 }, needed(40e6), 31e6), undefined, 'nothing smaller to shrink to');
  });

  it('admits by bytes, first come first served; refuses what can never fit', async () => {
    const budget = new MemoryBudget(100);
    const order: string[] = [];
    const a = await budget.acquire(60);
    const waitingB = budget.acquire(50).then((release) => (order.push('b'), release));
    const waitingC = budget.acquire(10).then((release) => (order.push('c'), release));
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(order, [], 'b does not fit beside a; c waits behind b (no overtaking)');
    assert.equal(budget.inUse, 60);
    a();
    const b = await waitingB;
    const c = await waitingC;
    assert.deepEqual(order, ['b', 'c']);
    assert.equal(budget.inUse, 60);
    b();
    c();
    c();
    assert.equal(budget.inUse, 0, 'a release counts once');
    await assert.rejects(budget.acquire(101), (e: unknown) => e instanceof OverBudgetError && e.needed === 101);
  });

  it('the default budget takes a 12 MP photo and refuses the 100 MP decompression bomb before decoding', () => {
    const budget = validateConfig({ dataset_type: 'application/x-image', methods: { shap: { image_config: { model_type: 'IMAGE_CLASSIFICATION' } } }, predictor: { endpoint_name: 'e', label_headers: ['a'] } }).clarify_images.max_memory_mb * MiB;
    const twelve = 4000 * 3000;
    assert.ok(workingBytes(twelve, prepareAheadFor(twelve, 32)) <= budget, '12 MP fits');
    const bomb = 10_000 * 10_000;
    assert.ok(workingBytes(bomb, prepareAheadFor(bomb, 32)) > budget, '100 MP does not');
    assert.equal(prepareAheadFor(twelve, 32), 2, 'a big image prepares few masked copies ahead');
    assert.equal(prepareAheadFor(224 * 224, 32), 32, 'a small one as many as the endpoint can take');
  });

  it('the planned size is read from the header, with EXIF rotation and max_image_side', async () => {
    const tall = await sharp({ create: { width: 300, height: 100, channels: 3, background: { r: 9, g: 9, b: 9 } } }).withMetadata({ orientation: 6 }).jpeg().toBuffer();
    assert.deepEqual(await decodedSize(tall, { maxPixels: 1e8 }), { width: 100, height: 300, original: { width: 100, height: 300 } });
    assert.deepEqual(await decodedSize(tall, { maxPixels: 1e8, maxSide: 150 }), { width: 50, height: 150, original: { width: 100, height: 300 } });
    assert.deepEqual(fitWithin({ width: 4000, height: 3000 }, 1000), { width: 1000, height: 750 });
    assert.deepEqual(fitWithin({ width: 40, height: 30 }, 1000), { width: 40, height: 30 });
  });
});

describe('big images in a run', () => {
  let tmp: string;
  let endpoint: TestEndpointServer;
  before(async () => {
    tmp = await scratchDir('ci-memory-');
    endpoint = await startEndpointServer({ model: (r) => ({ prediction: colourShareModel(r) }) });
    await mkdir(path.join(tmp, 'data'), { recursive: true });
    const big = await sharp({ create: { width: 1600, height: 1200, channels: 3, background: { r: 200, g: 30, b: 30 } } })
      .composite([{ input: { create: { width: 800, height: 600, channels: 3, background: { r: 30, g: 30, b: 200 } } }, top: 300, left: 400 }])
      .png()
      .toBuffer();
    await writeFile(path.join(tmp, 'data', 'big.png'), big);
  });
  after(async () => {
    await endpoint.stop();
  });

  async function run(name: string, clarify: Record<string, unknown>): Promise<{ code: number | null; stdout: string; record: PredictionRecord; out: string }> {
    const file = await writeColourShareConfig(path.join(tmp, `${name}.json`), { samples: 16, segments: 8, clarify_images: { endpoint_url: endpoint.url, ...clarify } });
    const out = path.join(tmp, `${name}-out`);
    const result = await runCli(['run', '--config', file, '--dataset-uri', path.join(tmp, 'data'), '--output', out]);
    const record = JSON.parse((await readFile(path.join(out, 'predictions.jsonl'), 'utf8')).trim()) as PredictionRecord;
    return { ...result, record, out };
  }

  it('an image over max_memory_mb is refused before decoding, saying what to set', async () => {
    const calls = endpoint.requests.length;
    const { code, stdout, record } = await run('refused', { max_memory_mb: 64 });
    assert.equal(code, 1);
    assert.equal(record.error?.stage, 'decode');
    assert.match(record.error?.message ?? '', /^1600×1200 image needs about \d+ MB to explain, more than clarify_images\.max_memory_mb \(64 MB\): set clarify_images\.max_image_side to \d+ or less to explain it shrunk, or raise max_memory_mb/);
    assert.match(stdout, /FAILED .*big\.png \[decode\]: 1600×1200 image needs about/);
    assert.equal(endpoint.requests.length, calls, 'not one call for it');
  });

  it('the max_image_side it suggests is the largest (in steps of 64) that fits', async () => {
    const { record } = await run('suggest', { max_memory_mb: 64 });
    const side = Number(/max_image_side to (\d+) or less/.exec(record.error?.message ?? '')?.[1]);
    assert.ok(side >= 64 && side < 1600 && side % 64 === 0, `${side}`);
    const fits = await run('suggested', { max_memory_mb: 64, max_image_side: side });
    assert.equal(fits.code, 0, fits.stdout);
    assert.equal(fits.record.width, side);
    const over = await run('over', { max_memory_mb: 64, max_image_side: side + 64 });
    assert.equal(over.record.error?.stage, 'decode', 'one step larger does not fit');
  });

  it('a file larger than max_memory_mb is refused before it is read; the others are explained', async () => {
    const data = path.join(tmp, 'oversize');
    await mkdir(data, { recursive: true });
    await writeFile(path.join(data, 'a-small.png'), await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 200, g: 30, b: 30 } } }).png().toBuffer());
    // 65 MiB on disk as the listing sees it (sparse: nothing is written), over a 64 MiB budget.
    await writeFile(path.join(data, 'b-huge.png'), '');
    await truncate(path.join(data, 'b-huge.png'), 65 * 1024 * 1024);
    const file = await writeColourShareConfig(path.join(tmp, 'oversize.json'), { samples: 16, segments: 8, clarify_images: { endpoint_url: endpoint.url, max_memory_mb: 64 } });
    const out = path.join(tmp, 'oversize-out');
    const result = await runCli(['run', '--config', file, '--dataset-uri', data, '--output', out]);
    assert.equal(result.code, 1, result.stderr);
    const records = (await readFile(path.join(out, 'predictions.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as PredictionRecord);
    assert.equal(records[0]!.predicted_label, 'red');
    assert.equal(records[1]!.error?.stage, 'read');
    assert.match(records[1]!.error?.message ?? '', /^the file is 65 MB, more than clarify_images\.max_memory_mb \(64 MB\) holds, so it is not read/);
  });

  it('max_image_side explains it shrunk, within the budget, and records its own size', async () => {
    const { code, record, out } = await run('shrunk', { max_memory_mb: 64, max_image_side: 400 });
    assert.equal(code, 0);
    assert.deepEqual([record.width, record.height, record.original_width, record.original_height], [400, 300, 1600, 1200]);
    assert.equal(record.predicted_label, 'red');
    const heatmap = await sharp(await readFile(path.join(out, 'shap_big.jpeg'))).metadata();
    assert.ok(heatmap.width! < 1600 && heatmap.width! >= 400, `heatmap drawn at the explained size: ${heatmap.width}`);
    const last = endpoint.requests.at(-1)!;
    assert.deepEqual([last.width, last.height], [400, 300], 'the model saw the shrunk image');
  });
});
