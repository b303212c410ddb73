/**
 * The comparator for the accuracy benchmark: plain Kernel SHAP as first published. Coalition
 * sizes are drawn from the Shapley kernel, members uniformly, with no complement pairing, no
 * enumeration and no de-duplication (every draw is a model call), each draw weighted equally, and
 * the efficiency constraint imposed the same way as ours.
 */
import { type CoalitionDesign, JACKKNIFE_GROUPS } from '../src/explain/kernel-shap.js';
import type { Random } from '../src/explain/random.js';

export function plainKernelShapDesign(m: number, calls: number, random: Random): CoalitionDesign {
  const sizeMass = Array.from({ length: m - 1 }, (_, i) => (m - 1) / ((i + 1) * (m - i - 1)));
  const total = sizeMass.reduce((a, b) => a + b, 0);
  const masks: Uint8Array[] = [];
  for (let c = 0; c < calls; c++) {
    let u = random() * total;
    let size = m - 1;
    for (let i = 0; i < sizeMass.length; i++) {
      if (u < sizeMass[i]!) {
        size = i + 1;
        break;
      }
      u -= sizeMass[i]!;
    }
    const order = Array.from({ length: m }, (_, i) => i);
    const mask = new Uint8Array(m);
    for (let i = 0; i < size; i++) {
      const j = i + Math.floor(random() * (m - i));
      [order[i], order[j]] = [order[j]!, order[i]!];
      mask[order[i]!] = 1;
    }
    masks.push(mask);
  }
  // Drawn in proportion to the kernel, so every draw has the same importance weight.
  const weights = masks.map((_, i) => new Map([[i % JACKKNIFE_GROUPS, 1]]));
  const units = Array.from({ length: Math.min(JACKKNIFE_GROUPS, calls) }, (_, g) => Math.floor(calls / JACKKNIFE_GROUPS) + (g < calls % JACKKNIFE_GROUPS ? 1 : 0));
  return {
    features: m,
    masks,
    enumeratedCount: 0,
    enumeratedWeights: () => [],
    sampledWeights: () => weights,
    unitsPerGroup: () => units,
  };
}
