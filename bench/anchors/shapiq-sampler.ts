/**
 * shapiq's CoalitionSampler (v1.4, approximator/sampling.py), as the anchors use it: the empty and
 * full coalitions always; then the "border trick" enumerates every size whose expected number of
 * draws reaches its count of coalitions; the other sizes are drawn with replacement (size by the
 * given weights, members uniformly), each draw paired with its complement, until `budget` distinct
 * coalitions are held. Sampled coalitions carry the adjustment weight count / (P(S) · draws).
 */
import { binomial, subsetsOfSize } from '../../src/explain/kernel-shap.js';
import type { Random } from '../../src/explain/random.js';

export interface SampledCoalitions {
  readonly players: number;
  readonly masks: Uint8Array[];
  /** count / (P(S) · total draws) for sampled sizes; 1 for enumerated ones. */
  readonly adjustment: Float64Array;
  readonly enumerated: boolean[];
}

export function sampleCoalitions(n: number, budget: number, sizeWeights: readonly number[], random: Random): SampledCoalitions {
  const masks: Uint8Array[] = [];
  const enumerated: boolean[] = [];
  const counts: number[] = [];
  if (budget >= 2 ** n) {
    for (let s = 0; s <= n; s++) for (const mask of subsetsOfSize(n, s)) (masks.push(mask), enumerated.push(true), counts.push(1));
    return { players: n, masks, adjustment: new Float64Array(masks.length).fill(1), enumerated };
  }
  let remaining = budget - 2;
  const compute = [0, n];
  let toSample = Array.from({ length: n - 1 }, (_, i) => i + 1).filter((s) => sizeWeights[s]! > 0);
  let probability = normalise(toSample.map((s) => sizeWeights[s]!));
  for (;;) {
    const moving = toSample.filter((s, k) => remaining * probability[k]! >= binomial(n, s));
    if (moving.length === 0) break;
    compute.push(...moving);
    remaining -= moving.reduce((a, s) => a + binomial(n, s), 0);
    const keep = toSample.map((s) => !moving.includes(s));
    probability = normalise(probability.filter((_, k) => keep[k]));
    toSample = toSample.filter((_, k) => keep[k]);
  }
  compute.sort((a, b) => -Math.abs(n / 2 - a) + Math.abs(n / 2 - b));
  for (const s of compute) for (const mask of subsetsOfSize(n, s)) (masks.push(mask), enumerated.push(true), counts.push(1));
  const drawn = new Map<string, { mask: Uint8Array; count: number }>();
  const note = (mask: Uint8Array): boolean => {
    const key = mask.join('');
    const seen = drawn.get(key);
    if (seen) {
      seen.count += 1;
      return false;
    }
    drawn.set(key, { mask, count: 1 });
    return true;
  };
  let attempts = 0;
  while (toSample.length > 0 && remaining > 0 && attempts < 1e6) {
    attempts += 1;
    let u = random();
    let k = toSample.length - 1;
    for (let i = 0; i < toSample.length; i++) {
      if (u < probability[i]!) {
        k = i;
        break;
      }
      u -= probability[i]!;
    }
    const size = toSample[k]!;
    const mask = new Uint8Array(n);
    const order = Array.from({ length: n }, (_, i) => i);
    for (let i = 0; i < size; i++) {
      const j = i + Math.floor(random() * (n - i));
      [order[i], order[j]] = [order[j]!, order[i]!];
      mask[order[i]!] = 1;
    }
    if (note(mask)) remaining -= 1;
    if (remaining > 0 && toSample.includes(n - size)) if (note(mask.map((v) => 1 - v))) remaining -= 1;
  }
  let total = 0;
  for (const { count } of drawn.values()) total += count;
  const adjustment: number[] = counts.map(() => 1);
  for (const { mask, count } of drawn.values()) {
    const size = mask.reduce((a, b) => a + b, 0);
    const p = probability[toSample.indexOf(size)]! / binomial(n, size);
    masks.push(mask);
    enumerated.push(false);
    adjustment.push(count / (p * total));
  }
  return { players: n, masks, adjustment: Float64Array.from(adjustment), enumerated };
}

function normalise(values: readonly number[]): number[] {
  const total = values.reduce((a, b) => a + b, 0);
  return values.map((v) => v / total);
}

/** shapiq's default sizes for Shapley values: the Shapley kernel 1 / (s (n − s)) over 1 … n − 1. */
export const kernelSizeWeights = (n: number): number[] => Array.from({ length: n + 1 }, (_, s) => (s === 0 || s === n ? 0 : 1 / (s * (n - s))));
/** OddSHAP's sizes: uniform over 1 … n − 1. */
export const uniformSizeWeights = (n: number): number[] => Array.from({ length: n + 1 }, (_, s) => (s === 0 || s === n ? 0 : 1));
