/**
 * How well the config's up-front estimate of the tree-adjusted estimator's CPU (`treeAdjustedSeconds`,
 * which bounds it at a few minutes per image) matches the work itself: one image's guided sampling
 * and solve with its 3 adjusted outputs, timed as CPU of this process, at the defaults' budgets (2·M + 2,048
 * calls) and at two larger budgets.
 */
import { inlineStages } from '../src/compute/stages.js';
import { evaluateCoalitions } from '../src/explain/image-shap.js';
import { defaultBudget } from '../src/explain/kernel-shap.js';
import { seededRandom } from '../src/explain/random.js';
import { ADJUSTED_OUTPUTS, solveShapley, type SolveOptions, treeAdjustedSeconds } from '../src/explain/tree-adjusted.js';

export interface SolveCostRow {
  readonly segments: number;
  readonly calls: number;
  readonly estimatedSeconds: number;
  /** The guided sampling's share of `measuredSeconds`. */
  readonly samplingSeconds: number;
  readonly measuredSeconds: number;
}

const CASES: readonly (readonly [segments: number, calls: number])[] = [
  [16, defaultBudget(16)],
  [50, defaultBudget(50)],
  [100, defaultBudget(100)],
  [200, defaultBudget(200)],
  [20, 8192],
  [100, 10_000],
];

/**
 * A logistic game of a few joint segments and an additive rest, one output per label. The additive
 * weights shrink as 16/M, so its answers spread as at 16 segments and never round to exactly 1:
 * every coalition's answer differs, every tree grows to single rows, the costliest case (with
 * weights of a fixed size the answers saturate at many segments, and the forests stop early).
 */
function labelGame(m: number, seed: number): (mask: Uint8Array) => Float64Array {
  const random = seededRandom(seed);
  const weights = Array.from({ length: ADJUSTED_OUTPUTS }, () => Array.from({ length: m }, () => ((random() * 0.6 - 0.2) * 16) / m));
  return (mask) =>
    Float64Array.from(weights, (w, o) => {
      let z = -3 + 5 * (mask[o]! & mask[o + 1]! & mask[o + 2]!) + 1.5 * (mask[o + 3]! & mask[o + 4]!);
      for (let i = 0; i < m; i++) z += mask[i]! * w[i]!;
      return 1 / (1 + Math.exp(-z));
    });
}

/** One image's guided sampling and solve, as the job does them (the game's answers cost next to nothing): CPU seconds of this process. */
async function timeOneImage(m: number, calls: number): Promise<{ samplingSeconds: number; measuredSeconds: number }> {
  const game = labelGame(m, m);
  const full = game(new Uint8Array(m).fill(1));
  const options: SolveOptions = { estimator: 'tree-adjusted', seed: 1, adjusted: Array.from({ length: ADJUSTED_OUTPUTS }, (_, o) => o) };
  const started = process.cpuUsage();
  const { design, values, empty } = await evaluateCoalitions({ players: m, budget: calls - 2, random: seededRandom(1), full, solveOptions: options, cpu: inlineStages, evaluate: async (mask) => game(mask) });
  const sampled = process.cpuUsage(started);
  solveShapley(design, values, full, empty, options);
  const used = process.cpuUsage(started);
  return { samplingSeconds: (sampled.user + sampled.system) / 1e6, measuredSeconds: (used.user + used.system) / 1e6 };
}

export async function runSolveCost(): Promise<SolveCostRow[]> {
  const rows: SolveCostRow[] = [];
  for (const [m, calls] of CASES) {
    rows.push({ segments: m, calls, estimatedSeconds: treeAdjustedSeconds(calls, m, ADJUSTED_OUTPUTS), ...(await timeOneImage(m, calls)) });
  }
  return rows;
}

/** The reference workload: one image's guided sampling and solve at these segments and calls, as `runSolveCost` times them. */
export const REFERENCE_WORKLOAD = { segments: 16, calls: 1024 } as const;

/**
 * What the reference workload took (median of 3, CPU seconds; three such medians read 3.05–3.35)
 * on the idle machine that `treeAdjustedSeconds` was fit on, 2026-12-01: a run whose workload
 * takes r times this ran its CPU-bound figures about r times slower, so its measured ÷ estimated
 * should sit near r.
 */
export const REFERENCE_SECONDS_AT_FIT = 3.1;

/** Measured ÷ estimated from 2,048 calls up on that machine, that day (src/explain/tree-adjusted.ts says how the fit was made). */
export const FIT_RATIOS = '0.93–1.13';

/**
 * CPU seconds of the reference workload, median of `times` runs: how fast this machine is at this
 * moment, so that figures in seconds or per CPU-second compare across runs.
 */
export async function runReferenceWorkload(times = 3): Promise<number> {
  const seconds: number[] = [];
  for (let t = 0; t < times; t++) seconds.push((await timeOneImage(REFERENCE_WORKLOAD.segments, REFERENCE_WORKLOAD.calls)).measuredSeconds);
  return seconds.sort((a, b) => a - b)[times >> 1]!;
}
