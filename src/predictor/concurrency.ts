/**
 * How many endpoint calls may be in flight. Fixed: always the maximum. Adaptive: find the
 * endpoint's capacity while running, never above the maximum.
 *
 * The adaptive rule is AIMD-like, per window of about `limit` completed calls (one round trip):
 * - slow start: double the limit each window until the first sign of overload;
 * - then grow by one per window, but only while the limit is actually used (the job may be
 *   the bottleneck, not the endpoint);
 * - each overload answer (429 / ThrottlingException / 503 / timeout) lowers the limit by one at
 *   once, so a round with L calls against capacity C costs about L − C throttles and lands on C
 *   (at most halving per window, so a retry storm cannot collapse it);
 * - latency is judged in samples of a round trip's answers, at least LATENCY_SAMPLE_CALLS, by the mean of their
 *   logarithms (so one slow call weighs as a factor, not as its milliseconds). Two samples in a
 *   row above `latencyTolerance` × the baseline (the lowest sample of the last BASELINE_SAMPLES),
 *   by more than LATENCY_Z standard errors, scale the limit down by baseline·tolerance / latency
 *   (a queueing endpoint answers slower before it refuses), never below LATENCY_FLOOR. The
 *   standard errors are what keep an endpoint whose answers merely vary in time from reading as
 *   queueing: the lowest of many noisy samples is lower than their typical value;
 * - before the baseline's sample leaves that horizon while every later one is above it, the
 *   limit drops for one larger sample (REFRESH_SAMPLE_CALLS) to what the endpoint served at the
 *   baseline's latency, at most half, to measure it without a queue (as TCP BBR refreshes its
 *   minimum round-trip time), then goes back. Otherwise an endpoint held at tolerance × its
 *   unqueued latency would make that the new baseline, and the limit would creep up each
 *   horizon until the queue is full (as it did before 2026-12-02: 8× the latency in a long run);
 * - after a decrease, the level that overloaded is a ceiling: it is probed again only after a
 *   number of quiet windows that doubles each time the probe fails (4 … 64), so a steady endpoint
 *   sees about one throttle per 64 windows.
 */

export type CallOutcome = { readonly kind: 'ok'; readonly latencyMs: number } | { readonly kind: 'overload' } | { readonly kind: 'other' };

export interface LimiterOptions {
  readonly mode: 'adaptive' | 'fixed';
  readonly max: number;
  /** Adaptive: where slow start begins (default min(4, max)). */
  readonly initial?: number;
  readonly latencyTolerance?: number;
  /** The clock occupancy is measured by, in ms (default performance.now; tests give their own). */
  readonly clock?: () => number;
}

export interface LimiterStats {
  readonly limit: number;
  readonly peakInFlight: number;
  readonly decreases: number;
}

/** Time integrals of the limiter's state since it was made, in seconds: what the calls kept busy. */
export interface LimiterOccupancy {
  /** ∫ calls in flight dt: divided by a span of time, the mean number of calls in flight over it. */
  readonly callSeconds: number;
  /** Time every slot was taken (or calls queued for one): the endpoint, or the limit, set the pace. */
  readonly fullSeconds: number;
}

/** Answers pooled into one latency sample: at a limit of 2, one window alone is two calls' noise. */
const LATENCY_SAMPLE_CALLS = 16;
/** A refresh's sample is larger: it alone becomes the baseline, for a whole horizon. */
const REFRESH_SAMPLE_CALLS = 4 * LATENCY_SAMPLE_CALLS;
/** The baseline is the lowest of this many recent samples. */
const BASELINE_SAMPLES = 60;
/**
 * A sample reads as slow only this many standard errors (of it and the baseline) above
 * tolerance × baseline: the lowest of 60 samples lies about 2.3 of its standard errors below their
 * typical value, and two slow samples in a row must still be rare for an endpoint that only varies.
 */
const LATENCY_Z = 3;
/**
 * Slower answers never cut the limit below this: at 1, a single long call (up to its timeout)
 * holds the only slot and the job sends nothing else, and latency noise alone can get it there.
 * Only refusals (429 / 503 / timeouts) go lower.
 */
export const LATENCY_FLOOR = 2;
const MIN_PROBE_WAIT = 4;
const MAX_PROBE_WAIT = 64;

/** Mean log latency (ms) of some answers, and its standard error. */
interface LatencySample {
  readonly logMean: number;
  readonly standardError: number;
}

export class ConcurrencyLimiter {
  private current: number;
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];
  private peak = 0;
  private decreaseCount = 0;
  // Adaptive state, per window.
  private slowStart = true;
  private windowDone = 0;
  private windowSaturated = false;
  private windowOverloads = 0;
  private windowStartLimit: number;
  // The latency sample being gathered: sums of log latency and its square.
  private sampleLogSum = 0;
  private sampleLogSquares = 0;
  private sampleCount = 0;
  private readonly recentSamples: LatencySample[] = [];
  private slowSamples = 0;
  /** While the baseline is refreshed: the limit to go back to, and answers still to ignore (sent before the cut). */
  private refresh: { readonly restoreTo: number; skip: number } | undefined;
  private ceiling: number | undefined;
  private probeWait = MIN_PROBE_WAIT;
  private quietWindows = 0;
  private probing = false;
  // Occupancy, integrated up to `accountedAt` (ms on `clock`) with the state as it stood.
  private readonly clock: () => number;
  private accountedAt: number;
  private callMs = 0;
  private fullMs = 0;

  constructor(private readonly options: LimiterOptions) {
    this.clock = options.clock ?? (() => performance.now());
    this.accountedAt = this.clock();
    this.current = options.mode === 'fixed' ? options.max : Math.min(options.max, Math.max(1, options.initial ?? 4));
    this.windowStartLimit = this.current;
  }

  get limit(): number {
    return this.current;
  }

  stats(): LimiterStats {
    return { limit: this.current, peakInFlight: this.peak, decreases: this.decreaseCount };
  }

  occupancy(): LimiterOccupancy {
    this.account();
    return { callSeconds: this.callMs / 1000, fullSeconds: this.fullMs / 1000 };
  }

  /**
   * Adds the time since the last change with the state it held. Called before every change of
   * `inFlight`, `current` or `waiting` (they change only in acquire and in a release, at once).
   */
  private account(): void {
    const now = this.clock();
    const elapsed = now - this.accountedAt;
    this.accountedAt = now;
    this.callMs += elapsed * this.inFlight;
    if (this.waiting.length > 0 || this.inFlight >= this.current) this.fullMs += elapsed;
  }

  /** Waits for a slot; the returned function gives it back with what the call met. */
  async acquire(): Promise<(outcome: CallOutcome) => void> {
    this.account();
    if (this.inFlight < this.current && this.waiting.length === 0) {
      this.inFlight += 1;
    } else {
      this.windowSaturated = true;
      await new Promise<void>((resolve) => this.waiting.push(resolve)); // drain() counted the slot
    }
    this.peak = Math.max(this.peak, this.inFlight);
    if (this.inFlight >= this.current) this.windowSaturated = true;
    let released = false;
    return (outcome) => {
      if (released) return;
      released = true;
      this.account();
      this.inFlight -= 1;
      if (this.options.mode === 'adaptive') this.observe(outcome);
      this.drain();
    };
  }

  /** Runs task in a slot. classify says what a failure meant (overload or not). */
  async run<T>(task: () => Promise<T>, classify: (error: unknown) => CallOutcome['kind']): Promise<T> {
    const release = await this.acquire();
    const started = performance.now();
    try {
      const result = await task();
      release({ kind: 'ok', latencyMs: performance.now() - started });
      return result;
    } catch (error) {
      release(classify(error) === 'overload' ? { kind: 'overload' } : { kind: 'other' });
      throw error;
    }
  }

  /** Hands free slots to waiters in order; each slot is counted here, before its waiter resumes. */
  private drain(): void {
    while (this.inFlight < this.current && this.waiting.length > 0) {
      this.inFlight += 1;
      this.waiting.shift()!();
    }
  }

  private observe(outcome: CallOutcome): void {
    this.windowDone += 1;
    if (this.refresh && this.refresh.skip > 0) {
      this.refresh.skip -= 1;
    } else if (outcome.kind === 'ok') {
      const log = Math.log(Math.max(outcome.latencyMs, 0.01));
      this.sampleLogSum += log;
      this.sampleLogSquares += log * log;
      this.sampleCount += 1;
    }
    if (outcome.kind === 'overload') this.overloaded();
    if (this.windowDone >= Math.max(1, this.windowStartLimit)) this.endWindow();
  }

  private overloaded(): void {
    this.windowOverloads += 1;
    this.refresh = undefined; // refused even at the lower limit: that limit stands
    this.slowStart = false;
    // One step down per throttle, but never below half of where the window began.
    const floor = Math.max(1, Math.floor(this.windowStartLimit / 2));
    if (this.current > floor) {
      if (this.windowOverloads === 1) {
        this.ceiling = this.current;
        this.decreaseCount += 1;
      }
      this.current -= 1;
    }
    if (this.probing) {
      this.probeWait = Math.min(MAX_PROBE_WAIT, this.probeWait * 2);
      this.probing = false;
    }
    this.quietWindows = 0;
  }

  private endWindow(): void {
    const overloads = this.windowOverloads;
    const saturated = this.windowSaturated;
    this.windowDone = 0;
    this.windowOverloads = 0;
    this.windowSaturated = this.inFlight >= this.current;
    if (this.refresh) {
      // No growth and no cut while the endpoint is measured at the lower limit.
      if (this.judgeLatency() !== 'unknown') this.endRefresh();
      this.windowStartLimit = this.current;
      this.drain();
      return;
    }
    const verdict = overloads === 0 ? this.judgeLatency() : 'unknown';
    if (this.refresh) {
      // judgeLatency began a refresh: the halved limit holds until its sample is in.
    } else if (verdict === 'slow') {
      this.slowSamples += 1;
      if (this.slowSamples >= 2 && this.current > LATENCY_FLOOR) {
        this.ceiling = this.current;
        this.current = Math.max(LATENCY_FLOOR, Math.floor(this.current * Math.max(0.5, this.cutFactor())));
        this.decreaseCount += 1;
        this.slowStart = false;
        this.slowSamples = 0;
        this.quietWindows = 0;
      }
    } else if (overloads === 0) {
      if (verdict === 'fine') this.slowSamples = 0;
      this.grow(saturated);
    }
    this.windowStartLimit = this.current;
    this.drain();
  }

  /** Closes the latency sample once it holds enough answers, and says whether it reads as queueing. */
  private judgeLatency(): 'slow' | 'fine' | 'unknown' {
    const n = this.sampleCount;
    if (n < Math.max(this.refresh ? REFRESH_SAMPLE_CALLS : LATENCY_SAMPLE_CALLS, this.current)) return 'unknown';
    const logMean = this.sampleLogSum / n;
    const variance = Math.max(0, (this.sampleLogSquares - n * logMean * logMean) / (n - 1));
    this.clearSample();
    const sample = { logMean, standardError: Math.sqrt(variance / n) };
    this.recentSamples.push(sample);
    if (this.recentSamples.length > BASELINE_SAMPLES) this.recentSamples.shift();
    if (this.refresh) return 'fine'; // the refresh's own sample: the baseline now
    if (this.recentSamples.length < 3) return 'unknown';
    if (this.baselineAboutToLapse()) {
      this.startRefresh();
      return 'unknown';
    }
    const baseline = this.baseline();
    const tolerance = Math.log(this.options.latencyTolerance ?? 1.5);
    const margin = LATENCY_Z * Math.hypot(sample.standardError, baseline.standardError);
    return sample.logMean - baseline.logMean > tolerance + margin ? 'slow' : 'fine';
  }

  /**
   * The baseline is the oldest sample, the next one pushes it out, and every later sample is above
   * it: letting it lapse would raise the baseline (by however little, each horizon: the limit
   * would creep, noise or not).
   */
  private baselineAboutToLapse(): boolean {
    if (this.recentSamples.length < BASELINE_SAMPLES || this.current <= LATENCY_FLOOR) return false;
    const [oldest, ...later] = this.recentSamples;
    const next = later.reduce((low, s) => (s.logMean < low.logMean ? s : low));
    return next.logMean - oldest!.logMean > Math.log(1.01); // equal samples (a steady endpoint) need no refresh
  }

  /**
   * To measure without a queue, the limit goes to what the endpoint served at the baseline's
   * latency (Little's law: limit × baseline / latency), half of it at most and a quarter at
   * least: the refresh's sample must not take many round trips at a limit of 2. (A queue over 4×
   * is the latency rule's to cut, not the refresh's to measure.)
   */
  private startRefresh(): void {
    const share = Math.min(0.5, Math.max(0.25, this.baselineOverLast()));
    this.refresh = { restoreTo: this.current, skip: this.inFlight };
    this.current = Math.max(LATENCY_FLOOR, Math.floor(this.current * share));
    this.clearSample();
    this.slowSamples = 0;
  }

  private endRefresh(): void {
    if (this.refresh) this.current = this.refresh.restoreTo;
    this.refresh = undefined;
  }

  private baseline(): LatencySample {
    return this.recentSamples.reduce((low, s) => (s.logMean < low.logMean ? s : low));
  }

  /** baseline / latency of the last sample (geometric means). */
  private baselineOverLast(): number {
    const last = this.recentSamples[this.recentSamples.length - 1]!;
    return Math.exp(this.baseline().logMean - last.logMean);
  }

  /** baseline · tolerance / latency, from the last sample. */
  private cutFactor(): number {
    return (this.options.latencyTolerance ?? 1.5) * this.baselineOverLast();
  }

  private clearSample(): void {
    this.sampleLogSum = 0;
    this.sampleLogSquares = 0;
    this.sampleCount = 0;
  }

  private grow(saturated: boolean): void {
    if (this.probing) {
      // A whole window at the probed level without overload: the ceiling has moved.
      this.probing = false;
      this.ceiling = undefined;
      this.probeWait = MIN_PROBE_WAIT;
    }
    this.quietWindows += 1;
    if (!saturated || this.current >= this.options.max) return;
    if (this.slowStart) {
      this.current = Math.min(this.options.max, this.current * 2);
      return;
    }
    if (this.ceiling !== undefined && this.current + 1 >= this.ceiling) {
      if (this.quietWindows < this.probeWait) return;
      this.probing = true;
      this.quietWindows = 0;
    }
    this.current += 1;
  }
}
