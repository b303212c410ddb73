/**
 * SHAP for one image over its superpixels: plan coalitions, evaluate the masked images through a
 * caller-given model function, and solve for every output at once. Optionally stops early when
 * the largest standard error falls below a tolerance.
 */
import pLimit from 'p-limit';
import { type CpuStages, inlineStages } from '../compute/stages.js';
import type { RgbImage } from '../image/rgb.js';
import { KernelShapDesign } from './kernel-shap.js';
import { KERNEL_SOLVE, type SolveOptions } from './tree-adjusted.js';
import { indexSegments, type SegmentIndex } from './masking.js';
import type { Random } from './random.js';
import type { SegmentMap } from '../segment/slic.js';

export interface ImageShapInput {
  readonly image: RgbImage;
  readonly segments: SegmentMap;
  /** The segments' pixel lists, when already made (with the segmentation). */
  readonly index?: SegmentIndex;
  /** Where masking and the solve run (default: this thread). */
  readonly cpu?: CpuStages;
  readonly baseline: RgbImage;
  /** Segment ids that are players (default: all). The others always show the baseline. */
  readonly players?: readonly number[];
  /** Outputs on the all-baseline image, when already known (saves a call). */
  readonly empty?: Float64Array;
  /** Model outputs on the unmasked image (already known from the prediction). */
  readonly full: Float64Array;
  /** Coalition evaluations at most (the empty coalition is one more call). */
  readonly budget: number;
  readonly random: Random;
  /** Stop sampling once every standard error is below this (optional). */
  readonly tolerance?: number;
  /** Which estimator turns the evaluated coalitions into Shapley values (default: Kernel SHAP). */
  readonly solveOptions?: SolveOptions;
  /** Masked images prepared ahead of the endpoint; bounds memory. */
  readonly prepareAhead: number;
  /** The model on one image: one value per output. */
  evaluate(image: RgbImage): Promise<Float64Array>;
}

export interface ImageShapResult {
  /** φ[output][player], players in the order given (default: segment ids). */
  readonly values: Float64Array[];
  readonly standardErrors: Float64Array[];
  /** Model outputs on the unmasked image and on the all-baseline image. */
  readonly full: Float64Array;
  readonly empty: Float64Array;
  /** Model calls made for this explanation (coalitions, plus the all-baseline image unless given). */
  readonly calls: number;
  readonly exact: boolean;
  readonly stoppedEarly: boolean;
}

/** First round of sampling before the first tolerance check, as a share of what is left. */
const FIRST_ROUND_SHARE = 0.25;
const MIN_ROUND = 64;

export async function explainImage(input: ImageShapInput): Promise<ImageShapResult> {
  const players = input.players ?? Array.from({ length: input.segments.count }, (_, j) => j);
  const m = players.length;
  if (m === 0) throw new RangeError('no segment to explain');
  const index = input.index ?? indexSegments(input.segments);
  const cpu = input.cpu ?? inlineStages;
  const limit = pLimit(Math.max(1, input.prepareAhead));
  const evaluateMask = (mask: Uint8Array): Promise<Float64Array> =>
    limit(async () => {
      const segmentMask = new Uint8Array(input.segments.count);
      players.forEach((segment, i) => (segmentMask[segment] = mask[i]!));
      return input.evaluate(await cpu.mask(input.image, input.baseline, index, segmentMask));
    });

  const emptyCalls = input.empty === undefined ? 1 : 0;
  if (m === 1) {
    const empty = input.empty ?? (await evaluateMask(new Uint8Array(m)));
    // One player: it carries the whole difference, exactly.
    return {
      values: Array.from(input.full, (f, o) => Float64Array.of(f - empty[o]!)),
      standardErrors: Array.from(input.full, () => new Float64Array(1)),
      full: input.full,
      empty,
      calls: emptyCalls,
      exact: true,
      stoppedEarly: false,
    };
  }

  const values: Float64Array[] = [];
  const chosen = input.solveOptions ?? KERNEL_SOLVE;
  // The surrogate's seed comes from the image's own random stream, so a run repeats exactly.
  const solveOptions: SolveOptions = chosen.estimator === 'kernel' ? chosen : { ...chosen, seed: Math.floor(input.random() * 2 ** 31) };
  const evaluateFrom = async (design: KernelShapDesign, start: number): Promise<void> => {
    const fresh = design.masks.slice(start);
    const results = await Promise.all(fresh.map(evaluateMask));
    results.forEach((r, i) => (values[start + i] = r));
  };
  // Without a tolerance the whole budget is planned up front: the all-baseline image and every
  // coalition go out in one wave, so the endpoint limiter never waits on this image between phases.
  // With one, the first wave is what enumeration justifies, then sampling goes in rounds.
  const tolerance = input.tolerance;
  const adaptive = tolerance !== undefined;
  const design = adaptive ? KernelShapDesign.enumerate(m, input.budget, input.random) : KernelShapDesign.plan(m, input.budget, input.random);
  const [empty] = await Promise.all([input.empty ?? evaluateMask(new Uint8Array(m)), evaluateFrom(design, 0)]);
  let stoppedEarly = false;
  if (tolerance !== undefined) {
    const round = Math.max(MIN_ROUND, Math.ceil((input.budget - design.masks.length) * FIRST_ROUND_SHARE));
    while (design.canSample && design.masks.length < input.budget) {
      const before = design.masks.length;
      await evaluateFrom(design, design.sampleMore(Math.min(round, input.budget - design.masks.length)));
      if (design.masks.length === before) break; // the sizes left cannot give new coalitions
      // Rounds check Kernel SHAP's errors (cheap); the adjusted estimate mixes Kernel SHAP in at
      // least variance, so its own errors are no larger and the final solve keeps the stop honest.
      const { standardErrors } = await cpu.solve(design, values, input.full, empty);
      const largest = Math.max(...standardErrors.map((se) => Math.max(...se)));
      if (largest < tolerance) {
        stoppedEarly = design.masks.length < input.budget;
        break;
      }
    }
  }
  const solution = await cpu.solve(design, values, input.full, empty, solveOptions);
  return {
    values: solution.values,
    standardErrors: solution.standardErrors,
    full: input.full,
    empty,
    calls: design.masks.length + emptyCalls,
    exact: design.exact,
    stoppedEarly,
  };
}
