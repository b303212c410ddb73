/**
 * The explain stage for image classification: Kernel SHAP over the superpixels, every masked
 * image sent through the job's predictor (same limiter, retries and failure handling), one set of
 * calls serving every label.
 */
import { StageError } from '../errors.js';
import type { RgbImage } from '../image/rgb.js';
import type { ClassScore } from '../predictor/parse.js';
import type { SegmentMap } from '../segment/slic.js';
import type { ExplanationGroundwork } from './groundwork.js';
import { explainImage, type ImageShapResult } from './image-shap.js';

export interface ClassificationExplanation {
  readonly kind: 'classification';
  readonly segments: SegmentMap;
  readonly result: ImageShapResult;
  readonly budget: number;
  /** The unmasked image's scores (untransformed), one per label_headers entry, and the top one. */
  readonly scores: readonly ClassScore[];
  readonly predicted: ClassScore;
  /** What the values are in: the scores, or their log-odds with use_logit. */
  readonly unit: 'probability' | 'log-odds';
}

/** Scores → log-odds, for `use_logit`. Scores must be probabilities. */
export function logit(p: number): number {
  if (!(p >= 0 && p <= 1)) throw new StageError('explain', `use_logit needs scores in [0, 1], got ${p}`);
  const q = Math.min(Math.max(p, 1e-12), 1 - 1e-12);
  return Math.log(q / (1 - q));
}

export class ClassificationExplainer {
  constructor(private readonly groundwork: ExplanationGroundwork) {}

  /** Scores of one model answer as the solver sees them (log-odds with use_logit). */
  private transform(scores: readonly number[]): Float64Array {
    const useLogit = this.groundwork.config.methods.shap.use_logit;
    return Float64Array.from(scores, (s) => (useLogit ? logit(s) : s));
  }

  /** `prediction` is the unmasked image's answer (its untransformed scores). */
  async explain(image: RgbImage, key: string, prediction: { readonly scores: readonly ClassScore[]; readonly predicted: ClassScore }): Promise<ClassificationExplanation> {
    const g = this.groundwork;
    const fullScores = prediction.scores.map((s) => s.score);
    const { segments, index } = await g.segment(image);
    const baseline = await g.baselineFor(image, key);
    const budget = g.budgetFor(segments.count);
    const result = await explainImage({
      image,
      segments,
      index,
      cpu: g.cpu,
      baseline,
      full: this.transform(fullScores),
      budget,
      random: g.randomFor(key),
      tolerance: g.config.clarify_images.shap_tolerance,
      solveOptions: g.solveOptionsFor(Array.from(fullScores.keys()).sort((a, b) => fullScores[b]! - fullScores[a]! || a - b)),
      prepareAhead: g.prepareAheadFor(image),
      evaluate: async (masked) => {
        const prediction = await g.predict(masked);
        if (prediction.kind !== 'classification') throw new StageError('explain', 'expected class scores');
        return this.transform(prediction.scores.map((s) => s.score));
      },
    });
    const unit = g.config.methods.shap.use_logit ? 'log-odds' : 'probability';
    return { kind: 'classification', segments, result, budget, scores: prediction.scores, predicted: prediction.predicted, unit };
  }
}
