/**
 * OddSHAP (Fumagalli et al. 2026), as shapiq 1.4 runs it (approximator/regression/oddshap.py) with
 * its decision-tree surrogate (max_depth 10; LightGBM absent): paired sampling uniform over sizes;
 * the tree's exact Walsh–Fourier spectrum screens the support, ceil(budget / 10) terms: the players
 * with the largest singleton coefficients first, then the largest odd terms of order ≥ 3; a weighted
 * least-squares fit of those odd terms (weights: the Shapley kernel 1/(s(n−s)C(n,s)) times the
 * sampler's adjustment), complement pairs folded into one row, the constant fixed at (v(N)+v(∅))/2
 * and efficiency imposed exactly; an odd term over T gives each of its players −2β_T/|T|.
 */
import { binomial, choleskySolve } from '../../src/explain/kernel-shap.js';
import type { Random } from '../../src/explain/random.js';
import { fitTree, treeFourier } from '../../src/explain/regression-tree.js';
import { sampleCoalitions, uniformSizeWeights } from './shapiq-sampler.js';

export const INTERACTION_FACTOR = 10;

/**
 * `support`, for bench/spectrum.ts only: the terms to fit given how many the budget allows, in
 * place of the tree's screening (an oracle that knows the game's largest terms).
 */
export function oddShap(
  n: number,
  budget: number,
  game: (mask: Uint8Array) => number,
  random: Random,
  support?: (count: number) => number[][],
): { values: Float64Array; calls: number } {
  const sample = sampleCoalitions(n, budget, uniformSizeWeights(n), random);
  const values = sample.masks.map(game);
  const sizeOf = (m: Uint8Array): number => m.reduce((a, b) => a + b, 0);
  const emptyValue = values[sample.masks.findIndex((m) => sizeOf(m) === 0)]!;
  const fullValue = values[sample.masks.findIndex((m) => sizeOf(m) === n)]!;
  const rows = new Uint8Array(sample.masks.length * n);
  sample.masks.forEach((m, r) => rows.set(m, r * n));
  const tree = fitTree({ players: n, rows, targets: Float64Array.from(values) }, new Float64Array(values.length).fill(1), random, { maxDepth: 10 });
  const spectrum = treeFourier(tree);
  const candidates = budget >= 2 ** n ? 2 ** n : Math.ceil(budget / INTERACTION_FACTOR);
  const single = new Map(spectrum.filter((t) => t.players.length === 1).map((t) => [t.players[0]!, t.c]));
  const singles = Array.from({ length: n }, (_, i) => i)
    .sort((a, b) => Math.abs(single.get(b) ?? 0) - Math.abs(single.get(a) ?? 0) || a - b)
    .slice(0, Math.min(n, candidates))
    .map((i) => [i]);
  const higher = spectrum
    .filter((t) => t.players.length >= 3 && t.players.length % 2 === 1)
    .sort((a, b) => Math.abs(b.c) - Math.abs(a.c))
    .slice(0, Math.max(0, candidates - singles.length))
    .map((t) => t.players);
  const terms = support && budget < 2 ** n ? support(candidates) : [...singles, ...higher];
  const p = terms.length;
  // Rows: interior coalitions; a coalition whose complement is also held folds into one row
  // (target (v(S) − v(S^c))/2, weight doubled); otherwise target v(S) − β∅.
  const beta0 = (fullValue + emptyValue) / 2;
  const kernel = (s: number): number => 1 / (s * (n - s) * binomial(n, s));
  const index = new Map(sample.masks.map((m, c) => [m.join(''), c]));
  const ata = new Float64Array(p * p);
  const atb = new Float64Array(p);
  const x = new Float64Array(p);
  const used = new Set<number>();
  sample.masks.forEach((mask, c) => {
    const s = sizeOf(mask);
    if (s === 0 || s === n || used.has(c)) return;
    used.add(c);
    let weight = kernel(s) * sample.adjustment[c]!;
    let target = values[c]! - beta0;
    const partner = index.get(mask.map((v) => 1 - v).join(''));
    if (partner !== undefined) {
      used.add(partner);
      weight *= 2;
      target = (values[c]! - values[partner]!) / 2;
    }
    terms.forEach((t, k) => {
      let parity = 0;
      for (const j of t) parity ^= mask[j]!;
      x[k] = parity ? -1 : 1;
    });
    for (let a = 0; a < p; a++) {
      atb[a] = atb[a]! + weight * x[a]! * target;
      for (let b = 0; b < p; b++) ata[a * p + b] = ata[a * p + b]! + weight * x[a]! * x[b]!;
    }
  });
  // Efficiency: Σ_T β_T (χ_T(N) − χ_T(∅)) = −2 Σ β_T = v(N) − v(∅). Lagrange: β = A⁻¹(b − λ·1).
  const [u, w] = choleskySolve(ata, p, [atb, new Float64Array(p).fill(1)]).solutions as [Float64Array, Float64Array];
  const want = -(fullValue - emptyValue) / 2;
  let su = 0;
  let sw = 0;
  for (let k = 0; k < p; k++) (su += u[k]!, sw += w[k]!);
  const lambda = (su - want) / sw;
  const phi = new Float64Array(n);
  terms.forEach((t, k) => {
    const beta = u[k]! - lambda * w[k]!;
    for (const j of t) phi[j] = phi[j]! - (2 * beta) / t.length;
  });
  return { values: phi, calls: sample.masks.length };
}
