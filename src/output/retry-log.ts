/**
 * Retries and timeouts, said as they happen but never as a flood: the first one at once, then at
 * most one line per interval summing up what happened in it ("12 retries in the last 5 s:
 * HTTP 429 ×10, timeout ×2").
 */

/** The short kind of a failure, for grouping: "HTTP 429", "timeout", "ECONNREFUSED", … */
export function failureKind(reason: string): string {
  if (/^unreadable answer/.test(reason)) return 'unreadable answer';
  if (/no complete answer within|timed? ?out|ETIMEDOUT|TimeoutError/i.test(reason)) return 'timeout';
  const status = /\bHTTP ([45]\d\d)\b/.exec(reason) ?? /^[A-Za-z]+ ([45]\d\d)\b/.exec(reason);
  if (status) return `HTTP ${status[1]}`;
  const code = /\b(E[A-Z]{3,}|[A-Z][a-zA-Z]+Exception|ThrottlingException|ServiceUnavailable)\b/.exec(reason);
  return code ? code[1]! : reason.slice(0, 40);
}

export class RetryLog {
  private counts = new Map<string, number>();
  private example = '';
  private lastLine = 0;
  private timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly what: string,
    private readonly log: (line: string) => void,
    private readonly intervalMs = 5000,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** `reason`: the failure as its source worded it; `context`: where it happened (attempt, object). */
  note(reason: string, context = ''): void {
    const kind = failureKind(reason);
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
    this.example = context ? `${context}: ${reason}` : reason;
    const waited = this.now() - this.lastLine;
    if (this.lastLine === 0 || waited >= this.intervalMs) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.intervalMs - waited).unref();
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.counts.size === 0) return;
    const total = [...this.counts.values()].reduce((a, b) => a + b, 0);
    const kinds = [...this.counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ×${n}`).join(', ');
    const since = this.lastLine === 0 ? '' : ` in the last ${Math.max(1, Math.round((this.now() - this.lastLine) / 1000))} s`;
    this.log(`${this.what}: ${total} ${total === 1 ? 'retry' : 'retries'}${since} (${kinds}); latest: ${this.example.slice(0, 200)}`);
    this.counts = new Map();
    this.lastLine = this.now();
  }
}
