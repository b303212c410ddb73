/**
 * Sampling that adapts once a surrogate exists. A pilot share of the calls is drawn as Kernel SHAP
 * draws them; then each round fits a forest to the coalitions in hand and draws more pairs where
 * its trees disagree: the coalitions the surrogate is least sure of, whose residuals its
 * correction has to carry. That is query by committee (Seung, Opper & Sompolinsky 1992) for the
 * surrogate and importance sampling for the residual at once.
 *
 * Each round proposes PROPOSALS_PER_PAIR pairs per pair it wants from the design's own law, and
 * chooses among them systematically with probabilities in proportion to their weights; a chosen
 * pair's importance is divided by its probability (Horvitz & Thompson 1952), and every proposal
 * counts as a sampling unit. So the regression weights stay unbiased, with no stopping-rule lean,
 * and every estimator on the design keeps its guarantees. A floor on the weights bounds how far
 * any importance can grow, so a misleading forest costs at most a constant factor of variance.
 */
import type { KernelShapDesign } from './kernel-shap.js';
import { seededRandom } from './random.js';
import { coalitionRows, fitForest, forestSpread } from './regression-tree.js';
import { SURROGATE_TREES } from './tree-adjusted.js';

/** Share of the sampled calls drawn before any guide, to fit the first forest on. */
export const GUIDED_PILOT_SHARE = 0.3;
/** Guided rounds after the pilot, each with a forest refit on everything in hand. */
export const GUIDED_ROUNDS = 3;
/** Part of every pair's weight that ignores the forest: no chosen pair weighs more than 1 / this times what plain sampling gives it. */
export const GUIDE_FLOOR = 0.3;
/** Pairs proposed per pair chosen: how selective a round is. */
export const PROPOSALS_PER_PAIR = 4;

/**
 * The calls each wave adds after what enumeration gives: the pilot, then the guided rounds (the
 * last takes what rounding leaves). They sum to `sampled`.
 */
export function guidedWaves(sampled: number): number[] {
  const pilot = Math.floor(sampled * GUIDED_PILOT_SHARE);
  const round = Math.floor((sampled - pilot) / GUIDED_ROUNDS);
  return [pilot, ...Array.from({ length: GUIDED_ROUNDS }, (_, r) => (r === GUIDED_ROUNDS - 1 ? sampled - pilot - round * (GUIDED_ROUNDS - 1) : round))];
}

/**
 * Per proposed pair (a coalition and its complement), its weight in the choice: floor + (1 − floor)
 * · score, which averages 1 over the proposals of each coalition size. For each guided output a
 * forest is fit to the evaluated coalitions (the empty and full ones added), and a pair scores its
 * trees' spread on both members over the mean of that on the proposals of its size; the outputs'
 * scores are averaged, so that each label or object counts alike. Where no forest disagrees
 * anywhere every weight is 1: there is nothing to guide by.
 */
export function guideWeights(evaluated: readonly Uint8Array[], values: readonly Float64Array[], full: Float64Array, empty: Float64Array, outputs: readonly number[], proposals: readonly Uint8Array[], seed: number): Float64Array {
  const m = proposals[0]?.length ?? 0;
  const n = evaluated.length;
  const masks = [...evaluated, new Uint8Array(m), new Uint8Array(m).fill(1)];
  const rows = coalitionRows(masks, m);
  const complements = proposals.map((mask) => mask.map((v) => 1 - v));
  const sizes = proposals.map((mask) => {
    const shown = mask.reduce((a, b) => a + b, 0);
    return Math.min(shown, m - shown);
  });
  const score = new Float64Array(proposals.length);
  let guiding = 0;
  for (const o of outputs) {
    const targets = Float64Array.from(masks, (_, r) => (r < n ? values[r]![o]! : r === n ? empty[o]! : full[o]!));
    const spread = forestSpread(fitForest({ players: m, rows, targets }, seededRandom(seed * 1009 + o), SURROGATE_TREES));
    const pairSpread = proposals.map((mask, i) => spread(mask) + spread(complements[i]!));
    if (!pairSpread.some((s) => s > 0)) continue;
    guiding += 1;
    // Over the mean of its own size pair: the guide picks within sizes, and the sizes keep the
    // design's law (the leverage scores Kernel SHAP and its odd-term regressions rely on).
    const sum = new Float64Array(m + 1);
    const count = new Float64Array(m + 1);
    pairSpread.forEach((s, i) => {
      sum[sizes[i]!] = sum[sizes[i]!]! + s;
      count[sizes[i]!] = count[sizes[i]!]! + 1;
    });
    pairSpread.forEach((s, i) => {
      const mean = sum[sizes[i]!]! / count[sizes[i]!]!;
      score[i] = score[i]! + (mean > 0 ? s / mean : 1);
    });
  }
  if (guiding === 0) return new Float64Array(proposals.length).fill(1);
  return score.map((s) => GUIDE_FLOOR + ((1 - GUIDE_FLOOR) * s) / guiding);
}

/**
 * Inclusion probabilities in proportion to `weights` that sum to `pairs` (≤ the proposals), none
 * above 1: those that would be are set to 1 and the rest scaled up, until none is.
 */
export function inclusionProbabilities(weights: ArrayLike<number>, pairs: number): Float64Array {
  const inclusion = new Float64Array(weights.length);
  const capped = new Uint8Array(weights.length);
  for (let pass = 0; pass <= weights.length; pass++) {
    let free = 0;
    let cappedCount = 0;
    for (let i = 0; i < weights.length; i++) capped[i] ? (cappedCount += 1) : (free += weights[i]!);
    const scale = (pairs - cappedCount) / free;
    let changed = false;
    for (let i = 0; i < weights.length; i++) {
      if (capped[i]) continue;
      inclusion[i] = weights[i]! * scale;
      if (inclusion[i]! >= 1) {
        inclusion[i] = 1;
        capped[i] = 1;
        changed = true;
      }
    }
    if (!changed) break;
  }
  return inclusion;
}

/**
 * Add `count` coalitions to the design in pools: propose PROPOSALS_PER_PAIR pairs per pair wanted,
 * weigh them (`guideWeights`, wherever `weigh` runs it) and choose the pairs systematically with
 * probabilities in proportion to their weights. Returns the index of the first new mask, as
 * `sampleMore` does; it may add fewer where the draws keep repeating.
 */
export async function sampleGuided(design: KernelShapDesign, count: number, weigh: (proposals: readonly Uint8Array[]) => Promise<Float64Array>): Promise<number> {
  const start = design.masks.length;
  let added = 0;
  for (let pool = 0; pool < 100 && design.canSample; pool++) {
    const pairs = Math.floor((count - added) / 2);
    if (pairs === 0) break;
    const proposals = design.propose(pairs * PROPOSALS_PER_PAIR);
    const weights = await weigh(proposals.map((p) => p.mask));
    added += design.sampleSystematic(proposals, inclusionProbabilities(weights, pairs));
  }
  return start;
}
