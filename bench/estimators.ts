/**
 * Accuracy per endpoint call of every Shapley estimator, side by side on image games: the new
 * tree-adjusted estimator (the default), our Kernel SHAP, shap's KernelExplainer sampling, and
 * faithful RegressionMSR and OddSHAP (bench/anchors). Every method is charged every distinct
 * coalition it evaluates, the empty and full ones included.
 *
 * Games: the bundled models' exact games (bench/games, all 2^M coalitions cached), the synthetic
 * region game (exact), and the region model on a photo at M ≈ 50, whose reference is a Kernel SHAP
 * run with 100× the largest budget (its standard error stated).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decodeImage } from '../src/image/decode.js';
import { createRgbImage } from '../src/image/rgb.js';
import { type CoalitionDesign, KernelShapDesign, type ShapSolution, solveKernelShap } from '../src/explain/kernel-shap.js';
import { indexSegments, maskImage } from '../src/explain/masking.js';
import { seededRandom } from '../src/explain/random.js';
import { solveShapley } from '../src/explain/tree-adjusted.js';
import { slic } from '../src/segment/slic.js';
import { coalitionBits, exactShapley, relativeSquaredError } from '../test/support/exact-shapley.js';
import { regionModel } from '../test/support/region-model.js';
import { regionGame } from './accuracy.js';
import { oddShap } from './anchors/oddshap.js';
import { regressionMsr } from './anchors/regression-msr.js';
import { GAME_NAMES, loadGame } from './games/games.js';

export interface EstimatorGame {
  readonly name: string;
  readonly kind: 'classification' | 'detection' | 'synthetic';
  readonly players: number;
  readonly description: string;
  /** Exact Shapley values, or the high-budget reference. */
  readonly reference: Float64Array;
  /** The reference's own expected error, Σ SE² / ‖φ‖² (0 when exact): errors near it are the reference's. */
  readonly referenceError: number;
  value(mask: Uint8Array): number;
}

export const METHODS = ['tree-adjusted', 'kernel', 'shap-kernel', 'regression-msr', 'regression-msr-tree', 'oddshap'] as const;
export type Method = (typeof METHODS)[number];
export const METHOD_LABELS: Record<Method, string> = {
  'tree-adjusted': 'tree-adjusted (new default)',
  kernel: 'our Kernel SHAP (before)',
  'shap-kernel': "shap KernelExplainer sampling",
  'regression-msr': 'RegressionMSR, forest proxy',
  'regression-msr-tree': 'RegressionMSR, tree proxy',
  oddshap: 'OddSHAP, tree surrogate',
};
export const ANCHORS: readonly Method[] = ['regression-msr', 'oddshap'];

export const BUDGETS = [64, 128, 256, 512, 1024, 2048] as const;
/** Budgets at which the standard errors' coverage is measured (the refit jackknife is the slow part). */
export const COVERAGE_BUDGETS = [256, 1024] as const;

function fromCache(name: string): EstimatorGame {
  const game = loadGame(name);
  const m = game.players;
  const value = (mask: Uint8Array): number => game.values[coalitionBits(mask)]!;
  return {
    name,
    kind: game.kind,
    players: m,
    description: `${game.kind === 'classification' ? 'face-expression classifier' : 'face detector'} on ${game.image.split('/').pop()}: ${game.output}`,
    reference: exactShapley(m, 1, (s) => [game.values[s]!])[0]!,
    referenceError: 0,
    value,
  };
}

function regionBlocks(): EstimatorGame {
  const { m, game } = regionGame();
  return {
    name: 'region-blocks',
    kind: 'synthetic',
    players: m,
    description: "synthetic: the test endpoint's region model on a 4×4 block image (bench/accuracy.ts)",
    reference: exactShapley(m, 1, (s) => [game(s)])[0]!,
    referenceError: 0,
    value: (mask) => game(coalitionBits(mask)),
  };
}

/** The region model on a real photo with SLIC at n_segments 50; memoised per coalition. */
export async function regionPhoto(referenceBudget: number): Promise<EstimatorGame> {
  const file = fileURLToPath(new URL('../../examples/images/detection/astronaut.jpg', import.meta.url));
  const image = await decodeImage(new Uint8Array(readFileSync(file)), { maxPixels: 1e8, maxSide: 128 });
  const segments = slic(image, { numSegments: 50, compactness: 10 });
  const index = indexSegments(segments);
  const gray = createRgbImage(image.width, image.height, new Uint8Array(image.data.length).fill(128));
  const m = segments.count;
  const target = new Uint8Array(image.data.length);
  const value = (mask: Uint8Array): number => {
    const masked = maskImage(image, gray, index, mask, target);
    return regionModel(masked.data, masked.width, masked.height)[0]!;
  };
  const design = KernelShapDesign.plan(m, referenceBudget, seededRandom(424242));
  const values = design.masks.map((mask) => Float64Array.of(value(mask)));
  const solution = solveKernelShap(design, values, Float64Array.of(value(new Uint8Array(m).fill(1))), Float64Array.of(value(new Uint8Array(m))));
  return {
    name: 'region-photo-50',
    kind: 'synthetic',
    players: m,
    description: `the region model on astronaut.jpg (128 px), SLIC n_segments 50 → M = ${m}; reference: our Kernel SHAP with ${referenceBudget.toLocaleString('en')} calls`,
    reference: solution.values[0]!,
    referenceError: solution.standardErrors[0]!.reduce((a, se) => a + se * se, 0) / solution.values[0]!.reduce((a, v) => a + v * v, 0),
    value,
  };
}

export async function loadEstimatorGame(name: string): Promise<EstimatorGame> {
  if (name === 'region-blocks') return regionBlocks();
  if (name === 'region-photo-50') return regionPhoto(100 * BUDGETS.at(-1)!);
  return fromCache(name);
}

export const ESTIMATOR_GAMES: readonly string[] = [...GAME_NAMES, 'region-blocks', 'region-photo-50'];

/** Our design at `calls` total: the full image is known and the empty image is one call. */
function ourDesign(m: number, calls: number, seed: number, sizes: 'uniform' | 'kernel'): CoalitionDesign {
  return KernelShapDesign.plan(m, calls - 2, seededRandom(seed), sizes);
}

function solveWith(method: 'tree-adjusted' | 'kernel' | 'shap-kernel', game: EstimatorGame, calls: number, seed: number): ShapSolution {
  const m = game.players;
  const design = ourDesign(m, calls, seed, method === 'shap-kernel' ? 'kernel' : 'uniform');
  const values = design.masks.map((mask) => Float64Array.of(game.value(mask)));
  const full = Float64Array.of(game.value(new Uint8Array(m).fill(1)));
  const empty = Float64Array.of(game.value(new Uint8Array(m)));
  if (method !== 'tree-adjusted') return solveKernelShap(design, values, full, empty);
  return solveShapley(design, values, full, empty, { estimator: 'tree-adjusted', seed });
}

export function estimate(method: Method, game: EstimatorGame, calls: number, seed: number): Float64Array {
  const m = game.players;
  switch (method) {
    case 'regression-msr':
      return regressionMsr(m, calls, (mask) => game.value(mask), seededRandom(seed), 'forest').values;
    case 'regression-msr-tree':
      return regressionMsr(m, calls, (mask) => game.value(mask), seededRandom(seed), 'tree').values;
    case 'oddshap':
      return oddShap(m, calls, (mask) => game.value(mask), seededRandom(seed)).values;
    default:
      return solveWith(method, game, calls, seed).values[0]!;
  }
}

export interface GameResult {
  readonly name: string;
  readonly kind: EstimatorGame['kind'];
  readonly players: number;
  readonly description: string;
  readonly referenceError: number;
  readonly seeds: number;
  /** errors[method][budget index][seed]. */
  readonly errors: Record<Method, number[][]>;
  /** Share of |φ̂ − φ| ≤ 1.96 SE over players and seeds, per coverage budget. */
  readonly coverage: { calls: number; treeAdjusted: number; kernel: number }[];
  readonly seconds: Record<Method, number>;
}

export async function runEstimatorGame(name: string, seeds: number): Promise<GameResult> {
  const game = await loadEstimatorGame(name);
  const errors = Object.fromEntries(METHODS.map((method) => [method, BUDGETS.map(() => [] as number[])])) as unknown as Record<Method, number[][]>;
  const seconds = Object.fromEntries(METHODS.map((method) => [method, 0])) as Record<Method, number>;
  for (const method of METHODS) {
    BUDGETS.forEach((calls, b) => {
      for (let seed = 0; seed < seeds; seed++) {
        const started = process.hrtime.bigint();
        const phi = estimate(method, game, calls, seed);
        seconds[method] += Number(process.hrtime.bigint() - started) / 1e9;
        errors[method][b]!.push(relativeSquaredError(phi, game.reference));
      }
    });
  }
  const coverage = COVERAGE_BUDGETS.map((calls) => {
    const inside = { treeAdjusted: 0, kernel: 0 };
    for (let seed = 0; seed < seeds; seed++) {
      for (const [key, method] of [['treeAdjusted', 'tree-adjusted'], ['kernel', 'kernel']] as const) {
        const solution = solveWith(method, game, calls, seed);
        for (let i = 0; i < game.players; i++) {
          if (Math.abs(solution.values[0]![i]! - game.reference[i]!) <= 1.96 * solution.standardErrors[0]![i]!) inside[key] += 1;
        }
      }
    }
    const total = seeds * game.players;
    return { calls, treeAdjusted: inside.treeAdjusted / total, kernel: inside.kernel / total };
  });
  return { name, kind: game.kind, players: game.players, description: game.description, referenceError: game.referenceError, seeds, errors, coverage, seconds };
}

/** Every game, each in its own process, as many at once as there are cores. */
export async function runEstimators(seeds: number, games: readonly string[] = ESTIMATOR_GAMES): Promise<GameResult[]> {
  const { spawn } = await import('node:child_process');
  const os = await import('node:os');
  const script = fileURLToPath(new URL('./estimators-child.js', import.meta.url));
  const runOne = (name: string): Promise<GameResult> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [script, name, String(seeds)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as GameResult) : reject(new Error(`estimator game ${name} exited ${code}`))));
    });
  const results: GameResult[] = new Array(games.length);
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(os.availableParallelism(), games.length)) }, async () => {
    while (next < games.length) {
      const k = next++;
      process.stderr.write(`  estimators: ${games[k]} …\n`);
      results[k] = await runOne(games[k]!);
    }
  });
  await Promise.all(lanes);
  return results;
}

export const mean = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
export const geometricMean = (values: readonly number[]): number => Math.exp(mean(values.map(Math.log)));

/** Calls the new estimator needs to reach `target` error: log-log interpolation on its budget grid. */
export function callsToReach(result: GameResult, target: number): number | undefined {
  const curve = BUDGETS.map((calls, b) => ({ calls, error: mean(result.errors['tree-adjusted'][b]!) }));
  if (curve[0]!.error <= target) return curve[0]!.calls;
  for (let k = 1; k < curve.length; k++) {
    const a = curve[k - 1]!;
    const b = curve[k]!;
    if (b.error <= target) {
      const t = (Math.log(a.error) - Math.log(target)) / (Math.log(a.error) - Math.log(b.error));
      return Math.round(Math.exp(Math.log(a.calls) + t * (Math.log(b.calls) - Math.log(a.calls))));
    }
  }
  return undefined;
}
