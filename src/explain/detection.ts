/**
 * The explain stage for object detection. Each kept object is explained separately; its value on
 * a masked image is the score of the best matching detection there: same class, IoU with the
 * object's original box ≥ iou_threshold, highest score; 0 when none matches. Every detection the
 * model returns counts (probability_threshold only chooses which objects to explain).
 *
 * `context` limits what the model sees of the image around an object: 1 is the whole image; 0 is
 * only the object's box; between, the box grows by that fraction of the distance to each border.
 * Outside the context region the baseline always shows, and segments wholly outside it are not
 * players. With context 1 every object shares one set of calls.
 */
import { StageError } from '../errors.js';
import { createRgbImage, type RgbImage } from '../image/rgb.js';
import type { Box, Detection } from '../predictor/parse.js';
import type { SegmentMap } from '../segment/slic.js';
import type { ExplanationGroundwork } from './groundwork.js';
import { explainImage, type ImageShapResult } from './image-shap.js';

export function iou(a: Box, b: Box): number {
  const ix = Math.max(0, Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0));
  const iy = Math.max(0, Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0));
  const intersection = ix * iy;
  const area = (box: Box): number => Math.max(0, box.x1 - box.x0) * Math.max(0, box.y1 - box.y0);
  const union = area(a) + area(b) - intersection;
  return union > 0 ? intersection / union : 0;
}

const sameClass = (a: Detection, b: Detection): boolean => (a.classIndex >= 0 ? a.classIndex === b.classIndex : a.label === b.label);

/** The matching rule: highest score among same-class detections with IoU ≥ threshold, else 0. */
export function matchScore(object: Detection, detections: readonly Detection[], iouThreshold: number): number {
  let best = 0;
  for (const d of detections) {
    if (sameClass(object, d) && iou(object.box, d.box) >= iouThreshold && d.score > best) best = d.score;
  }
  return best;
}

/** The context region of a box, in pixels [x0, x1) × [y0, y1). */
export function contextRegion(box: Box, width: number, height: number, context: number): { x0: number; y0: number; x1: number; y1: number } {
  const bx0 = Math.max(0, Math.min(1, box.x0)) * width;
  const by0 = Math.max(0, Math.min(1, box.y0)) * height;
  const bx1 = Math.max(0, Math.min(1, box.x1)) * width;
  const by1 = Math.max(0, Math.min(1, box.y1)) * height;
  return {
    x0: Math.max(0, Math.floor(bx0 - context * bx0)),
    y0: Math.max(0, Math.floor(by0 - context * by0)),
    x1: Math.min(width, Math.ceil(bx1 + context * (width - bx1))),
    y1: Math.min(height, Math.ceil(by1 + context * (height - by1))),
  };
}

/** Image inside the region, baseline outside; and the segments with any pixel inside. */
function restrictToRegion(image: RgbImage, baseline: RgbImage, segments: SegmentMap, region: ReturnType<typeof contextRegion>): { image: RgbImage; players: number[] } {
  const data = Uint8Array.from(baseline.data);
  const inside = new Uint8Array(segments.count);
  for (let y = region.y0; y < region.y1; y++) {
    const row = y * image.width;
    data.set(image.data.subarray((row + region.x0) * 3, (row + region.x1) * 3), (row + region.x0) * 3);
    for (let x = region.x0; x < region.x1; x++) inside[segments.labels[row + x]!] = 1;
  }
  const players: number[] = [];
  inside.forEach((v, j) => v && players.push(j));
  return { image: createRgbImage(image.width, image.height, data), players };
}

export interface ObjectExplanation {
  readonly object: Detection;
  /** Segment ids that were players; shap values of the others are 0. */
  readonly players: readonly number[];
  /** φ per segment id (0 for non-players), its standard errors, f(context image), f(baseline). */
  readonly shapValues: Float64Array;
  readonly standardErrors: Float64Array;
  readonly prediction: number;
  readonly baseValue: number;
  readonly exact: boolean;
  readonly stoppedEarly: boolean;
  readonly region: ReturnType<typeof contextRegion>;
}

export interface DetectionExplanation {
  readonly kind: 'detection';
  readonly segments: SegmentMap;
  readonly objects: readonly ObjectExplanation[];
  readonly calls: number;
  readonly budget: number;
  readonly unit: 'detection score';
}

export class DetectionExplainer {
  constructor(private readonly groundwork: ExplanationGroundwork) {}

  private async detect(image: RgbImage): Promise<readonly Detection[]> {
    const prediction = await this.groundwork.predict(image);
    if (prediction.kind !== 'detection') throw new StageError('explain', 'expected detections');
    return prediction.all;
  }

  /** The prediction's `objects` are the kept detections of the original image; `all` every detection it returned. */
  async explain(image: RgbImage, key: string, prediction: { readonly objects: readonly Detection[]; readonly all: readonly Detection[] }): Promise<DetectionExplanation> {
    const { objects, all } = prediction;
    const g = this.groundwork;
    const { iou_threshold: threshold, context } = g.config.methods.shap.image_config;
    const { segments, index } = await g.segment(image);
    const outcome = (calls: number, budget: number, explained: readonly ObjectExplanation[]): DetectionExplanation => ({ kind: 'detection', segments, objects: explained, calls, budget, unit: 'detection score' });
    if (objects.length === 0) return outcome(0, 0, []);
    const baseline = await g.baselineFor(image, key);
    const valuesOf = (detections: readonly Detection[], which: readonly Detection[]): Float64Array =>
      Float64Array.from(which, (o) => matchScore(o, detections, threshold));
    // The all-off coalition is the plain baseline for every object, whatever the context.
    const emptyAll = valuesOf(await this.detect(baseline), objects);
    let calls = 1;
    const budget = g.budgetFor(segments.count);
    const common = { segments, index, cpu: g.cpu, baseline, budget, tolerance: g.config.clarify_images.shap_tolerance, prepareAhead: g.prepareAheadFor(image) };
    const fullRegion = { x0: 0, y0: 0, x1: image.width, y1: image.height };

    if (context >= 1) {
      const result = await explainImage({
        ...common,
        image,
        full: valuesOf(all, objects),
        empty: emptyAll,
        random: g.randomFor(key),
        solveOptions: g.solveOptionsFor(objects.map((_, k) => k)),
        evaluate: async (masked) => valuesOf(await this.detect(masked), objects),
      });
      calls += result.calls;
      const players = Array.from({ length: segments.count }, (_, j) => j);
      return outcome(calls, budget, objects.map((object, k) => toObject(object, k, result, players, segments.count, fullRegion)));
    }

    const explained: ObjectExplanation[] = [];
    for (const [k, object] of objects.entries()) {
      const region = contextRegion(object.box, image.width, image.height, context);
      const restricted = restrictToRegion(image, baseline, segments, region);
      const full = valuesOf(await this.detect(restricted.image), [object]);
      calls += 1;
      const result = await explainImage({
        ...common,
        image: restricted.image,
        players: restricted.players,
        budget: g.budgetFor(restricted.players.length),
        full,
        empty: Float64Array.of(emptyAll[k]!),
        random: g.randomFor(`${key}\u0000object${k}`),
        solveOptions: g.solveOptionsFor([0]),
        evaluate: async (masked) => valuesOf(await this.detect(masked), [object]),
      });
      calls += result.calls;
      explained.push(toObject(object, 0, result, restricted.players, segments.count, region));
    }
    return outcome(calls, budget, explained);
  }
}

function toObject(object: Detection, output: number, result: ImageShapResult, players: readonly number[], segmentCount: number, region: ObjectExplanation['region']): ObjectExplanation {
  const shapValues = new Float64Array(segmentCount);
  const standardErrors = new Float64Array(segmentCount);
  players.forEach((segment, i) => {
    shapValues[segment] = result.values[output]![i]!;
    standardErrors[segment] = result.standardErrors[output]![i]!;
  });
  return {
    object,
    players,
    shapValues,
    standardErrors,
    prediction: result.full[output]!,
    baseValue: result.empty[output]!,
    exact: result.exact,
    stoppedEarly: result.stoppedEarly,
    region,
  };
}
