/**
 * The reference for every accuracy check: exact Shapley values by enumerating all 2^M coalitions,
 * φ_i = Σ_{S ∌ i} |S|!(M − |S| − 1)!/M! · (v(S ∪ i) − v(S)). Coalitions are bit masks (bit j = player j).
 */
export function exactShapley(m: number, outputs: number, game: (coalition: number) => readonly number[]): Float64Array[] {
  const values = Array.from({ length: 2 ** m }, (_, s) => game(s));
  const factorial = [1];
  for (let i = 1; i <= m; i++) factorial[i] = factorial[i - 1]! * i;
  const phi = Array.from({ length: outputs }, () => new Float64Array(m));
  for (let s = 0; s < 2 ** m; s++) {
    let size = 0;
    for (let i = 0; i < m; i++) size += (s >> i) & 1;
    const w = (factorial[size]! * factorial[m - size - 1]!) / factorial[m]!;
    for (let i = 0; i < m; i++) {
      if ((s >> i) & 1) continue;
      for (let o = 0; o < outputs; o++) phi[o]![i] = phi[o]![i]! + w * (values[s | (1 << i)]![o]! - values[s]![o]!);
    }
  }
  return phi;
}

/** ‖estimate − exact‖² / ‖exact‖². */
export function relativeSquaredError(estimate: ArrayLike<number>, exact: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < exact.length; i++) {
    num += (estimate[i]! - exact[i]!) ** 2;
    den += exact[i]! ** 2;
  }
  return num / den;
}

/** A mask array → its bit-mask number. */
export function coalitionBits(mask: ArrayLike<number>): number {
  let bits = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i]) bits |= 1 << i;
  return bits;
}
