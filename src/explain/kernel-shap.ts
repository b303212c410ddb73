/**
 * Kernel SHAP (Lundberg & Lee 2017) over M features, with the improvements that beat plain
 * sampling at an equal number of model calls (the shap library's KernelExplainer; Covert & Lee
 * 2021; Musco & Witter 2024): a coalition size is enumerated whole, smallest and largest sizes
 * first, while the budget gives it at least as many calls as kernel sampling would; the other
 * sizes are sampled in complement pairs, uniformly over sizes (leverage scores) with importance
 * weights; no coalition is evaluated twice;
 * with 2^M − 2 ≤ budget the answer is exact. The efficiency constraint
 * (Σφ = f(all) − f(none)) is imposed exactly by eliminating one variable. Standard errors come
 * from a delete-a-group jackknife over the sampled pairs (enumerated coalitions carry no noise).
 */
import type { Random } from './random.js';

/** C(n, k); each step's value is C(n − k + i, i), an integer, so it is exact below 2^53. */
export function binomial(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return r;
}

/** Kernel weight of one coalition of size s: (M − 1) / (C(M, s) · s · (M − s)). */
export function shapleyKernelWeight(m: number, size: number): number {
  return (m - 1) / (binomial(m, size) * size * (m - size));
}

/** Default budget when num_samples is absent: min(2M + 2048, 2^M − 2). */
export function defaultBudget(m: number): number {
  return m >= 31 ? 2 * m + 2048 : Math.min(2 * m + 2048, 2 ** m - 2);
}

export function* subsetsOfSize(m: number, size: number): Generator<Uint8Array> {
  const index = Array.from({ length: size }, (_, i) => i);
  for (;;) {
    const mask = new Uint8Array(m);
    for (const i of index) mask[i] = 1;
    yield mask;
    let i = size - 1;
    while (i >= 0 && index[i] === m - size + i) i--;
    if (i < 0) return;
    index[i]! += 1;
    for (let j = i + 1; j < size; j++) index[j] = index[j - 1]! + 1;
  }
}

const keyOf = (mask: Uint8Array): string => Buffer.from(mask.buffer, mask.byteOffset, mask.byteLength).toString('latin1');

/** Number of jackknife groups the sampled pairs are dealt into. */
export const JACKKNIFE_GROUPS = 40;

/** How sampled coalition sizes are drawn: by kernel mass (classic) or uniformly (leverage scores). */
export type SizeSampling = 'kernel' | 'uniform';
export const DEFAULT_SIZE_SAMPLING: SizeSampling = 'uniform';

interface SizePair {
  readonly sizes: readonly number[];
  /** Kernel mass of all coalitions of these sizes. */
  readonly mass: number;
  readonly count: number;
}

/**
 * What the solver needs of a set of coalitions: enumerated rows first (exact kernel weights), then
 * sampled rows whose weights are importance weights summed over their draws. A sampled row's
 * weight is its sum divided by the number of sampling units (pairs, or single draws); per-group
 * sums let the jackknife leave one group out.
 */
export interface CoalitionDesign {
  readonly features: number;
  readonly masks: readonly Uint8Array[];
  /** Number of leading masks that were enumerated (fixed weights, no sampling noise). */
  readonly enumeratedCount: number;
  /** Kernel weight of each enumerated mask. */
  enumeratedWeights(): readonly number[];
  /** Per sampled mask: jackknife group → summed importance weight of its draws in that group. */
  sampledWeights(): readonly ReadonlyMap<number, number>[];
  /** Sampling units (pairs or draws) per jackknife group. */
  unitsPerGroup(): readonly number[];
}

/** A pair drawn from a design's sampling law: the coalition (its complement comes with it) and the importance weight of one draw. */
export interface Proposal {
  readonly mask: Uint8Array;
  readonly importance: number;
}

/** A sampled pair as admitted: its drawn coalition, the importance of one draw, its group. */
export interface Pick {
  readonly mask: Uint8Array;
  readonly importance: number;
  readonly group: number;
  /** Its weight over its importance (1 but where `reweigh` set it). */
  readonly factor: number;
}

interface MutablePick extends Pick {
  factor: number;
}

/**
 * Which coalitions to evaluate, and with what regression weight. Enumerated coalitions come first
 * (fixed weights); sampled ones follow, each remembering how often it was drawn and its group.
 */
export class KernelShapDesign implements CoalitionDesign {
  readonly features: number;
  readonly masks: Uint8Array[] = [];
  /** Number of leading masks that were enumerated. */
  readonly enumeratedCount: number;
  readonly exact: boolean;
  private readonly enumerated: number[] = [];
  private readonly sampled: Map<number, number>[] = [];
  private readonly units: number[] = [];
  private readonly drawn: MutablePick[] = [];
  private readonly seen = new Map<string, number>();
  private readonly rest: readonly SizePair[];
  /** Probability of drawing each size pair left to sample (kernel mass, or uniform over sizes). */
  private readonly restProbability: readonly number[];
  private pairsDrawn = 0;

  private constructor(m: number, private readonly random: Random, budget: number, private readonly sizeSampling: SizeSampling) {
    if (m < 2) throw new RangeError(`Kernel SHAP needs at least 2 features, got ${m}`);
    this.features = m;
    const pairs: SizePair[] = [];
    for (let s = 1; s <= Math.floor(m / 2); s++) {
      const sizes = s === m - s ? [s] : [s, m - s];
      pairs.push({
        sizes,
        mass: sizes.reduce((a, size) => a + (m - 1) / (size * (m - size)), 0),
        count: sizes.reduce((a, size) => a + binomial(m, size), 0),
      });
    }
    // Enumerate a size pair only when kernel sampling would give it at least as many draws as it
    // has coalitions (the shap library's rule); otherwise the sizes left to sample would rest on
    // too few calls. Everything is enumerated when 2^M − 2 fits the budget.
    const everything = m < 31 && 2 ** m - 2 <= budget;
    let remaining = budget;
    let massLeft = pairs.reduce((a, p) => a + p.mass, 0);
    let next = 0;
    while (next < pairs.length) {
      const pair = pairs[next]!;
      const fits = everything || (remaining * pair.mass) / massLeft >= pair.count - 1e-8;
      if (!fits) break;
      for (const size of pair.sizes) {
        const w = shapleyKernelWeight(m, size);
        for (const mask of subsetsOfSize(m, size)) this.add(mask, w);
      }
      remaining -= pair.count;
      massLeft -= pair.mass;
      next += 1;
    }
    this.enumeratedCount = this.masks.length;
    this.exact = next === pairs.length;
    this.rest = pairs.slice(next);
    // Kernel: sizes in proportion to their kernel mass. Uniform: every size equally likely, the
    // leverage scores of the Shapley regression (Musco & Witter 2024); importance weights correct it.
    const raw = this.rest.map((p) => (this.sizeSampling === 'kernel' ? p.mass : p.sizes.length));
    const total = raw.reduce((a, b) => a + b, 0);
    this.restProbability = raw.map((r) => r / total);
  }

  /** Enumerate the sizes `budget` calls justify; sample nothing yet (see `sampleMore`). */
  static enumerate(m: number, budget: number, random: Random, sizeSampling: SizeSampling = DEFAULT_SIZE_SAMPLING): KernelShapDesign {
    return new KernelShapDesign(m, random, budget, sizeSampling);
  }

  /** Enumerate the sizes the budget justifies, then sample the rest of it. */
  static plan(m: number, budget: number, random: Random, sizeSampling: SizeSampling = DEFAULT_SIZE_SAMPLING): KernelShapDesign {
    const design = new KernelShapDesign(m, random, budget, sizeSampling);
    design.sampleMore(budget - design.masks.length);
    return design;
  }

  private add(mask: Uint8Array, weight: number): void {
    this.seen.set(keyOf(mask), this.masks.length);
    this.masks.push(mask);
    this.enumerated.push(weight);
  }

  get sampledCount(): number {
    return this.masks.length - this.enumeratedCount;
  }

  /** Whether more coalitions can still be drawn. */
  get canSample(): boolean {
    return !this.exact && this.rest.length > 0;
  }

  /**
   * Draw complement pairs until `count` new coalitions were added (or the draws keep repeating).
   * Returns the index of the first new mask; new masks are `masks.slice(start)`.
   */
  sampleMore(count: number): number {
    const start = this.masks.length;
    if (!this.canSample) return start;
    let added = 0;
    let attempts = 0;
    const maxAttempts = 100 * count + 1000;
    while (added + 2 <= count && attempts < maxAttempts) {
      attempts += 1;
      const proposal = this.draw();
      added += this.admit(proposal.mask, proposal.importance, this.nextUnit());
    }
    return start;
  }

  /**
   * Draw `count` pairs from the sampling law without admitting any: a guide weighs them, then
   * `sampleSystematic` admits some. The random stream moves as `sampleMore`'s draws move it.
   */
  propose(count: number): Proposal[] {
    return this.canSample ? Array.from({ length: count }, () => this.draw()) : [];
  }

  /**
   * Admit some of `proposals`, proposal i with probability `inclusion[i]` (in (0, 1]; they sum to
   * the number of pairs wanted), chosen by systematic sampling: exactly that many pairs, each with
   * its stated probability. A chosen pair enters at its plain importance: its weight as one draw
   * of a mixture of laws is the caller's to settle (`reweigh`, guided-sampling.ts). Every proposal,
   * chosen or not, is `share` of a sampling unit, so that a round counts as many units as the
   * pairs it chooses. Returns, per chosen proposal, its index and the index of its pick (`picks`).
   */
  sampleSystematic(proposals: readonly Proposal[], inclusion: ArrayLike<number>, share: number): { proposal: number; pick: number }[] {
    const chosen: { proposal: number; pick: number }[] = [];
    let reached = this.random();
    let cumulative = 0;
    proposals.forEach(({ mask, importance }, i) => {
      const probability = inclusion[i]!;
      if (!(probability > 0 && probability <= 1)) throw new RangeError(`inclusion probability ${probability} is not in (0, 1]`);
      const group = this.nextUnit(share);
      cumulative += probability;
      // Chosen when the running sum passes the next point u, u + 1, u + 2, …
      if (cumulative > reached) {
        reached += 1;
        this.admit(mask, importance, group);
        chosen.push({ proposal: i, pick: this.drawn.length - 1 });
      }
    });
    return chosen;
  }

  /** Every sampled pair admitted so far, in order: its drawn coalition, importance and group. */
  picks(): readonly Pick[] {
    return this.drawn;
  }

  /**
   * Set pick `index`'s weight to `factor` times its importance, on both its coalitions (in its
   * group): a pair drawn from a mixture of laws weighs its importance over the mixture's density.
   */
  reweigh(index: number, factor: number): void {
    const pick = this.drawn[index]!;
    const change = (factor - pick.factor) * pick.importance;
    for (const member of [pick.mask, pick.mask.map((v) => 1 - v)]) {
      const byGroup = this.sampled[this.seen.get(keyOf(member))! - this.enumeratedCount]!;
      byGroup.set(pick.group, byGroup.get(pick.group)! + change);
    }
    pick.factor = factor;
  }

  /** One pair from the sampling law: a size pair, then a coalition of its first size. */
  private draw(): Proposal {
    const m = this.features;
    let u = this.random();
    let p = this.rest.length - 1;
    for (let i = 0; i < this.rest.length; i++) {
      if (u < this.restProbability[i]!) {
        p = i;
        break;
      }
      u -= this.restProbability[i]!;
    }
    const pair = this.rest[p]!;
    const size = pair.sizes[0]!;
    const mask = new Uint8Array(m);
    const order = Array.from({ length: m }, (_, i) => i);
    for (let i = 0; i < size; i++) {
      // Partial Fisher–Yates: the first `size` positions of a random permutation are on.
      const j = i + Math.floor(this.random() * (m - i));
      [order[i], order[j]] = [order[j]!, order[i]!];
      mask[order[i]!] = 1;
    }
    // Importance weight of one draw of a given coalition of size s from this pair:
    // kernel(s) · C(M, s) / P(pair), halved when both members come from the one middle size.
    const importance = (shapleyKernelWeight(m, size) * binomial(m, size)) / (this.restProbability[p]! * (pair.sizes.length === 1 ? 2 : 1));
    return { mask, importance };
  }

  /** A new sampling unit (or `share` of one): its jackknife group. */
  private nextUnit(share = 1): number {
    const group = this.pairsDrawn % JACKKNIFE_GROUPS;
    this.pairsDrawn += 1;
    this.units[group] = (this.units[group] ?? 0) + share;
    return group;
  }

  /** The pair's two coalitions with their weight; returns how many of them are new. */
  private admit(mask: Uint8Array, importance: number, group: number): number {
    this.drawn.push({ mask, importance, group, factor: 1 });
    let added = 0;
    for (const member of [mask, mask.map((v) => 1 - v)]) {
      const key = keyOf(member);
      const at = this.seen.get(key);
      if (at === undefined) {
        this.seen.set(key, this.masks.length);
        this.masks.push(member);
        this.sampled.push(new Map([[group, importance]]));
        added += 1;
      } else if (at >= this.enumeratedCount) {
        // A repeat adds weight, credited to the group of the pair that drew it.
        const byGroup = this.sampled[at - this.enumeratedCount]!;
        byGroup.set(group, (byGroup.get(group) ?? 0) + importance);
      }
    }
    return added;
  }

  enumeratedWeights(): readonly number[] {
    return this.enumerated;
  }

  sampledWeights(): readonly ReadonlyMap<number, number>[] {
    return this.sampled;
  }

  unitsPerGroup(): readonly number[] {
    return Array.from({ length: this.units.length }, (_, g) => this.units[g] ?? 0);
  }
}

export interface ShapSolution {
  /** φ[output][feature]. */
  readonly values: Float64Array[];
  /**
   * Standard error of each φ: 0 where exact, NaN where unknown (too few coalitions to identify
   * every value, or to compare groups of them); NaN is written as null.
   */
  readonly standardErrors: Float64Array[];
  /** Whether the coalitions determine every value (full-rank design). */
  readonly identified: boolean;
  /**
   * The tree-adjusted solve's workings, per output: the two parts of each standard error (SE² =
   * spread² + bias², floored), the jackknife replicates' spread and the forest-alone candidate's
   * estimated misfit weighted by its share of the mix, per feature; and the candidate estimates
   * with the mix's weights on them (values = Σ_j weights[j]·candidates[j]). For the benchmark's
   * account of what each part does to the coverage and the mix to the error; nothing else reads them.
   */
  readonly errorParts?: {
    readonly spread: Float64Array[];
    readonly bias: Float64Array[];
    /** candidates[output][candidate][feature], in tree-adjusted.ts's order ([0] forest-adjusted … [4] the forest alone). */
    readonly candidates: Float64Array[][];
    /** weights[output][candidate]: ≥ 0, summing to 1. */
    readonly weights: number[][];
  };
}

/**
 * A row of the constrained regression. Its entries are −1, 0 or 1 (a player or term in the
 * coalition, minus the last player), so only the nonzero ones are kept, with their signs: about
 * half of them, so adding the row's outer product visits about a quarter of the pairs.
 */
class SparseRow {
  readonly index: Int32Array;
  readonly sign: Float64Array;
  count = 0;
  constructor(n: number) {
    this.index = new Int32Array(n);
    this.sign = new Float64Array(n);
  }

  clear(): void {
    this.count = 0;
  }

  /** The entry at `position` (each call further right than the last): −1, 0 or 1. */
  put(position: number, entry: number): void {
    if (entry === 0) return;
    this.index[this.count] = position;
    this.sign[this.count] = entry;
    this.count += 1;
  }
}

/** Normal equations of the constrained problem, accumulated over a set of rows. */
class NormalEquations {
  readonly ata: Float64Array;
  readonly atb: Float64Array[];
  constructor(readonly n: number, outputs: number) {
    this.ata = new Float64Array(n * n);
    this.atb = Array.from({ length: outputs }, () => new Float64Array(n));
  }

  /**
   * Adds weight · rowᵀrow (lower triangle) and weight · rowᵀtargets. Skipping the zero entries
   * leaves every sum as it was: adding ±0 to a sum changes nothing.
   */
  addRow(row: SparseRow, weight: number, targets: Float64Array): void {
    const { n, ata, atb } = this;
    const { index, sign, count } = row;
    for (let a = 0; a < count; a++) {
      const i = index[a]!;
      const wi = weight * sign[a]!;
      const at = i * n;
      for (let b = 0; b <= a; b++) ata[at + index[b]!] = ata[at + index[b]!]! + wi * sign[b]!;
      for (let o = 0; o < targets.length; o++) atb[o]![i] = atb[o]![i]! + wi * targets[o]!;
    }
  }

  /** this + scale · (a − b), element-wise (b optional). */
  static combine(base: NormalEquations, scale: number, a: NormalEquations, b?: NormalEquations): NormalEquations {
    const out = new NormalEquations(base.n, base.atb.length);
    for (let i = 0; i < out.ata.length; i++) out.ata[i] = base.ata[i]! + scale * (a.ata[i]! - (b ? b.ata[i]! : 0));
    out.atb.forEach((vec, o) => {
      for (let i = 0; i < vec.length; i++) vec[i] = base.atb[o]![i]! + scale * (a.atb[o]![i]! - (b ? b.atb[o]![i]! : 0));
    });
    return out;
  }

  solve(): { solutions: Float64Array[]; fullRank: boolean } {
    const { n } = this;
    const full = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j <= i; j++) {
        full[i * n + j] = this.ata[i * n + j]!;
        full[j * n + i] = this.ata[i * n + j]!;
      }
    }
    return choleskySolve(full, n, this.atb);
  }
}

/** Pivots this small against their diagonal mean a direction the rows do not determine. */
const RANK_TOLERANCE = 1e-9;

/**
 * Solve A x = b for symmetric positive (semi-)definite A by Cholesky, several right-hand sides;
 * says whether A had full rank (no pivot collapsed to the ridge).
 */
export function choleskySolve(a: Float64Array, n: number, rhs: Float64Array[]): { solutions: Float64Array[]; fullRank: boolean } {
  const l = new Float64Array(n * n);
  // A tiny ridge keeps a rank-deficient design (very few samples) solvable; far below any signal.
  let trace = 0;
  for (let i = 0; i < n; i++) trace += a[i * n + i]!;
  const ridge = (trace / Math.max(1, n)) * 1e-12;
  let fullRank = trace > 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = a[i * n + j]! + (i === j ? ridge : 0);
      for (let k = 0; k < j; k++) sum -= l[i * n + k]! * l[j * n + k]!;
      if (i === j && !(sum > RANK_TOLERANCE * (trace / Math.max(1, n)))) fullRank = false;
      l[i * n + j] = i === j ? Math.sqrt(Math.max(sum, Number.MIN_VALUE)) : sum / l[j * n + j]!;
    }
  }
  const solutions = rhs.map((b) => {
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let sum = b[i]!;
      for (let k = 0; k < i; k++) sum -= l[i * n + k]! * y[k]!;
      y[i] = sum / l[i * n + i]!;
    }
    const x = new Float64Array(n);
    for (let i = n - 1; i >= 0; i--) {
      let sum = y[i]!;
      for (let k = i + 1; k < n; k++) sum -= l[k * n + i]! * x[k]!;
      x[i] = sum / l[i * n + i]!;
    }
    return x;
  });
  return { solutions, fullRank };
}

/**
 * An odd interaction term: a set of an odd number (≥ 3) of players. The regression may include such
 * terms beside the M players: term T contributes γ_T · h_T(S), where h_T(S) = 1 when an odd number of
 * T's players are in S (0 when none are; 1 when all are), and its Shapley value is γ_T / |T| to each
 * player of T. Only odd terms matter for Shapley values (an even part of the game has none), and a
 * term that fits the game's interactions takes them out of the residual the sampling must average.
 */
export type OddTerm = readonly number[];

/**
 * γ (p − 1 free coefficients: players 0 … M − 2, then the extra terms) → φ, with the last player's
 * coefficient fixed by efficiency (Σ γ = f(all) − f(none)) and each term shared among its players.
 */
function shapleyOf(beta: Float64Array, delta: number, m: number, terms: readonly OddTerm[]): Float64Array {
  const phi = new Float64Array(m);
  let sum = 0;
  for (let i = 0; i < beta.length; i++) sum += beta[i]!;
  for (let i = 0; i < m - 1; i++) phi[i] = beta[i]!;
  phi[m - 1] = delta - sum;
  terms.forEach((term, k) => {
    const share = beta[m - 1 + k]! / term.length;
    for (const j of term) phi[j] = phi[j]! + share;
  });
  return phi;
}

/**
 * The weighted least-squares problem of Kernel SHAP (efficiency constraint built in) in normal
 * equations: the enumerated rows, all sampled rows with their summed weights, and each part's
 * sampled weights (`partOf` maps a sampling group to its part, for a jackknife), in one pass.
 */
function normalEquationsOf(design: CoalitionDesign, values: readonly Float64Array[], full: Float64Array, empty: Float64Array, terms: readonly OddTerm[], partOf?: (group: number) => number | undefined, parts = 0) {
  const m = design.features;
  const n = m - 1 + terms.length;
  const outputs = full.length;
  const delta = Float64Array.from(full, (f, o) => f - empty[o]!);
  const row = new SparseRow(n);
  const targets = new Float64Array(outputs);
  const prepare = (c: number): void => {
    const mask = design.masks[c]!;
    const last = mask[m - 1]!;
    row.clear();
    for (let i = 0; i < m - 1; i++) row.put(i, mask[i]! - last);
    terms.forEach((term, k) => {
      let parity = 0;
      for (const j of term) parity ^= mask[j]!;
      row.put(m - 1 + k, parity - last);
    });
    const v = values[c]!;
    for (let o = 0; o < outputs; o++) targets[o] = v[o]! - empty[o]! - last * delta[o]!;
  };
  const enumerated = new NormalEquations(n, outputs);
  const enumWeights = design.enumeratedWeights();
  for (let c = 0; c < design.enumeratedCount; c++) {
    prepare(c);
    enumerated.addRow(row, enumWeights[c]!, targets);
  }
  // Sampled rows with their summed importance weights; totals and per-part sums for a jackknife.
  const weights = design.sampledWeights();
  const units = design.unitsPerGroup();
  const totalUnits = units.reduce((a, b) => a + b, 0);
  const sampled = new NormalEquations(n, outputs);
  const byPart = Array.from({ length: parts }, () => new NormalEquations(n, outputs));
  const unitsByPart = new Array<number>(parts).fill(0);
  units.forEach((u, g) => {
    const part = partOf?.(g);
    if (part !== undefined) unitsByPart[part] = unitsByPart[part]! + u;
  });
  const partWeight = new Float64Array(parts);
  for (let i = 0; i < weights.length; i++) {
    prepare(design.enumeratedCount + i);
    let sum = 0;
    partWeight.fill(0);
    for (const [g, w] of weights[i]!) {
      const part = partOf?.(g);
      if (part !== undefined) partWeight[part] = partWeight[part]! + w;
      sum += w;
    }
    partWeight.forEach((w, part) => w !== 0 && byPart[part]!.addRow(row, w, targets));
    sampled.addRow(row, sum, targets);
  }
  /** Solved without the sampled rows of one part (undefined: with every row); γ → φ per output. */
  const solveWithout = (part?: number): { values: Float64Array[]; fullRank: boolean } => {
    const kept = totalUnits - (part === undefined ? 0 : unitsByPart[part]!);
    const eqs = NormalEquations.combine(enumerated, kept > 0 ? 1 / kept : 0, sampled, part === undefined ? undefined : byPart[part]);
    const solved = eqs.solve();
    return { values: solved.solutions.map((beta, o) => shapleyOf(beta, delta[o]!, m, terms)), fullRank: solved.fullRank };
  };
  return { solveWithout, units, totalUnits };
}

/**
 * Weighted least squares with the efficiency constraint, for several outputs at once.
 * `values[c][o]`: output o of the model on coalition c (same order as design.masks).
 * With `terms`, the regression also fits those odd interactions (regression-adjusted Kernel SHAP:
 * the Shapley values of the fitted game, see `OddTerm`); without, it is Kernel SHAP. `withErrors`
 * false skips the jackknife (standard errors then NaN) for callers that need values only.
 */
export function solveKernelShap(design: CoalitionDesign, values: readonly Float64Array[], full: Float64Array, empty: Float64Array, terms: readonly OddTerm[] = [], withErrors = true): ShapSolution {
  const groupCount = design.unitsPerGroup().length;
  const { solveWithout, units, totalUnits } = normalEquationsOf(design, values, full, empty, terms, withErrors ? (g) => g : undefined, withErrors ? groupCount : 0);
  const solved = solveWithout();
  const values_ = solved.values;
  const standardErrors = values_.map(() => new Float64Array(design.features));
  // With sampled rows the jackknife needs at least two groups that hold some, and a design that
  // determines every value; otherwise the uncertainty is unknown, never 0.
  const groupsWithSamples = units.filter((u) => u > 0).length;
  if (!solved.fullRank || (totalUnits > 0 && groupsWithSamples < 2)) {
    for (const se of standardErrors) se.fill(Number.NaN);
    return { values: values_, standardErrors, identified: solved.fullRank };
  }
  if (!withErrors) {
    // Values only (a caller that estimates its own errors): unknown here, never 0.
    for (const se of standardErrors) se.fill(Number.NaN);
  } else if (groupCount >= 2) {
    const estimates = units.map((_, g) => solveWithout(g).values);
    for (let o = 0; o < values_.length; o++) standardErrors[o]!.set(jackknifeSpread(estimates.map((e) => e[o]!)).standardErrors);
  }
  return { values: values_, standardErrors, identified: solved.fullRank };
}

/**
 * Kernel SHAP's values (with `terms`) on every coalition and without the sampled rows of each
 * fold of sampling groups, from one pass over the rows: a delete-a-fold jackknife's replicates of
 * a fit whose game does not change between replicates (only its weights do).
 */
export function solveKernelShapByFold(design: CoalitionDesign, values: readonly Float64Array[], full: Float64Array, empty: Float64Array, terms: readonly OddTerm[], foldOf: (group: number) => number | undefined, folds: number): { values: Float64Array[]; replicates: Float64Array[][] } {
  const { solveWithout } = normalEquationsOf(design, values, full, empty, terms, foldOf, folds);
  return { values: solveWithout().values, replicates: Array.from({ length: folds }, (_, k) => solveWithout(k).values) };
}

/**
 * Delete-a-group jackknife over G replicates of an estimate: per player, the replicates' mean and
 * the standard error √((G − 1)/G · Σ (replicate − mean)²).
 */
export function jackknifeSpread(replicates: readonly Float64Array[]): { mean: Float64Array; standardErrors: Float64Array } {
  const count = replicates.length;
  const m = replicates[0]!.length;
  const mean = new Float64Array(m);
  const standardErrors = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    let sum = 0;
    for (const r of replicates) sum += r[i]!;
    mean[i] = sum / count;
    let ss = 0;
    for (const r of replicates) ss += (r[i]! - mean[i]!) ** 2;
    standardErrors[i] = Math.sqrt(((count - 1) / count) * ss);
  }
  return { mean, standardErrors };
}
