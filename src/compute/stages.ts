/**
 * The CPU-heavy stages behind one interface: segmentation (with its pixel index), masking and
 * the Kernel SHAP solve. `inlineStages` runs them on the calling thread (small unit uses);
 * `WorkerStages` runs them on a pool of worker threads, so the event loop stays free for
 * endpoint calls, timeouts and signals, and the work spreads over the machine's cores.
 */
import os from 'node:os';
import { Piscina } from 'piscina';
import type { CoalitionDesign, ShapSolution } from '../explain/kernel-shap.js';
import { KERNEL_SOLVE, solveShapley, type SolveOptions } from '../explain/tree-adjusted.js';
import { indexSegments, maskImage, type SegmentIndex } from '../explain/masking.js';
import { createRgbImage, type RgbImage } from '../image/rgb.js';
import { StopError } from '../predictor/invoker.js';
import { slic, type SegmentMap, type SlicOptions } from '../segment/slic.js';
import type { CpuTask, SegmentResult } from './cpu-worker.js';
import { flattenDesign, flattenValues, inSharedMemory } from './transfer.js';
import { guideWeights, type PairRange } from '../explain/guided-sampling.js';
import { coalitionRows } from '../explain/regression-tree.js';
import { addBusyTime, busySeconds, type CpuStageKind, createStageClock } from './stage-clock.js';

/** What a guided sampling round asks of the CPU: see `guideWeights`. */
export interface GuideRequest {
  /** The coalitions evaluated so far, with their values. */
  readonly evaluated: readonly Uint8Array[];
  readonly values: readonly Float64Array[];
  readonly full: Float64Array;
  readonly empty: Float64Array;
  /** Outputs whose forests guide. */
  readonly outputs: readonly number[];
  /** The pairs to weigh; the round's own proposals are those in `own`. */
  readonly proposals: readonly Uint8Array[];
  readonly own: PairRange;
  readonly seed: number;
}

export interface CpuStages {
  /** Superpixels and the pixel list of each. */
  segment(image: RgbImage, options: SlicOptions): Promise<{ segments: SegmentMap; index: SegmentIndex }>;
  /** The image with segments whose mask entry is 0 taken from the baseline. */
  mask(image: RgbImage, baseline: RgbImage, index: SegmentIndex, mask: Uint8Array): Promise<RgbImage>;
  /** Shapley values from the evaluated coalitions, by the estimator the options name. */
  solve(design: CoalitionDesign, values: readonly Float64Array[], full: Float64Array, empty: Float64Array, options?: SolveOptions): Promise<ShapSolution>;
  /** Weights of proposed pairs for a guided round, from forests fit to the evaluated coalitions (`guideWeights`). */
  guide(request: GuideRequest): Promise<Float64Array>;
  close(): Promise<void>;
}

export const inlineStages: CpuStages = {
  async segment(image, options) {
    const segments = slic(image, options);
    return { segments, index: indexSegments(segments) };
  },
  async mask(image, baseline, index, mask) {
    return maskImage(image, baseline, index, mask);
  },
  async solve(design, values, full, empty, options = KERNEL_SOLVE) {
    return solveShapley(design, values, full, empty, options);
  },
  async guide(request) {
    return guideWeights(request.evaluated, request.values, request.full, request.empty, request.outputs, request.proposals, request.seed, request.own);
  },
  async close() {},
};

/** Images this small (256 × 256) are masked on the calling thread. */
export const INLINE_MASK_PIXELS = 256 * 256;

/** Cores this process may use. */
export function availableCores(): number {
  return Math.max(1, os.availableParallelism());
}

/** Worker threads the job uses by default: every core the process may use. */
export function defaultWorkerCount(): number {
  return availableCores();
}

export class WorkerStages implements CpuStages {
  private readonly pool: Piscina<CpuTask, unknown>;
  private readonly clock = createStageClock();
  /** The last images put in shared memory, so each is copied once, not once per mask. */
  private readonly shared = new WeakMap<RgbImage, RgbImage>();
  constructor(
    threads: number,
    /** Aborted: running tasks are cut short (their threads end) and reject with StopError. */
    private readonly signal?: AbortSignal,
  ) {
    this.pool = new Piscina<CpuTask, unknown>({
      filename: new URL('./cpu-worker.js', import.meta.url).href,
      minThreads: 0,
      maxThreads: threads,
      idleTimeout: 5_000,
      workerData: { clock: this.clock },
    });
  }

  get threads(): number {
    return this.pool.options.maxThreads;
  }

  /** Seconds each stage has kept its thread busy so far, summed over the threads (small images' masking, done here, included). */
  busySeconds(): Record<CpuStageKind, number> {
    return busySeconds(this.clock);
  }

  private async run<T>(task: CpuTask): Promise<T> {
    if (this.signal?.aborted) throw new StopError();
    try {
      return (await this.pool.run(task, this.signal ? { signal: this.signal } : {})) as T;
    } catch (error) {
      if (this.signal?.aborted) throw new StopError();
      throw error;
    }
  }

  private share(image: RgbImage): RgbImage {
    let shared = this.shared.get(image);
    if (!shared) {
      shared = inSharedMemory(image);
      this.shared.set(image, shared);
    }
    return shared;
  }

  segment(image: RgbImage, options: SlicOptions): Promise<SegmentResult> {
    return this.run<SegmentResult>({ kind: 'segment', image: this.share(image), options });
  }

  async mask(image: RgbImage, baseline: RgbImage, index: SegmentIndex, mask: Uint8Array): Promise<RgbImage> {
    // A small image masks in well under a millisecond: here, rather than queued behind a
    // segmentation or a solve that may hold every worker for seconds.
    if (image.width * image.height <= INLINE_MASK_PIXELS) {
      const started = performance.now();
      const masked = maskImage(image, baseline, index, mask);
      addBusyTime(this.clock, 'mask', performance.now() - started);
      return masked;
    }
    const data = await this.run<Uint8Array>({ kind: 'mask', image: this.share(image), baseline: this.share(baseline), index, mask });
    return createRgbImage(image.width, image.height, data);
  }

  solve(design: CoalitionDesign, values: readonly Float64Array[], full: Float64Array, empty: Float64Array, options: SolveOptions = KERNEL_SOLVE): Promise<ShapSolution> {
    return this.run<ShapSolution>({ kind: 'solve', design: flattenDesign(design), values: flattenValues(values, full.length), full, empty, options });
  }

  guide(request: GuideRequest): Promise<Float64Array> {
    const outputs = request.full.length;
    const features = request.proposals[0]?.length ?? 0;
    return this.run<Float64Array>({
      kind: 'guide',
      features,
      evaluated: coalitionRows(request.evaluated, features),
      values: flattenValues(request.values, outputs),
      full: request.full,
      empty: request.empty,
      outputs: request.outputs,
      proposals: coalitionRows(request.proposals, features),
      own: request.own,
      seed: request.seed,
    });
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }
}
