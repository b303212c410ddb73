/**
 * Accuracy per call: relative squared error against exact Shapley values (all 2^16 coalitions
 * enumerated) for our estimator and for plain Kernel SHAP, at equal numbers of model calls.
 * The game is the test endpoint's region model on a 4×4 block image, masked to gray: the same
 * function the endpoint computes, evaluated in-process so 2^16 coalitions are affordable.
 */
import { type CoalitionDesign, KernelShapDesign, type SizeSampling, solveKernelShap } from '../src/explain/kernel-shap.js';
import { seededRandom } from '../src/explain/random.js';
import { coalitionBits, exactShapley, relativeSquaredError } from '../test/support/exact-shapley.js';
import { blockImage, regionModel } from '../test/support/region-model.js';
import { plainKernelShapDesign } from './plain-kernel-shap.js';

export interface AccuracyRow {
  readonly calls: number;
  readonly ours: { mean: number; sd: number };
  /** Ours with the other size sampling, for comparison. */
  readonly alternative: { mean: number; sd: number };
  readonly plain: { mean: number; sd: number };
}

export interface AccuracyResult {
  readonly features: number;
  readonly seeds: number;
  readonly rows: AccuracyRow[];
  readonly plainAt2050: number;
  readonly oursAt2050: number;
  /** Fewest calls (on the grid searched) at which our mean error is at most plain's at 2050. */
  readonly callsToMatchPlain2050: number | undefined;
  readonly grid: { calls: number; error: number }[];
  readonly sizeSampling: SizeSampling;
  readonly alternativeSampling: SizeSampling;
}

/** The region model's first class on a 4×4 block image, segments masked to gray; cached per coalition. */
export function regionGame(): { m: number; game: (coalition: number) => number } {
  const rows = 4;
  const cols = 4;
  const block = 8;
  const image = blockImage(rows, cols, block);
  const labels = Uint16Array.from({ length: image.width * image.height }, (_, p) => Math.floor(Math.floor(p / image.width) / block) * cols + Math.floor((p % image.width) / block));
  const cache = new Float64Array(2 ** (rows * cols)).fill(Number.NaN);
  const masked = new Uint8Array(image.data.length);
  const game = (s: number): number => {
    if (Number.isNaN(cache[s]!)) {
      for (let p = 0; p < labels.length; p++) {
        const on = (s >> labels[p]!) & 1;
        for (let c = 0; c < 3; c++) masked[p * 3 + c] = on ? image.data[p * 3 + c]! : 128;
      }
      cache[s] = regionModel(masked, image.width, image.height)[0]!;
    }
    return cache[s]!;
  };
  return { m: rows * cols, game };
}

export function runAccuracy(seeds = 20, sizeSampling?: SizeSampling): AccuracyResult {
  const alternativeSampling: SizeSampling = (sizeSampling ?? 'kernel') === 'kernel' ? 'uniform' : 'kernel';
  const { m, game } = regionGame();
  const exact = exactShapley(m, 1, (s) => [game(s)])[0]!;
  const error = (design: CoalitionDesign): number => {
    const values = design.masks.map((mask) => Float64Array.of(game(coalitionBits(mask))));
    const phi = solveKernelShap(design, values, Float64Array.of(game(2 ** m - 1)), Float64Array.of(game(0))).values[0]!;
    return relativeSquaredError(phi, exact);
  };
  const stats = (make: (seed: number) => CoalitionDesign): { mean: number; sd: number } => {
    const errors = Array.from({ length: seeds }, (_, seed) => error(make(seed)));
    const mean = errors.reduce((a, b) => a + b, 0) / seeds;
    const sd = Math.sqrt(errors.reduce((a, e) => a + (e - mean) ** 2, 0) / (seeds - 1));
    return { mean, sd };
  };
  const ours = (calls: number) => stats((seed) => KernelShapDesign.plan(m, calls, seededRandom(seed), sizeSampling));
  const alternative = (calls: number) => stats((seed) => KernelShapDesign.plan(m, calls, seededRandom(seed), alternativeSampling));
  const plain = (calls: number) => stats((seed) => plainKernelShapDesign(m, calls, seededRandom(seed)));
  const rows = [256, 512, 1024, 2048, 4096, 8192].map((calls) => ({ calls, ours: ours(calls), alternative: alternative(calls), plain: plain(calls) }));
  const plainAt2050 = plain(2050).mean;
  const oursAt2050 = ours(2050).mean;
  const grid = [150, 200, 250, 300, 350, 400, 450, 500, 600, 700, 800, 1000, 1200, 1500, 2050].map((calls) => ({ calls, error: ours(calls).mean }));
  const callsToMatchPlain2050 = grid.find((g) => g.error <= plainAt2050)?.calls;
  return { features: m, seeds, rows, plainAt2050, oursAt2050, callsToMatchPlain2050, grid, sizeSampling: sizeSampling ?? 'kernel', alternativeSampling };
}
