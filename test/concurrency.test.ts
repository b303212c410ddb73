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
