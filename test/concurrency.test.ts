/**
 * The adaptive concurrency limiter against simulated endpoints whose capacity it is not told.
 * Assertions are about the limit it settles on and the throttles it causes, never about time.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { ConcurrencyLimiter, LATENCY_FLOOR } from '../src/predictor/concurrency.js';
import { overloadOrOther } from '../src/predictor/invoker.js';
import { EndpointError } from '../src/predictor/transport.js';

interface Simulation {
  readonly throttles: number;
  readonly served: number;
  readonly peakInFlight: number;
  readonly limits: number[];
}

/**
 * `demand` callers each make calls back to back until `calls` have been served. The endpoint
 * serves `capacity` at once: over it, a call is refused at once (429) or waits (queue).
 */
async function simulate(limiter: ConcurrencyLimiter, options: { capacity: number; demand: number; calls: number; latencyMs: number; mode: 'throttle' | 'queue' }): Promise<Simulation> {
  let active = 0;
  let inFlight = 0;
  let peak = 0;
  let throttles = 0;
  let served = 0;
  const limits: number[] = [];
  const queue: (() => void)[] = [];
  const endpoint = async (): Promise<void> => {
    inFlight += 1;
    peak = Math.max(peak, inFlight);
    try {
      if (active >= options.capacity) {
        if (options.mode === 'throttle') {
          throttles += 1;
          await sleep(0);
          throw new EndpointError('ThrottlingException 429', { status: 429, code: 'ThrottlingException', retryable: true });
        }
        await new Promise<void>((resolve) => queue.push(resolve));
      }
      active += 1;
      await sleep(options.latencyMs);
      active -= 1;
      queue.shift()?.();
      served += 1;
    } finally {
      inFlight -= 1;
    }
  };
  const caller = async (): Promise<void> => {
    while (served < options.calls) {
      try {
        await limiter.run(endpoint, overloadOrOther);
      } catch {
        // A throttled call is simply tried again by the caller.
      }
      limits.push(limiter.limit);
    }
  };
  await Promise.all(Array.from({ length: options.demand }, caller));
  return { throttles, served, peakInFlight: peak, limits };
}

const tail = (values: number[], n: number): number[] => values.slice(-n);

/** A seeded uniform generator (LCG), so a simulated run is the same on every machine. */
function uniform(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state + 0.5) / 2 ** 32;
  };
}

interface VirtualRun {
  /** Calls served per unit of time, as a share of what the endpoint can serve at this max. */
  readonly throughputShare: number;
  /** The limit after each call. */
  readonly limits: number[];
  /** Each call's latency ÷ its unqueued latency. */
  readonly queueing: number[];
}

/**
 * Virtual time, no timers: an endpoint whose calls take `baseMs` (times `step.factor` from call
 * `step.at` on) times log-normal noise of spread `sigma` (mean 1), and above `capacity` calls at
 * once, in proportion to how many are in flight (a queue). Callers keep the limiter full.
 */
async function simulateVirtual(
  limiter: ConcurrencyLimiter,
  options: { capacity: number; sigma: number; calls: number; seed: number; max: number; baseMs?: number; step?: { at: number; factor: number } },
): Promise<VirtualRun> {
  const random = uniform(options.seed);
  const normal = (): number => Math.sqrt(-2 * Math.log(random())) * Math.cos(2 * Math.PI * random());
  const flying: { end: number; latency: number; unqueued: number; release: (outcome: { kind: 'ok'; latencyMs: number }) => void }[] = [];
  const limits: number[] = [];
  const queueing: number[] = [];
  let now = 0;
  let workDone = 0; // in units of unqueued call time, to compare with what the endpoint could do
  for (let done = 0; done < options.calls; done++) {
    while (flying.length < limiter.limit) {
      const release = await limiter.acquire();
      const base = (options.baseMs ?? 100) * (options.step && done >= options.step.at ? options.step.factor : 1);
      const unqueued = base * Math.exp(options.sigma * normal() - (options.sigma * options.sigma) / 2);
      const latency = unqueued * Math.max(1, (flying.length + 1) / options.capacity);
      flying.push({ end: now + latency, latency, unqueued, release });
    }
    flying.sort((a, b) => a.end - b.end);
    const call = flying.shift()!;
    now = call.end;
    call.release({ kind: 'ok', latencyMs: call.latency });
    workDone += call.unqueued;
    limits.push(limiter.limit);
    queueing.push(call.latency / call.unqueued);
  }
  return { throughputShare: workDone / now / Math.min(options.capacity, options.max), limits, queueing };
}

const mean = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0) / values.length;

describe('adaptive concurrency', () => {
  for (const capacity of [2, 8, 32]) {
    it(`finds a throttling endpoint's capacity C = ${capacity} from below and above, never above max, with few throttles`, async () => {
      // Only the throttling rule is under test here: the latency rule is switched off, so timer jitter on a busy machine cannot move the limit.
      const limiter = new ConcurrencyLimiter({ mode: 'adaptive', max: 64, latencyTolerance: Number.POSITIVE_INFINITY });
      const run = await simulate(limiter, { capacity, demand: 80, calls: capacity * 60, latencyMs: 10, mode: 'throttle' });
      assert.ok(run.peakInFlight <= 64, `peak ${run.peakInFlight}`);
      const settled = tail(run.limits, capacity * 10);
      assert.ok(settled.every((l) => l >= capacity - 1 && l <= capacity + 1), `settled limits ${[...new Set(settled)].join(',')}`);
      // Slow start overshoots once (at most the limit it reached), then probes rarely.
      assert.ok(run.throttles <= 2 * capacity + 12, `${run.throttles} throttles for ${run.served} calls`);
    });
  }

  it('backs off when a queueing endpoint answers slower, instead of filling its queue', async () => {
    const limiter = new ConcurrencyLimiter({ mode: 'adaptive', max: 64 });
    // 20 ms calls: a busy machine's timer jitter (a few ms) must not read as queueing.
    const run = await simulate(limiter, { capacity: 4, demand: 64, calls: 600, latencyMs: 20, mode: 'queue' });
    assert.equal(run.throttles, 0);
    const settled = tail(run.limits, 100);
    // Without the latency rule it would climb to 64 (nothing is ever refused); timer jitter on a busy machine allows some slack above 4.
    assert.ok(Math.max(...settled) <= 24, `settled at ${Math.max(...settled)} for capacity 4`);
    // Jitter can dip the limit one step below capacity; collapsing to 1 is the failure.
    assert.ok(Math.min(...settled) >= 2, `settled at ${Math.min(...settled)}: too low to use capacity 4`);
    assert.ok(limiter.stats().decreases > 0);
    // The control: with the latency rule off, the same endpoint lets the limit climb past that bound.
    const blind = new ConcurrencyLimiter({ mode: 'adaptive', max: 64, latencyTolerance: Number.POSITIVE_INFINITY });
    const control = await simulate(blind, { capacity: 4, demand: 64, calls: 600, latencyMs: 20, mode: 'queue' });
    assert.ok(Math.max(...tail(control.limits, 100)) > 24, `without the latency rule: ${Math.max(...tail(control.limits, 100))}`);
  });

  it(`slower answers cut the limit to ${LATENCY_FLOOR} at most, so one long call never holds the only slot`, async () => {
    const limiter = new ConcurrencyLimiter({ mode: 'adaptive', max: 16 });
    const call = async (latencyMs: number): Promise<void> => (await limiter.acquire())({ kind: 'ok', latencyMs });
    for (let i = 0; i < 12; i++) await call(10); // a baseline of 10 ms
    const long = await limiter.acquire(); // a call that does not come back
    // Answers 10× slower than the baseline, window after window: the latency rule keeps cutting
    // (at a limit of 1 the long call would hold the only slot, and a call here would wait forever).
    let lowest = limiter.limit;
    for (let i = 0; i < 200 && limiter.limit > 1; i++) {
      await call(100);
      lowest = Math.min(lowest, limiter.limit);
    }
    assert.ok(limiter.stats().decreases >= 1, `${limiter.stats().decreases} decreases`);
    assert.equal(lowest, LATENCY_FLOOR);
    // Beside the long call, another still gets a slot at once.
    let got = false;
    const other = limiter.acquire().then((release) => {
      got = true;
      release({ kind: 'ok', latencyMs: 100 });
    });
    await sleep(0);
    assert.ok(got, 'a second call got a slot while the long one runs');
    await other;
    long({ kind: 'ok', latencyMs: 10_000 });
    // Refusals may still go lower: an endpoint that takes one call at a time can say so.
    for (let i = 0; i < 3; i++) (await limiter.acquire())({ kind: 'overload' });
    assert.equal(limiter.limit, 1);
  });

  for (const sigma of [0.5, 1]) {
    it(`answers that vary in time (log-normal, σ = ${sigma}) from an endpoint that never queues do not read as queueing: the limit stays at max`, async () => {
      // Before 2026-12-02 the baseline was the lowest of 30 window means: noise alone put it far below the typical window, and the limit fell to 2.
      const limiter = new ConcurrencyLimiter({ mode: 'adaptive', max: 64 });
      const run = await simulateVirtual(limiter, { capacity: 100_000, sigma, calls: 20_000, seed: 7, max: 64 });
      assert.ok(run.throughputShare >= 0.93, `throughput ${run.throughputShare.toFixed(3)} of max / latency`);
      assert.ok(mean(tail(run.limits, 10_000)) >= 0.9 * 64, `mean limit ${mean(tail(run.limits, 10_000)).toFixed(1)} over the last 10,000 calls`);
    });
  }

  for (const sigma of [0, 0.5]) {
    it(`a queueing endpoint of 8 slots is held near them for 40,000 calls (σ = ${sigma}): no creep towards max, no collapse`, async () => {
      // Before 2026-12-02 the limit crept to max (64, 8× the latency) with steady answers, and fell to 2 to 4 with noisy ones.
      const limiter = new ConcurrencyLimiter({ mode: 'adaptive', max: 64 });
      const run = await simulateVirtual(limiter, { capacity: 8, sigma, calls: 40_000, seed: 11, max: 64 });
      const late = tail(run.limits, 20_000);
      assert.ok(run.throughputShare >= 0.95, `throughput ${run.throughputShare.toFixed(3)} of capacity`);
      // Refreshes of the baseline dip below the slots for a moment, by design; the limit does not stay there.
      const low = [...late].sort((a, b) => a - b)[Math.floor(late.length * 0.05)]!;
      assert.ok(low >= 6, `the limit was ${low} or lower for 5 % of the last 20,000 calls`);
      assert.ok(mean(late) <= 24, `mean limit ${mean(late).toFixed(1)} over the last 20,000 calls, for 8 slots`);
      assert.ok(mean(tail(run.queueing, 20_000)) <= 3, `calls took ${mean(tail(run.queueing, 20_000)).toFixed(2)}× their unqueued time`);
    });
  }

  it('an endpoint that becomes twice as slow (no queue) costs a short dip, not the rest of the run', async () => {
    const limiter = new ConcurrencyLimiter({ mode: 'adaptive', max: 64 });
    const run = await simulateVirtual(limiter, { capacity: 100_000, sigma: 0.3, calls: 40_000, seed: 5, max: 64, step: { at: 10_000, factor: 2 } });
    assert.ok(limiter.stats().decreases >= 1, 'the slower answers were read as queueing at first');
    assert.ok(mean(tail(run.limits, 10_000)) >= 0.9 * 64, `mean limit ${mean(tail(run.limits, 10_000)).toFixed(1)} over the last 10,000 calls`);
  });

  it('fixed mode keeps max in flight and never adapts', async () => {
    const limiter = new ConcurrencyLimiter({ mode: 'fixed', max: 6 });
    const run = await simulate(limiter, { capacity: 2, demand: 20, calls: 100, latencyMs: 1, mode: 'throttle' });
    assert.ok(run.limits.every((l) => l === 6));
    assert.equal(run.peakInFlight, 6);
    assert.ok(run.throttles > 100, 'a fixed 6 against capacity 2 is throttled often');
  });

  it('only throttling, 503 and timeouts count as overload', () => {
    assert.equal(overloadOrOther(new EndpointError('x', { status: 429, retryable: true })), 'overload');
    assert.equal(overloadOrOther(new EndpointError('x', { status: 503, retryable: true })), 'overload');
    assert.equal(overloadOrOther(new EndpointError('x', { code: 'ThrottlingException', status: 400, retryable: true })), 'overload');
    assert.equal(overloadOrOther(new EndpointError('x', { code: 'ETIMEDOUT', retryable: true })), 'overload');
    assert.equal(overloadOrOther(new EndpointError('x', { status: 500, retryable: true })), 'other');
    assert.equal(overloadOrOther(new EndpointError('x', { status: 424, retryable: false })), 'other');
    assert.equal(overloadOrOther(new Error('x')), 'other');
  });
});
