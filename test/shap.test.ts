import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { pictureLayout } from '../src/output/heatmap.js';
import { validateConfig } from '../src/config/config.js';
import { KernelShapDesign, solveKernelShap, type CoalitionDesign } from '../src/explain/kernel-shap.js';
import { seededRandom } from '../src/explain/random.js';
import { runJob } from '../src/job.js';
import type { ExplanationRecord } from '../src/output/explanations.js';
import type { AnalysisSummary } from '../src/output/records.js';
import { plainKernelShapDesign } from '../bench/plain-kernel-shap.js';
import { regionGame } from '../bench/accuracy.js';
import { fourierCoefficients, oddTermsShapley, spectrumOf } from '../bench/spectrum.js';
import { coalitionBits, exactShapley, relativeSquaredError } from './support/exact-shapley.js';
import { startEndpointServer, type TestEndpointServer } from './support/endpoint-server.js';
import { blockImage, REGION_LABELS, regionModel, regionScores } from './support/region-model.js';
import { scratchDir } from './support/scratch-dir.js';

const GRAY = 128;

/** The masked image for coalition bits `s`: segment j from the image if bit j is set, else gray. */
function maskedPixels(image: Uint8Array, labels: Uint16Array, s: number): Uint8Array {
  const out = new Uint8Array(image.length);
  for (let p = 0; p < labels.length; p++) {
    const on = (s >> labels[p]!) & 1;
    for (let c = 0; c < 3; c++) out[p * 3 + c] = on ? image[p * 3 + c]! : GRAY;
  }
  return out;
}

async function readLabels(file: string): Promise<Uint16Array> {
  const { data } = await sharp(file).pipelineColourspace('grey16').toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
  return new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
}

async function readRecords(out: string): Promise<ExplanationRecord[]> {
  return (await readFile(path.join(out, 'explanations_shap', 'out.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as ExplanationRecord);
}

function sumOf(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

describe('image SHAP explanations', () => {
  let endpoint: TestEndpointServer;
  let tmp: string;
  let grayBaseline: string;
  const natural = fileURLToPath(new URL('../../test/fixtures/slic/astronaut.png', import.meta.url));

  before(async () => {
    tmp = await scratchDir('clarify-shap-');
    endpoint = await startEndpointServer({ model: (r) => ({ prediction: regionModel(r.pixels, r.width, r.height) }) });
    grayBaseline = path.join(tmp, 'gray-baseline.png');
    // A different size than the images: the job must resize it (solid, so the result stays gray).
    await sharp({ create: { width: 50, height: 40, channels: 3, background: { r: GRAY, g: GRAY, b: GRAY } } }).png().toFile(grayBaseline);
  });
  after(async () => endpoint.stop());

  async function dataset(name: string, images: Record<string, { width: number; height: number; data: Uint8Array } | string>): Promise<string> {
    const dir = path.join(tmp, name);
    for (const [file, image] of Object.entries(images)) {
      await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
      if (typeof image === 'string') await copyFile(image, path.join(dir, file));
      else await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toFile(path.join(dir, file));
    }
    return dir;
  }

  async function run(data: string, out: string, shap: Record<string, unknown>, extra: { predictor?: Record<string, unknown>; clarify_images?: Record<string, unknown> } = {}): Promise<AnalysisSummary> {
    const config = validateConfig({
      dataset_type: 'application/x-image',
      methods: { shap: { ...shap, image_config: { model_type: 'IMAGE_CLASSIFICATION', segment_compactness: 10, ...(shap['image_config'] as object) } } },
      predictor: { content_type: 'image/png', probability: 'prediction', label_headers: REGION_LABELS, ...extra.predictor },
      clarify_images: { endpoint_url: endpoint.url, max_concurrency: 8, ...extra.clarify_images },
    });
    const { summary } = await runJob(config, { datasetUri: data, outputUri: out });
    assert.equal(summary.images.failed, 0, JSON.stringify(summary.failures));
    return summary;
  }

  for (const [rows, cols] of [[2, 2], [2, 4], [3, 4]] as const) {
    const m = rows * cols;
    for (const contentType of ['image/png', 'application/x-npy'] as const) {
      it(`equals exact Shapley values through the endpoint: M = ${m}, ${contentType}, every label`, async () => {
        const image = blockImage(rows, cols);
        const data = await dataset(`exact-${m}-${contentType.replace('/', '_')}`, { 'blocks.png': image });
        const out = path.join(tmp, `out-exact-${m}-${contentType.replace('/', '_')}`);
        await run(data, out, { baseline: grayBaseline, num_samples: 2 ** m - 2, image_config: { num_segments: m } }, { predictor: { content_type: contentType } });
        const [record] = await readRecords(out);
        assert.ok(record);
        assert.equal(record.num_segments, m, 'SLIC found the blocks');
        assert.equal(record.exact, true);
        assert.equal(record.calls, 2 ** m - 1, 'every coalition once, plus the all-baseline image');
        const labels = await readLabels(path.join(out, record.segments_path));
        const exact = exactShapley(m, 3, (s) => regionModel(maskedPixels(image.data, labels, s), image.width, image.height));
        let worst = 0;
        record.explanations.forEach((e, o) => {
          assert.ok(Math.abs(e.prediction - regionModel(image.data, image.width, image.height)[o]!) < 1e-12);
          e.shap_values.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - exact[o]![i]!))));
          assert.ok(e.std_errors.every((se) => se === 0));
        });
        assert.ok(worst < 1e-9, `largest error ${worst}`);
      });
    }
  }

  it('holds efficiency to 1e-9 for every image and label at every budget', async () => {
    const data = await dataset('efficiency', { 'astronaut.png': natural, 'blocks.png': blockImage(3, 4) });
    for (const budget of [20, 75, 300]) {
      const out = path.join(tmp, `out-eff-${budget}`);
      await run(data, out, { num_samples: budget, seed: budget, image_config: { num_segments: 40 } });
      const records = await readRecords(out);
      assert.equal(records.length, 2);
      for (const record of records) {
        assert.ok(record.calls <= budget + 1);
        for (const e of record.explanations) {
          const gap = Math.abs(sumOf(e.shap_values) - (e.prediction - e.base_value));
          assert.ok(gap < 1e-9, `${record.key} budget ${budget} ${e.label}: ${gap}`);
        }
      }
    }
  });

  it('gives byte-identical out.jsonl for the same seed, and different values for another', async () => {
    const data = await dataset('determinism', { 'a/astronaut.png': natural, 'b/blocks.png': blockImage(2, 4) });
    const outs = [7, 7, 8].map((seed, i) => ({ seed, out: path.join(tmp, `out-det-${i}`) }));
    for (const { seed, out } of outs) await run(data, out, { num_samples: 60, seed, image_config: { num_segments: 30 } });
    const bytes = await Promise.all(outs.map(({ out }) => readFile(path.join(out, 'explanations_shap', 'out.jsonl'))));
    assert.equal(Buffer.compare(bytes[0]!, bytes[1]!), 0, 'same seed, same bytes');
    assert.notEqual(Buffer.compare(bytes[0]!, bytes[2]!), 0, 'another seed, other values');
  });

  it('draws the heatmap blue over the most positive segment and red over the most negative', async () => {
    const image = blockImage(2, 4);
    const data = await dataset('heatmap', { 'blocks.png': image });
    const out = path.join(tmp, 'out-heatmap');
    await run(data, out, { baseline: grayBaseline, image_config: { num_segments: 8 } });
    const [record] = await readRecords(out);
    assert.ok(record);
    const top = record.explanations.find((e) => e.label === record.predicted_label)!;
    const values = top.shap_values;
    const best = values.indexOf(Math.max(...values));
    const worst = values.indexOf(Math.min(...values));
    assert.ok(values[best]! > 0 && values[worst]! < 0, `need both signs: ${values.join(', ')}`);
    assert.ok(Math.abs(values[worst]!) / values[best]! > 0.2, 'the negative segment is strong enough to show');
    const labels = await readLabels(path.join(out, record.segments_path));
    const { data: pixels, info } = await sharp(path.join(out, record.heatmap_path)).raw().toBuffer({ resolveWithObject: true });
    // The picture: a header band on top, the image enlarged by a whole factor, the colour bar to the right.
    const layout = pictureLayout(image.width, image.height);
    assert.equal(info.height, layout.top + image.height * layout.scale);
    assert.ok(info.width > image.width * layout.scale, 'the colour bar is to the right');
    const meanColour = (segment: number): [number, number, number] => {
      const sums = [0, 0, 0];
      let n = 0;
      for (let y = 2; y < image.height - 2; y++) {
        for (let x = 2; x < image.width - 2; x++) {
          // Interior pixels only: away from the drawn boundaries.
          const inside = [-2, 0, 2].every((dy) => [-2, 0, 2].every((dx) => labels[(y + dy) * image.width + x + dx] === segment));
          if (!inside) continue;
          const o = ((layout.top + Math.floor((y + 0.5) * layout.scale)) * info.width + Math.floor((x + 0.5) * layout.scale)) * info.channels;
          sums[0]! += pixels[o]!;
          sums[1]! += pixels[o + 1]!;
          sums[2]! += pixels[o + 2]!;
          n += 1;
        }
      }
      assert.ok(n > 100);
      return sums.map((s) => s / n) as [number, number, number];
    };
    const [r1, , b1] = meanColour(best);
    const [r2, , b2] = meanColour(worst);
    assert.ok(b1 > r1 + 40, `most positive segment: R ${r1.toFixed(0)} B ${b1.toFixed(0)}`);
    assert.ok(r2 > b2 + 15, `most negative segment: R ${r2.toFixed(0)} B ${b2.toFixed(0)}`);
  });

  it('use_logit explains log-odds exactly', async () => {
    const image = blockImage(2, 2);
    const data = await dataset('logit', { 'blocks.png': image });
    const out = path.join(tmp, 'out-logit');
    await run(data, out, { baseline: grayBaseline, use_logit: true, image_config: { num_segments: 4 } });
    const [record] = await readRecords(out);
    const labels = await readLabels(path.join(out, record!.segments_path));
    const logit = (p: number): number => Math.log(p / (1 - p));
    const exact = exactShapley(4, 3, (s) => regionModel(maskedPixels(image.data, labels, s), image.width, image.height).map(logit));
    record!.explanations.forEach((e, o) => {
      assert.ok(Math.abs(e.prediction - logit(regionModel(image.data, image.width, image.height)[o]!)) < 1e-12);
      e.shap_values.forEach((v, i) => assert.ok(Math.abs(v - exact[o]![i]!) < 1e-9));
    });
  });

  it('baseline_fill mean uses the image mean colour; blur runs', async () => {
    const image = blockImage(2, 2);
    const data = await dataset('fills', { 'blocks.png': image });
    const out = path.join(tmp, 'out-mean');
    await run(data, out, { image_config: { num_segments: 4 } }, { clarify_images: { baseline_fill: 'mean' } });
    const [record] = await readRecords(out);
    const mean = [0, 1, 2].map((c) => {
      let s = 0;
      for (let i = c; i < image.data.length; i += 3) s += image.data[i]!;
      return Math.round(s / (image.width * image.height));
    });
    const flat = new Uint8Array(image.data.length);
    for (let i = 0; i < flat.length; i += 3) flat.set(mean, i);
    const expected = regionModel(flat, image.width, image.height);
    record!.explanations.forEach((e, o) => assert.ok(Math.abs(e.base_value - expected[o]!) < 1e-12));
    const blurOut = path.join(tmp, 'out-blur');
    await run(data, blurOut, { image_config: { num_segments: 4 } }, { clarify_images: { baseline_fill: 'blur' } });
    const [blurred] = await readRecords(blurOut);
    assert.notEqual(blurred!.explanations[0]!.base_value, record!.explanations[0]!.base_value);
  });

  it('stops early when every standard error is below shap_tolerance, and not otherwise', async () => {
    const data = await dataset('adaptive', { 'astronaut.png': natural });
    const loose = path.join(tmp, 'out-adaptive-loose');
    await run(data, loose, { num_samples: 800, image_config: { num_segments: 60 } }, { clarify_images: { shap_tolerance: 0.5 } });
    const tight = path.join(tmp, 'out-adaptive-tight');
    await run(data, tight, { num_samples: 800, image_config: { num_segments: 60 } }, { clarify_images: { shap_tolerance: 1e-12 } });
    const [a] = await readRecords(loose);
    const [b] = await readRecords(tight);
    assert.ok(a!.num_segments > 12, `enough segments to sample: ${a!.num_segments}`);
    assert.equal(a!.stopped_early, true);
    assert.ok(a!.calls < 800, `loose tolerance used ${a!.calls} calls`);
    assert.ok(a!.explanations.every((e) => e.std_errors.every((se) => se !== null && se < 0.5)));
    assert.equal(b!.stopped_early, false);
    assert.ok(b!.calls >= 799, `tight tolerance used ${b!.calls} calls`);
  });

  it('names outputs uniquely: two cat.png in different folders get their own heatmaps', async () => {
    const data = await dataset('names', { 'a/cat.png': blockImage(2, 2), 'b/cat.png': blockImage(2, 2), 'a_cat.png': blockImage(2, 2) });
    const out = path.join(tmp, 'out-names');
    await run(data, out, { image_config: { num_segments: 4 } });
    const records = await readRecords(out);
    assert.deepEqual(records.map((r) => r.key).sort(), ['a/cat.png', 'a_cat.png', 'b/cat.png']);
    assert.equal(new Set(records.map((r) => r.name)).size, 3);
    const heatmaps = (await readdir(out)).filter((f) => f.startsWith('shap_'));
    assert.deepEqual(heatmaps.sort(), records.map((r) => r.heatmap_path).sort());
    const summary = JSON.parse(await readFile(path.join(out, 'analysis.json'), 'utf8')) as AnalysisSummary;
    assert.equal(summary.explanations?.images_explained, 3);
    assert.deepEqual(summary.explanations?.global_importance?.labels.map((l) => l.label), REGION_LABELS);
    assert.ok(summary.explanations!.global_importance!.labels.every((l) => l.value > 0));
  });
});

describe('estimator accuracy on the region model (M = 16 blocks)', () => {
  // The same model as the endpoint, evaluated in-process on masked block images (fast enough to
  // enumerate 2^16 coalitions), with the 16 blocks as the features (bench/accuracy.ts).
  const { m, game } = regionGame();
  const gameOf = (s: number): number[] => [game(s)];
  const exact = exactShapley(m, 1, gameOf)[0]!;
  const estimate = (design: CoalitionDesign): { phi: Float64Array; se: Float64Array } => {
    const values = design.masks.map((mask) => Float64Array.of(gameOf(coalitionBits(mask))[0]!));
    const solution = solveKernelShap(design, values, Float64Array.of(gameOf(2 ** m - 1)[0]!), Float64Array.of(gameOf(0)[0]!));
    return { phi: solution.values[0]!, se: solution.standardErrors[0]! };
  };
  const relativeError = (phi: Float64Array): number => relativeSquaredError(phi, exact);
  const SEEDS = 20;
  const meanError = (make: (seed: number) => CoalitionDesign): number => {
    let total = 0;
    for (let seed = 0; seed < SEEDS; seed++) total += relativeError(estimate(make(seed)).phi);
    return total / SEEDS;
  };

  it('error falls with the budget and beats plain Kernel SHAP ≥ 2.5× at 2050 calls (20 seeds)', () => {
    const ours = [512, 2048, 8192].map((budget) => meanError((seed) => KernelShapDesign.plan(m, budget, seededRandom(seed))));
    const ours2050 = meanError((seed) => KernelShapDesign.plan(m, 2050, seededRandom(seed)));
    const plain2050 = meanError((seed) => plainKernelShapDesign(m, 2050, seededRandom(seed)));
    console.log(
      `relative squared error vs exact, M = 16, mean of ${SEEDS} seeds: ours 512 ${ours[0]!.toExponential(2)}, 2048 ${ours[1]!.toExponential(2)}, 8192 ${ours[2]!.toExponential(2)}; ` +
        `at 2050 calls ours ${ours2050.toExponential(2)} vs plain ${plain2050.toExponential(2)} (${(plain2050 / ours2050).toFixed(1)}× lower)`,
    );
    assert.ok(ours[0]! > ours[1]! && ours[1]! > ours[2]!);
    assert.ok(plain2050 / ours2050 >= 2.5, `only ${(plain2050 / ours2050).toFixed(2)}×`);
  });

  it('standard errors are honest: the exact value lies within ±1.96·SE for 90–98 % of segments', () => {
    let inside = 0;
    let total = 0;
    for (let seed = 0; seed < 60; seed++) {
      const { phi, se } = estimate(KernelShapDesign.plan(m, 1000, seededRandom(1000 + seed)));
      exact.forEach((e, i) => {
        total += 1;
        if (Math.abs(phi[i]! - e) <= 1.96 * se[i]!) inside += 1;
      });
    }
    console.log(`±1.96·SE coverage on the region model: ${((100 * inside) / total).toFixed(1)} % of ${total}`);
    assert.ok(inside / total >= 0.9 && inside / total <= 0.98, `${inside}/${total}`);
  });
});

// Keep the reference honest: regionScores is the function regionModel applies to region means.
it('the region model is a softmax (scores sum to 1)', () => {
  assert.ok(Math.abs(sumOf(regionScores(new Float64Array(27).fill(0.5))) - 1) < 1e-12);
});

describe('the spectrum oracle (bench/spectrum.ts)', () => {
  it('gives the exact Shapley values from the odd Fourier terms, and nothing from the even ones', () => {
    const m = 7;
    const random = seededRandom(7);
    const values = Float64Array.from({ length: 2 ** m }, () => random());
    const f = fourierCoefficients(values);
    // v(x) = Σ_S f̂(S)·Π_{j∈S}(1 − 2x_j) at every coalition: the transform is the one the oracle assumes.
    for (const s of [0, 5, 77, 127]) {
      let v = 0;
      for (let t = 0; t < f.length; t++) {
        let sign = 1;
        for (let j = 0; j < m; j++) if ((t >> j) & 1 && (s >> j) & 1) sign = -sign;
        v += f[t]! * sign;
      }
      assert.ok(Math.abs(v - values[s]!) < 1e-12, `coalition ${s}: ${v} vs ${values[s]}`);
    }
    const exact = exactShapley(m, 1, (s) => [values[s]!])[0]!;
    const all = Array.from({ length: f.length }, (_, s) => s);
    assert.ok(relativeSquaredError(oddTermsShapley(m, f, all), exact) < 1e-24);
    const even = all.filter((s) => s.toString(2).split('1').length % 2 === 1); // an even number of ones
    assert.ok(even.length > 0 && oddTermsShapley(m, f, even).every((x) => x === 0));
  });

  it('finds a game made of a few odd terms exact with that many terms, and spreads its variance by degree', () => {
    // AND of segments 0 and 1: ¼ − ¼χ₀ − ¼χ₁ + ¼χ₀₁, so each gets ½ from its degree-1 term.
    const and = Float64Array.from({ length: 4 }, (_, s) => (s === 3 ? 1 : 0));
    assert.deepEqual(Array.from(oddTermsShapley(2, fourierCoefficients(and), [1, 2, 3])), [0.5, 0.5]);
    const m = 8;
    const game = Float64Array.from({ length: 2 ** m }, (_, s) => 0.3 * (1 - 2 * (s & 1)) - 0.2 * ((s >> 1) & 1 ? -1 : 1) * ((s >> 2) & 1 ? -1 : 1) * ((s >> 3) & 1 ? -1 : 1) + 0.1 * ((s >> 4) & 1 ? -1 : 1) * ((s >> 5) & 1 ? -1 : 1));
    const row = spectrumOf('three terms', m, game);
    assert.ok(row.largestTermsError.every((e) => e < 1e-28), `errors ${row.largestTermsError}`);
    assert.ok(Math.abs(row.varianceByDegree.reduce((a, b) => a + b, 0) - 1) < 1e-12);
    // Variance 0.09 at degree 1, 0.01 at degree 2, 0.04 at degree 3.
    assert.ok(Math.abs(row.varianceByDegree[0]! - 0.09 / 0.14) < 1e-12 && Math.abs(row.varianceByDegree[1]! - 0.01 / 0.14) < 1e-12 && Math.abs(row.varianceByDegree[2]! - 0.04 / 0.14) < 1e-12);
    const degreeOne = row.lowDegreeError[0]!;
    assert.equal(degreeOne.terms, m);
    assert.ok(degreeOne.error > 0.01, 'the degree-3 term is missing from the degree-1 model');
    assert.ok(row.lowDegreeError[1]!.error < 1e-28);
  });
});
