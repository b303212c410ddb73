/**
 * SHAP for one image over its superpixels: plan coalitions, evaluate the masked images through a
 * caller-given model function, and solve for every output at once. Optionally stops early when
 * the largest standard error falls below a tolerance.
 */
import pLimit from 'p-limit';
import { type CpuStages, inlineStages } from '../compute/stages.js';
import type { RgbImage } from '../image/rgb.js';
import { KernelShapDesign } from './kernel-shap.js';
import { GuidedRounds, guidedWaves } from './guided-sampling.js';
import { forestsAnswer, KERNEL_SOLVE, type SolveOptions } from './tree-adjusted.js';
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

/**
 * Calls per wave after enumeration (the first joins the enumerated coalitions). Guided: the pilot,
 * then the guided rounds. Else with a tolerance: nothing, then rounds of a quarter of what is
 * left until the budget. Else: everything at once.
 */
export function samplingWaves(sampled: number, guided: boolean, withTolerance: boolean): number[] {
  if (guided) return guidedWaves(sampled);
  if (!withTolerance) return [sampled];
  const round = Math.max(MIN_ROUND, Math.ceil(sampled * FIRST_ROUND_SHARE));
  const waves = [0];
  for (let left = sampled; left > 0; left -= round) waves.push(Math.min(round, left));
  return waves;
}

/**
 * The outputs whose forests guide the sampling: those a tree-adjusted solve adjusts, when it will
 * (enough calls per segment, and not every coalition) and guiding is not turned off; none for
 * Kernel SHAP, whose own law is best for it.
 */
export function guidedOutputs(options: SolveOptions, m: number, budget: number, outputs: number): readonly number[] | undefined {
  if (options.estimator !== 'tree-adjusted' || options.guided === false || !forestsAnswer(budget, m)) return undefined;
  const adjusted = options.adjusted ?? Array.from({ length: outputs }, (_, o) => o);
  return adjusted.length > 0 ? adjusted : undefined;
}

export interface CoalitionInput {
  readonly players: number;
  readonly budget: number;
  readonly random: Random;
  readonly full: Float64Array;
  /** Outputs on the empty coalition, when already known. */
  readonly empty?: Float64Array;
  readonly tolerance?: number;
  /** The solve to come, with its seed: a tree-adjusted one guides the sampling. */
  readonly solveOptions: SolveOptions;
  readonly cpu: CpuStages;
  evaluate(mask: Uint8Array): Promise<Float64Array>;
}

export interface EvaluatedCoalitions {
  readonly design: KernelShapDesign;
  /** Outputs per coalition of the design, in its order. */
  readonly values: Float64Array[];
  readonly empty: Float64Array;
  readonly stoppedEarly: boolean;
}

/**
 * Plan the coalitions, evaluate them in waves and stop at the budget or the tolerance. Without a
 * guide or a tolerance, everything goes in one wave with the empty coalition, so the endpoint
 * limiter never waits on this image between phases. A tree-adjusted solve guides the sampling:
 * a pilot wave, then rounds thinned by its forests (guided-sampling.ts).
 */
export async function evaluateCoalitions(input: CoalitionInput): Promise<EvaluatedCoalitions> {
  const { players: m, budget, cpu, tolerance, solveOptions } = input;
  const values: Float64Array[] = [];
  const evaluateFrom = async (design: KernelShapDesign, start: number): Promise<void> => {
    const fresh = design.masks.slice(start);
    const results = await Promise.all(fresh.map((mask) => input.evaluate(mask)));
    results.forEach((r, i) => (values[start + i] = r));
  };
  const guide = guidedOutputs(solveOptions, m, budget, input.full.length);
  const design = KernelShapDesign.enumerate(m, budget, input.random);
  const waves = design.canSample ? samplingWaves(budget - design.masks.length, guide !== undefined, tolerance !== undefined) : [0];
  design.sampleMore(waves[0]!);
  // Every guided round's proposals are drawn now, after the pilot's draws (guided-sampling.ts).
  const rounds = guide && design.canSample ? GuidedRounds.plan(design, waves.slice(1)) : undefined;
  const [empty] = await Promise.all([input.empty ?? input.evaluate(new Uint8Array(m)), evaluateFrom(design, 0)]);
  let stoppedEarly = false;
  for (let wave = 1; ; wave++) {
    if (tolerance !== undefined && design.sampledCount > 0) {
      // Rounds check Kernel SHAP's errors (cheap); the adjusted estimate mixes Kernel SHAP in at
      // least variance, so its own errors are no larger and the final solve keeps the stop honest.
      const { standardErrors } = await cpu.solve(design, values, input.full, empty);
      const largest = Math.max(...standardErrors.map((se) => Math.max(...se)));
      if (largest < tolerance) {
        stoppedEarly = design.masks.length < budget;
        break;
      }
    }
    if (wave >= waves.length || !design.canSample || design.masks.length >= budget) break;
    const before = design.masks.length;
    const last = wave === waves.length - 1;
    if (rounds) {
      await rounds.run(wave - 1, (pairs, own) => cpu.guide({ evaluated: design.masks.slice(0, values.length), values, full: input.full, empty, outputs: guide!, proposals: pairs, own, seed: (solveOptions.seed ?? 0) + wave }));
      // Pairs that repeated earlier coalitions leave calls over: the last wave draws them plainly.
      if (last && design.masks.length < budget) design.sampleMore(budget - design.masks.length);
    } else {
      // The last wave takes what is left, should draws have repeated before it.
      design.sampleMore(last ? budget - before : Math.min(waves[wave]!, budget - before));
    }
    await evaluateFrom(design, before);
    if (design.masks.length === before && !rounds) break; // the sizes left cannot give new coalitions
  }
  return { design, values, empty, stoppedEarly };
}

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

  const chosen = input.solveOptions ?? KERNEL_SOLVE;
  // The surrogate's seed comes from the image's own random stream, so a run repeats exactly.
  const solveOptions: SolveOptions = chosen.estimator === 'kernel' ? chosen : { ...chosen, seed: Math.floor(input.random() * 2 ** 31) };
  const { design, values, empty, stoppedEarly } = await evaluateCoalitions({
    players: m,
    budget: input.budget,
    random: input.random,
    full: input.full,
    ...(input.empty ? { empty: input.empty } : {}),
    ...(input.tolerance !== undefined ? { tolerance: input.tolerance } : {}),
    solveOptions,
    cpu,
    evaluate: evaluateMask,
  });
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
