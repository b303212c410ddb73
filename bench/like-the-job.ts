/**
 * The default estimator as the job runs it, on a game given as a function of the mask: coalitions
 * sampled in guided waves (src/explain/guided-sampling.ts), then the tree-adjusted solve. Shared
 * by the accuracy and the estimator benchmarks, so both measure the same thing.
 */
import { inlineStages } from '../src/compute/stages.js';
import { evaluateCoalitions } from '../src/explain/image-shap.js';
import type { ShapSolution } from '../src/explain/kernel-shap.js';
import { seededRandom } from '../src/explain/random.js';
import { solveShapley, type SolveOptions } from '../src/explain/tree-adjusted.js';

/** `budget` masks are sampled besides the full image (known) and the empty one (one more call). */
export async function solveTreeAdjustedLikeTheJob(players: number, value: (mask: Uint8Array) => number, budget: number, seed: number): Promise<ShapSolution> {
  const full = Float64Array.of(value(new Uint8Array(players).fill(1)));
  const options: SolveOptions = { estimator: 'tree-adjusted', seed };
  const { design, values, empty } = await evaluateCoalitions({
    players,
    budget,
    random: seededRandom(seed),
    full,
    solveOptions: options,
    cpu: inlineStages,
    evaluate: async (mask) => Float64Array.of(value(mask)),
  });
  return solveShapley(design, values, full, empty, options);
}
