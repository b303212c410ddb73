/**
 * Tree-adjusted Kernel SHAP: regression-adjusted Monte Carlo (Witter, Liu & Musco, NeurIPS 2025)
 * with our own coalition design as the Monte Carlo part. The same evaluated coalitions give five
 * estimates per output, each holding efficiency exactly and all but the last unbiased in the limit:
 *
 * 1. forest-adjusted: a random forest f fit to every coalition has exact, free Shapley values
 *    (regression-tree.ts); Kernel SHAP of the residual v − f adds what it misses, φ(v) = φ(f) + φ(v − f).
 *    Each coalition's residual is taken against the trees whose bootstrap left it out (out of bag),
 *    so the correction is not shrunk by the forest's fit to its own samples (cross-fitting, as in
 *    double machine learning, at no extra fit). On image games a forest takes out most of the
 *    residual (saturated classifiers);
 * 2. plain Kernel SHAP;
 * 3. Kernel SHAP with odd triples of the leading segments (smooth interactions);
 * 4. Kernel SHAP with odd terms screened from a tree's Walsh–Fourier spectrum (OddSHAP's idea,
 *    Fumagalli et al. 2026: a detector's face is a few segments acting jointly);
 * 5. the forest's Shapley values alone, without the residual correction. Not unbiased (the forest's
 *    misfit stays), but at a few coalitions per player Kernel SHAP of the residual is mostly noise
 *    (at 64 calls and 15 segments it doubles the error); where the correction pays, its lower
 *    variance wins the mix.
 *
 * A delete-a-fold jackknife refits all five without each tenth of the samples; the answer is the
 * mix (weights ≥ 0, sum 1) of least jackknife variance, with the Fourier terms held as the answer
 * holds them, and its standard errors come from replicates that also screen those terms again
 * (the fits whose game is the same in every replicate take one pass over the rows for all of
 * them, `solveKernelShapByFold`). So a game a forest fits gets the forest, a sparse one the
 * Fourier terms, and a nearly additive one falls back toward Kernel SHAP instead of losing to it.
 *
 * Kept from Kernel SHAP: the same solve on any design with unbiased weights (one set of calls for
 * every output), efficiency held exactly, an exact answer when every coalition was evaluated,
 * determinism per seed. The job samples its coalitions guided by forests (guided-sampling.ts);
 * this solve takes them as they come.
 */
import { binomial, type CoalitionDesign, jackknifeSpread, type OddTerm, type ShapSolution, solveKernelShap, solveKernelShapByFold } from './kernel-shap.js';
import { seededRandom } from './random.js';
import { coalitionRows, fitBaggedForest, fitTree, forestShapley, largestFourierTerms, outOfBagPredictions, predictForest } from './regression-tree.js';

export type Estimator = 'kernel' | 'tree-adjusted';

export interface SolveOptions {
  readonly estimator: Estimator;
  /** Seeds the forests (with the output's index), so a run repeats exactly. */
  readonly seed?: number;
  /**
   * Outputs that get a forest (default: all). The others keep plain Kernel SHAP: a 1,000-class
   * model's every label would cost a thousand forests, and the report shows the top few.
   */
  readonly adjusted?: readonly number[];
  /**
   * Whether the job samples the coalitions guided by the forests (image-shap.ts; default true).
   * The solve itself takes any design as it comes.
   */
  readonly guided?: boolean;
}

export const KERNEL_SOLVE: SolveOptions = { estimator: 'kernel' };

/** Outputs the job adjusts per image: a classifier's top labels (each costs a forest and its jackknife). */
export const ADJUSTED_OUTPUTS = 3;

/** How many of `explained` outputs, ranked by importance, a tree-adjusted solve fits a surrogate for. */
export function adjustedOutputCount(explained: number): number {
  return Math.min(explained, ADJUSTED_OUTPUTS);
}

/** Trees per forest: 30, 50 and 100 gave the same error on the benchmark games (within 10 %); each tree costs. */
export const SURROGATE_TREES = 30;

/**
 * Below this many coalitions per player Kernel SHAP alone answers: the residual regression needs
 * room beyond its M unknowns. From 2 per player up the forest already helps (at 64 calls and 15
 * segments it halves to quarters Kernel SHAP's error, BENCHMARKS.md).
 */
export const MIN_CALLS_PER_PLAYER = 2;

/**
 * Standard errors never claim more than the linear solves carry: relative to Σ|φ|, rounding in
 * the Cholesky solves reaches about 1e-12, and an estimate exact to that (a detector game the
 * forest fits completely) would otherwise report errors of 1e-15 that its rounding exceeds.
 */
export const SOLVE_PRECISION = 1e-9;

/** The smallest uncertainty the solves can claim for values `phi`: SOLVE_PRECISION · Σ|φ|. */
export function precisionFloor(phi: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < phi.length; i++) sum += Math.abs(phi[i]!);
  return SOLVE_PRECISION * sum;
}

/**
 * About how many seconds of one core the tree-adjusted estimate of `outputs` adjusted outputs
 * takes (its guided sampling and its solve), for the config's up-front bound. Per output its work
 * is the forests (30 trees, fit 11 times, each about n·M·log₂ n, n the calls) and the regressions with odd terms (rows of M plus K terms,
 * K = the Fourier terms the calls allow, at most `MAX_ODD_TERMS`: about n·(M + K)² for the normal
 * equations and n·(M + K) for the rows themselves; the Fourier screening's trees and spectra are
 * a few per cent beside them). The guided sampling before the solve (guided-sampling.ts: a forest
 * per output in each of its 3 rounds, fit to part of the calls, and the spread of its trees on the
 * proposals) adds a quarter of the forests' term, unless `guided` is false
 * (`clarify_images.guided_sampling`). The forests' and the rows' coefficients were fit on
 * 2026-12-01 to 17 timings of one image's guided sampling and solve (3 outputs of a game whose
 * answers never saturate, so that every tree grows fully: the costliest case; bench/solve-cost.ts)
 * at M = 15–200 and 256–20,000 calls, on an idle 2-core machine: from 2,048 calls up each took
 * 0.93–1.13× the estimate (the most at 20,000 calls over 16 segments, where the guided sampling
 * took 14 % of it). Below that a fixed cost the terms leave out (about 1 s per image)
 * dominates: 1.6× the estimate at 1,024 calls, 7× at 256, seconds either way, far below the bound.
 * The normal equations' coefficient is kept from the earlier fit to 23 timings at M = 16–1,000
 * and up to 60,000 calls, the only budgets where that term leads. On other days the benchmark's
 * machine ran the same solves up to 1.5× slower, so a slow or busy core may take that much more
 * (BENCHMARKS.md compares the estimate with the measured cost in each run).
 */
export function treeAdjustedSeconds(calls: number, segments: number, outputs: number, guided = true): number {
  if (!forestsAnswer(calls, segments)) return 0;
  const fourierTerms = Math.min(MAX_ODD_TERMS, Math.max(0, Math.ceil(calls / CALLS_PER_FOURIER_TERM) - segments));
  const columns = segments + fourierTerms;
  const forests = 1.22e-6 * calls * segments * Math.log2(calls);
  const regressions = 1.81e-9 * calls * columns ** 2 + 4.84e-6 * calls * columns;
  const guide = guided ? 0.25 * forests : 0;
  return outputs * (forests + regressions + guide);
}

/**
 * Whether a budget of `calls` over `segments` gets the forests: at least 2 calls per segment, and
 * not every coalition (then Kernel SHAP alone is exact).
 */
export function forestsAnswer(calls: number, segments: number): boolean {
  return calls >= MIN_CALLS_PER_PLAYER * segments && !(segments < 31 && calls >= 2 ** segments - 2);
}

/** Every coalition was evaluated: Kernel SHAP alone is already exact. */
function isComplete(design: CoalitionDesign): boolean {
  return design.features < 31 && design.enumeratedCount === design.masks.length && design.masks.length === 2 ** design.features - 2;
}

export function solveShapley(design: CoalitionDesign, values: readonly Float64Array[], full: Float64Array, empty: Float64Array, options: SolveOptions = KERNEL_SOLVE): ShapSolution {
  const adjusted = options.adjusted ?? Array.from(full, (_, o) => o);
  if (options.estimator === 'kernel' || isComplete(design) || adjusted.length === 0 || design.masks.length < MIN_CALLS_PER_PLAYER * design.features) {
    return solveKernelShap(design, values, full, empty);
  }
  return solveTreeAdjusted(design, values, full, empty, options.seed ?? 0, adjusted);
}

/**
 * The candidate estimates, each per output, all from the same coalitions and all holding
 * efficiency: [0] forest-adjusted, [1] Kernel SHAP, then Kernel SHAP with odd interaction terms:
 * [2] triples of the leading players (smooth interactions a forest fits poorly), [3] terms
 * screened from a tree's Fourier spectrum (a few segments acting jointly); [4] the forest alone.
 * [0]–[3] are unbiased in the limit; [4] keeps the forest's misfit and is there for small budgets.
 */
interface Candidates {
  readonly estimates: Float64Array[][];
  /** The Fourier terms [3] uses, per output (screened from these coalitions). */
  readonly screened: OddTerm[][];
  readonly identified: boolean;
}

/** Values on every coalition and per jackknife replicate ([fold][output]). */
interface ByFold {
  readonly values: Float64Array[];
  readonly replicates: Float64Array[][];
}

/** Odd triples among the leading players (by |φ|), as many as the coalitions can carry. */
export function leadingTriples(phi: Float64Array, pairs: number): OddTerm[] {
  const most = Math.min(MAX_ODD_TERMS, Math.floor(pairs / TERMS_PER_PAIR));
  const order = Array.from(phi.keys()).sort((a, b) => Math.abs(phi[b]!) - Math.abs(phi[a]!) || a - b);
  let k = 3;
  while (k < order.length && binomial(k + 1, 3) <= most) k += 1;
  if (binomial(k, 3) > most) return [];
  const top = order.slice(0, k).sort((a, b) => a - b);
  const terms: OddTerm[] = [];
  for (let a = 0; a < k; a++) for (let b = a + 1; b < k; b++) for (let c = b + 1; c < k; c++) terms.push([top[a]!, top[b]!, top[c]!]);
  return terms;
}

/**
 * Odd terms in one regression, at most, however large the budget: each term is a column of normal
 * equations kept once per jackknife fold (memory grows as its square, the solve as its cube), so
 * 20,000 calls would otherwise bring 2,000 Fourier terms and about 400 MB per output. The
 * benchmark's budgets (up to 2,048 calls) stay below it: at most 191 Fourier terms and 84 triples.
 */
export const MAX_ODD_TERMS = 256;

/** Coalitions (complement pairs) per fitted interaction term: fewer would fit noise. */
const TERMS_PER_PAIR = 8;

/** Calls per Fourier term kept from the screening tree (OddSHAP's η). */
const CALLS_PER_FOURIER_TERM = 10;
const SCREENING_DEPTH = 10;

/**
 * Odd terms of order ≥ 3 with the largest coefficients in the Walsh–Fourier spectrum of one
 * depth-limited tree fit to the coalitions (OddSHAP's screening, Fumagalli et al. 2026): where a
 * game hinges on a few segments jointly (a detector's face), these terms fit it almost exactly.
 */
export function screenedOddTerms(design: CoalitionDesign, targets: Float64Array, rows: Uint8Array, seed: number): OddTerm[] {
  const m = design.features;
  const most = Math.min(MAX_ODD_TERMS, Math.ceil((design.masks.length + 2) / CALLS_PER_FOURIER_TERM) - m);
  if (most <= 0) return [];
  const tree = fitTree({ players: m, rows, targets }, new Float64Array(targets.length).fill(1), seededRandom(seed), { maxDepth: SCREENING_DEPTH });
  return largestFourierTerms(tree, (order) => order >= 3 && order % 2 === 1, most).map((t) => t.players);
}

/**
 * Candidates [0], [3] and [4] are fit here, from these coalitions; [1] and [2] (`fixed`: Kernel
 * SHAP alone and with the triples) are the caller's, as their game does not change between
 * jackknife replicates. The Fourier terms are screened here, so that a replicate screens again
 * and their selection's own noise can reach the standard errors.
 */
function candidateEstimates(design: CoalitionDesign, values: readonly Float64Array[], full: Float64Array, empty: Float64Array, seed: number, adjusted: ReadonlySet<number>, fixed: { kernel: Float64Array[]; triples: Float64Array[] }): Candidates {
  const m = design.features;
  const outputs = full.length;
  const masks = [...design.masks, new Uint8Array(m), new Uint8Array(m).fill(1)];
  const rows = coalitionRows(masks, m);
  const screened = Array.from(full, (_, o) =>
    adjusted.has(o) ? screenedOddTerms(design, Float64Array.from(values, (v) => v[o]!), rows.subarray(0, design.masks.length * m), seed * 1013 + o) : [],
  );
  // Residuals of the adjusted outputs only: an output without a surrogate (f = 0) would regress
  // the game itself, which is Kernel SHAP's answer already in `fixed.kernel`, and with a
  // thousand-label model that repeat cost a copy of every answer and a regression per label in
  // each of the 11 fits. Each output's regression is its own, so the adjusted ones are unchanged.
  const order = [...adjusted].filter((o) => o < outputs).sort((a, b) => a - b);
  const residuals = design.masks.map(() => new Float64Array(order.length));
  const residualFull = new Float64Array(order.length);
  const residualEmpty = new Float64Array(order.length);
  const surrogateValues: Float64Array[] = [];
  order.forEach((o, k) => {
    const targets = Float64Array.from(masks, (_, r) => (r < design.masks.length ? values[r]![o]! : r === design.masks.length ? empty[o]! : full[o]!));
    const forest = fitBaggedForest({ players: m, rows, targets }, seededRandom(seed * 1009 + o), SURROGATE_TREES);
    surrogateValues.push(forestShapley(forest.trees, m));
    // Residuals against the trees that did not see each coalition: against the whole forest they
    // are shrunk by its fit to that very coalition, and the correction with them, leaning the
    // estimate toward the forest alike in every jackknife replicate (region-photo-50, 1,024
    // calls: the spread covered 83 % and the error was 0.019, against 97 % and 0.013 out of bag).
    const outOfBag = outOfBagPredictions(forest, rows, m, design.masks.length);
    design.masks.forEach((_, c) => (residuals[c]![k] = values[c]![o]! - outOfBag[c]!));
    // The whole forest at N and ∅: its Shapley values sum to f(N) − f(∅), so efficiency holds.
    // Two masks only, so the trees are walked as they are (outOfBagPredictions flattens them).
    residualFull[k] = full[o]! - predictForest(forest.trees, masks.at(-1)!);
    residualEmpty[k] = empty[o]! - predictForest(forest.trees, masks.at(-2)!);
  });
  // Values only: the jackknife over these candidates is the caller's.
  const correction = solveKernelShap(design, residuals, residualFull, residualEmpty, [], false);
  const place = new Map(order.map((o, k) => [o, k]));
  const { kernel } = fixed;
  const withScreened = kernel.map((phi, o) =>
    screened[o]!.length === 0 ? phi : solveKernelShap(design, values.map((v) => v.subarray(o, o + 1)), full.subarray(o, o + 1), empty.subarray(o, o + 1), screened[o], false).values[0]!,
  );
  /** Candidate `adjustedValue` for an adjusted output, Kernel SHAP's values for any other. */
  const perOutput = (adjustedValue: (k: number) => Float64Array): Float64Array[] =>
    kernel.map((phi, o) => {
      const k = place.get(o);
      return k === undefined ? phi : adjustedValue(k);
    });
  const estimates = [
    perOutput((k) => correction.values[k]!.map((v, i) => v + surrogateValues[k]![i]!)),
    kernel,
    fixed.triples,
    withScreened,
    // The forest's total f(N) − f(∅) can miss v(N) − v(∅): the gap is split evenly, as Kernel
    // SHAP of a residual that is 0 on every sampled coalition would split it.
    perOutput((k) => surrogateValues[k]!.map((v) => v + (residualFull[k]! - residualEmpty[k]!) / m)),
  ];
  return { estimates, screened, identified: correction.identified };
}

/**
 * Kernel SHAP with each output's own odd terms (none: `kernel`'s values), on every coalition and
 * per replicate, one pass over the rows per output.
 */
function withTermsByFold(design: CoalitionDesign, values: readonly Float64Array[], full: Float64Array, empty: Float64Array, terms: readonly (readonly OddTerm[])[], kernel: ByFold, foldOf: (group: number) => number | undefined, folds: number): ByFold {
  const perOutput = terms.map((own, o) =>
    own.length === 0 ? undefined : solveKernelShapByFold(design, values.map((v) => v.subarray(o, o + 1)), full.subarray(o, o + 1), empty.subarray(o, o + 1), own, foldOf, folds),
  );
  return {
    values: kernel.values.map((phi, o) => perOutput[o]?.values[0] ?? phi),
    replicates: kernel.replicates.map((replicate, k) => replicate.map((phi, o) => perOutput[o]?.replicates[k]![0] ?? phi)),
  };
}

/** Jackknife replicates for the adjusted estimate: each leaves out one in this many of the sampling groups. */
export const SURROGATE_JACKKNIFE_FOLDS = 10;

/**
 * The design without the sampled rows of some jackknife groups (enumerated rows stay: they carry no
 * sampling noise). Rows drawn only in the dropped groups disappear; `keep` maps new rows to old.
 */
export function withoutGroups(design: CoalitionDesign, dropped: (group: number) => boolean): { design: CoalitionDesign; keep: number[] } {
  const keep: number[] = [];
  const sampled: Map<number, number>[] = [];
  for (let c = 0; c < design.enumeratedCount; c++) keep.push(c);
  design.sampledWeights().forEach((byGroup, i) => {
    const kept = new Map([...byGroup].filter(([g]) => !dropped(g)));
    if (kept.size === 0) return;
    keep.push(design.enumeratedCount + i);
    sampled.push(kept);
  });
  const units = design.unitsPerGroup().map((u, g) => (dropped(g) ? 0 : u));
  const enumerated = design.enumeratedWeights();
  return {
    keep,
    design: {
      features: design.features,
      masks: keep.map((c) => design.masks[c]!),
      enumeratedCount: design.enumeratedCount,
      enumeratedWeights: () => enumerated,
      sampledWeights: () => sampled,
      unitsPerGroup: () => units,
    },
  };
}

/**
 * The estimate and its standard errors, from a delete-a-fold jackknife that refits the forests in
 * every replicate: the surrogate is fit to the same samples it corrects, so its own sampling noise
 * must be in the error bars (holding it fixed gave 56 % coverage instead of 95 %).
 *
 * The same replicates weigh the five candidates (see `Candidates`), with the Fourier terms fixed
 * at the answer's. All aim at the same values and all hold efficiency, so per output the answer
 * is their mix with the weights (≥ 0, summing to 1) of least jackknife variance: on a game a
 * forest fits (saturated classifiers) the forest weighs most; on a sparse one (a detector's face)
 * the Fourier terms; on a nearly additive one, where a forest only adds noise, plain Kernel SHAP;
 * at a few coalitions per player, the forest alone. A candidate whose distance from Kernel SHAP
 * its spread cannot explain is left out (`seemUnbiased`): variance alone cannot see a bias. The
 * replicates cannot see the misfit the forest alone keeps in all of them, so its share of the mix
 * is charged with it; on detector-sofa at 64–256 calls and region-blocks at small budgets (where
 * 20 folds did no better) the error bars still undercover (BENCHMARKS.md lists the cells).
 */
export function solveTreeAdjusted(design: CoalitionDesign, values: readonly Float64Array[], full: Float64Array, empty: Float64Array, seed: number, outputs: readonly number[] = Array.from(full, (_, o) => o)): ShapSolution {
  const adjusted = new Set(outputs);
  const m = design.features;
  // Folds deal out the groups that hold samples, so each replicate drops about 1/folds of them.
  const units = design.unitsPerGroup();
  const folds = Math.min(SURROGATE_JACKKNIFE_FOLDS, units.filter((u) => u > 0).length);
  const groupFold = new Map<number, number>();
  if (folds >= 2) units.forEach((u, g) => u > 0 && groupFold.set(g, groupFold.size % folds));
  const foldOf = (group: number): number | undefined => groupFold.get(group);
  const replicateCount = folds >= 2 ? folds : 0;
  // Fits whose game is the same in every replicate (Kernel SHAP, with the triples, with the
  // Fourier terms held fixed) solve all replicates in one pass over the rows.
  const kernel = solveKernelShapByFold(design, values, full, empty, [], foldOf, replicateCount);
  const triples = kernel.values.map((phi, o) => (adjusted.has(o) ? leadingTriples(phi, design.masks.length / 2) : []));
  const withTriples = withTermsByFold(design, values, full, empty, triples, kernel, foldOf, replicateCount);
  const estimate = candidateEstimates(design, values, full, empty, seed, adjusted, { kernel: kernel.values, triples: withTriples.values });
  if (replicateCount === 0 || !estimate.identified) {
    const standardErrors = kernel.values.map(() => new Float64Array(m).fill(Number.NaN));
    return { values: estimate.estimates[0]!, standardErrors, identified: estimate.identified };
  }
  const withScreened = withTermsByFold(design, values, full, empty, estimate.screened, kernel, foldOf, replicateCount);
  const replicates = Array.from({ length: folds }, (_, k) => {
    const part = withoutGroups(design, (g) => groupFold.get(g) === k);
    const fit = candidateEstimates(part.design, part.keep.map((c) => values[c]!), full, empty, seed, adjusted, { kernel: kernel.replicates[k]!, triples: withTriples.replicates[k]! });
    // The same replicate with the Fourier terms held at those screened on every sample.
    return { estimates: fit.estimates, withFixedTerms: fit.estimates.map((candidate, j) => (j === 3 ? withScreened.replicates[k]! : candidate)) };
  });
  const mixed = kernel.values.map((_, o) => {
    const onAll = estimate.estimates.map((c) => c[o]!);
    const withFixedTerms = estimate.estimates.map((_, j) => replicates.map((r) => r.withFixedTerms[j]![o]!));
    // A candidate further from Kernel SHAP than their joint spread explains is biased (Fourier
    // terms that miss part of the game), and its small spread must not win it the mix.
    // An output without a surrogate keeps Kernel SHAP alone, so it needs no test.
    const unbiased = adjusted.has(o) ? seemUnbiased(onAll, withFixedTerms) : undefined;
    // Per output: candidate j's replicates, mixed with the weights of least jackknife variance.
    const leastVariance = (byCandidate: readonly (readonly Float64Array[])[]): number[] =>
      unbiased ? mixingWeights(byCandidate, unbiased) : byCandidate.map((_, j) => (j === KERNEL_CANDIDATE ? 1 : 0));
    const mix = (candidates: readonly Float64Array[], w: readonly number[]): Float64Array => {
      const out = new Float64Array(m);
      candidates.forEach((phi, j) => {
        for (let i = 0; i < m; i++) out[i] = out[i]! + w[j]! * phi[i]!;
      });
      return out;
    };
    // The estimate's weights compare the candidates as it has them, the Fourier terms chosen once
    // on every sample: replicates that screen again charge [3] with a choice the estimate does not
    // make, and the mix leant away from the better candidate (detector-sofa, 1,024 calls: 6.8e-6
    // against 3.7e-6; detector-astronaut, 256: 5.9e-6 against 2.5e-6).
    const weights = leastVariance(withFixedTerms);
    const point = mix(onAll, weights);
    // The error bars are those of the mix that the re-screening replicates choose, so the noise of
    // the terms' choice is in them (held fixed, the detector games' coverage fell to 76 %). Each
    // replicate is mixed with the weights the other replicates choose: weights picked on a replicate
    // itself would hide their own choice's noise (detector-sofa, 256 calls: 82 → 85 %). The
    // re-screening replicates of `point`'s own mix spread wider still: 98.8 % coverage on the
    // joint-segment test game, 100 % on expression-astronaut, against 97.9 % and 97–100 % this way.
    const byCandidate = estimate.estimates.map((_, j) => replicates.map((r) => r.estimates[j]![o]!));
    const reps = replicates.map((r, k) =>
      mix(
        r.estimates.map((c) => c[o]!),
        leastVariance(byCandidate.map((byReplicate) => byReplicate.filter((_, q) => q !== k))),
      ),
    );
    const spread = jackknifeSpread(reps);
    // The forest alone keeps the forest's misfit, alike in every replicate, so their spread misses
    // it: its share of the mix is charged with its own estimated bias, [4] − [0] (the out-of-bag
    // correction that [0] adds to it), in quadrature. That difference carries [0]'s noise too, and
    // taking out the part its noise explains (pooled over players) left region-photo-50 at 72–86 %
    // at 128–512 calls, against 94–97 % charged in full. The jackknife's bias estimate that stood
    // here before was mostly noise: it widened the classifier games' bars to 96–100 % (BENCHMARKS.md
    // measures the spread alone too).
    const floor = precisionFloor(point);
    const bias = onAll[FOREST_ALONE]!.map((v, i) => weights[FOREST_ALONE]! * (v - onAll[FOREST_ADJUSTED]![i]!));
    const standardErrors = spread.standardErrors.map((se, i) => Math.max(floor, Math.sqrt(se ** 2 + bias[i]! ** 2)));
    return { values: point, standardErrors, spread: spread.standardErrors, bias, candidates: onAll, weights };
  });
  return {
    values: mixed.map((x) => x.values),
    standardErrors: mixed.map((x) => x.standardErrors),
    identified: estimate.identified,
    errorParts: { spread: mixed.map((x) => x.spread), bias: mixed.map((x) => x.bias), candidates: mixed.map((x) => x.candidates), weights: mixed.map((x) => x.weights) },
  };
}

/** Where Kernel SHAP, the one candidate unbiased at every budget, sits among the candidates. */
const KERNEL_CANDIDATE = 1;
/** The forest-adjusted candidate and the forest alone, whose difference is the forest's misfit. */
export const FOREST_ADJUSTED = 0;
const FOREST_ALONE = 4;

/**
 * A candidate's distance from Kernel SHAP may be this many times the players before it counts as
 * bias: Σ_i d_i² / var(d_i) over players, d = candidate − Kernel SHAP with its variance from the
 * jackknife replicates, is about 1.3·M for an unbiased candidate (9 jackknife degrees of freedom).
 */
export const BIAS_TEST_FACTOR = 2.5;

/**
 * Which candidates may join the mix: Kernel SHAP, the one candidate unbiased at every budget, and
 * those within `BIAS_TEST_FACTOR`·M of it (`distanceFromKernel`). A candidate further off than
 * that and more than twice the candidates' median distance is biased (on detector-sofa, Fourier
 * terms that missed part of the game scored 36–132 at M = 14 against 4–36 for the others, errors
 * 8.7e-4 to 1.8e-2 where they usually fit to 3e-8, and their small jackknife spread won them the
 * whole mix); when most candidates are alike far, it is Kernel SHAP that strayed (detector-sofa,
 * 2,048 calls: all four at 39–60, Kernel SHAP's error 2.9e-4 against their 1e-9).
 */
export function seemUnbiased(candidates: readonly Float64Array[], replicates: readonly (readonly Float64Array[])[]): boolean[] {
  const reference = KERNEL_CANDIDATE;
  const m = candidates[reference]!.length;
  const distances = candidates.map((phi, j) => (j === reference ? 0 : distanceFromKernel(phi, replicates[j]!, candidates[reference]!, replicates[reference]!)));
  const others = distances.filter((_, j) => j !== reference).sort((x, y) => x - y);
  const median = (others[(others.length - 1) >> 1]! + others[others.length >> 1]!) / 2;
  return distances.map((d) => d <= BIAS_TEST_FACTOR * m || d <= 2 * median);
}

/**
 * Σ_i d_i² / var(d_i), d = candidate − reference, the variance from replicates paired by fold;
 * differences below the solves' precision count as none.
 */
function distanceFromKernel(candidate: Float64Array, candidateReplicates: readonly Float64Array[], reference: Float64Array, referenceReplicates: readonly Float64Array[]): number {
  const spread = jackknifeSpread(candidateReplicates.map((rep, k) => rep.map((v, i) => v - referenceReplicates[k]![i]!))).standardErrors;
  const floor = precisionFloor(reference);
  let distance = 0;
  for (let i = 0; i < candidate.length; i++) {
    const d = Math.abs(candidate[i]! - reference[i]!);
    if (d > floor) distance += (d / Math.max(spread[i]!, floor)) ** 2;
  }
  return distance;
}

/**
 * Weights w ≥ 0 with Σ w = 1 minimising the summed jackknife variance of Σ_j w_j·candidate_j over
 * players: wᵀΣw, Σ from the replicates' spreads and cross-products. Few candidates, so every
 * support is tried (on it, w ∝ Σ⁻¹1) and the best feasible one kept.
 */
export function mixingWeights(candidates: readonly (readonly Float64Array[])[], allowed: readonly boolean[] = candidates.map(() => true)): number[] {
  const n = candidates.length;
  const folds = candidates[0]!.length;
  const m = candidates[0]![0]!.length;
  const centred = candidates.map((reps) => {
    const mean = new Float64Array(m);
    for (const rep of reps) for (let i = 0; i < m; i++) mean[i] = mean[i]! + rep[i]! / folds;
    return reps.map((rep) => rep.map((v, i) => v - mean[i]!));
  });
  const cov = (a: number, b: number): number => {
    let sum = 0;
    for (let r = 0; r < folds; r++) for (let i = 0; i < m; i++) sum += centred[a]![r]![i]! * centred[b]![r]![i]!;
    return sum;
  };
  const sigma = Array.from({ length: n }, (_, a) => Array.from({ length: n }, (_, b) => cov(a, b)));
  const first = Math.max(0, allowed.indexOf(true));
  let best: number[] = Array.from({ length: n }, (_, j) => (j === first ? 1 : 0));
  let bestVariance = Number.POSITIVE_INFINITY;
  for (let support = 1; support < 1 << n; support++) {
    const members = Array.from({ length: n }, (_, j) => j).filter((j) => (support >> j) & 1);
    if (members.some((j) => !allowed[j])) continue;
    const solved = members.length === 1 ? [1] : solveSmall(members.map((a) => members.map((b) => sigma[a]![b]!)));
    if (!solved) continue;
    const total = solved.reduce((x, y) => x + y, 0);
    if (!(total > 0) || solved.some((w) => w < 0)) continue;
    const w = new Array<number>(n).fill(0);
    members.forEach((j, k) => (w[j] = solved[k]! / total));
    let variance = 0;
    for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) variance += w[a]! * w[b]! * sigma[a]![b]!;
    // Ties go to the earlier support (the forest-adjusted estimate alone comes first).
    if (variance < bestVariance && !(Number.isFinite(bestVariance) && bestVariance - variance <= 1e-15 * bestVariance)) {
      bestVariance = variance;
      best = w;
    }
  }
  return best;
}

/** Σ⁻¹·1 for a small symmetric matrix by Gaussian elimination; undefined when (near) singular. */
function solveSmall(a: number[][]): number[] | undefined {
  const n = a.length;
  const scale = Math.max(...a.map((row, i) => Math.abs(row[i]!)), 0);
  if (!(scale > 0)) return undefined;
  const m = a.map((row) => [...row, 1]);
  for (let c = 0; c < n; c++) {
    let pivot = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[pivot]![c]!)) pivot = r;
    if (Math.abs(m[pivot]![c]!) <= 1e-10 * scale) return undefined;
    [m[c], m[pivot]] = [m[pivot]!, m[c]!];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = m[r]![c]! / m[c]![c]!;
      for (let k = c; k <= n; k++) m[r]![k] = m[r]![k]! - f * m[c]![k]!;
    }
  }
  return m.map((row, i) => row[n]! / row[i]!);
}
