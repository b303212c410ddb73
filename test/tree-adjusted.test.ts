import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KernelShapDesign, solveKernelShap, solveKernelShapByFold } from '../src/explain/kernel-shap.js';
import { seededRandom } from '../src/explain/random.js';
import { fitBaggedForest, fitForest, fitTree, forestPredictor, forestShapley, largestFourierTerms, outOfBagPredictions, predictForest, predictTree, type TreeNode, treeFourier } from '../src/explain/regression-tree.js';
import { leadingTriples, MAX_ODD_TERMS, mixingWeights, screenedOddTerms, SOLVE_PRECISION, seemUnbiased, solveShapley, solveTreeAdjusted, treeAdjustedSeconds, withoutGroups } from '../src/explain/tree-adjusted.js';
import { exactShapley, relativeSquaredError } from './support/exact-shapley.js';
import { bitsOf, imageGame } from './support/image-game.js';
import { oddShap } from '../bench/anchors/oddshap.js';
import { regressionMsr } from '../bench/anchors/regression-msr.js';


function exactOf(m: number, outputs: number, game: (mask: Uint8Array) => Float64Array): Float64Array[] {
  return exactShapley(m, outputs, (s) => Array.from(game(bitsOf(s, m))));
}

/** Our design at `budget`, seeded by `seed`, with the game's answers on it and on the full and empty coalitions. */
function sampled(m: number, budget: number, seed: number, game: (mask: Uint8Array) => Float64Array) {
  const design = KernelShapDesign.plan(m, budget, seededRandom(seed));
  return { design, values: design.masks.map(game), full: game(new Uint8Array(m).fill(1)), empty: game(new Uint8Array(m)) };
}

function run(m: number, budget: number, seed: number, game: (mask: Uint8Array) => Float64Array, estimator: 'kernel' | 'tree-adjusted') {
  const { design, values, full, empty } = sampled(m, budget, seed, game);
  return { design, full, empty, solution: solveShapley(design, values, full, empty, { estimator, seed }) };
}

describe('regression trees over coalitions', () => {
  it("a forest's Shapley values equal exact enumeration of the forest's own game", () => {
    const m = 7;
    const game = imageGame(m, 3);
    const rows = new Uint8Array(128 * m);
    const targets = new Float64Array(128);
    for (let s = 0; s < 128; s++) {
      rows.set(bitsOf(s, m), s * m);
      targets[s] = game(bitsOf(s, m))[0]! + (s % 5) * 0.01;
    }
    const forest = fitForest({ players: m, rows, targets }, seededRandom(1), 5);
    const exact = exactShapley(m, 1, (s) => [predictForest(forest, bitsOf(s, m))])[0]!;
    const fast = forestShapley(forest, m);
    for (let i = 0; i < m; i++) assert.ok(Math.abs(fast[i]! - exact[i]!) < 1e-12, `player ${i}: ${fast[i]} vs ${exact[i]}`);
  });

  it("a forest's flattened predictor gives predictForest's values exactly", () => {
    const m = 12;
    const random = seededRandom(8);
    const n = 200;
    const rows = Uint8Array.from({ length: n * m }, () => (random() < 0.5 ? 1 : 0));
    const targets = Float64Array.from({ length: n }, (_, r) => random() + 3 * rows[r * m]! * rows[r * m + 5]!);
    const forest = fitForest({ players: m, rows, targets }, seededRandom(4), 7);
    const predict = forestPredictor(forest);
    for (let s = 0; s < 2 ** m; s += 7) assert.equal(predict(bitsOf(s, m)), predictForest(forest, bitsOf(s, m)), `coalition ${s}`);
    // One leaf alone: a forest of stumps that never split.
    const constant = forestPredictor([{ feature: -1, value: 0.25 }, { feature: -1, value: 0.75 }]);
    assert.equal(constant(bitsOf(5, m)), 0.5);
  });

  it("out of bag: each row is predicted by the trees that did not see it, which are not shrunk toward it as the whole forest's are", () => {
    const m = 10;
    const random = seededRandom(12);
    const n = 300;
    const rows = Uint8Array.from({ length: n * m }, () => (random() < 0.5 ? 1 : 0));
    // Pure noise: no tree can predict a row it did not see, and a fully grown tree copies one it did.
    const targets = Float64Array.from({ length: n }, () => random());
    const data = { players: m, rows, targets };
    const bagged = fitBaggedForest(data, seededRandom(3), 30);
    assert.deepEqual(bagged.trees, fitForest(data, seededRandom(3), 30), 'the same trees as fitForest');
    const outOfBag = outOfBagPredictions(bagged, rows, m, n);
    let leftOut = 0;
    for (let r = 0; r < n; r++) {
      const mask = rows.subarray(r * m, (r + 1) * m);
      const unseen = bagged.trees.filter((_, t) => bagged.outOfBag[t]![r] === 1);
      leftOut += unseen.length;
      const expected = unseen.reduce((sum, tree) => sum + predictTree(tree, mask), 0) / unseen.length;
      assert.ok(Math.abs(outOfBag[r]! - expected) < 1e-12, `row ${r}: ${outOfBag[r]} vs ${expected}`);
    }
    // A bootstrap leaves out about 1/e of the rows.
    const share = leftOut / (n * 30);
    assert.ok(share > 0.33 && share < 0.41, `out-of-bag share ${share}`);
    const mean = targets.reduce((a, b) => a + b, 0) / n;
    const variance = targets.reduce((a, t) => a + (t - mean) ** 2, 0) / n;
    const predict = forestPredictor(bagged.trees);
    let inBagSquares = 0;
    let outOfBagSquares = 0;
    for (let r = 0; r < n; r++) {
      inBagSquares += (targets[r]! - predict(rows.subarray(r * m, (r + 1) * m))) ** 2 / n;
      outOfBagSquares += (targets[r]! - outOfBag[r]!) ** 2 / n;
    }
    assert.ok(outOfBagSquares > 0.9 * variance, `out-of-bag residuals ${outOfBagSquares} against the noise's variance ${variance}`);
    assert.ok(inBagSquares < 0.6 * outOfBagSquares, `whole-forest residuals ${inBagSquares} against out-of-bag ${outOfBagSquares}`);
  });

  it('a tree is the CART that sums every node over its own rows, splits and values alike, though children take sums from their parent', () => {
    // The reference: per node and player, the rows' sums taken directly (no parent minus sibling).
    // Ties go to the first player in the same random order, drawn as the tree draws it.
    const reference = (rows: Uint8Array, targets: Float64Array, weights: Float64Array, m: number, minLeaf: number, maxDepth: number): TreeNode => {
      const random = seededRandom(1);
      const order = Array.from({ length: m }, (_, i) => i);
      const grow = (members: number[], depth: number): TreeNode => {
        let w = 0;
        let wy = 0;
        let wyy = 0;
        for (const r of members) {
          w += weights[r]!;
          wy += weights[r]! * targets[r]!;
          wyy += weights[r]! * targets[r]! ** 2;
        }
        const value = wy / w;
        if (depth >= maxDepth || members.length < 2 * minLeaf || wyy - (wy * wy) / w <= 1e-14 * Math.max(1, wyy)) return { feature: -1, value };
        for (let i = m - 1; i > 0; i--) {
          const j = Math.floor(random() * (i + 1));
          [order[i], order[j]] = [order[j]!, order[i]!];
        }
        let best = -1;
        let bestGain = 1e-12 * Math.max(1, wyy - (wy * wy) / w);
        for (const f of order) {
          const inside = members.filter((r) => rows[r * m + f]);
          const w1 = inside.reduce((a, r) => a + weights[r]!, 0);
          const wy1 = inside.reduce((a, r) => a + weights[r]! * targets[r]!, 0);
          if (w1 <= 0 || w1 >= w || inside.length < minLeaf || members.length - inside.length < minLeaf) continue;
          const gain = (wy1 * wy1) / w1 + ((wy - wy1) * (wy - wy1)) / (w - w1) - (wy * wy) / w;
          if (gain > bestGain) [best, bestGain] = [f, gain];
        }
        if (best < 0) return { feature: -1, value };
        return { feature: best, value, out: grow(members.filter((r) => !rows[r * m + best]), depth + 1), in: grow(members.filter((r) => rows[r * m + best]), depth + 1) };
      };
      return grow(Array.from(targets.keys()).filter((r) => weights[r]! > 0), 0);
    };
    const same = (a: TreeNode, b: TreeNode, at: string): void => {
      assert.equal(a.feature, b.feature, `split at ${at}`);
      assert.ok(Math.abs(a.value - b.value) <= 1e-12, `value at ${at}`);
      if (a.feature >= 0) {
        same(a.out!, b.out!, `${at}0`);
        same(a.in!, b.in!, `${at}1`);
      }
    };
    for (const [m, minLeaf, maxDepth] of [[12, 1, Infinity], [40, 3, Infinity], [25, 1, 6]] as const) {
      const random = seededRandom(m);
      const n = 400;
      const rows = Uint8Array.from({ length: n * m }, () => (random() < 0.5 ? 1 : 0));
      // Multiples of 2^−20: every sum of them is exact here, as the tree's are (its split search
      // sums whole multiples of a power of 2), so ties (equal gains, common a few levels down) are
      // exact in both and go to the random order.
      const targets = Float64Array.from({ length: n }, (_, r) => Math.round((3 * rows[r * m]! * rows[r * m + 1]! + rows[r * m + 2]! + random()) * 2 ** 20) / 2 ** 20);
      const weights = new Float64Array(n);
      for (let i = 0; i < n; i++) weights[Math.floor(random() * n)]! += 1;
      const tree = fitTree({ players: m, rows, targets }, weights, seededRandom(1), { minSamplesLeaf: minLeaf, maxDepth });
      same(tree, reference(rows, targets, weights, m, minLeaf, maxDepth), 'root ');
    }
    assert.throws(() => fitTree({ players: 2, rows: Uint8Array.of(0, 1, 1, 0), targets: Float64Array.of(0, 1) }, Float64Array.of(1, 0.5), seededRandom(1)), /whole numbers/);
  });

  it('players with the same rows in a node tie, and the random order picks among them, below the root too', () => {
    // Player 5 is the root's split, in 70 % of rows. Where it is in, players 0, 1 and 2 always come
    // together; where it is out, they do not. So the larger child's split is one of 0, 1 and 2,
    // whose sums there are the root's minus the other child's: different sums, the same rows, and
    // (targets of any precision) the same gain to the last bit. Summed as plain floats instead,
    // the three differences differ in their last bits on 15 of 40 such datasets (checked
    // 2026-12-01), and one player wins every time: ten datasets tell the two apart.
    const m = 6;
    const n = 300;
    const pooled = new Map<number, number>();
    for (let data = 0; data < 10; data++) {
      const random = seededRandom(100 + data);
      const rows = new Uint8Array(n * m);
      const targets = new Float64Array(n);
      for (let r = 0; r < n; r++) {
        const root = random() < 0.7 ? 1 : 0;
        const together = random() < 0.5 ? 1 : 0;
        for (let f = 0; f < 5; f++) rows[r * m + f] = root && f < 3 ? together : random() < 0.5 ? 1 : 0;
        rows[r * m + 5] = root;
        targets[r] = 10 * root + 2 * rows[r * m]! * rows[r * m + 1]! * rows[r * m + 2]! + 0.5 * rows[r * m + 3]! * rows[r * m + 4]! + 0.1 * random();
      }
      const splits = new Map<number, number>();
      for (let seed = 0; seed < 30; seed++) {
        const tree = fitTree({ players: m, rows, targets }, new Float64Array(n).fill(1), seededRandom(seed));
        assert.equal(tree.feature, 5);
        splits.set(tree.in!.feature, (splits.get(tree.in!.feature) ?? 0) + 1);
        pooled.set(tree.in!.feature, (pooled.get(tree.in!.feature) ?? 0) + 1);
      }
      assert.deepEqual([...splits.keys()].sort(), [0, 1, 2], `dataset ${data}: ${[...splits]}`);
      for (const count of splits.values()) assert.ok(count >= 5, `dataset ${data}: each of the three at least a sixth of the time: ${[...splits]}`);
    }
    for (const count of pooled.values()) assert.ok(count >= 75, `each of the three about a third of the time: ${[...pooled]}`);
  });

  it('a tree keeps minSamplesLeaf rows in every leaf, and splits down to single rows without it', () => {
    const m = 8;
    const random = seededRandom(5);
    const n = 300;
    const rows = Uint8Array.from({ length: n * m }, () => (random() < 0.5 ? 1 : 0));
    const targets = Float64Array.from({ length: n }, () => random());
    const leafSizes = (tree: TreeNode): number[] => {
      const sizes = new Map<TreeNode, number>();
      for (let r = 0; r < n; r++) {
        let node = tree;
        while (node.feature >= 0) node = (rows[r * m + node.feature] ? node.in : node.out)!;
        sizes.set(node, (sizes.get(node) ?? 0) + 1);
      }
      return [...sizes.values()];
    };
    for (const minSamplesLeaf of [2, 5, 20]) {
      const sizes = leafSizes(fitTree({ players: m, rows, targets }, new Float64Array(n).fill(1), seededRandom(1), { minSamplesLeaf }));
      assert.ok(Math.min(...sizes) >= minSamplesLeaf, `${minSamplesLeaf}: smallest leaf ${Math.min(...sizes)}`);
    }
    // Without it a leaf may hold one row (random targets never tie, so only equal coalitions share one).
    assert.equal(Math.min(...leafSizes(fitTree({ players: m, rows, targets }, new Float64Array(n).fill(1), seededRandom(1)))), 1);
  });

  it("a tree's Walsh–Fourier spectrum reproduces its predictions everywhere", () => {
    const m = 6;
    const game = imageGame(m, 4);
    const rows = new Uint8Array(64 * m);
    const targets = new Float64Array(64);
    for (let s = 0; s < 64; s++) {
      rows.set(bitsOf(s, m), s * m);
      targets[s] = game(bitsOf(s, m))[0]!;
    }
    const tree = fitTree({ players: m, rows, targets }, new Float64Array(64).fill(1), seededRandom(2), { maxDepth: 4 });
    const spectrum = treeFourier(tree);
    for (let s = 0; s < 64; s++) {
      let value = 0;
      for (const { players, c } of spectrum) value += c * (players.reduce((p, j) => p ^ ((s >> j) & 1), 0) ? -1 : 1);
      assert.ok(Math.abs(value - predictForest([tree], bitsOf(s, m))) < 1e-12);
    }
  });

  it('the spectrum is the same when players in later words of a player set and at their top bits are split on', () => {
    // Player sets are held as 32-bit words: the tree splits on players of the second to seventh
    // word and on each word's top bit (31, 63, whose word reads as negative in 32-bit arithmetic).
    for (const [m, high] of [[64, [31, 63, 32]], [60, [55, 58, 40]], [200, [70, 130, 199]]] as const) {
      const random = seededRandom(9);
      const n = 400;
      const rows = Uint8Array.from({ length: n * m }, () => (random() < 0.5 ? 1 : 0));
      const [a, b, c] = high;
      const targets = Float64Array.from({ length: n }, (_, r) => rows[r * m + a]! * 2 + (rows[r * m + b]! & rows[r * m + 3]!) - rows[r * m + c]! * 0.5 + 0.1 * rows[r * m + 7]!);
      const tree = fitTree({ players: m, rows, targets }, new Float64Array(n).fill(1), seededRandom(2), { maxDepth: 5 });
      const spectrum = treeFourier(tree);
      for (const j of high) assert.ok(spectrum.some((t) => t.players.includes(j)), `player ${j} of ${m}`);
      for (let r = 0; r < 50; r++) {
        const mask = rows.subarray(r * m, (r + 1) * m);
        let value = 0;
        for (const { players, c } of spectrum) value += c * (players.reduce((p, j) => p ^ mask[j]!, 0) ? -1 : 1);
        assert.ok(Math.abs(value - predictForest([tree], mask)) < 1e-12, `${m} players, row ${r}`);
      }
    }
  });

  it('the largest odd Fourier terms are those of the whole spectrum filtered, stably sorted and cut, ties included', () => {
    const odd = (order: number): boolean => order >= 3 && order % 2 === 1;
    let tiedCuts = 0;
    for (const m of [14, 40, 70]) {
      const random = seededRandom(m);
      const n = 600;
      const rows = Uint8Array.from({ length: n * m }, () => (random() < 0.5 ? 1 : 0));
      // Whole-number targets give many coefficients of equal size: the cut falls inside a tie.
      const targets = Float64Array.from({ length: n }, (_, r) => Math.round(4 * random()) + rows[r * m]! * rows[r * m + 1]!);
      const tree = fitTree({ players: m, rows, targets }, new Float64Array(n).fill(1), seededRandom(3), { maxDepth: 8 });
      const whole = treeFourier(tree)
        .filter((t) => odd(t.players.length))
        .sort((x, y) => Math.abs(y.c) - Math.abs(x.c));
      for (let most = 0; most <= Math.min(whole.length + 2, 80); most++) {
        if (most > 0 && most < whole.length && Math.abs(whole[most - 1]!.c) === Math.abs(whole[most]!.c)) tiedCuts += 1;
        assert.deepEqual(largestFourierTerms(tree, odd, most), whole.slice(0, most), `${m} players, ${most} terms`);
      }
    }
    assert.ok(tiedCuts > 10, `cuts inside a tie: ${tiedCuts}`);
  });
});

describe('Kernel SHAP with odd interaction terms', () => {
  it('without extra terms it is Kernel SHAP; with every odd triple it stays exact on a complete design', () => {
    const m = 6;
    const game = imageGame(m, 5);
    const design = KernelShapDesign.plan(m, 2 ** m, seededRandom(1));
    assert.ok(design.exact);
    const values = design.masks.map(game);
    const full = game(new Uint8Array(m).fill(1));
    const empty = game(new Uint8Array(m));
    const exact = exactOf(m, 2, game);
    const triples: number[][] = [];
    for (let a = 0; a < m; a++) for (let b = a + 1; b < m; b++) for (let c = b + 1; c < m; c++) triples.push([a, b, c]);
    for (const solution of [solveKernelShap(design, values, full, empty), solveKernelShap(design, values, full, empty, triples)]) {
      for (let o = 0; o < 2; o++) for (let i = 0; i < m; i++) assert.ok(Math.abs(solution.values[o]![i]! - exact[o]![i]!) < 1e-9);
    }
  });

  it('a game made of one odd triple is recovered exactly from a sample once the triple is a term', () => {
    const m = 10;
    const game = (mask: Uint8Array): Float64Array => Float64Array.of(0.3 * mask[1]! - 0.2 * mask[7]! + ((mask[2]! ^ mask[5]! ^ mask[8]!) ? 1 : 0));
    const design = KernelShapDesign.plan(m, 120, seededRandom(4));
    assert.ok(!design.exact);
    const values = design.masks.map(game);
    const solution = solveKernelShap(design, values, game(new Uint8Array(m).fill(1)), game(new Uint8Array(m)), [[2, 5, 8]]);
    const exact = exactOf(m, 1, game)[0]!;
    const plain = solveKernelShap(design, values, game(new Uint8Array(m).fill(1)), game(new Uint8Array(m)));
    assert.ok(relativeSquaredError(solution.values[0]!, exact) < 1e-20, 'with the term: exact');
    assert.ok(relativeSquaredError(plain.values[0]!, exact) > 1e-6, 'without it: sampling error');
  });

  it("solves a fixed game's jackknife replicates in one pass, as refitting each replicate's rows does", () => {
    const m = 10;
    const { design, values, full, empty } = sampled(m, 300, 3, imageGame(m, 13));
    const terms = [
      [0, 1, 2],
      [2, 3, 4],
    ];
    const folds = 4;
    const byFold = solveKernelShapByFold(design, values, full, empty, terms, (g) => g % folds, folds);
    assert.deepEqual(byFold.values, solveKernelShap(design, values, full, empty, terms, false).values);
    assert.equal(byFold.replicates.length, folds);
    for (let k = 0; k < folds; k++) {
      const part = withoutGroups(design, (g) => g % folds === k);
      assert.ok(part.design.masks.length < design.masks.length);
      const refit = solveKernelShap(part.design, part.keep.map((c) => values[c]!), full, empty, terms, false).values;
      refit.forEach((phi, o) => phi.forEach((v, i) => assert.ok(Math.abs(byFold.replicates[k]![o]![i]! - v) < 1e-9, `fold ${k}, output ${o}, player ${i}`)));
      assert.notDeepEqual(byFold.replicates[k], byFold.values);
    }
  });

  it('leading triples come from the players with the largest values, within the budget', () => {
    const terms = leadingTriples(Float64Array.of(0.1, -0.9, 0.05, 0.5, 0.3, -0.01), 8 * 4);
    assert.deepEqual(terms, [[0, 1, 3], [0, 1, 4], [0, 3, 4], [1, 3, 4]]);
    assert.deepEqual(leadingTriples(Float64Array.of(1, 2, 3), 7), []);
  });

  it('keeps to MAX_ODD_TERMS terms per regression however large the budget', () => {
    const phi = Float64Array.from({ length: 40 }, (_, i) => (i + 1) / 40);
    const triples = leadingTriples(phi, 1e6);
    assert.ok(triples.length <= MAX_ODD_TERMS && triples.length > MAX_ODD_TERMS / 2, String(triples.length));
    // 4,000 calls over 12 players would screen 388 Fourier terms at 10 calls per term.
    const m = 12;
    const design = KernelShapDesign.plan(m, 4000, seededRandom(8));
    const random = seededRandom(9);
    const targets = Float64Array.from(design.masks, (mask) => imageGame(m, 14)(mask)[0]! + 0.1 * random());
    const rows = new Uint8Array(design.masks.length * m);
    design.masks.forEach((mask, r) => rows.set(mask, r * m));
    assert.equal(screenedOddTerms(design, targets, rows, 1).length, MAX_ODD_TERMS);
  });
});

describe('tree-adjusted estimator', () => {
  it('is exact when every coalition is evaluated, for every output', () => {
    const m = 8;
    const game = imageGame(m, 6);
    const { design, solution } = run(m, 2 ** m, 1, game, 'tree-adjusted');
    assert.ok(design.exact);
    const exact = exactOf(m, 2, game);
    for (let o = 0; o < 2; o++) for (let i = 0; i < m; i++) assert.ok(Math.abs(solution.values[o]![i]! - exact[o]![i]!) < 1e-9);
  });

  it('holds efficiency exactly at every budget and output', () => {
    const m = 12;
    const game = imageGame(m, 7);
    for (const budget of [40, 150, 600]) {
      const { full, empty, solution } = run(m, budget, 2, game, 'tree-adjusted');
      for (let o = 0; o < 2; o++) {
        const sum = solution.values[o]!.reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(sum - (full[o]! - empty[o]!)) < 1e-9, `budget ${budget}, output ${o}: ${sum} vs ${full[o]! - empty[o]!}`);
      }
    }
  });

  it('repeats exactly per seed, and differs across seeds', () => {
    const m = 12;
    const game = imageGame(m, 8);
    const a = run(m, 300, 3, game, 'tree-adjusted').solution;
    const b = run(m, 300, 3, game, 'tree-adjusted').solution;
    const c = run(m, 300, 4, game, 'tree-adjusted').solution;
    assert.deepEqual(a.values, b.values);
    assert.deepEqual(a.standardErrors, b.standardErrors);
    assert.notDeepEqual(a.values, c.values);
  });

  it('uses the same coalitions as Kernel SHAP, none twice', () => {
    const m = 12;
    const game = imageGame(m, 9);
    const adjusted = run(m, 300, 5, game, 'tree-adjusted').design;
    const kernel = run(m, 300, 5, game, 'kernel').design;
    assert.deepEqual(adjusted.masks, kernel.masks);
    assert.equal(new Set(adjusted.masks.map((x) => x.join(''))).size, adjusted.masks.length);
  });

  it('beats Kernel SHAP on a game with joint segments, and its ±1.96 SE cover 90–98 % of true errors', () => {
    const m = 12;
    const game = imageGame(m, 10);
    const exact = exactOf(m, 2, game);
    let inside = 0;
    let total = 0;
    const errors = { adjusted: 0, kernel: 0 };
    for (let seed = 0; seed < 24; seed++) {
      const adjusted = run(m, 400, seed, game, 'tree-adjusted').solution;
      const kernel = run(m, 400, seed, game, 'kernel').solution;
      errors.adjusted += relativeSquaredError(adjusted.values[0]!, exact[0]!);
      errors.kernel += relativeSquaredError(kernel.values[0]!, exact[0]!);
      for (let o = 0; o < 2; o++) {
        for (let i = 0; i < m; i++) {
          total += 1;
          if (Math.abs(adjusted.values[o]![i]! - exact[o]![i]!) <= 1.96 * adjusted.standardErrors[o]![i]!) inside += 1;
        }
      }
    }
    const coverage = inside / total;
    assert.ok(errors.adjusted * 5 < errors.kernel, `error ${errors.adjusted / 24} vs Kernel SHAP ${errors.kernel / 24}`);
    assert.ok(coverage >= 0.9 && coverage <= 0.98, `coverage ${coverage}`);
  });

  it('from 2 coalitions per player the forest answers and beats Kernel SHAP; below that Kernel SHAP answers', () => {
    const m = 12;
    const game = imageGame(m, 12);
    const exact = exactOf(m, 2, game);
    const errors = { adjusted: 0, kernel: 0 };
    for (let seed = 0; seed < 10; seed++) {
      errors.adjusted += relativeSquaredError(run(m, 2 * m + 6, seed, game, 'tree-adjusted').solution.values[0]!, exact[0]!);
      errors.kernel += relativeSquaredError(run(m, 2 * m + 6, seed, game, 'kernel').solution.values[0]!, exact[0]!);
    }
    assert.ok(errors.adjusted * 1.5 < errors.kernel, `error ${errors.adjusted / 10} vs Kernel SHAP ${errors.kernel / 10}`);
    const below = run(m, 2 * m - 2, 1, game, 'tree-adjusted').solution;
    assert.deepEqual(below, run(m, 2 * m - 2, 1, game, 'kernel').solution);
  });

  it('standard errors keep to the precision of the solves, so an estimate exact up to rounding still covers', () => {
    // A conjunction of three segments: a forest fits it exactly, and the Fourier terms too.
    const m = 10;
    const game = (mask: Uint8Array): Float64Array => Float64Array.of(mask[0]! & mask[1]! & mask[2]!, 0.3 * mask[4]! + (mask[0]! & mask[1]! & mask[2]!));
    const exact = exactOf(m, 2, game);
    for (const seed of [1, 2, 3]) {
      const { solution } = run(m, 600, seed, game, 'tree-adjusted');
      for (let o = 0; o < 2; o++) {
        const scale = solution.values[o]!.reduce((a, v) => a + Math.abs(v), 0);
        for (let i = 0; i < m; i++) {
          const error = Math.abs(solution.values[o]![i]! - exact[o]![i]!);
          assert.ok(error < 1e-6 * scale, `seed ${seed}, output ${o}, player ${i}: error ${error}`);
          assert.ok(error <= 1.96 * solution.standardErrors[o]![i]!, `seed ${seed}, output ${o}, player ${i}: error ${error}, SE ${solution.standardErrors[o]![i]}`);
          assert.ok(solution.standardErrors[o]![i]! >= SOLVE_PRECISION * scale * (1 - 1e-12));
        }
      }
    }
  });

  it("reports its SEs' two parts (each SE is √(spread² + bias²), floored at the solves' precision) and the candidates it mixes", () => {
    const m = 12;
    const { solution } = run(m, 400, 3, imageGame(m, 2), 'tree-adjusted');
    const parts = solution.errorParts;
    assert.ok(parts, 'a tree-adjusted solve with a jackknife gives the parts');
    let biasSeen = false;
    solution.values.forEach((phi, o) => {
      const floor = SOLVE_PRECISION * phi.reduce((a, v) => a + Math.abs(v), 0);
      for (let i = 0; i < m; i++) {
        const spread: number = parts.spread[o]![i]!;
        const bias: number = parts.bias[o]![i]!;
        assert.ok(spread >= 0 && Number.isFinite(bias));
        if (Math.abs(bias) > 1e-3 * spread) biasSeen = true;
        assert.equal(solution.standardErrors[o]![i], Math.max(floor, Math.sqrt(spread ** 2 + bias ** 2)), `output ${o}, player ${i}`);
      }
    });
    // The bias part is not zero throughout: the mix gives the forest alone a share, and its misfit.
    assert.ok(biasSeen);
    // Kernel SHAP's SEs are its jackknife's alone: it gives no parts.
    const kernel = run(m, 400, 3, imageGame(m, 2), 'kernel').solution;
    assert.equal(kernel.errorParts, undefined);
    // The answer is the mix of the five candidates it reports, with the weights it reports; the
    // second candidate is Kernel SHAP on the same coalitions.
    let mixed = 0;
    solution.values.forEach((phi, o) => {
      const candidates = parts.candidates[o]!;
      const weights = parts.weights[o]!;
      assert.equal(candidates.length, 5);
      assert.equal(weights.length, 5);
      assert.ok(weights.every((w) => w >= 0));
      assert.ok(Math.abs(weights.reduce((a, w) => a + w, 0) - 1) < 1e-12);
      if (weights.filter((w) => w > 0).length > 1) mixed += 1;
      const scale = phi.reduce((a, v) => a + Math.abs(v), 0);
      for (let i = 0; i < m; i++) {
        const combined = candidates.reduce((a, c, j) => a + weights[j]! * c[i]!, 0);
        assert.ok(Math.abs(combined - phi[i]!) <= 1e-12 * scale, `output ${o}, player ${i}: ${combined} against ${phi[i]}`);
        assert.ok(Math.abs(candidates[1]![i]! - kernel.values[o]![i]!) <= 1e-9 * scale, `output ${o}, player ${i}: Kernel SHAP candidate`);
      }
    });
    // At least one output mixes more than one candidate: the weights are not a bare choice.
    assert.ok(mixed > 0);
  });

  it('only the outputs it is told to adjust get a forest; the rest are Kernel SHAP', () => {
    const m = 10;
    const { design, values, full, empty } = sampled(m, 200, 6, imageGame(m, 11));
    const onlyFirst = solveTreeAdjusted(design, values, full, empty, 6, [0]);
    const kernel = solveKernelShap(design, values, full, empty);
    assert.deepEqual(onlyFirst.values[1], kernel.values[1]);
    assert.notDeepEqual(onlyFirst.values[0], kernel.values[0]);
    // The adjusted output's answer and SEs are its own: the same to the bit with the other output gone
    // (its regressions are solved for the adjusted outputs alone, however many labels the model has).
    const alone = solveTreeAdjusted(design, values.map((v) => v.subarray(0, 1)), full.subarray(0, 1), empty.subarray(0, 1), 6, [0]);
    assert.deepEqual(alone.values[0], onlyFirst.values[0]);
    assert.deepEqual(alone.standardErrors[0], onlyFirst.standardErrors[0]);
  });
});

describe('the up-front cost estimate', () => {
  it('is nothing where Kernel SHAP answers, and grows with the calls, the segments and the adjusted outputs', () => {
    // Below 2 calls per segment, and for a complete design, the solve is Kernel SHAP's alone.
    assert.equal(treeAdjustedSeconds(2 * 100 - 1, 100, 3), 0);
    assert.equal(treeAdjustedSeconds(2 ** 12 - 2, 12, 3), 0);
    assert.ok(treeAdjustedSeconds(2 * 100, 100, 3) > 0);
    for (const m of [16, 50, 200]) {
      const at = (calls: number): number => treeAdjustedSeconds(calls, m, 1);
      for (let calls = 2 * m + 16; calls < 40_000; calls = Math.ceil(calls * 1.5)) assert.ok(at(Math.ceil(calls * 1.5)) > at(calls), `${m} segments, ${calls} calls`);
      assert.equal(treeAdjustedSeconds(5000, m, 3), 3 * at(5000));
    }
    assert.ok(treeAdjustedSeconds(5000, 200, 1) > treeAdjustedSeconds(5000, 100, 1));
    // Without guided sampling its forests are not counted.
    assert.ok(treeAdjustedSeconds(5000, 100, 3, false) < treeAdjustedSeconds(5000, 100, 3));
    assert.ok(treeAdjustedSeconds(5000, 100, 3, false) > 0.75 * treeAdjustedSeconds(5000, 100, 3));
  });
});

describe('mixing weights', () => {
  it('put all weight on a candidate with no spread, and split two independent equal spreads evenly', () => {
    const noisy = [Float64Array.of(1, 2), Float64Array.of(2, 1), Float64Array.of(0, 0), Float64Array.of(1, 1)];
    const steady = noisy.map(() => Float64Array.of(5, 5));
    assert.deepEqual(mixingWeights([noisy, steady]), [0, 1]);
    const a = [Float64Array.of(1), Float64Array.of(-1), Float64Array.of(1), Float64Array.of(-1)];
    const b = [Float64Array.of(1), Float64Array.of(1), Float64Array.of(-1), Float64Array.of(-1)];
    const w = mixingWeights([a, b]);
    assert.ok(Math.abs(w[0]! - 0.5) < 1e-12 && Math.abs(w[1]! - 0.5) < 1e-12, String(w));
    assert.deepEqual(mixingWeights([noisy, steady], [true, false]), [1, 0]);
  });

  it('leave out a steady candidate far from Kernel SHAP, unless most candidates are as far', () => {
    const m = 12;
    const random = seededRandom(21);
    const truth = Float64Array.from({ length: m }, (_, i) => i / 4);
    const folds = 10;
    // Replicates of an unbiased estimate with spread `sd` about `centre`, and the estimate itself.
    const around = (centre: Float64Array, sd: number): { point: Float64Array; replicates: Float64Array[] } => {
      const replicates = Array.from({ length: folds }, () => centre.map((v) => v + (sd * (random() - 0.5)) / Math.sqrt(folds)));
      return { point: centre.map((v) => v + sd * (random() - 0.5) * 0.3), replicates };
    };
    const kernel = around(truth, 0.4);
    const steady = (shift: number) => around(truth.map((v) => v + shift), 0.001);
    // Candidates 0, 2, 4 unbiased and steady, 3 steady but off by 1 per player: only 3 goes.
    const unbiasedSet = [steady(0), kernel, steady(0), steady(1), steady(0)];
    assert.deepEqual(
      seemUnbiased(unbiasedSet.map((c) => c.point), unbiasedSet.map((c) => c.replicates)),
      [true, true, true, false, true],
    );
    // Every other candidate agrees with each other and is far from Kernel SHAP: it is Kernel SHAP that strayed.
    const strayed = [steady(1), kernel, steady(1), steady(1), steady(1)];
    assert.deepEqual(
      seemUnbiased(strayed.map((c) => c.point), strayed.map((c) => c.replicates)),
      [true, true, true, true, true],
    );
  });
});

describe('benchmark anchors', () => {
  it('RegressionMSR and OddSHAP are exact when the budget covers every coalition', () => {
    const m = 7;
    const game = (mask: Uint8Array): number => imageGame(m, 12)(mask)[0]!;
    const exact = exactShapley(m, 1, (s) => [game(bitsOf(s, m))])[0]!;
    for (const phi of [regressionMsr(m, 2 ** m, game, seededRandom(1), 'forest').values, regressionMsr(m, 2 ** m, game, seededRandom(1), 'tree').values, oddShap(m, 2 ** m, game, seededRandom(1)).values]) {
      assert.ok(relativeSquaredError(phi, exact) < 1e-18, String(relativeSquaredError(phi, exact)));
    }
  });

  it('they charge every distinct coalition, empty and full included, to the budget', () => {
    const m = 12;
    const game = (mask: Uint8Array): number => imageGame(m, 13)(mask)[0]!;
    for (const calls of [64, 300]) {
      assert.equal(regressionMsr(m, calls, game, seededRandom(2), 'forest').calls, calls);
      assert.equal(oddShap(m, calls, game, seededRandom(2)).calls, calls);
    }
  });
});
