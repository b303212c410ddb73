/**
 * Progress of a run. On a terminal: a cli-progress bar that moves with endpoint calls (not only
 * with finished images), with images, calls/s, ETA, retries and failures, and log lines (a failed
 * image, a retry storm) printed above it as they happen; it is cleared when the run ends, so the
 * summary is the last thing on screen. Elsewhere: a single-line JSON record every interval, for
 * log collectors.
 */
import cliProgress from 'cli-progress';

export interface ProgressState {
  imagesDone: number;
  /** Every image the run will take: the listing is made whole before the first image. */
  imagesListed: number;
  failed: number;
  calls: number;
  retries: number;
  /** Endpoint calls one image is expected to take (the budget + its prediction). */
  callsPerImage: number;
  /** Images started and not done. */
  inFlight: number;
  /** Images explained by this run so far, and the endpoint calls they made (explanations and predictions). */
  explained: number;
  callsOfExplained: number;
}

export interface ProgressSink {
  readonly isTTY: boolean;
  write(text: string): void;
  /** The terminal the bar draws on (needed when isTTY). */
  readonly stream?: NodeJS.WriteStream;
}

export interface ProgressRecord {
  event: 'progress';
  images_done: number;
  images_listed: number;
  listing_complete: boolean;
  failed: number;
  calls: number;
  retries: number;
  expected_calls: number;
  calls_per_second: number;
  elapsed_seconds: number;
  eta_seconds: number | null;
}

/**
 * Calls the run is expected to make: those of the images explained so far; for the images in
 * flight, what they made already or an image's cost each, whichever is more; and an image's cost
 * for each not started (images reused from a previous run are done, at no call). An image's cost
 * is the mean of those explained (an adaptive stop or an exact enumeration takes fewer than the
 * budget), drawn toward the budget while they are few. The calls over the images done, as this
 * said before 2026-12-03, counted the calls of the images in flight too: with many in flight,
 * several times an image's cost.
 */
export function expectedCalls(s: ProgressState): number {
  const prior = 2; // the budget weighs as two images explained
  const perImage = (s.callsOfExplained + prior * s.callsPerImage) / (s.explained + prior);
  const inFlightCalls = Math.max(0, s.calls - s.callsOfExplained);
  const notStarted = Math.max(0, s.imagesListed - s.imagesDone - s.inFlight);
  return Math.max(s.calls, Math.round(s.callsOfExplained + Math.max(inFlightCalls, s.inFlight * perImage) + notStarted * perImage));
}

/**
 * Calls per second are counted over about this long: the calls come in bursts between an image's
 * waves and solves, so a rate over the last redraw (200 ms) jumped between 0 and bursts.
 */
export const RATE_WINDOW_MS = 5_000;

export class ProgressReporter {
  private readonly started = performance.now();
  private timer: NodeJS.Timeout | undefined;
  /** (time, calls) at recent ticks, oldest first: the rate is taken across them. */
  private readonly recent: { at: number; calls: number }[] = [{ at: this.started, calls: 0 }];
  private rate = 0;
  private bars: cliProgress.MultiBar | undefined;
  private bar: cliProgress.SingleBar | undefined;

  constructor(
    private readonly state: () => ProgressState,
    private readonly sink: ProgressSink,
    private readonly intervalMs = sink.isTTY ? 200 : 10_000,
  ) {}

  start(): void {
    if (this.sink.isTTY && this.sink.stream) {
      this.bars = new cliProgress.MultiBar(
        {
          stream: this.sink.stream,
          format: ' {bar} {percentage}% | {images} images | {value}/{total} calls | {rate} calls/s | ETA {eta_formatted}{problems}',
          hideCursor: true,
          clearOnComplete: true,
          stopOnComplete: false,
          etaBuffer: 200,
          fps: 5,
          barsize: 24,
          autopadding: true,
          forceRedraw: true,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar = this.bars.create(Math.max(1, expectedCalls(this.state())), 0, this.payload(this.record()));
    }
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  /** A line for the user while the bar is up (above it on a terminal). False when there is no bar. */
  log(line: string): boolean {
    if (!this.bars) return false;
    this.bars.log(`${line}\n`);
    return true;
  }

  record(): ProgressRecord {
    const s = this.state();
    const now = performance.now();
    // Keep the newest sample at least RATE_WINDOW_MS old as the base, and those after it.
    while (this.recent.length > 1 && now - this.recent[1]!.at >= RATE_WINDOW_MS) this.recent.shift();
    const base = this.recent[0]!;
    const window = (now - base.at) / 1000;
    if (window > 0.05) this.rate = (s.calls - base.calls) / window;
    if (now - this.recent[this.recent.length - 1]!.at > 0.05 * 1000) this.recent.push({ at: now, calls: s.calls });
    const elapsed = (now - this.started) / 1000;
    const expected = expectedCalls(s);
    const callRate = elapsed > 0 ? s.calls / elapsed : 0;
    const eta = callRate > 0 ? Math.max(0, (expected - s.calls) / callRate) : null;
    return {
      event: 'progress',
      images_done: s.imagesDone,
      images_listed: s.imagesListed,
      listing_complete: true, // the listing is whole before the first image: kept for readers of these records
      failed: s.failed,
      calls: s.calls,
      retries: s.retries,
      expected_calls: expected,
      calls_per_second: Math.round(this.rate),
      elapsed_seconds: Math.round(elapsed),
      eta_seconds: eta === null ? null : Math.round(eta),
    };
  }

  private payload(r: ProgressRecord): Record<string, string | number> {
    const problems = [r.failed > 0 ? `${r.failed} failed` : '', r.retries > 0 ? `${r.retries} retries` : ''].filter(Boolean).join(', ');
    return {
      images: `${r.images_done}/${r.images_listed}`,
      rate: r.calls_per_second,
      problems: problems ? ` | ${problems}` : '',
    };
  }

  private tick(): void {
    const r = this.record();
    if (this.bar) {
      this.bar.setTotal(Math.max(1, r.expected_calls));
      this.bar.update(r.calls, this.payload(r));
      return;
    }
    if (!this.sink.isTTY) this.sink.write(`${JSON.stringify(r)}\n`);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.bars) {
      this.bars.stop();
      this.bars = undefined;
      this.bar = undefined;
    }
  }
}
