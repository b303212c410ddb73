/**
 * The explain stage behind one interface: whatever the model type, an image and its prediction go
 * in and one outcome shape comes out, which the writers (output/explanations.ts) understand. The
 * job knows no model type's details.
 */
import type { RgbImage } from '../image/rgb.js';
import type { Prediction } from '../predictor/predictor.js';
import { type ClassificationExplanation, ClassificationExplainer } from './classification.js';
import { type DetectionExplanation, DetectionExplainer } from './detection.js';
import type { ExplanationGroundwork } from './groundwork.js';

/** One image's explanation: a classifier's labels, or a detector's objects (`kind` says which). */
export type ExplanationOutcome = ClassificationExplanation | DetectionExplanation;

export class ImageExplainer {
  private readonly classification: ClassificationExplainer;
  private readonly detection: DetectionExplainer;
  constructor(groundwork: ExplanationGroundwork) {
    this.classification = new ClassificationExplainer(groundwork);
    this.detection = new DetectionExplainer(groundwork);
  }

  /** `prediction` is the endpoint's answer for the unmasked image: it says which explainer runs. */
  explain(image: RgbImage, key: string, prediction: Prediction): Promise<ExplanationOutcome> {
    return prediction.kind === 'detection' ? this.detection.explain(image, key, prediction) : this.classification.explain(image, key, prediction);
  }
}
