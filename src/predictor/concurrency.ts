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
 * - two windows in a row whose mean latency exceeds `latencyTolerance` × the baseline (the lowest
 *   window mean of the last 30 windows) scale it down by baseline·tolerance / latency (a queueing
 *   endpoint answers slower before it refuses), never below LATENCY_FLOOR;
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
}

export interface LimiterStats {
  readonly limit: number;
  readonly peakInFlight: number;
  readonly decreases: number;
}

const BASELINE_WINDOWS = 30;
/**
 * Slower answers never cut the limit below this: at 1, a single long call (up to its timeout)
 * holds the only slot and the job sends nothing else, and latency noise alone can get it there.
 * Only refusals (429 / 503 / timeouts) go lower.
 */
export const LATENCY_FLOOR = 2;
const MIN_PROBE_WAIT = 4;
const MAX_PROBE_WAIT = 64;

export class ConcurrencyLimiter {
  private current: number;
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];
  private peak = 0;
  private decreaseCount = 0;
  // Adaptive state, per window.
  private slowStart = true;
  private windowDone = 0;
  private windowLatencySum = 0;
  private windowLatencyCount = 0;
  private windowSaturated = false;
  private windowOverloads = 0;
  private windowStartLimit: number;
  private readonly recentMeans: number[] = [];
  private slowWindows = 0;
  private ceiling: number | undefined;
  private probeWait = MIN_PROBE_WAIT;
  private quietWindows = 0;
  private probing = false;

  constructor(private readonly options: LimiterOptions) {
    this.current = options.mode === 'fixed' ? options.max : Math.min(options.max, Math.max(1, options.initial ?? 4));
    this.windowStartLimit = this.current;
  }

  get limit(): number {
    return this.current;
  }

  stats(): LimiterStats {
    return { limit: this.current, peakInFlight: this.peak, decreases: this.decreaseCount };
  }

  /** Waits for a slot; the returned function gives it back with what the call met. */
  async acquire(): Promise<(outcome: CallOutcome) => void> {
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
    if (outcome.kind === 'ok') {
      this.windowLatencySum += outcome.latencyMs;
      this.windowLatencyCount += 1;
    } else if (outcome.kind === 'overload') {
      this.overloaded();
    }
    if (this.windowDone >= Math.max(1, this.windowStartLimit)) this.endWindow();
  }

  private overloaded(): void {
    this.windowOverloads += 1;
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
    const mean = this.windowLatencyCount > 0 ? this.windowLatencySum / this.windowLatencyCount : undefined;
    const overloads = this.windowOverloads;
    const saturated = this.windowSaturated;
    this.windowDone = 0;
    this.windowLatencySum = 0;
    this.windowLatencyCount = 0;
    this.windowOverloads = 0;
    this.windowSaturated = this.inFlight >= this.current;
    if (mean !== undefined) {
      this.recentMeans.push(mean);
      if (this.recentMeans.length > BASELINE_WINDOWS) this.recentMeans.shift();
    }
    const baseline = Math.min(...this.recentMeans);
    const tolerance = this.options.latencyTolerance ?? 1.5;
    if (overloads === 0 && mean !== undefined && this.recentMeans.length >= 3 && mean > baseline * tolerance) {
      this.slowWindows += 1;
      if (this.slowWindows >= 2 && this.current > LATENCY_FLOOR) {
        this.ceiling = this.current;
        this.current = Math.max(LATENCY_FLOOR, Math.floor(this.current * Math.max(0.5, (baseline * tolerance) / mean)));
        this.decreaseCount += 1;
        this.slowStart = false;
        this.slowWindows = 0;
        this.quietWindows = 0;
      }
    } else if (overloads === 0) {
      this.slowWindows = 0;
      this.grow(saturated);
    }
    this.windowStartLimit = this.current;
    this.drain();
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
