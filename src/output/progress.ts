/**
 * Progress of a run: on a terminal, one line redrawn in place (images done, calls/s, ETA,
 * failures); otherwise a single-line JSON record every interval, for log collectors.
 */
export interface ProgressState {
  imagesDone: number;
  imagesListed: number;
  listingComplete: boolean;
  failed: number;
  calls: number;
}

export interface ProgressSink {
  readonly isTTY: boolean;
  write(text: string): void;
}

export interface ProgressRecord {
  event: 'progress';
  images_done: number;
  images_listed: number;
  listing_complete: boolean;
  failed: number;
  calls: number;
  calls_per_second: number;
  elapsed_seconds: number;
  eta_seconds: number | null;
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export class ProgressReporter {
  private readonly started = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private lastCalls = 0;
  private lastAt = this.started;
  private rate = 0;

  constructor(
    private readonly state: () => ProgressState,
    private readonly sink: ProgressSink,
    private readonly intervalMs = sink.isTTY ? 250 : 10_000,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  record(): ProgressRecord {
    const s = this.state();
    const now = performance.now();
    const window = (now - this.lastAt) / 1000;
    if (window > 0) this.rate = (s.calls - this.lastCalls) / window;
    this.lastCalls = s.calls;
    this.lastAt = now;
    const elapsed = (now - this.started) / 1000;
    const perImage = s.imagesDone > 0 ? elapsed / s.imagesDone : Number.NaN;
    const eta = s.listingComplete && s.imagesDone > 0 ? perImage * (s.imagesListed - s.imagesDone) : null;
    return {
      event: 'progress',
      images_done: s.imagesDone,
      images_listed: s.imagesListed,
      listing_complete: s.listingComplete,
      failed: s.failed,
      calls: s.calls,
      calls_per_second: Math.round(this.rate),
      elapsed_seconds: Math.round(elapsed),
      eta_seconds: eta === null ? null : Math.round(eta),
    };
  }

  private tick(): void {
    const r = this.record();
    if (!this.sink.isTTY) {
      this.sink.write(`${JSON.stringify(r)}\n`);
      return;
    }
    const total = r.listing_complete ? r.images_listed : undefined;
    const width = 24;
    const filled = total ? Math.round((width * r.images_done) / Math.max(1, total)) : 0;
    const bar = total ? `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ` : '';
    const line = `${bar}${r.images_done}/${total ?? `${r.images_listed}+`} images · ${r.calls_per_second} calls/s · ETA ${r.eta_seconds === null ? '?' : duration(r.eta_seconds)}${r.failed ? ` · ${r.failed} failed` : ''}`;
    this.sink.write(`\r${line.padEnd(78)}`);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.sink.isTTY) this.sink.write('\n');
  }
}
