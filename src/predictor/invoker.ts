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
  /**
   * A throttled call (429, ThrottlingException) says the endpoint is alive but busy: it is retried
   * for up to this long without spending max_retries or the retry budget (0: throttles count as
   * ordinary retries).
   */
  readonly maxThrottleMs?: number;
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

/**
 * A job-wide allowance for retries, as the AWS SDK's standard retry mode keeps one: a retry
 * costs 5 tokens (10 after a timeout), a success returns 1. When it is spent, failures are final
 * at once, so an endpoint that is down fails images in seconds, not hours; it refills as calls succeed.
 */
export class RetryBudget {
  private tokens: number;
  constructor(readonly capacity: number) {
    this.tokens = capacity;
  }
  static readonly RETRY_COST = 5;
  static readonly TIMEOUT_COST = 10;

  tryTake(timeout: boolean): boolean {
    const cost = timeout ? RetryBudget.TIMEOUT_COST : RetryBudget.RETRY_COST;
    if (this.tokens < cost) return false;
    this.tokens -= cost;
    return true;
  }

  refund(): void {
    this.tokens = Math.min(this.capacity, this.tokens + 1);
  }

  get available(): number {
    return this.tokens;
  }
}

/** Why one attempt is being retried, for the log. */
export interface RetryNotice {
  readonly attempt: number;
  readonly maxRetries: number;
  readonly reason: string;
  readonly timeout: boolean;
}

/** The endpoint refused for load, not for a fault: HTTP 429 or SageMaker's ThrottlingException. */
export const isThrottle = (error: unknown): boolean => error instanceof EndpointError && (error.status === 429 || error.code === 'ThrottlingException');

const isTimeout = (error: unknown): boolean => error instanceof EndpointError && (error.code === 'ETIMEDOUT' || error.code === 'TimeoutError' || error.code === 'RequestTimeout');

/**
 * A failure that says the endpoint as a whole cannot serve (down, missing, refusing us, failing
 * every retry), not that one image was wrong for it.
 */
export function isEndpointWide(error: unknown): boolean {
  if (!(error instanceof EndpointError)) return false;
  if (error.code === 'ERESPONSETOOLARGE') return false;
  if (error.retryable || error.status === undefined) return true;
  if (error.status === 401 || error.status === 403 || error.status === 404) return true;
  return error.status === 400 && /endpoint .*not found|could not find endpoint/i.test(error.message);
}

/** The job is stopping: calls not yet sent are not sent. The image is unfinished, not failed. */
export class StopError extends Error {
  constructor() {
    super('stopped before this call was sent');
    this.name = 'StopError';
  }
}

const OVERLOAD_CODES = new Set(['ThrottlingException', 'ServiceUnavailable', 'TimeoutError', 'RequestTimeout', 'ETIMEDOUT']);

/**
 * An answer its reader could not read, once an earlier answer of the job was read: a model server
 * that wrote an error page or a cut-off body with status 200. Retried as a 5xx is, but at most
 * twice: an answer unreadable three times is the model's for that image (NaN scores, say). Before
 * any answer was read it is most likely the config that does not fit, and is not retried.
 */
export class UnreadableAnswer extends Error {
  static readonly RETRIES = 2;
  constructor(
    readonly readError: unknown,
    readonly retryable: boolean,
  ) {
    super(`unreadable answer: ${readError instanceof Error ? readError.message : String(readError)}`, { cause: readError });
    this.name = 'UnreadableAnswer';
  }
}

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
  readonly budget: RetryBudget;
  /** Told of every retry as it happens (the job logs them, summarised). */
  onRetry: (notice: RetryNotice) => void = () => undefined;
  /** Told once the budget is spent (failures are then final at once). */
  onBudgetSpent: () => void = () => undefined;
  private budgetSpentTold = false;
  private settleFirstCall: (outcome: unknown) => void = () => undefined;
  /** The first call's outcome: undefined when it succeeded, its final error when it failed. */
  readonly firstCall: Promise<unknown> = new Promise((resolve) => (this.settleFirstCall = resolve));
  constructor(
    readonly transport: EndpointTransport,
    private readonly policy: RetryPolicy,
    concurrency: number | LimiterOptions,
    private readonly random: () => number = Math.random,
    retryBudget = 500,
  ) {
    this.limiter = new ConcurrencyLimiter(typeof concurrency === 'number' ? { mode: 'fixed', max: concurrency } : concurrency);
    this.budget = new RetryBudget(retryBudget);
  }

  /** Stop sending: every call not yet sent (queued, or waiting to retry) rejects with StopError. */
  cancel(): void {
    this.cancelled = true;
  }

  /** Answers read so far: once one was, an unreadable one is the endpoint's fault and retried. */
  private answersRead = 0;

  /** The raw answer. A slot is held per attempt, not during backoff, so other images keep the endpoint busy. */
  invoke(request: InvokeRequest): Promise<InvokeResponse> {
    return this.invokeAndRead(request, (response) => response);
  }

  /**
   * The answer as `read` reads it, inside the attempt: an answer that cannot be read (`read`
   * throws) is retried like a server error once the job has read one (see UnreadableAnswer); when
   * retries end, `read`'s own error is thrown.
   */
  async invokeAndRead<T>(request: InvokeRequest, read: (response: InvokeResponse) => T): Promise<T> {
    if (this.cancelled) throw new StopError();
    this.stats.calls += 1;
    let throttledSince: number | undefined;
    let throttles = 0;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.limiter.run(async () => {
          if (this.cancelled) throw new StopError();
          this.stats.attempts += 1;
          const started = performance.now();
          const response = await this.transport.invoke(request);
          this.stats.latencyMsTotal += performance.now() - started;
          this.settleFirstCall(undefined); // the endpoint answered: it can serve
          let value: T;
          try {
            value = read(response);
          } catch (error) {
            throw new UnreadableAnswer(error, this.answersRead > 0);
          }
          this.answersRead += 1;
          this.budget.refund();
          return value;
        }, overloadOrOther);
      } catch (error) {
        if (error instanceof StopError) {
          if (attempt === 0) this.stats.calls -= 1; // never sent
          throw error;
        }
        // Failed while the job stops (its connections are being closed): neither a retry nor a failure to report.
        if (this.cancelled) throw new StopError();
        if (error instanceof UnreadableAnswer && !(error.retryable && attempt < Math.min(this.policy.maxRetries, UnreadableAnswer.RETRIES) && this.budget.tryTake(false))) {
          if (attempt > 0 && error.readError instanceof Error) error.readError.message = `${error.readError.message} (the same after ${attempt + 1} attempts)`;
          throw error.readError;
        }
        if (error instanceof UnreadableAnswer) {
          this.stats.retries += 1;
          this.onRetry({ attempt: attempt + 1, maxRetries: Math.min(this.policy.maxRetries, UnreadableAnswer.RETRIES), reason: error.message, timeout: false });
          await sleep(backoffDelayMs(attempt, this.policy, this.random));
          if (this.cancelled) throw new StopError();
          continue;
        }
        const retryable = error instanceof EndpointError ? error.retryable : false;
        // Throttles wait out the endpoint's load, bounded in time; they spend neither attempts nor budget.
        const maxThrottleMs = this.policy.maxThrottleMs ?? 0;
        if (isThrottle(error) && maxThrottleMs > 0) {
          throttledSince ??= performance.now();
          if (performance.now() - throttledSince < maxThrottleMs) {
            throttles += 1;
            this.stats.retries += 1;
            this.onRetry({ attempt: attempt + 1, maxRetries: this.policy.maxRetries, reason: error instanceof Error ? error.message : String(error), timeout: false });
            await sleep(backoffDelayMs(Math.min(throttles, 16), this.policy, this.random));
            if (this.cancelled) throw new StopError();
            attempt -= 1; // not counted against max_retries
            continue;
          }
          if (error instanceof Error) error.message = `${error.message} (still throttled after ${Math.round(maxThrottleMs / 1000)} s: clarify_images.max_throttle_seconds)`;
          this.stats.failedCalls += 1;
          this.settleFirstCall(error);
          throw error;
        }
        const timeout = isTimeout(error);
        const withinBudget = retryable && attempt < this.policy.maxRetries && this.budget.tryTake(timeout);
        if (!withinBudget) {
          this.stats.failedCalls += 1;
          if (retryable && error instanceof Error) {
            const why = attempt < this.policy.maxRetries ? 'the retry budget (clarify_images.retry_budget) is spent' : `gave up after ${attempt + 1} attempts`;
            error.message = `${error.message} (${why})`;
            if (attempt < this.policy.maxRetries && !this.budgetSpentTold) {
              this.budgetSpentTold = true;
              this.onBudgetSpent();
            }
          }
          this.settleFirstCall(error);
          throw error;
        }
        this.stats.retries += 1;
        this.onRetry({ attempt: attempt + 1, maxRetries: this.policy.maxRetries, reason: error instanceof Error ? error.message : String(error), timeout });
        await sleep(backoffDelayMs(attempt, this.policy, this.random));
        if (this.cancelled) throw new StopError(); // it was sent and failed; not retried now
      }
    }
  }

  close(): void {
    this.transport.close();
  }
}
