/**
 * The explain stage for image classification: superpixels → baseline → Kernel SHAP over the
 * segments, every masked image sent through the job's predictor (same limiter, retries and
 * failure handling), one set of calls serving every label.
 */
import type { AnalysisConfig } from '../config/config.js';
import { StageError } from '../errors.js';
import { decodeImage, describeDecodeError } from '../image/decode.js';
import { encodeImage } from '../image/encode.js';
import type { RgbImage } from '../image/rgb.js';
import type { Predictor } from '../predictor/predictor.js';
import { slic, type SegmentMap } from '../segment/slic.js';
import { readUri, type StorageOptions } from '../storage/storage.js';
import { blurBaseline, meanBaseline, noiseBaseline, resizeBaseline } from './baseline.js';
import { fnv1a32 } from './hash.js';
import { defaultBudget } from './kernel-shap.js';
import { explainImage, type ImageShapResult } from './image-shap.js';
import { seededRandom } from './random.js';

export interface ClassificationExplanation {
  readonly segments: SegmentMap;
  readonly result: ImageShapResult;
  readonly budget: number;
}

/** Scores → log-odds, for `use_logit`. Scores must be probabilities. */
export function logit(p: number): number {
  if (!(p >= 0 && p <= 1)) throw new StageError('explain', `use_logit needs scores in [0, 1], got ${p}`);
  const q = Math.min(Math.max(p, 1e-12), 1 - 1e-12);
  return Math.log(q / (1 - q));
}

export class ClassificationExplainer {
  private baselineImage: Promise<RgbImage> | undefined;
  constructor(
    private readonly config: AnalysisConfig,
    private readonly predictor: Predictor,
    private readonly storageOptions: StorageOptions,
  ) {}

  private get seed(): number {
    return this.config.methods.shap.seed ?? 0;
  }

  /** Scores of one model answer as the solver sees them (log-odds with use_logit). */
  transform(scores: readonly number[]): Float64Array {
    return Float64Array.from(scores, (s) => (this.config.methods.shap.use_logit ? logit(s) : s));
  }

  segment(image: RgbImage): SegmentMap {
    const { num_segments, segment_compactness } = this.config.methods.shap.image_config;
    try {
      return slic(image, { numSegments: num_segments, compactness: segment_compactness });
    } catch (error) {
      throw new StageError('segment', error instanceof Error ? error.message : String(error), { cause: error });
    }
  }

  private async baselineFor(image: RgbImage, key: string): Promise<RgbImage> {
    const uri = this.config.methods.shap.baseline;
    if (uri) {
      this.baselineImage ??= readUri(uri, this.storageOptions)
        .then((bytes) => decodeImage(bytes, { maxPixels: this.config.clarify_images.max_image_pixels }))
        .catch((error: unknown) => {
          throw new StageError('explain', `cannot use methods.shap.baseline ${uri}: ${describeDecodeError(error)}`, { cause: error });
        });
      return resizeBaseline(await this.baselineImage, image.width, image.height);
    }
    switch (this.config.clarify_images.baseline_fill) {
      case 'mean':
        return meanBaseline(image);
      case 'blur':
        return blurBaseline(image);
      case 'noise':
        return noiseBaseline(image.width, image.height, seededRandom((this.seed ^ fnv1a32(key) ^ 0x9e3779b9) >>> 0));
    }
  }

  /** `full` are the (untransformed) scores of the unmasked image. */
  async explain(image: RgbImage, key: string, fullScores: readonly number[]): Promise<ClassificationExplanation> {
    const segments = this.segment(image);
    const baseline = await this.baselineFor(image, key);
    const { predictor: predictorConfig, clarify_images: ext, methods } = this.config;
    const budget = methods.shap.num_samples ?? defaultBudget(segments.count);
    const result = await explainImage({
      image,
      segments,
      baseline,
      full: this.transform(fullScores),
      budget,
      random: seededRandom((this.seed ^ fnv1a32(key)) >>> 0),
      tolerance: ext.shap_tolerance,
      prepareAhead: ext.max_concurrency * 2,
      evaluate: async (masked) => {
        let payload: Uint8Array;
        try {
          payload = await encodeImage(masked, predictorConfig.content_type, { jpegQuality: ext.jpeg_quality });
        } catch (error) {
          throw new StageError('encode', error instanceof Error ? error.message : String(error), { cause: error });
        }
        const prediction = await this.predictor.predict(payload, masked.width, masked.height);
        if (prediction.kind !== 'classification') throw new StageError('explain', 'expected class scores');
        return this.transform(prediction.scores.map((s) => s.score));
      },
    });
    return { segments, result, budget };
  }
}
