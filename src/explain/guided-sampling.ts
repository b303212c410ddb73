/**
 * Sampling that adapts once a surrogate exists. A pilot share of the calls is drawn as Kernel SHAP
 * draws them; then each round fits a forest to the coalitions in hand and draws more pairs where
 * its trees disagree: the coalitions the surrogate is least sure of, whose residuals its
 * correction has to carry. That is query by committee (Seung, Opper & Sompolinsky 1992) for the
 * surrogate and importance sampling for the residual at once.
 *
 * Every round's proposals are drawn from the design's own law up front, PROPOSALS_PER_PAIR per
 * pair it will want; a round chooses among its own systematically, with probabilities in
 * proportion to their weights. Its forest also weighs every other pair the design may hold (the
 * pilot's draws and every round's proposals), so each pair's density under each round's law is
 * known, and a pair weighs its importance over the density of all the laws together: the
 * deterministic mixture, or balance heuristic (Veach & Guibas 1995; Owen & Zhou 2000). Dividing
 * by each round's own probability instead (Horvitz & Thompson) is unbiased too, but its weights
 * swing with one round's guide, and a round counted its proposals, not its pairs, as units, so
 * the pilot weighed a quarter per call: Kernel SHAP on the guided design had 1.1–1.8× the error
 * of the mixture's weights in scratch runs on the benchmark games, the tree-adjusted mix up to
 * 1.4×. Each round's law depends on the answers before it, so the mixture is unbiased in the
 * limit rather than exactly; a floor on the weights bounds how far any pair's weight can move.
 */
import type { KernelShapDesign, Proposal } from './kernel-shap.js';
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

/** Pairs `start` to `end` (not included) of those weighed: a round's own proposals. */
export interface PairRange {
  readonly start: number;
  readonly end: number;
}

/**
 * Per pair (a coalition and its complement), its weight in a round's choice: floor + (1 − floor)
 * · score, which averages 1 over the round's own proposals (the pairs in `own`) of each
 * coalition size. For each guided output a forest is fit to the evaluated coalitions (the empty
 * and full ones added), and a pair scores its trees' spread on both members over the mean of that
 * on the own proposals of its size (1 for a size they lack); the outputs' scores are averaged, so
 * that each label or object counts alike. Where no forest disagrees anywhere every weight is 1:
 * there is nothing to guide by.
 */
export function guideWeights(evaluated: readonly Uint8Array[], values: readonly Float64Array[], full: Float64Array, empty: Float64Array, outputs: readonly number[], proposals: readonly Uint8Array[], seed: number, own: PairRange = { start: 0, end: proposals.length }): Float64Array {
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
    const ownSpread = pairSpread.slice(own.start, own.end);
    if (!ownSpread.some((s) => s > 0)) continue;
    guiding += 1;
    // Over the mean of its own size pair: the guide picks within sizes, and the sizes keep the
    // design's law (the leverage scores Kernel SHAP and its odd-term regressions rely on).
    const sum = new Float64Array(m + 1);
    const count = new Float64Array(m + 1);
    ownSpread.forEach((s, k) => {
      const size = sizes[own.start + k]!;
      sum[size] = sum[size]! + s;
      count[size] = count[size]! + 1;
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

/** A guided round: its pairs, its proposals, and the density of its law on every pair (`GuidedRounds`). */
interface Round {
  readonly pairs: number;
  readonly proposals: readonly Proposal[];
  /** Where its proposals start among the pairs every round weighs. */
  readonly offset: number;
  /** Its inclusion probability of every pair weighed (its law's density over the design's), once run. */
  inclusion?: Float64Array;
  /** Its chosen proposals' picks in the design, and their indices among the pairs weighed. */
  readonly chosen: { pick: number; pair: number }[];
}

/**
 * The guided rounds of one design after its pilot. `plan` draws every round's proposals; `run`
 * runs one round (its guide weighs every pair, its own proposals first) and settles every
 * pair's weight as one draw from the mixture of the pilot's law and the rounds' run so far, so
 * the design is ready for a solve (the tolerance's check) after each round.
 */
export class GuidedRounds {
  private constructor(
    private readonly design: KernelShapDesign,
    /** Picks of the pilot (plain draws, one sampling unit each), and what each round weighs. */
    private readonly pilotPicks: number,
    private readonly weighed: readonly Uint8Array[],
    private readonly rounds: readonly Round[],
  ) {}

  /** After the pilot: draw the proposals of rounds of `calls[r]` calls each. */
  static plan(design: KernelShapDesign, calls: readonly number[]): GuidedRounds {
    const pilotPicks = design.picks().length;
    const weighed = design.picks().map((p) => p.mask);
    const rounds = calls.map((c) => {
      const pairs = Math.floor(c / 2);
      const proposals = design.propose(pairs * PROPOSALS_PER_PAIR);
      const offset = weighed.length;
      weighed.push(...proposals.map((p) => p.mask));
      return { pairs, proposals, offset, chosen: [] };
    });
    return new GuidedRounds(design, pilotPicks, weighed, rounds);
  }

  /**
   * Run round `r`: `weigh` gets every pair to weigh and where the round's own proposals are among
   * them (see `guideWeights`' `own`), and returns a weight per pair.
   */
  async run(r: number, weigh: (pairs: readonly Uint8Array[], own: PairRange) => Promise<Float64Array>): Promise<void> {
    const round = this.rounds[r]!;
    if (round.pairs === 0 || round.proposals.length === 0) return;
    const own = { start: round.offset, end: round.offset + round.proposals.length };
    const weights = await weigh(this.weighed, own);
    const ownWeights = weights.subarray(own.start, own.end);
    const inclusion = inclusionProbabilities(ownWeights, round.pairs);
    // The same law on every other pair: proportional to its weight at the round's scale, within 1.
    let scale = round.pairs / ownWeights.reduce((a, b) => a + b, 0);
    for (let i = 0; i < ownWeights.length; i++) if (inclusion[i]! < 1) scale = inclusion[i]! / ownWeights[i]!;
    round.inclusion = weights.map((w, pair) => (pair >= own.start && pair < own.end ? inclusion[pair - own.start]! : Math.min(1, w * scale)));
    for (const { proposal, pick } of this.design.sampleSystematic(round.proposals, inclusion, round.pairs / round.proposals.length)) round.chosen.push({ pick, pair: round.offset + proposal });
    this.settle();
  }

  /**
   * Each pair of the pilot and of the rounds run weighs its importance times U / D: U the sampling
   * units (the pilot's draws and each round's pairs), D its expected draws under all their laws
   * together (the pilot's draws, plus each round's proposals times its inclusion probability).
   */
  private settle(): void {
    const run = this.rounds.filter((round) => round.inclusion !== undefined);
    const units = this.pilotPicks + run.reduce((a, round) => a + round.pairs, 0);
    const density = (pair: number): number => this.pilotPicks + run.reduce((a, round) => a + round.proposals.length * round.inclusion![pair]!, 0);
    for (let p = 0; p < this.pilotPicks; p++) this.design.reweigh(p, units / density(p));
    for (const round of run) for (const { pick, pair } of round.chosen) this.design.reweigh(pick, units / density(pair));
  }
}
