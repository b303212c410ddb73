/**
 * Regression trees and forests over coalitions (binary features: player in or out), as the
 * surrogates of proxy-regression Shapley estimators. A split sends "out" (0) left and "in" (1)
 * right, like scikit-learn's threshold 0.5 on a 0/1 feature. Two things make trees useful here:
 * their Shapley values under the game's own baseline are exact and cheap (each leaf is a
 * conjunction of "in" and "out" conditions), and so is their Walsh–Fourier spectrum.
 */
import type { Random } from './random.js';

export interface TreeNode {
  /** Player split on; −1 for a leaf. */
  readonly feature: number;
  readonly value: number;
  /** Children: out (0) and in (1). */
  readonly out?: TreeNode;
  readonly in?: TreeNode;
}

export interface TreeOptions {
  /** Deepest split level (unbounded when absent). */
  readonly maxDepth?: number;
  /** Players considered per split (all when absent: scikit-learn's regressor default). */
  readonly maxFeatures?: number;
  readonly minSamplesLeaf?: number;
}

/** Coalitions as rows of 0/1 (n × m, row-major). */
export interface CoalitionRows {
  readonly players: number;
  readonly rows: Uint8Array;
  readonly targets: Float64Array;
}

/**
 * CART with squared error, grown greedily: the split with the largest weighted impurity decrease,
 * ties to the first player in a random order (as scikit-learn permutes features).
 */
export function fitTree(data: CoalitionRows, weights: Float64Array, random: Random, options: TreeOptions = {}): TreeNode {
  return growTree(data, membersOf(data), weights, random, options);
}

/** `fitTree` on rows whose members are already listed (a forest lists them once for all its trees). */
function growTree(data: CoalitionRows, rowMembers: RowMembers, weights: Float64Array, random: Random, options: TreeOptions): TreeNode {
  const m = data.players;
  const maxDepth = options.maxDepth ?? Number.POSITIVE_INFINITY;
  const minLeaf = options.minSamplesLeaf ?? 1;
  const maxFeatures = Math.min(m, options.maxFeatures ?? m);
  const order = Array.from({ length: m }, (_, i) => i);
  // Rows with weight, kept in one array and partitioned in place as the tree grows.
  const index = new Int32Array(data.targets.length);
  let count = 0;
  for (let r = 0; r < data.targets.length; r++) if (weights[r]! > 0) index[count++] = r;
  const { targets, rows } = data;
  const { members, start } = rowMembers;
  // Per player: weight, weighted target sum and row count of the node's rows that hold it.
  const inWeight = new Float64Array(m);
  const inSum = new Float64Array(m);
  const inCount = new Int32Array(m);
  const grow = (from: number, to: number, depth: number): TreeNode => {
    let w = 0;
    let wy = 0;
    let wyy = 0;
    for (let k = from; k < to; k++) {
      const r = index[k]!;
      const weight = weights[r]!;
      const y = targets[r]!;
      w += weight;
      wy += weight * y;
      wyy += weight * y * y;
    }
    const value = w > 0 ? wy / w : 0;
    const impurity = w > 0 ? wyy - (wy * wy) / w : 0;
    if (depth >= maxDepth || to - from < 2 * minLeaf || impurity <= 1e-14 * Math.max(1, wyy)) return { feature: -1, value };
    for (let i = m - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
    // One pass over the rows, each adding to the players it holds: every sum still adds its
    // rows in order, so the sums are those of one pass per player.
    inWeight.fill(0);
    inSum.fill(0);
    inCount.fill(0);
    for (let q = from; q < to; q++) {
      const r = index[q]!;
      const weight = weights[r]!;
      const weighted = weight * targets[r]!;
      for (let k = start[r]!; k < start[r + 1]!; k++) {
        const f = members[k]!;
        inWeight[f] = inWeight[f]! + weight;
        inSum[f] = inSum[f]! + weighted;
        inCount[f] = inCount[f]! + 1;
      }
    }
    let best = -1;
    let bestGain = 1e-12 * Math.max(1, impurity);
    for (let k = 0; k < maxFeatures; k++) {
      const f = order[k]!;
      const w1 = inWeight[f]!;
      const wy1 = inSum[f]!;
      const n1 = inCount[f]!;
      const n0 = to - from - n1;
      const w0 = w - w1;
      if (n1 < minLeaf || n0 < minLeaf || w1 <= 0 || w0 <= 0) continue;
      const wy0 = wy - wy1;
      // Impurity decrease = between-group sum of squares.
      const gain = (wy1 * wy1) / w1 + (wy0 * wy0) / w0 - (wy * wy) / w;
      if (gain > bestGain) {
        bestGain = gain;
        best = f;
      }
    }
    if (best < 0) return { feature: -1, value };
    // Partition: rows without the player first, then rows with it.
    let split = from;
    for (let q = from; q < to; q++) {
      const r = index[q]!;
      if (!rows[r * m + best]) {
        index[q] = index[split]!;
        index[split] = r;
        split += 1;
      }
    }
    return { feature: best, value, out: grow(from, split, depth + 1), in: grow(split, to, depth + 1) };
  };
  return grow(0, count, 0);
}

/** Each row's players, in order: row r holds members[start[r]] … members[start[r + 1] − 1]. */
interface RowMembers {
  readonly members: Int32Array;
  readonly start: Int32Array;
}

function membersOf(data: CoalitionRows): RowMembers {
  const m = data.players;
  const n = data.targets.length;
  const start = new Int32Array(n + 1);
  let total = 0;
  for (let r = 0; r < n; r++) {
    start[r] = total;
    for (let f = 0; f < m; f++) if (data.rows[r * m + f]) total += 1;
  }
  start[n] = total;
  const members = new Int32Array(total);
  let k = 0;
  for (let r = 0; r < n; r++) for (let f = 0; f < m; f++) if (data.rows[r * m + f]) members[k++] = f;
  return { members, start };
}

/** Random forest (Breiman): bootstrap-weighted trees, averaged. scikit-learn's defaults: 100 trees, all players per split. */
export function fitForest(data: CoalitionRows, random: Random, trees = 100, options: TreeOptions = {}): TreeNode[] {
  const n = data.targets.length;
  const rowMembers = membersOf(data);
  return Array.from({ length: trees }, () => {
    const weights = new Float64Array(n);
    for (let i = 0; i < n; i++) weights[Math.floor(random() * n)]! += 1;
    return growTree(data, rowMembers, weights, random, options);
  });
}

export function predictTree(tree: TreeNode, mask: ArrayLike<number>): number {
  let node = tree;
  while (node.feature >= 0) node = (mask[node.feature] ? node.in : node.out)!;
  return node.value;
}

export function predictForest(forest: readonly TreeNode[], mask: ArrayLike<number>): number {
  let sum = 0;
  for (const tree of forest) sum += predictTree(tree, mask);
  return sum / forest.length;
}

/**
 * Exact Shapley values of a tree, explaining "everyone in" against "everyone out". A leaf reached
 * when the p players of P are in and the q of Q are out is the game 1[P ⊆ S, Q ∩ S = ∅]; in a random
 * order it switches on when the last of P arrives before any of Q: each of P gets
 * (p−1)! q! / (p+q)! of its value, each of Q loses p! (q−1)! / (p+q)!.
 */
export function treeShapley(tree: TreeNode, m: number, into = new Float64Array(m), scale = 1): Float64Array {
  const path: number[] = [];
  const sides: number[] = [];
  const walk = (node: TreeNode): void => {
    if (node.feature < 0) {
      let p = 0;
      for (const s of sides) p += s;
      const q = sides.length - p;
      if (p + q === 0) return;
      const v = node.value * scale;
      const onIn = p > 0 ? (v * factorialRatio(p - 1, q)) : 0;
      const onOut = q > 0 ? (v * factorialRatio(p, q - 1)) : 0;
      path.forEach((f, k) => (into[f] = into[f]! + (sides[k] ? onIn : -onOut)));
      return;
    }
    path.push(node.feature);
    sides.push(0);
    walk(node.out!);
    sides[sides.length - 1] = 1;
    walk(node.in!);
    path.pop();
    sides.pop();
  };
  walk(tree);
  return into;
}

/** a! b! / (a + b + 1)!, the share of one player in the conjunction of a + b + 1 conditions. */
function factorialRatio(a: number, b: number): number {
  // a! b! / (a+b+1)! = 1 / ((a+b+1) · C(a+b, a))
  let c = 1;
  for (let i = 1; i <= a; i++) c = (c * (b + i)) / i;
  return 1 / ((a + b + 1) * c);
}

export function forestShapley(forest: readonly TreeNode[], m: number): Float64Array {
  const phi = new Float64Array(m);
  for (const tree of forest) treeShapley(tree, m, phi, 1 / forest.length);
  return phi;
}

/** One term of a Walsh–Fourier spectrum: c · (−1)^|S ∩ players|, players ascending. */
export interface FourierTerm {
  readonly players: number[];
  readonly c: number;
}

/**
 * Walsh–Fourier spectrum of a tree: f(S) = Σ_T c_T · (−1)^|S ∩ T|, one term per player set T (the
 * constant has none). A split on f turns children L (out) and R (in) into
 * (L + R)/2 + (L − R)/2 · (−1)^[f ∈ S].
 */
export function treeFourier(tree: TreeNode): FourierTerm[] {
  return spectrumEntries(tree).map(([set, c]) => ({ players: playersOf(set), c }));
}

/**
 * The `most` terms of `treeFourier` with the largest |c| among those whose order passes `keep`,
 * largest first, ties in the spectrum's order: what filtering, stably sorting and slicing the
 * whole spectrum gives, without building player lists or sorting terms that cannot make the cut
 * (at 60 players the spectrum holds about 200,000 terms and a screening keeps a few hundred).
 */
export function largestFourierTerms(tree: TreeNode, keep: (order: number) => boolean, most: number): FourierTerm[] {
  if (most <= 0) return [];
  const kept = spectrumEntries(tree).filter(([set]) => keep(sizeOf(set)));
  let cut = -1;
  if (kept.length > most) {
    const sizes = Float64Array.from(kept, ([, c]) => Math.abs(c)).sort();
    cut = sizes[sizes.length - most]!;
  }
  // Every term above the cut, and those at it in the spectrum's order while places remain.
  let atCut = most - kept.filter(([, c]) => Math.abs(c) > cut).length;
  const chosen = kept.filter(([, c]) => Math.abs(c) > cut || (Math.abs(c) === cut && atCut-- > 0));
  return chosen.sort((a, b) => Math.abs(b[1]) - Math.abs(a[1])).map(([set, c]) => ({ players: playersOf(set), c }));
}

/** The spectrum as [set, c] in its one order, sets keyed as Σ 2^player. */
function spectrumEntries(tree: TreeNode): [number | bigint, number][] {
  // An exact double up to 52 players, a big integer beyond (11 screenings per estimate once spent
  // most of their time building text keys).
  if (maxFeature(tree) < NUMERIC_KEY_PLAYERS) return [...spectrumOf(tree, 0, (set, player) => set + 2 ** player)];
  const spectrum = spectrumOf(tree, 0n, (key, player) => hashable(hashable(key) | (1n << BigInt(player))));
  return [...spectrum].map(([key, c]) => [hashable(key), c]);
}

/**
 * A big-integer set as a Map key that hashes well, and back (it is its own inverse): V8 hashes a
 * big integer by its lowest 64 bits only, so sets that differ in players 64 and up collided and
 * the spectrum of a tree over 150 players took 80 s instead of 2. The bits above 64 stay as they
 * are; a mix of them is XORed into the low 64.
 */
function hashable(set: bigint): bigint {
  let mix = 0n;
  for (let high = set >> 64n; high > 0n; high >>= 64n) mix = BigInt.asUintN(64, (mix ^ BigInt.asUintN(64, high)) * 0x9e3779b97f4a7c15n);
  return set ^ mix;
}

const NUMERIC_KEY_PLAYERS = 52;

function maxFeature(node: TreeNode): number {
  return node.feature < 0 ? -1 : Math.max(node.feature, maxFeature(node.out!), maxFeature(node.in!));
}

/**
 * The spectrum with player sets keyed as K: `none` is the empty set, `withPlayer` adds a player.
 * A path never splits on a player twice, so the children's sets never hold the split player.
 */
function spectrumOf<K>(node: TreeNode, none: K, withPlayer: (set: K, player: number) => K): Map<K, number> {
  if (node.feature < 0) return new Map([[none, node.value]]);
  const left = spectrumOf(node.out!, none, withPlayer);
  const right = spectrumOf(node.in!, none, withPlayer);
  const out = new Map<K, number>();
  // Keys in left's order, then right's own: the order of the union, which ties keep.
  const add = (key: K, l: number, r: number): void => {
    out.set(key, (out.get(key) ?? 0) + (l + r) / 2);
    const joined = withPlayer(key, node.feature);
    out.set(joined, (out.get(joined) ?? 0) + (l - r) / 2);
  };
  for (const [key, l] of left) add(key, l, right.get(key) ?? 0);
  for (const [key, r] of right) if (!left.has(key)) add(key, 0, r);
  return out;
}

/** How many players a set keyed as Σ 2^player holds. */
function sizeOf(set: number | bigint): number {
  if (typeof set === 'number') {
    const low = set % 2 ** 32;
    return bitCount(low) + bitCount((set - low) / 2 ** 32);
  }
  let size = 0;
  for (let rest = set; rest > 0n; rest >>= 32n) size += bitCount(Number(BigInt.asUintN(32, rest)));
  return size;
}

/** Set bits of an integer below 2^32. */
function bitCount(word: number): number {
  let x = word >>> 0;
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

/** The players of a set keyed as Σ 2^player (a number or a big integer), ascending. */
function playersOf(set: number | bigint): number[] {
  const bits = set.toString(2);
  const players: number[] = [];
  for (let i = bits.length - 1; i >= 0; i--) if (bits[i] === '1') players.push(bits.length - 1 - i);
  return players;
}
