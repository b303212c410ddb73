/**
 * Bounding the job's memory as a whole: each image is admitted by an estimate of its working
 * size (what its decode, segmentation, masked copies and pictures hold at their peak), against one
 * budget for all images in flight. An image that would not fit even alone is refused up front with
 * what to do about it, instead of growing the process until the container is killed.
 */
import { formatCount } from '../output/format.js';

/** Bytes per pixel an image holds while it is explained, besides its masked copies (measured, see BENCHMARKS.md). */
export const BYTES_PER_PIXEL = 75;
/** Each masked copy in flight: the pixels plus their encoded payload. */
export const BYTES_PER_MASKED_PIXEL = 6;
/** Masked copies of one image in flight, at most this many bytes: big images prepare fewer ahead. */
export const MASKED_BYTES_PER_IMAGE = 192 * 1024 * 1024;
const FIXED_BYTES_PER_IMAGE = 16 * 1024 * 1024;

/**
 * The largest `max_image_side` (a multiple of 64) at which an image of `size` would fit in
 * `capacity`, `needed` giving what it needs at a size; undefined when none from 64 up would (its
 * answers or its file take the budget). What it needs shrinks with its pixels, so a bisection finds it.
 */
export function largestSideThatFits(size: { width: number; height: number }, needed: (size: { width: number; height: number }) => number, capacity: number): number | undefined {
  const longer = Math.max(size.width, size.height);
  const at = (side: number): { width: number; height: number } => ({
    width: Math.max(1, Math.round((size.width * side) / longer)),
    height: Math.max(1, Math.round((size.height * side) / longer)),
  });
  const fits = (steps: number): boolean => needed(at(steps * 64)) <= capacity;
  let low = 0; // in steps of 64: 0 stands for "none fits"
  let high = Math.floor((longer - 1) / 64);
  if (high < 1 || !fits(1)) return undefined;
  low = 1;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (fits(mid)) low = mid;
    else high = mid - 1;
  }
  return low * 64;
}

/** How many masked copies of an image of this size to prepare ahead of the endpoint. */
export function prepareAheadFor(pixels: number, wanted: number): number {
  return Math.max(2, Math.min(wanted, Math.floor(MASKED_BYTES_PER_IMAGE / Math.max(1, pixels * BYTES_PER_MASKED_PIXEL))));
}

export function workingBytes(pixels: number, prepareAhead: number): number {
  return FIXED_BYTES_PER_IMAGE + pixels * BYTES_PER_PIXEL + prepareAhead * pixels * BYTES_PER_MASKED_PIXEL;
}

/**
 * Per output an image's explanation solves for (a classifier's labels) and per endpoint call: the
 * answers as the explainer keeps them, the copy its solve works on in a worker thread, and the
 * solve's per-output arrays, 8 bytes each. Measured at 24–25 bytes (a job of 6 images, 2,089 calls
 * each, 200 against 5,000 labels: 0.98 GB more at its peak with 4 images in flight); 32 leaves room.
 */
export const BYTES_PER_OUTPUT_CALL = 32;
/** Per output and segment of a finished result: its SHAP values and SEs as objects and as the JSON line written. */
export const BYTES_PER_OUTPUT_SEGMENT = 64;

/**
 * What an image's explanation holds per output beside its pixels: a thousand-label classifier at
 * 2,048 calls about 66 MB, a 20,000-label one 1.3 GB, so the labels must count as pixels do.
 */
export function explanationBytes(outputs: number, calls: number, segments: number): number {
  return outputs * (calls * BYTES_PER_OUTPUT_CALL + segments * BYTES_PER_OUTPUT_SEGMENT);
}

/** The part of one finished result that waits in memory until it is written. */
export function resultBytes(outputs: number, segments: number): number {
  return outputs * segments * BYTES_PER_OUTPUT_SEGMENT;
}

export const mib = (bytes: number): string => `${formatCount(Math.ceil(bytes / (1024 * 1024)))} MB`;

/** Why a file larger than the whole budget is not read (an image's or the baseline's), after its name. */
export const unreadOverBudget = (bytes: number, budget: number): string => `is ${mib(bytes)}, more than clarify_images.max_memory_mb (${mib(budget)}) holds, so it is not read`;

/** An image too big for the memory budget even alone. */
export class OverBudgetError extends Error {
  constructor(readonly needed: number, readonly budget: number) {
    super(`needs about ${mib(needed)} to explain, more than clarify_images.max_memory_mb (${mib(budget)})`);
    this.name = 'OverBudgetError';
  }
}

/** A byte-counting semaphore, first come first served. */
export class MemoryBudget {
  private used = 0;
  private readonly waiting: { bytes: number; admit: () => void }[] = [];
  // Time some image waited for room, integrated up to `accountedAt` (ms on `clock`).
  private accountedAt: number;
  private waitedMs = 0;
  constructor(
    readonly capacity: number,
    /** In ms (default performance.now; tests give their own). */
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.accountedAt = clock();
  }

  /** Seconds during which at least one image waited for room (since the budget was made). */
  waitedSeconds(): number {
    this.account();
    return this.waitedMs / 1000;
  }

  /** Adds the time since the last change; called before every change of `waiting`. */
  private account(): void {
    const now = this.clock();
    if (this.waiting.length > 0) this.waitedMs += now - this.accountedAt;
    this.accountedAt = now;
  }

  /** Waits until `bytes` fit beside what is admitted; returns the release. Throws when they never can. */
  async acquire(bytes: number): Promise<() => void> {
    if (bytes > this.capacity) throw new OverBudgetError(bytes, this.capacity);
    this.account();
    if (this.waiting.length > 0 || this.used + bytes > this.capacity) {
      await new Promise<void>((admit) => this.waiting.push({ bytes, admit }));
    } else {
      this.used += bytes;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.account();
      this.used -= bytes;
      this.admitWaiting();
    };
  }

  private admitWaiting(): void {
    while (this.waiting.length > 0 && this.used + this.waiting[0]!.bytes <= this.capacity) {
      const next = this.waiting.shift()!;
      this.used += next.bytes;
      next.admit();
    }
  }

  get inUse(): number {
    return this.used;
  }
}
