/**
 * RegressionMSR (Witter, Liu & Musco, "Regression-adjusted Monte Carlo estimators for Shapley values
 * and probabilistic values", NeurIPS 2025), as shapiq 1.4 runs it (approximator/proxy/proxyshap.py):
 * shapiq's sampler with the Shapley-kernel sizes and pairing; a tree proxy fit on every evaluated
 * coalition (targets v(S) − v(∅)); the proxy's exact Shapley values; plus the MSR (maximum sample
 * reuse) Monte Carlo estimate on the residuals v − v(∅) − f, normalised so r(∅) = 0, over the same
 * coalitions and adjustment weights.
 */
import { binomial } from '../../src/explain/kernel-shap.js';
import type { Random } from '../../src/explain/random.js';
import { fitForest, fitTree, forestShapley, predictForest, type TreeNode } from '../../src/explain/regression-tree.js';
import { kernelSizeWeights, sampleCoalitions } from './shapiq-sampler.js';

export type Proxy = 'forest' | 'tree';

/** MSR estimate of Shapley values from coalition values with shapiq's adjustment weights. */
export function msrShapley(n: number, masks: readonly Uint8Array[], values: ArrayLike<number>, adjustment: ArrayLike<number>): Float64Array {
  // Weight of S for player i: (s−1)!(n−s)!/n! if i ∈ S, −s!(n−s−1)!/n! if not.
  const inWeight = (s: number): number => 1 / (n * binomial(n - 1, s - 1));
  const outWeight = (s: number): number => 1 / (n * binomial(n - 1, s));
  const phi = new Float64Array(n);
  masks.forEach((mask, c) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += mask[i]!;
    const v = values[c]! * adjustment[c]!;
    const win = s > 0 ? inWeight(s) : 0;
    const wout = s < n ? outWeight(s) : 0;
    for (let i = 0; i < n; i++) phi[i] = phi[i]! + (mask[i] ? v * win : -v * wout);
  });
  return phi;
}

export function regressionMsr(n: number, budget: number, game: (mask: Uint8Array) => number, random: Random, proxy: Proxy): { values: Float64Array; calls: number } {
  const sample = sampleCoalitions(n, budget, kernelSizeWeights(n), random);
  const raw = sample.masks.map(game);
  const emptyAt = sample.masks.findIndex((m) => m.every((v) => v === 0));
  const base = raw[emptyAt]!;
  const rows = new Uint8Array(sample.masks.length * n);
  sample.masks.forEach((m, r) => rows.set(m, r * n));
  const targets = Float64Array.from(raw, (v) => v - base);
  const data = { players: n, rows, targets };
  const forest: TreeNode[] = proxy === 'forest' ? fitForest(data, random, 100) : [fitTree(data, new Float64Array(targets.length).fill(1), random)];
  const residual = sample.masks.map((m, c) => targets[c]! - predictForest(forest, m));
  const shift = residual[emptyAt]!;
  const phi = forestShapley(forest, n);
  const correction = msrShapley(n, sample.masks, residual.map((r) => r - shift), sample.adjustment);
  for (let i = 0; i < n; i++) phi[i] = phi[i]! + correction[i]!;
  return { values: phi, calls: sample.masks.length };
}
