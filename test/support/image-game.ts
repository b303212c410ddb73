/** A small image-like game for the estimators' tests, with every coalition's value cheap to compute. */
import { seededRandom } from '../../src/explain/random.js';

/** Coalition s (Σ_{j ∈ S} 2^j) as a 0/1 mask of m players. */
export const bitsOf = (s: number, m: number): Uint8Array => Uint8Array.from({ length: m }, (_, i) => (s >> i) & 1);

/**
 * An image-like game: a saturating score of segments acting jointly (the "face" 0–2 must all show
 * to count fully), plus additive context and one adjacent pair; outputs 2 labels.
 */
export function imageGame(m: number, seed: number): (mask: Uint8Array) => Float64Array {
  const random = seededRandom(seed);
  const a = Array.from({ length: m }, () => random() * 0.6 - 0.2);
  return (mask) => {
    let z = -3;
    for (let i = 0; i < m; i++) z += mask[i]! * a[i]!;
    z += 5 * (mask[0]! & mask[1]! & mask[2]!) + 1.5 * (mask[3]! & mask[4]!);
    const p = 1 / (1 + Math.exp(-z));
    return Float64Array.of(p, 1 - p * p);
  };
}
