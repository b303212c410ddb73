/**
 * Every endpoint call of a job goes through one invoker: one bounded-concurrency limiter,
 * retries with exponential backoff and full jitter, and shared call accounting.
 */
import pLimit, { type LimitFunction } from 'p-limit';
import { setTimeout as sleep } from 'node:timers/promises';
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

export class EndpointInvoker {
  readonly stats: CallStats = { calls: 0, attempts: 0, retries: 0, failedCalls: 0, latencyMsTotal: 0 };
  private readonly limit: LimitFunction;
  constructor(
    readonly transport: EndpointTransport,
    private readonly policy: RetryPolicy,
    concurrency: number,
    private readonly random: () => number = Math.random,
  ) {
    this.limit = pLimit(concurrency);
  }

  get concurrency(): number {
    return this.limit.concurrency;
  }

  /** Calls waiting for a slot. */
  get pending(): number {
    return this.limit.pendingCount;
  }

  /** A slot is held per attempt, not during backoff, so other images keep the endpoint busy. */
  async invoke(request: InvokeRequest): Promise<InvokeResponse> {
    this.stats.calls += 1;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.limit(async () => {
          this.stats.attempts += 1;
          const started = performance.now();
          const response = await this.transport.invoke(request);
          this.stats.latencyMsTotal += performance.now() - started;
          return response;
        });
      } catch (error) {
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
      }
    }
  }

  close(): void {
    this.transport.close();
  }
}
