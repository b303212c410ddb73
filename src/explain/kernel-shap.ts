/**
 * Kernel SHAP (Lundberg & Lee 2017) over M features, with the improvements that beat plain
 * sampling at an equal number of model calls (as in the shap library's KernelExplainer and
 * Covert & Lee 2021): every coalition size whose whole set of coalitions fits the budget is
 * enumerated (smallest and largest sizes first), the rest is sampled in complement pairs, no
 * coalition is evaluated twice, and with 2^M − 2 ≤ budget the answer is exact. The efficiency
 * constraint (Σφ = f(all) − f(none)) is imposed exactly by eliminating one variable.
 */
import type { Random } from './random.js';

export interface CoalitionPlan {
  readonly features: number;
  /** One mask per model call: 1 = feature present. Never the empty or the full coalition, never repeated. */
  readonly masks: readonly Uint8Array[];
  /** Regression weight of each mask. */
  readonly weights: Float64Array;
  /** All 2^M − 2 coalitions with their exact kernel weights: the solution is the exact Shapley value. */
  readonly exact: boolean;
}

/** C(n, k); each step's value is C(n − k + i, i), an integer, so it is exact below 2^53. */
function binomial(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return r;
}

/** Kernel weight of one coalition of size s: (M − 1) / (C(M, s) · s · (M − s)). */
export function shapleyKernelWeight(m: number, size: number): number {
  return (m - 1) / (binomial(m, size) * size * (m - size));
}

/** Default budget when num_samples is absent: min(2M + 2048, 2^M − 2). */
export function defaultBudget(m: number): number {
  return m >= 31 ? 2 * m + 2048 : Math.min(2 * m + 2048, 2 ** m - 2);
}

function* subsetsOfSize(m: number, size: number): Generator<Uint8Array> {
  const index = Array.from({ length: size }, (_, i) => i);
  for (;;) {
    const mask = new Uint8Array(m);
    for (const i of index) mask[i] = 1;
    yield mask;
    let i = size - 1;
    while (i >= 0 && index[i] === m - size + i) i--;
    if (i < 0) return;
    index[i]! += 1;
    for (let j = i + 1; j < size; j++) index[j] = index[j - 1]! + 1;
  }
}

const keyOf = (mask: Uint8Array): string => Buffer.from(mask.buffer, mask.byteOffset, mask.byteLength).toString('latin1');

function complement(mask: Uint8Array): Uint8Array {
  return mask.map((v) => 1 - v);
}

/** Choose the coalitions to evaluate for a budget of model calls (excluding f(all) and f(none)). */
export function planCoalitions(m: number, budget: number, random: Random): CoalitionPlan {
  if (m < 2) throw new RangeError(`Kernel SHAP needs at least 2 features, got ${m}`);
  const masks: Uint8Array[] = [];
  const weights: number[] = [];
  const total = 2 ** m - 2;
  if (m < 31 && total <= budget) {
    for (let size = 1; size < m; size++) {
      const w = shapleyKernelWeight(m, size);
      for (const mask of subsetsOfSize(m, size)) {
        masks.push(mask);
        weights.push(w);
      }
    }
    return { features: m, masks, weights: Float64Array.from(weights), exact: true };
  }

  // Kernel mass per size pair {s, M − s}; enumerate pairs from the outside in while they fit.
  const pairs: { sizes: number[]; mass: number; count: number }[] = [];
  for (let s = 1; s <= Math.floor(m / 2); s++) {
    const sizes = s === m - s ? [s] : [s, m - s];
    const count = sizes.reduce((a, size) => a + binomial(m, size), 0);
    const mass = sizes.reduce((a, size) => a + (m - 1) / (size * (m - size)), 0);
    pairs.push({ sizes, mass, count });
  }
  let remaining = budget;
  let next = 0;
  while (next < pairs.length && pairs[next]!.count <= remaining) {
    const pair = pairs[next]!;
    for (const size of pair.sizes) {
      const w = shapleyKernelWeight(m, size);
      for (const mask of subsetsOfSize(m, size)) {
        masks.push(mask);
        weights.push(w);
      }
    }
    remaining -= pair.count;
    next += 1;
  }

  // Sample the other sizes in complement pairs; the left-over kernel mass is shared by draw count.
  const rest = pairs.slice(next);
  const restMass = rest.reduce((a, p) => a + p.mass, 0);
  if (rest.length > 0 && remaining >= 2) {
    const seen = new Map<string, number>(); // key → index into sampled
    const sampled: { mask: Uint8Array; draws: number }[] = [];
    let draws = 0;
    let attempts = 0;
    const maxAttempts = 100 * budget + 1000;
    while (remaining >= 2 && attempts < maxAttempts) {
      attempts += 1;
      let u = random() * restMass;
      let pair = rest[rest.length - 1]!;
      for (const p of rest) {
        if (u < p.mass) {
          pair = p;
          break;
        }
        u -= p.mass;
      }
      const size = pair.sizes[0]!;
      const mask = new Uint8Array(m);
      // Partial Fisher–Yates: the first `size` positions of a random permutation are on.
      const order = Array.from({ length: m }, (_, i) => i);
      for (let i = 0; i < size; i++) {
        const j = i + Math.floor(random() * (m - i));
        [order[i], order[j]] = [order[j]!, order[i]!];
        mask[order[i]!] = 1;
      }
      draws += 2;
      for (const member of [mask, complement(mask)]) {
        const key = keyOf(member);
        const at = seen.get(key);
        if (at === undefined) {
          seen.set(key, sampled.length);
          sampled.push({ mask: member, draws: 1 });
          remaining -= 1;
        } else {
          sampled[at]!.draws += 1;
        }
      }
    }
    // Scale so the sampled part carries the rest's share of the kernel, relative to enumerated weights.
    const restWeightTotal = rest.reduce((a, p) => a + p.sizes.reduce((b, size) => b + shapleyKernelWeight(m, size) * binomial(m, size), 0), 0);
    for (const s of sampled) {
      masks.push(s.mask);
      weights.push((restWeightTotal * s.draws) / draws);
    }
  }
  return { features: m, masks, weights: Float64Array.from(weights), exact: false };
}

/** Solve A x = b for symmetric positive (semi-)definite A by Cholesky, several right-hand sides. */
function choleskySolve(a: Float64Array, n: number, rhs: Float64Array[]): Float64Array[] {
  const l = new Float64Array(n * n);
  // A tiny ridge keeps a rank-deficient design (few samples) solvable; it is far below any signal.
  let trace = 0;
  for (let i = 0; i < n; i++) trace += a[i * n + i]!;
  const ridge = (trace / Math.max(1, n)) * 1e-12;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = a[i * n + j]! + (i === j ? ridge : 0);
      for (let k = 0; k < j; k++) sum -= l[i * n + k]! * l[j * n + k]!;
      if (i === j) {
        l[i * n + i] = Math.sqrt(Math.max(sum, Number.MIN_VALUE));
      } else {
        l[i * n + j] = sum / l[j * n + j]!;
      }
    }
  }
  return rhs.map((b) => {
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let sum = b[i]!;
      for (let k = 0; k < i; k++) sum -= l[i * n + k]! * y[k]!;
      y[i] = sum / l[i * n + i]!;
    }
    const x = new Float64Array(n);
    for (let i = n - 1; i >= 0; i--) {
      let sum = y[i]!;
      for (let k = i + 1; k < n; k++) sum -= l[k * n + i]! * x[k]!;
      x[i] = sum / l[i * n + i]!;
    }
    return x;
  });
}

/**
 * Weighted least squares with the efficiency constraint, for several outputs at once.
 * `values[c][o]`: output o of the model on coalition c. Returns φ[o][feature].
 */
export function solveKernelShap(plan: CoalitionPlan, values: readonly Float64Array[], full: Float64Array, empty: Float64Array): Float64Array[] {
  const m = plan.features;
  const outputs = full.length;
  const n = m - 1;
  const ata = new Float64Array(n * n);
  const atb = Array.from({ length: outputs }, () => new Float64Array(n));
  const delta = Float64Array.from(full, (f, o) => f - empty[o]!);
  const row = new Float64Array(n);
  plan.masks.forEach((mask, c) => {
    const w = plan.weights[c]!;
    const last = mask[m - 1]!;
    for (let i = 0; i < n; i++) row[i] = mask[i]! - last;
    for (let i = 0; i < n; i++) {
      const wi = w * row[i]!;
      if (wi === 0) continue;
      for (let j = 0; j <= i; j++) ata[i * n + j] = ata[i * n + j]! + wi * row[j]!;
    }
    const v = values[c]!;
    for (let o = 0; o < outputs; o++) {
      const y = v[o]! - empty[o]! - last * delta[o]!;
      const b = atb[o]!;
      for (let i = 0; i < n; i++) b[i] = b[i]! + w * row[i]! * y;
    }
  });
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) ata[i * n + j] = ata[j * n + i]!;
  const solutions = choleskySolve(ata, n, atb);
  return solutions.map((beta, o) => {
    const phi = new Float64Array(m);
    let sum = 0;
    for (let i = 0; i < n; i++) {
      phi[i] = beta[i]!;
      sum += beta[i]!;
    }
    phi[m - 1] = delta[o]! - sum;
    return phi;
  });
}
