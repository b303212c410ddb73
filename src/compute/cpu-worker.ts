/**
 * The CPU-heavy stages, run on a worker thread (one Piscina task each): SLIC with its segment
 * index, one masked image, one Shapley solve (Kernel SHAP or tree-adjusted), one guided round's
 * pair weights. Inputs arrive in shared memory or as flat arrays; outputs are moved back, not
 * copied.
 */
import { Piscina, workerData } from 'piscina';
import type { ShapSolution } from '../explain/kernel-shap.js';
import { solveShapley, type SolveOptions } from '../explain/tree-adjusted.js';
import { indexSegments, maskImage, type SegmentIndex, sharedMemory } from '../explain/masking.js';
import type { RgbImage } from '../image/rgb.js';
import { slic, type SegmentMap, type SlicOptions } from '../segment/slic.js';
import { type FlatDesign, unflattenDesign, unflattenMasks, unflattenValues } from './transfer.js';
import { guideWeights, type PairRange } from '../explain/guided-sampling.js';
import { addBusyTime, type StageClock } from './stage-clock.js';

export type CpuTask =
  | { readonly kind: 'segment'; readonly image: RgbImage; readonly options: SlicOptions }
  | { readonly kind: 'mask'; readonly image: RgbImage; readonly baseline: RgbImage; readonly index: SegmentIndex; readonly mask: Uint8Array }
  | { readonly kind: 'solve'; readonly design: FlatDesign; readonly values: Float64Array; readonly full: Float64Array; readonly empty: Float64Array; readonly options: SolveOptions }
  | {
      readonly kind: 'guide';
      readonly features: number;
      readonly evaluated: Uint8Array;
      readonly values: Float64Array;
      readonly full: Float64Array;
      readonly empty: Float64Array;
      readonly outputs: readonly number[];
      readonly proposals: Uint8Array;
      readonly own: PairRange;
      readonly seed: number;
    };

export interface SegmentResult {
  readonly segments: SegmentMap;
  readonly index: SegmentIndex;
}

/** Labels copied into shared memory, so every later task reads them without a copy. */
export function segmentShared(image: RgbImage, options: SlicOptions): SegmentResult {
  const map = slic(image, options);
  const labels = new Int32Array(new SharedArrayBuffer(map.labels.byteLength));
  labels.set(map.labels);
  const segments: SegmentMap = { ...map, labels };
  return { segments, index: indexSegments(segments, sharedMemory) };
}

/** The pool's busy clock (WorkerStages gives it to every worker), if any. */
const clock = (workerData as { clock?: StageClock } | undefined)?.clock;

/** Runs a task, its time added to the pool's busy clock. */
export default function run(task: CpuTask): SegmentResult | Uint8Array | ShapSolution | Float64Array {
  const started = performance.now();
  try {
    return runTask(task);
  } finally {
    if (clock) addBusyTime(clock, task.kind, performance.now() - started);
  }
}

/** A masked image comes back as its pixels alone, moved (not copied) to the main thread. */
function runTask(task: CpuTask): SegmentResult | Uint8Array | ShapSolution | Float64Array {
  switch (task.kind) {
    case 'segment':
      return segmentShared(task.image, task.options);
    case 'mask': {
      const masked = maskImage(task.image, task.baseline, task.index, task.mask);
      return Piscina.move(masked.data) as unknown as Uint8Array;
    }
    case 'solve':
      return solveShapley(unflattenDesign(task.design), unflattenValues(task.values, task.full.length), task.full, task.empty, task.options);
    case 'guide': {
      const weights = guideWeights(unflattenMasks(task.evaluated, task.features), unflattenValues(task.values, task.full.length), task.full, task.empty, task.outputs, unflattenMasks(task.proposals, task.features), task.seed, task.own);
      return Piscina.move(weights) as unknown as Float64Array;
    }
  }
}
