/**
 * Every endpoint call of a job goes through one invoker: one bounded-concurrency limiter,
 * retries with exponential backoff and full jitter, and shared call accounting.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type CallOutcome, ConcurrencyLimiter, type LimiterOptions } from './concurrency.js';
import { EndpointError, type EndpointTransport, type InvokeRequest, type InvokeResponse } from './transport.js';

export interface RetryPolicy {
  readonly maxRetries: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export interface CallStats {
  /** Logical calls (one per request, however many attempts it took). */
  calls: number;
  /** HTTP attempts, including retries. */
  attempts: number;
  retries: number;
  /** Logical calls that failed for good. */
  failedCalls: number;
  /** Sum of successful attempts' latencies. */
  latencyMsTotal: number;
}

/** Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): uniform in [0, min(max, base·2^attempt)]. */
export function backoffDelayMs(attempt: number, policy: RetryPolicy, random: () => number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return Math.floor(random() * ceiling);
}

/** The job is stopping: calls not yet sent are not sent. The image is unfinished, not failed. */
export class StopError extends Error {
  constructor() {
    super('stopped before this call was sent');
    this.name = 'StopError';
  }
}

const OVERLOAD_CODES = new Set(['ThrottlingException', 'ServiceUnavailable', 'TimeoutError', 'RequestTimeout', 'ETIMEDOUT']);

/** Throttling, 503 and timeouts say the endpoint has too much to do; other failures say nothing about load. */
export function overloadOrOther(error: unknown): CallOutcome['kind'] {
  if (!(error instanceof EndpointError)) return 'other';
  if (error.status === 429 || error.status === 503) return 'overload';
  return error.code !== undefined && OVERLOAD_CODES.has(error.code) ? 'overload' : 'other';
}

export class EndpointInvoker {
  private cancelled = false;
  readonly stats: CallStats = { calls: 0, attempts: 0, retries: 0, failedCalls: 0, latencyMsTotal: 0 };
  readonly limiter: ConcurrencyLimiter;
  constructor(
    readonly transport: EndpointTransport,
    private readonly policy: RetryPolicy,
    concurrency: number | LimiterOptions,
    private readonly random: () => number = Math.random,
  ) {
    this.limiter = new ConcurrencyLimiter(typeof concurrency === 'number' ? { mode: 'fixed', max: concurrency } : concurrency);
  }

  /** Stop sending: every call not yet sent (queued, or waiting to retry) rejects with StopError. */
  cancel(): void {
    this.cancelled = true;
  }

  /** A slot is held per attempt, not during backoff, so other images keep the endpoint busy. */
  async invoke(request: InvokeRequest): Promise<InvokeResponse> {
    if (this.cancelled) throw new StopError();
    this.stats.calls += 1;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.limiter.run(async () => {
          if (this.cancelled) throw new StopError();
          this.stats.attempts += 1;
          const started = performance.now();
          const response = await this.transport.invoke(request);
          this.stats.latencyMsTotal += performance.now() - started;
          return response;
        }, overloadOrOther);
      } catch (error) {
        if (error instanceof StopError) {
          if (attempt === 0) this.stats.calls -= 1; // never sent
          throw error;
        }
        const retryable = error instanceof EndpointError ? error.retryable : false;
        if (!retryable || attempt >= this.policy.maxRetries) {
          this.stats.failedCalls += 1;
          if (retryable && error instanceof Error) {
            error.message = `${error.message} (gave up after ${attempt + 1} attempts)`;
          }
          throw error;
        }
        this.stats.retries += 1;
        await sleep(backoffDelayMs(attempt, this.policy, this.random));
        if (this.cancelled) throw new StopError(); // it was sent and failed; not retried now
      }
    }
  }

  close(): void {
    this.transport.close();
  }
}
