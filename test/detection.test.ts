import { printSummary } from '../src/commands/run.js';
import { FinalWriter } from '../src/output/run-writer.js';
import { openStorage } from '../src/storage/storage.js';
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { pictureLayout } from '../src/output/heatmap.js';
import { validateConfig } from '../src/config/config.js';
import { runJob } from '../src/job.js';
import type { DetectionExplanationRecord } from '../src/output/explanations.js';
import type { AnalysisSummary, PredictionRecord } from '../src/output/records.js';
import { startEndpointServer, type TestEndpointServer } from './support/endpoint-server.js';
import { exactShapley } from './support/exact-shapley.js';
import { clarifyRows, detectSquares, maskRcnnAnswer, SQUARE_CLASSES, squaresImage, type SquareDetection } from './support/square-detector.js';
import { scratchDir } from './support/scratch-dir.js';

const GRAY = 128;
type Image = ReturnType<typeof squaresImage>;

/** The matching rule, written again here as the reference: same class, IoU ≥ t, best score, else 0. */
function referenceValue(object: SquareDetection, detections: readonly SquareDetection[], threshold: number): number {
  const [a0, b0, a1, b1] = object.box;
  let best = 0;
  for (const d of detections) {
    if (d.classIndex !== object.classIndex) continue;
    const [c0, e0, c1, e1] = d.box;
    const inter = Math.max(0, Math.min(a1, c1) - Math.max(a0, c0)) * Math.max(0, Math.min(b1, e1) - Math.max(b0, e0));
    const union = (a1 - a0) * (b1 - b0) + (c1 - c0) * (e1 - e0) - inter;
    if (inter / union >= threshold) best = Math.max(best, d.score);
  }
  return best;
}

function masked(image: Image, labels: Uint16Array, on: (segment: number) => boolean, keep?: { x0: number; y0: number; x1: number; y1: number }): Uint8Array {
  const out = new Uint8Array(image.data.length).fill(GRAY);
  for (let p = 0; p < labels.length; p++) {
    const x = p % image.width;
    const y = Math.floor(p / image.width);
    const inRegion = !keep || (x >= keep.x0 && x < keep.x1 && y >= keep.y0 && y < keep.y1);
    if (inRegion && on(labels[p]!)) out.set(image.data.subarray(p * 3, p * 3 + 3), p * 3);
  }
  return out;
}

async function readLabels(file: string): Promise<Uint16Array> {
  const { data } = await sharp(file).pipelineColourspace('grey16').toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
  return new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
}

describe('object detection explanations', () => {
  let endpoint: TestEndpointServer;
  let tmp: string;
  let grayBaseline: string;

  before(async () => {
    tmp = await scratchDir('clarify-od-');
    endpoint = await startEndpointServer({
      model: (r) => {
        const found = detectSquares(r.pixels, r.width, r.height);
        return r.customAttributes === 'style=mask_rcnn' ? maskRcnnAnswer(found, r.width, r.height) : clarifyRows(found);
      },
    });
    grayBaseline = path.join(tmp, 'gray.png');
    await sharp({ create: { width: 10, height: 10, channels: 3, background: { r: GRAY, g: GRAY, b: GRAY } } }).png().toFile(grayBaseline);
  });
  after(async () => endpoint.stop());

  async function run(name: string, image: Image, options: { image_config?: Record<string, unknown>; shap?: Record<string, unknown>; top?: Record<string, unknown>; predictor?: Record<string, unknown>; ext?: Record<string, unknown> } = {}): Promise<{ record: DetectionExplanationRecord; out: string; summary: AnalysisSummary; prediction: PredictionRecord }> {
    const data = path.join(tmp, `data-${name}`);
    await mkdir(data, { recursive: true });
    await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toFile(path.join(data, 'squares.png'));
    const out = path.join(tmp, `out-${name}`);
    const config = validateConfig({
      dataset_type: 'application/x-image',
      ...options.top,
      methods: {
        shap: {
          baseline: grayBaseline,
          ...options.shap,
          image_config: { model_type: 'OBJECT_DETECTION', num_segments: 8, segment_compactness: 1000, ...options.image_config },
        },
      },
      predictor: { content_type: 'image/png', probability: 'prediction', label_headers: SQUARE_CLASSES, ...options.predictor },
      clarify_images: { endpoint_url: endpoint.url, max_concurrency: 8, ...options.ext },
    });
    const { summary } = await runJob(config, { datasetUri: data, outputUri: out });
    assert.equal(summary.images.failed, 0, JSON.stringify(summary.failures));
    const record = JSON.parse((await readFile(path.join(out, 'explanations_shap', 'out.jsonl'), 'utf8')).trim()) as DetectionExplanationRecord;
    const prediction = JSON.parse((await readFile(path.join(out, 'predictions.jsonl'), 'utf8')).trim()) as PredictionRecord;
    return { record, out, summary, prediction };
  }

  /** Exact per-object values of the matching rule, by enumerating every coalition of segments. */
  function exactValues(image: Image, labels: Uint16Array, m: number, threshold: number): Map<number, Float64Array> {
    const original = detectSquares(image.data, image.width, image.height);
    const phi = exactShapley(m, original.length, (s) => {
      const found = detectSquares(masked(image, labels, (j) => ((s >> j) & 1) === 1), image.width, image.height);
      return original.map((o) => referenceValue(o, found, threshold));
    });
    return new Map(original.map((o, k) => [o.classIndex, phi[k]!]));
  }

  // A red rectangle over several grid cells: masking some cells shrinks and moves its box.
  const redBar = squaresImage(128, 64, [{ colour: 0, x: 24, y: 16, w: 48, h: 32 }]);

  it('values equal exact Shapley values of the matching rule; the square\'s segments carry it, far ones are 0', async () => {
    const { record, out } = await run('exact', redBar, { shap: { num_samples: 254 } });
    const m = record.num_segments;
    assert.ok(m >= 4 && m <= 10, `${m} segments`);
    const [object] = record.objects;
    assert.ok(object);
    assert.equal(object.label, 'red');
    assert.equal(object.exact, true);
    const labels = await readLabels(path.join(out, record.segments_path));
    const exact = exactValues(redBar, labels, m, 0.5).get(0)!;
    object.shap_values.forEach((v, j) => assert.ok(Math.abs(v - exact[j]!) < 1e-9, `segment ${j}: ${v} vs ${exact[j]}`));
    const redPixels = new Set<number>();
    labels.forEach((label, p) => redBar.data[p * 3] === 255 && redBar.data[p * 3 + 1] === 0 && redPixels.add(label));
    const best = object.shap_values.indexOf(Math.max(...object.shap_values));
    assert.ok(redPixels.has(best), 'the largest value is on a segment covering the square');
    assert.ok(object.shap_values[best]! > 0.1);
    object.shap_values.forEach((v, j) => {
      if (!redPixels.has(j)) assert.ok(Math.abs(v) < 1e-9, `segment ${j} is far from the square: ${v}`);
    });
    assert.ok(Math.abs(object.shap_values.reduce((a, b) => a + b, 0) - (object.prediction - object.base_value)) < 1e-9);
  });

  it('iou_threshold changes the values when a partly masked square moves its box', async () => {
    const low = await run('iou-low', redBar, { shap: { num_samples: 254 }, image_config: { iou_threshold: 0.2 } });
    const high = await run('iou-high', redBar, { shap: { num_samples: 254 }, image_config: { iou_threshold: 0.9 } });
    const labels = await readLabels(path.join(low.out, low.record.segments_path));
    const m = low.record.num_segments;
    const lowExact = exactValues(redBar, labels, m, 0.2).get(0)!;
    const highExact = exactValues(redBar, labels, m, 0.9).get(0)!;
    const a = low.record.objects[0]!.shap_values;
    const b = high.record.objects[0]!.shap_values;
    a.forEach((v, j) => assert.ok(Math.abs(v - lowExact[j]!) < 1e-9));
    b.forEach((v, j) => assert.ok(Math.abs(v - highExact[j]!) < 1e-9));
    const largestDifference = Math.max(...a.map((v, j) => Math.abs(v - b[j]!)));
    assert.ok(largestDifference > 0.05, `thresholds gave nearly the same values (${largestDifference})`);
  });

  it('context 0 keeps only the box: outside segments are not features and get 0, with fewer calls', async () => {
    // Two squares far apart: with context 0 each object sees only its own box.
    const image = squaresImage(160, 96, [
      { colour: 0, x: 8, y: 8, w: 40, h: 40 },
      { colour: 1, x: 110, y: 50, w: 36, h: 36 },
    ]);
    const whole = await run('context-1', image, { image_config: { context: 1, num_segments: 15 } });
    const boxOnly = await run('context-0', image, { image_config: { context: 0, num_segments: 15 } });
    assert.equal(whole.record.objects.length, 2);
    const labels = await readLabels(path.join(boxOnly.out, boxOnly.record.segments_path));
    for (const object of boxOnly.record.objects) {
      const { x0, y0, x1, y1 } = object.context_region_pixels;
      assert.deepEqual({ x0, y0, x1, y1 }, object.box_pixels, 'context 0 is the box');
      const touching = new Set<number>();
      labels.forEach((label, p) => {
        const x = p % image.width;
        const y = Math.floor(p / image.width);
        if (x >= x0 && x < x1 && y >= y0 && y < y1) touching.add(label);
      });
      assert.deepEqual(object.feature_segments, [...touching].sort((a, b) => a - b));
      object.shap_values.forEach((v, j) => {
        if (!touching.has(j)) assert.equal(v, 0, `segment ${j} is outside the box`);
      });
      assert.ok(object.feature_segments.length < boxOnly.record.num_segments);
    }
    assert.equal(whole.record.objects[0]!.feature_segments.length, whole.record.num_segments, 'context 1 uses every segment');
    assert.ok(boxOnly.record.calls < whole.record.calls, `calls: context 0 ${boxOnly.record.calls}, context 1 ${whole.record.calls}`);
  });

  const threeSquares = squaresImage(192, 96, [
    { colour: 0, x: 10, y: 20, w: 40, h: 40 }, // score 1
    { colour: 1, x: 80, y: 25, w: 30, h: 30 }, // 0.5625
    { colour: 2, x: 150, y: 30, w: 20, h: 20 }, // 0.25
  ]);

  for (const [threshold, maxObjects, expected] of [
    [0.5, 3, ['red', 'green']],
    [0.2, 2, ['red', 'green']],
    [0.2, 3, ['red', 'green', 'blue']],
    [0.6, 1, ['red']],
  ] as const) {
    it(`probability_threshold ${threshold} and max_objects ${maxObjects} select ${expected.join(', ')}`, async () => {
      const { record, out, prediction } = await run(`select-${threshold}-${maxObjects}`, threeSquares, {
        top: { probability_threshold: threshold },
        shap: { num_samples: 30 },
        image_config: { max_objects: maxObjects },
      });
      assert.deepEqual(record.objects.map((o) => o.label), expected);
      assert.deepEqual(prediction.objects?.map((o) => o.label), expected);
      assert.equal(prediction.detections_total, 3);
      const files = await readdir(out);
      for (const object of record.objects) {
        assert.ok(files.includes(object.heatmap_path), object.heatmap_path);
        assert.equal(object.heatmap_path, `shap_${record.name}_box${object.index}_object.jpeg`);
        // The box is drawn: its top edge is the box colour (255, 200, 0).
        const { data, info } = await sharp(path.join(out, object.heatmap_path)).raw().toBuffer({ resolveWithObject: true });
        const { x0, x1, y0 } = object.box_pixels;
        const layout = pictureLayout(threeSquares.width, threeSquares.height);
        let boxColoured = 0;
        for (let x = x0 + 2; x < x1 - 2; x++) {
          const o = ((layout.top + y0 * layout.scale + 1) * info.width + x * layout.scale + 1) * info.channels;
          if (data[o]! > 200 && data[o + 1]! > 150 && data[o + 1]! < 240 && data[o + 2]! < 80) boxColoured += 1;
        }
        assert.ok(boxColoured > (x1 - x0 - 4) * 0.8, `${object.heatmap_path}: ${boxColoured} box pixels on the top edge`);
      }
      assert.ok(files.includes(record.objects_path));
      const overview = await sharp(path.join(out, record.objects_path)).metadata();
      assert.deepEqual([overview.width, overview.height], [threeSquares.width, threeSquares.height]);
    });
  }

  it('explains the Mask R-CNN answer style the same way', async () => {
    const clarify = await run('style-clarify', threeSquares, { shap: { num_samples: 40, seed: 3 } });
    const maskRcnn = await run('style-mask-rcnn', threeSquares, {
      shap: { num_samples: 40, seed: 3 },
      predictor: { probability: undefined, custom_attributes: 'style=mask_rcnn' },
      ext: { detection_format: 'mask_rcnn' },
    });
    assert.deepEqual(maskRcnn.record.objects.map((o) => o.label), clarify.record.objects.map((o) => o.label));
    maskRcnn.record.objects.forEach((o, k) => {
      const c = clarify.record.objects[k]!;
      o.shap_values.forEach((v, j) => assert.ok(Math.abs(v - c.shap_values[j]!) < 1e-6));
    });
  });

  it('an image with no detection above the threshold succeeds with zero objects', async () => {
    const empty = squaresImage(96, 64, []);
    const { record, summary } = await run('none', empty, { shap: { num_samples: 20 } });
    assert.deepEqual(record.objects, []);
    assert.equal(summary.images.succeeded, 1);
    assert.equal(summary.images.without_detections, 1);
    assert.equal(summary.explanations?.objects_explained, 0);
    // The console says so.
    const lines: string[] = [];
    printSummary({ summary, exitCode: 0, stopped: false, halted: false, reused: 0 }, 'out', { out: (l) => lines.push(l), err: () => undefined });
    assert.match(lines[0]!, /^1 of 1 images succeeded, 0 failed, 0 non-image files skipped; \d+ endpoint calls \(0 retries\); 1 image without detections; results in out$/);
  });

  it('an image without detections is not noted for few segments: nothing was explained over them', async () => {
    const out = path.join(tmp, 'out-few-none');
    const config = validateConfig({
      dataset_type: 'application/x-image',
      methods: { shap: { image_config: { model_type: 'OBJECT_DETECTION', num_segments: 20 } } },
      predictor: { endpoint_name: 'e', content_type: 'image/png', probability: 'prediction', label_headers: SQUARE_CLASSES },
    });
    const writer = await FinalWriter.open(openStorage(out), config, () => undefined);
    const explanation = (key: string, objects: DetectionExplanationRecord['objects']): DetectionExplanationRecord =>
      ({ image: `/data/${key}`, key, name: key, width: 8, height: 8, num_segments: 1, segments_path: 's.png', calls: 1, budget: 10, objects_path: 'o.jpeg', objects }) as DetectionExplanationRecord;
    const record = { image: '/data/x', key: 'x', width: 8, height: 8 } as PredictionRecord;
    await writer.add({ index: 0, key: 'none.png', uri: '/data/none.png', record, explanation: explanation('none.png', []), withoutDetections: true });
    const object = { index: 1, label: SQUARE_CLASSES[0]!, class_index: 0, score: 0.9, box: { x0: 0, y0: 0, x1: 1, y1: 1 }, box_pixels: { x0: 0, y0: 0, x1: 8, y1: 8 }, heatmap_path: 'h.jpeg', prediction: 0.9, base_value: 0, shap_values: [0.9], std_errors: [0] };
    const one = [object] as unknown as DetectionExplanationRecord['objects'];
    await writer.add({ index: 1, key: 'one.png', uri: '/data/one.png', record, explanation: explanation('one.png', one) });
    const summary = await writer.finish({ datasetUri: '/data', imagesFound: 2, filesSkipped: 0, endpoint: 'e', calls: { calls: 0, attempts: 0, retries: 0, failedCalls: 0, latencyMsTotal: 0 }, startedAt: new Date(), partial: false, reused: 0 });
    assert.deepEqual(summary.explanations?.few_segments, { images: 1, num_segments: 20, first: { image: '/data/one.png', segments: 1 } });
  });
});
