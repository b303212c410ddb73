import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultBudget, KernelShapDesign, solveKernelShap } from '../src/explain/kernel-shap.js';
import { seededRandom } from '../src/explain/random.js';
import { exactShapley, relativeSquaredError } from './support/exact-shapley.js';

/** A non-linear game with interactions: v(S) = sigmoid(Σ a_i s_i + Σ b_ij s_i s_j) · (1 + 0.3 s_0 s_1 s_2). */
function makeGame(m: number, seed: number): (mask: Uint8Array) => number {
  const random = seededRandom(seed);
  const a = Array.from({ length: m }, () => random() * 2 - 1);
  const b = Array.from({ length: m * m }, () => (random() * 2 - 1) * 0.4);
  return (mask) => {
    let z = 0;
    for (let i = 0; i < m; i++) {
      if (!mask[i]) continue;
      z += a[i]!;
      for (let j = 0; j < i; j++) if (mask[j]) z += b[i * m + j]!;
    }
    return (1 / (1 + Math.exp(-z))) * (1 + 0.3 * (mask[0]! & mask[1]! & mask[2]!));
  };
}

/** Exact Shapley values of a game on masks, through the shared enumeration reference. */
function exactShapleyOf(m: number, game: (mask: Uint8Array) => number): Float64Array {
  const mask = new Uint8Array(m);
  return exactShapley(m, 1, (s) => {
    for (let i = 0; i < m; i++) mask[i] = (s >> i) & 1;
    return [game(mask)];
  })[0]!;
}

function explain(m: number, budget: number, seed: number, game: (mask: Uint8Array) => number): { phi: Float64Array; se: Float64Array; calls: number; exact: boolean } {
  const plan = KernelShapDesign.plan(m, budget, seededRandom(seed));
  const values = plan.masks.map((mask) => Float64Array.of(game(mask)));
  const full = Float64Array.of(game(new Uint8Array(m).fill(1)));
  const empty = Float64Array.of(game(new Uint8Array(m)));
  const solution = solveKernelShap(plan, values, full, empty);
  return { phi: solution.values[0]!, se: solution.standardErrors[0]!, calls: plan.masks.length, exact: plan.exact };
}

describe('Kernel SHAP estimator', () => {
  for (const m of [4, 8, 12]) {
    it(`equals exact Shapley values (|error| < 1e-9) with a budget of 2^M − 2, M = ${m}`, () => {
      const game = makeGame(m, m);
      const exact = exactShapleyOf(m, game);
      const ours = explain(m, 2 ** m - 2, 1, game);
      assert.equal(ours.exact, true);
      assert.equal(ours.calls, 2 ** m - 2);
      for (let i = 0; i < m; i++) assert.ok(Math.abs(ours.phi[i]! - exact[i]!) < 1e-9, `φ${i}: ${ours.phi[i]} vs ${exact[i]}`);
    });
  }

  it('holds efficiency to 1e-9 at every budget', () => {
    const m = 16;
    const game = makeGame(m, 3);
    const delta = game(new Uint8Array(m).fill(1)) - game(new Uint8Array(m));
    for (const budget of [10, 33, 100, 500, 2050]) {
      const { phi } = explain(m, budget, 7, game);
      const sum = phi.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - delta) < 1e-9, `budget ${budget}: Σφ = ${sum}, f(all) − f(none) = ${delta}`);
    }
  });

  it('never plans the same coalition twice, nor the empty or full one, and stays within budget', () => {
    for (const [m, budget] of [[16, 2050], [10, 300], [20, 777]] as const) {
      const plan = KernelShapDesign.plan(m, budget, seededRandom(5));
      const keys = new Set(plan.masks.map((mask) => mask.join('')));
      assert.equal(keys.size, plan.masks.length, 'duplicates');
      assert.ok(plan.masks.length <= budget, `${plan.masks.length} > ${budget}`);
      assert.ok(plan.masks.length >= budget - 1, `budget unused: ${plan.masks.length} of ${budget}`);
      for (const mask of plan.masks) {
        const size = mask.reduce((a, b) => a + b, 0);
        assert.ok(size > 0 && size < m);
      }
    }
  });

  it('is deterministic for a seed and differs between seeds', () => {
    const game = makeGame(16, 9);
    assert.deepEqual(explain(16, 600, 42, game).phi, explain(16, 600, 42, game).phi);
    assert.notDeepEqual(explain(16, 600, 42, game).phi, explain(16, 600, 43, game).phi);
  });

  it('error falls as the budget grows (M = 16, mean over 20 seeds)', () => {
    const m = 16;
    const errors = [512, 2048, 8192].map((budget) => {
      let total = 0;
      for (let seed = 0; seed < 20; seed++) {
        const game = makeGame(m, 100 + seed);
        total += relativeSquaredError(explain(m, budget, seed, game).phi, exactShapleyOf(m, game));
      }
      return total / 20;
    });
    console.log(`Kernel SHAP relative squared error, M = 16, mean of 20 games: ${[512, 2048, 8192].map((b, i) => `${b} calls ${errors[i]!.toExponential(3)}`).join(', ')}`);
    assert.ok(errors[0]! > errors[1]! && errors[1]! > errors[2]!, errors.join(' > '));
  });

  it('standard errors are honest: exact value within ±1.96·SE for 90–98 % of values (M = 16, 100 runs)', () => {
    const m = 16;
    let inside = 0;
    let total = 0;
    for (let seed = 0; seed < 100; seed++) {
      const game = makeGame(m, 500 + (seed % 10));
      const exact = exactShapleyOf(m, game);
      const { phi, se } = explain(m, 1600, seed, game);
      for (let i = 0; i < m; i++) {
        total += 1;
        if (Math.abs(phi[i]! - exact[i]!) <= 1.96 * se[i]!) inside += 1;
      }
    }
    const coverage = inside / total;
    console.log(`95 % interval coverage of the jackknife standard errors: ${(coverage * 100).toFixed(1)} % of ${total} values`);
    assert.ok(coverage >= 0.9 && coverage <= 0.98, `coverage ${coverage}`);
  });

  it('standard errors are 0 when the answer is exact', () => {
    const { se } = explain(8, 254, 1, makeGame(8, 1));
    assert.ok(se.every((v) => v === 0));
  });

  it('default budget is min(2M + 2048, 2^M − 2)', () => {
    assert.equal(defaultBudget(4), 14);
    assert.equal(defaultBudget(12), 2072);
    assert.equal(defaultBudget(20), 2088);
    assert.equal(defaultBudget(64), 2176);
  });

  it('a standard error is 0 only where exact, and unknown (NaN) when the coalitions cannot determine every value', () => {
    const m = 20;
    const game = makeGame(m, 5);
    const solve = (budget: number) => {
      const design = KernelShapDesign.plan(m, budget, seededRandom(3));
      const values = design.masks.map((mask) => Float64Array.of(game(mask)));
      return { design, solution: solveKernelShap(design, values, Float64Array.of(game(new Uint8Array(m).fill(1))), Float64Array.of(game(new Uint8Array(m)))) };
    };
    // Complement pairs give one direction each: fewer than 2 (M − 1) coalitions cannot identify M − 1 free values.
    for (const budget of [1, 2, 10, 30]) {
      const { design, solution } = solve(budget);
      assert.equal(design.exact, false);
      assert.equal(solution.identified, false, `budget ${budget}`);
      assert.ok(solution.standardErrors[0]!.every((se) => Number.isNaN(se)), `budget ${budget}: ${[...solution.standardErrors[0]!].join(',')}`);
    }
    const { solution } = solve(400);
    assert.equal(solution.identified, true);
    assert.ok(solution.standardErrors[0]!.every((se) => Number.isFinite(se) && se > 0), 'sampled values carry a positive, finite error');
    const small = 6;
    const exact = KernelShapDesign.plan(small, 2 ** small - 2, seededRandom(1));
    const smallGame = makeGame(small, 2);
    const exactSolution = solveKernelShap(exact, exact.masks.map((mask) => Float64Array.of(smallGame(mask))), Float64Array.of(smallGame(new Uint8Array(small).fill(1))), Float64Array.of(smallGame(new Uint8Array(small))));
    assert.equal(exact.exact, true);
    assert.ok(exactSolution.standardErrors[0]!.every((se) => se === 0));
  });
});
