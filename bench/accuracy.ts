/**
 * Accuracy per call: relative squared error against exact Shapley values (all 2^16 coalitions
 * enumerated) for our Kernel SHAP, for the default estimator as the job runs it (guided sampling,
 * tree-adjusted solve) and for plain Kernel SHAP, at equal numbers of model calls.
 * The game is the test endpoint's region model on a 4×4 block image, masked to gray: the same
 * function the endpoint computes, evaluated in-process so 2^16 coalitions are affordable.
 */
import { type CoalitionDesign, KernelShapDesign, type SizeSampling, solveKernelShap } from '../src/explain/kernel-shap.js';
import { seededRandom } from '../src/explain/random.js';
import { coalitionBits, exactShapley, relativeSquaredError } from '../test/support/exact-shapley.js';
import { blockImage, regionModel } from '../test/support/region-model.js';
import { solveTreeAdjustedLikeTheJob } from './like-the-job.js';
import { plainKernelShapDesign } from './plain-kernel-shap.js';

export interface AccuracyRow {
  readonly calls: number;
  readonly ours: { mean: number; sd: number };
  /** Ours with the other size sampling, for comparison. */
  readonly alternative: { mean: number; sd: number };
  readonly plain: { mean: number; sd: number };
  /** The default estimator (tree-adjusted, guided), up to `DEFAULT_ESTIMATOR_MOST_CALLS`. */
  readonly tree?: { mean: number; sd: number };
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
  readonly treeAt2050: number;
  /** The same for the default estimator, its grid searched up to the first budget that matches. */
  readonly treeCallsToMatchPlain2050: number | undefined;
  readonly treeGrid: { calls: number; error: number }[];
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

/**
 * The default estimator's column stops here: its forests cost about 8 s of CPU per estimate at
 * 4,096 calls and 16 s at 8,192 (20 seeds each would add 8 minutes to the benchmark), and the
 * estimator section measures it up to 2,048 on every game.
 */
export const DEFAULT_ESTIMATOR_MOST_CALLS = 2050;

const MATCH_GRID = [150, 200, 250, 300, 350, 400, 450, 500, 600, 700, 800, 1000, 1200, 1500, 2050];

/** The first budget on `grid` whose mean error is at most `target`, measuring no further than that. */
async function firstMatch(grid: readonly number[], target: number, meanError: (calls: number) => Promise<number>): Promise<{ calls: number | undefined; measured: { calls: number; error: number }[] }> {
  const measured: { calls: number; error: number }[] = [];
  for (const calls of grid) {
    const error = await meanError(calls);
    measured.push({ calls, error });
    if (error <= target) return { calls, measured };
  }
  return { calls: undefined, measured };
}

export async function runAccuracy(seeds = 20, sizeSampling?: SizeSampling): Promise<AccuracyResult> {
  const alternativeSampling: SizeSampling = (sizeSampling ?? 'kernel') === 'kernel' ? 'uniform' : 'kernel';
  const { m, game } = regionGame();
  const exact = exactShapley(m, 1, (s) => [game(s)])[0]!;
  const error = (design: CoalitionDesign): number => {
    const values = design.masks.map((mask) => Float64Array.of(game(coalitionBits(mask))));
    const phi = solveKernelShap(design, values, Float64Array.of(game(2 ** m - 1)), Float64Array.of(game(0))).values[0]!;
    return relativeSquaredError(phi, exact);
  };
  const summary = (errors: readonly number[]): { mean: number; sd: number } => {
    const mean = errors.reduce((a, b) => a + b, 0) / seeds;
    const sd = Math.sqrt(errors.reduce((a, e) => a + (e - mean) ** 2, 0) / (seeds - 1));
    return { mean, sd };
  };
  const stats = (make: (seed: number) => CoalitionDesign): { mean: number; sd: number } => summary(Array.from({ length: seeds }, (_, seed) => error(make(seed))));
  const value = (mask: Uint8Array): number => game(coalitionBits(mask));
  // The same budget as the Kernel SHAP columns: `calls` masks besides the full and empty images.
  const tree = async (calls: number): Promise<{ mean: number; sd: number }> => {
    const errors: number[] = [];
    for (let seed = 0; seed < seeds; seed++) errors.push(relativeSquaredError((await solveTreeAdjustedLikeTheJob(m, value, calls, seed)).values[0]!, exact));
    return summary(errors);
  };
  const ours = (calls: number) => stats((seed) => KernelShapDesign.plan(m, calls, seededRandom(seed), sizeSampling));
  const alternative = (calls: number) => stats((seed) => KernelShapDesign.plan(m, calls, seededRandom(seed), alternativeSampling));
  const plain = (calls: number) => stats((seed) => plainKernelShapDesign(m, calls, seededRandom(seed)));
  const rows: AccuracyRow[] = [];
  for (const calls of [256, 512, 1024, 2048, 4096, 8192]) {
    rows.push({ calls, ours: ours(calls), alternative: alternative(calls), plain: plain(calls), ...(calls <= DEFAULT_ESTIMATOR_MOST_CALLS ? { tree: await tree(calls) } : {}) });
  }
  const plainAt2050 = plain(2050).mean;
  const oursAt2050 = ours(2050).mean;
  const grid = MATCH_GRID.map((calls) => ({ calls, error: ours(calls).mean }));
  const callsToMatchPlain2050 = grid.find((g) => g.error <= plainAt2050)?.calls;
  const treeMatch = await firstMatch(MATCH_GRID, plainAt2050, async (calls) => (await tree(calls)).mean);
  const treeAt2050 = treeMatch.measured.at(-1)?.calls === 2050 ? treeMatch.measured.at(-1)!.error : (await tree(2050)).mean;
  return {
    features: m,
    seeds,
    rows,
    plainAt2050,
    oursAt2050,
    callsToMatchPlain2050,
    grid,
    treeAt2050,
    treeCallsToMatchPlain2050: treeMatch.calls,
    treeGrid: treeMatch.measured,
    sizeSampling: sizeSampling ?? 'kernel',
    alternativeSampling,
  };
}
