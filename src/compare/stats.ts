/** Small statistics for comparing explanations. */

/** Ranks from 1, ties getting the mean of their positions. */
export function ranks(values: readonly number[]): number[] {
  const order = values.map((v, i) => ({ v, i })).sort((a, b) => a.v - b.v);
  const out = new Array<number>(values.length);
  for (let start = 0; start < order.length; ) {
    let end = start;
    while (end + 1 < order.length && order[end + 1]!.v === order[start]!.v) end++;
    const rank = (start + end) / 2 + 1;
    for (let k = start; k <= end; k++) out[order[k]!.i] = rank;
    start = end + 1;
  }
  return out;
}

/** Spearman's rank correlation (Pearson on tie-averaged ranks); 1 when either side is constant and both are equal. */
export function spearman(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new RangeError('different lengths');
  if (a.length < 2) return 1;
  const ra = ranks(a);
  const rb = ranks(b);
  const mean = (a.length + 1) / 2;
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < a.length; i++) {
    const x = ra[i]! - mean;
    const y = rb[i]! - mean;
    num += x * y;
    da += x * x;
    db += y * y;
  }
  if (da === 0 || db === 0) return a.every((v, i) => v === b[i]) ? 1 : 0;
  return num / Math.sqrt(da * db);
}

/** Indices of the k largest |values| (ties by index). */
export function topByMagnitude(values: readonly number[], k: number): number[] {
  return values
    .map((v, i) => ({ v: Math.abs(v), i }))
    .sort((x, y) => y.v - x.v || x.i - y.i)
    .slice(0, k)
    .map((x) => x.i);
}

/** Share of the top-k (by |value|) of a that is also in the top-k of b. */
export function topOverlap(a: readonly number[], b: readonly number[], k: number): number {
  const n = Math.min(k, a.length);
  if (n === 0) return 1;
  const top = new Set(topByMagnitude(b, n));
  return topByMagnitude(a, n).filter((i) => top.has(i)).length / n;
}

/** Segments whose value exceeds its standard error in both runs and changes sign. */
export function significantSignFlips(a: readonly number[], seA: readonly (number | null)[], b: readonly number[], seB: readonly (number | null)[]): number[] {
  const flips: number[] = [];
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    // An unknown (null) standard error never makes a flip significant.
    if (Math.abs(x) > (seA[i] ?? Number.POSITIVE_INFINITY) && Math.abs(y) > (seB[i] ?? Number.POSITIVE_INFINITY) && Math.sign(x) !== Math.sign(y) && x !== 0 && y !== 0) flips.push(i);
  }
  return flips;
}
