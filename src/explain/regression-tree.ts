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
 * ties to the first player in a random order (as scikit-learn permutes features). Weights are
 * whole numbers (a bootstrap's counts).
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
  for (let r = 0; r < data.targets.length; r++) {
    const weight = weights[r]!;
    // Whole weights (counts, as a bootstrap gives) keep every sum of them exact, so a child's
    // sums taken from its parent's minus its sibling's (below) see an empty side as exactly 0.
    if (!Number.isInteger(weight) || weight < 0) throw new RangeError(`tree weights must be whole numbers ≥ 0 (row ${r}: ${weight})`);
    if (weight > 0) index[count++] = r;
  }
  const { targets, rows } = data;
  const { members, start } = rowMembers;
  // The split search sums weight × target as whole multiples of 2^−k, with k as large as keeps
  // every sum of them below 2^51 (so about 1e-15 of Σ w·|y| apart): such sums are exact in any
  // order, so a child's sums taken as its parent's minus its sibling's (below) are the very
  // numbers its own rows sum to, and players with the same rows in a node tie exactly, as the
  // random order then decides.
  let absoluteTotal = 0;
  for (let q = 0; q < count; q++) absoluteTotal += weights[index[q]!]! * Math.abs(targets[index[q]!]!);
  const scale = absoluteTotal > 0 ? 2 ** Math.min(1000, Math.floor(50 - Math.log2(absoluteTotal))) : 1;
  const quantized = new Float64Array(targets.length);
  for (let q = 0; q < count; q++) quantized[index[q]!] = Math.round(weights[index[q]!]! * targets[index[q]!]! * scale);
  /**
   * Per player: weight, weighted target sum and row count of a node's rows that hold it. A node's
   * children are given theirs in the two slots of the level below (out, in), which hold them until
   * both children have handed theirs on: the smaller child's are summed over its rows, the larger's
   * are the parent's minus the smaller's, so each level passes over fewer than half the rows.
   */
  interface PlayerSums {
    readonly weight: Float64Array;
    readonly sum: Float64Array;
    readonly count: Int32Array;
  }
  const levels: [PlayerSums, PlayerSums][] = [];
  const slot = (depth: number, side: 0 | 1): PlayerSums => {
    while (levels.length <= depth) {
      const make = (): PlayerSums => ({ weight: new Float64Array(m), sum: new Float64Array(m), count: new Int32Array(m) });
      levels.push([make(), make()]);
    }
    return levels[depth]![side];
  };
  // One pass over the rows, each adding to the players it holds: every sum adds its rows in order.
  const sumOver = (from: number, to: number, into: PlayerSums): void => {
    const { weight: inWeight, sum: inSum, count: inCount } = into;
    inWeight.fill(0);
    inSum.fill(0);
    if (minLeaf > 1) inCount.fill(0);
    for (let q = from; q < to; q++) {
      const r = index[q]!;
      const weight = weights[r]!;
      const weighted = quantized[r]!;
      for (let k = start[r]!; k < start[r + 1]!; k++) {
        const f = members[k]!;
        inWeight[f] = inWeight[f]! + weight;
        inSum[f] = inSum[f]! + weighted;
      }
      // Row counts matter only above one row per leaf: every row here has weight, so a side with
      // no rows has no weight, which the split test already refuses.
      if (minLeaf > 1) for (let k = start[r]!; k < start[r + 1]!; k++) inCount[members[k]!] = inCount[members[k]!]! + 1;
    }
  };
  const grow = (from: number, to: number, depth: number, own: PlayerSums): TreeNode => {
    let w = 0;
    let wy = 0;
    let wyy = 0;
    let wyWhole = 0;
    for (let k = from; k < to; k++) {
      const r = index[k]!;
      const weight = weights[r]!;
      const y = targets[r]!;
      w += weight;
      wy += weight * y;
      wyy += weight * y * y;
      wyWhole += quantized[r]!;
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
    const { weight: inWeight, sum: inSum, count: inCount } = own;
    let best = -1;
    let bestGain = 1e-12 * Math.max(1, impurity);
    const wyAll = wyWhole / scale;
    for (let k = 0; k < maxFeatures; k++) {
      const f = order[k]!;
      const w1 = inWeight[f]!;
      const wy1 = inSum[f]! / scale;
      const w0 = w - w1;
      if (w1 <= 0 || w0 <= 0) continue;
      if (minLeaf > 1 && (inCount[f]! < minLeaf || to - from - inCount[f]! < minLeaf)) continue;
      const wy0 = (wyWhole - inSum[f]!) / scale;
      // Impurity decrease = between-group sum of squares.
      const gain = (wy1 * wy1) / w1 + (wy0 * wy0) / w0 - (wyAll * wyAll) / w;
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
    const outSums = slot(depth + 1, 0);
    const inSums = slot(depth + 1, 1);
    // Children that cannot split (too deep, too few rows) read no sums.
    if (depth + 1 < maxDepth && Math.max(split - from, to - split) >= 2 * minLeaf) {
      const outIsSmaller = split - from <= to - split;
      const [smaller, larger] = outIsSmaller ? [outSums, inSums] : [inSums, outSums];
      if (outIsSmaller) sumOver(from, split, smaller);
      else sumOver(split, to, smaller);
      for (let f = 0; f < m; f++) {
        larger.weight[f] = inWeight[f]! - smaller.weight[f]!;
        larger.sum[f] = inSum[f]! - smaller.sum[f]!;
      }
      if (minLeaf > 1) for (let f = 0; f < m; f++) larger.count[f] = inCount[f]! - smaller.count[f]!;
    }
    return { feature: best, value, out: grow(from, split, depth + 1, outSums), in: grow(split, to, depth + 1, inSums) };
  };
  const root = slot(0, 0);
  sumOver(0, count, root);
  return grow(0, count, 0, root);
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
  return fitBaggedForest(data, random, trees, options).trees;
}

/** A forest with, per tree, which rows its bootstrap left out (1: out of that tree's bag). */
export interface BaggedForest {
  readonly trees: TreeNode[];
  readonly outOfBag: Uint8Array[];
}

/** `fitForest` (the same trees from the same random stream), keeping each tree's out-of-bag rows. */
export function fitBaggedForest(data: CoalitionRows, random: Random, trees = 100, options: TreeOptions = {}): BaggedForest {
  const n = data.targets.length;
  const rowMembers = membersOf(data);
  const outOfBag: Uint8Array[] = [];
  const grown = Array.from({ length: trees }, () => {
    const weights = new Float64Array(n);
    for (let i = 0; i < n; i++) weights[Math.floor(random() * n)]! += 1;
    outOfBag.push(Uint8Array.from(weights, (w) => (w === 0 ? 1 : 0)));
    return growTree(data, rowMembers, weights, random, options);
  });
  return { trees: grown, outOfBag };
}

/**
 * Each of the first `count` rows predicted by the trees that did not see it (Breiman's out-of-bag
 * estimate): a residual against these is what the forest misses on a coalition it was not fit to,
 * where one against the whole forest is shrunk by its fit to that very row. About a third of the
 * trees leave out any one row; a row every tree saw (chance 0.63^trees) gets the whole forest's.
 */
export function outOfBagPredictions(forest: BaggedForest, rows: Uint8Array, players: number, count: number): Float64Array {
  const flat = flatForest(forest.trees);
  const predictions = new Float64Array(count);
  for (let r = 0; r < count; r++) {
    const mask = rows.subarray(r * players, (r + 1) * players);
    let sum = 0;
    let trees = 0;
    for (let t = 0; t < flat.trees; t++) {
      if (forest.outOfBag[t]![r] === 0) continue;
      sum += flat.leaf(t, mask);
      trees += 1;
    }
    if (trees === 0) for (let t = 0; t < flat.trees; t++) sum += flat.leaf(t, mask);
    predictions[r] = sum / (trees === 0 ? flat.trees : trees);
  }
  return predictions;
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

/** The trees laid out once in typed arrays: `leaf(t, mask)` walks tree t without chasing node objects. */
function flatForest(forest: readonly TreeNode[]): { readonly trees: number; leaf(t: number, mask: ArrayLike<number>): number } {
  const players: number[] = [];
  const values: number[] = [];
  const outs: number[] = [];
  const ins: number[] = [];
  const place = (node: TreeNode): number => {
    const at = players.length;
    players.push(node.feature);
    values.push(node.value);
    outs.push(-1);
    ins.push(-1);
    if (node.feature >= 0) {
      outs[at] = place(node.out!);
      ins[at] = place(node.in!);
    }
    return at;
  };
  const roots = Int32Array.from(forest, place);
  const player = Int32Array.from(players);
  const value = Float64Array.from(values);
  const out = Int32Array.from(outs);
  const inside = Int32Array.from(ins);
  return {
    trees: roots.length,
    leaf(t, mask) {
      let k = roots[t]!;
      while (player[k]! >= 0) k = mask[player[k]!] ? inside[k]! : out[k]!;
      return value[k]!;
    },
  };
}

/** `predictForest` for many masks (the same sum in the same order, so the same value). */
export function forestPredictor(forest: readonly TreeNode[]): (mask: ArrayLike<number>) => number {
  const flat = flatForest(forest);
  return (mask) => {
    let sum = 0;
    for (let t = 0; t < flat.trees; t++) sum += flat.leaf(t, mask);
    return sum / flat.trees;
  };
}

/** How far the trees disagree on a mask: the standard deviation of their predictions. */
export function forestSpread(forest: readonly TreeNode[]): (mask: ArrayLike<number>) => number {
  const flat = flatForest(forest);
  return (mask) => {
    let sum = 0;
    let squares = 0;
    for (let t = 0; t < flat.trees; t++) {
      const v = flat.leaf(t, mask);
      sum += v;
      squares += v * v;
    }
    const mean = sum / flat.trees;
    return Math.sqrt(Math.max(0, squares / flat.trees - mean * mean));
  };
}

/** Coalitions as rows of 0/1, n × m. */
export function coalitionRows(masks: readonly Uint8Array[], m: number): Uint8Array {
  const rows = new Uint8Array(masks.length * m);
  masks.forEach((mask, r) => rows.set(mask, r * m));
  return rows;
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
  const spectrum = spectrumOf(tree, wordsFor(tree));
  return Array.from({ length: spectrum.size }, (_, i) => ({ players: spectrum.playersAt(i), c: spectrum.coefficients[i]! }));
}

/**
 * The `most` terms of `treeFourier` with the largest |c| among those whose order passes `keep`,
 * largest first, ties in the spectrum's order: what filtering, stably sorting and slicing the
 * whole spectrum gives, without building player lists or sorting terms that cannot make the cut
 * (at 60 players the spectrum holds about 200,000 terms and a screening keeps a few hundred).
 */
export function largestFourierTerms(tree: TreeNode, keep: (order: number) => boolean, most: number): FourierTerm[] {
  if (most <= 0) return [];
  const spectrum = spectrumOf(tree, wordsFor(tree));
  const c = spectrum.coefficients;
  const kept: number[] = [];
  for (let i = 0; i < spectrum.size; i++) if (keep(spectrum.sizeAt(i))) kept.push(i);
  let cut = -1;
  if (kept.length > most) {
    const sizes = Float64Array.from(kept, (i) => Math.abs(c[i]!)).sort();
    cut = sizes[sizes.length - most]!;
  }
  // Every term above the cut, and those at it in the spectrum's order while places remain.
  let atCut = most - kept.filter((i) => Math.abs(c[i]!) > cut).length;
  const chosen = kept.filter((i) => Math.abs(c[i]!) > cut || (Math.abs(c[i]!) === cut && atCut-- > 0));
  return chosen.sort((a, b) => Math.abs(c[b]!) - Math.abs(c[a]!)).map((i) => ({ players: spectrum.playersAt(i), c: c[i]! }));
}

/** 32-bit words a player set of this tree needs. */
function wordsFor(tree: TreeNode): number {
  return Math.max(1, Math.ceil((maxFeature(tree) + 1) / 32));
}

function maxFeature(node: TreeNode): number {
  return node.feature < 0 ? -1 : Math.max(node.feature, maxFeature(node.out!), maxFeature(node.in!));
}

/**
 * A spectrum as flat arrays in its one order: entry i is the player set held as bits in
 * sets[i·words, (i + 1)·words) with coefficient coefficients[i], found by an open-addressing index.
 * A tree's spectrum holds up to a million terms, each looked up once per level above it: a Map keyed
 * by numbers or big integers spent most of a screening hashing them (about a third of a
 * tree-adjusted solve's CPU at 50 players).
 */
class SpectrumTable {
  readonly sets: Uint32Array;
  readonly coefficients: Float64Array;
  size = 0;
  /** Entry + 1 per slot, 0 for empty; a power of two at least twice the capacity. */
  private readonly slots: Int32Array;

  constructor(
    readonly words: number,
    capacity: number,
  ) {
    this.sets = new Uint32Array(capacity * words);
    this.coefficients = new Float64Array(capacity);
    let slots = 2;
    while (slots < 2 * capacity) slots *= 2;
    this.slots = new Int32Array(slots);
  }

  /** The entry holding the player set at sets[at, at + words) of `from`, or −1. */
  find(from: Uint32Array, at: number): number {
    const mask = this.slots.length - 1;
    for (let slot = hashSet(from, at, this.words, -1) & mask; ; slot = (slot + 1) & mask) {
      const entry = this.slots[slot]! - 1;
      if (entry < 0) return -1;
      if (this.holds(entry, from, at, -1)) return entry;
    }
  }

  /** Adds `c` to the set's coefficient, the set entering last (from 0, as a Map's get-or-0 would). */
  add(from: Uint32Array, at: number, player: number, c: number): void {
    const mask = this.slots.length - 1;
    let slot = hashSet(from, at, this.words, player) & mask;
    for (; this.slots[slot] !== 0; slot = (slot + 1) & mask) {
      const entry = this.slots[slot]! - 1;
      if (this.holds(entry, from, at, player)) {
        this.coefficients[entry] = this.coefficients[entry]! + c;
        return;
      }
    }
    const entry = this.size++;
    const base = entry * this.words;
    for (let w = 0; w < this.words; w++) this.sets[base + w] = wordWith(from, at, w, player);
    this.coefficients[entry] = 0 + c;
    this.slots[slot] = entry + 1;
  }

  sizeAt(entry: number): number {
    let size = 0;
    for (let w = 0; w < this.words; w++) size += bitCount(this.sets[entry * this.words + w]!);
    return size;
  }

  /** The players of an entry's set, ascending. */
  playersAt(entry: number): number[] {
    const players: number[] = [];
    for (let w = 0; w < this.words; w++) {
      const word = this.sets[entry * this.words + w]!;
      for (let b = 0; b < 32; b++) if ((word >>> b) & 1) players.push(w * 32 + b);
    }
    return players;
  }

  private holds(entry: number, from: Uint32Array, at: number, player: number): boolean {
    const base = entry * this.words;
    for (let w = 0; w < this.words; w++) if (this.sets[base + w] !== wordWith(from, at, w, player)) return false;
    return true;
  }
}

/** Word w of the player set at from[at, at + words), with `player` added unless −1 (unsigned, as stored). */
function wordWith(from: Uint32Array, at: number, w: number, player: number): number {
  return player >= 0 && w === player >>> 5 ? (from[at + w]! | (1 << (player & 31))) >>> 0 : from[at + w]!;
}

/** A player set's hash (its words, with `player` added unless −1). */
function hashSet(from: Uint32Array, at: number, words: number, player: number): number {
  let hash = 0x811c9dc5;
  for (let w = 0; w < words; w++) {
    hash = Math.imul(hash ^ wordWith(from, at, w, player), 0x9e3779b1);
    hash ^= hash >>> 15;
  }
  return hash >>> 0;
}

/**
 * The spectrum of a subtree, its sets in `words` 32-bit words. Keys come in left's order, then
 * right's own: the order of the union, which ties keep. A path never splits on a player twice,
 * so the children's sets never hold the split player.
 */
function spectrumOf(node: TreeNode, words: number): SpectrumTable {
  if (node.feature < 0) {
    const leaf = new SpectrumTable(words, 1);
    leaf.add(new Uint32Array(words), 0, -1, node.value);
    return leaf;
  }
  const left = spectrumOf(node.out!, words);
  const right = spectrumOf(node.in!, words);
  const out = new SpectrumTable(words, 2 * (left.size + right.size));
  // The set S (coefficients l left, r right) gives (l + r)/2 to S and (l − r)/2 to S ∪ {f}.
  const split = (from: Uint32Array, at: number, l: number, r: number): void => {
    out.add(from, at, -1, (l + r) / 2);
    out.add(from, at, node.feature, (l - r) / 2);
  };
  for (let i = 0; i < left.size; i++) {
    const j = right.find(left.sets, i * words);
    split(left.sets, i * words, left.coefficients[i]!, j < 0 ? 0 : right.coefficients[j]!);
  }
  for (let j = 0; j < right.size; j++) {
    if (left.find(right.sets, j * words) < 0) split(right.sets, j * words, 0, right.coefficients[j]!);
  }
  return out;
}

/** Set bits of an integer below 2^32. */
function bitCount(word: number): number {
  let x = word >>> 0;
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}
