/**
 * What every explanation of an image needs first, whatever the model type: its superpixels,
 * its baseline, its seeded random stream, its budget, and a way to turn a masked image into an
 * endpoint answer through the job's predictor.
 */
import { KERNEL_SOLVE, adjustedOutputCount, type SolveOptions } from './tree-adjusted.js';
import { type AnalysisConfig, memoryBudgetBytes } from '../config/config.js';
import { errorMessage, StageError } from '../errors.js';
import { encodeImage } from '../image/encode.js';
import type { RgbImage } from '../image/rgb.js';
import type { Prediction, Predictor } from '../predictor/predictor.js';
import type { SegmentMap } from '../segment/slic.js';
import { type CpuStages, inlineStages } from '../compute/stages.js';
import type { SegmentIndex } from './masking.js';
import { StopError } from '../predictor/invoker.js';
import { prepareAheadFor } from '../compute/memory.js';
import type { StorageOptions } from '../storage/storage.js';
import { blurBaseline, decodeBaseline, loadBaselineImage, meanBaseline, noiseBaseline, resizeBaseline } from './baseline.js';
import { fnv1a32 } from './hash.js';
import { defaultBudget } from './kernel-shap.js';
import { NpyBatcher } from '../predictor/batcher.js';
import { type Random, seededRandom } from './random.js';

export class ExplanationGroundwork {
  private baselineImage: Promise<RgbImage> | undefined;
  /** Shared by every image, so what the endpoint accepts is learnt once. */
  readonly batcher: NpyBatcher | undefined;
  constructor(
    readonly config: AnalysisConfig,
    readonly predictor: Predictor,
    private readonly storageOptions: StorageOptions,
    log: (line: string) => void = () => undefined,
    /** Where segmentation, masking and the solve run: worker threads in a job, this thread by default. */
    readonly cpu: CpuStages = inlineStages,
    /** methods.shap.baseline's bytes as the job read them (and hashed them for resume); read here otherwise. */
    private readonly baselineBytes?: Promise<Buffer>,
  ) {
    const ext = config.clarify_images;
    this.batcher = ext.batch_size > 1 ? new NpyBatcher(predictor, config.predictor.accept_type, ext.batch_size, ext.max_payload_bytes, ext.max_concurrency, log) : undefined;
  }

  private get seed(): number {
    return this.config.methods.shap.seed ?? 0;
  }

  /** The coalition sampler's stream for this image: the seed mixed with the image key. */
  randomFor(key: string): Random {
    return seededRandom((this.seed ^ fnv1a32(key)) >>> 0);
  }

  /**
   * The estimator for one image. `ranked` orders the outputs by importance (a classifier's labels
   * by score); with the tree-adjusted estimator the first `adjustedOutputCount` get a surrogate.
   */
  solveOptionsFor(ranked: readonly number[]): SolveOptions {
    const estimator = this.config.clarify_images.estimator;
    return estimator === 'kernel' ? KERNEL_SOLVE : { estimator, adjusted: ranked.slice(0, adjustedOutputCount(ranked.length)), guided: this.config.clarify_images.guided_sampling };
  }

  budgetFor(players: number): number {
    return this.config.methods.shap.num_samples ?? defaultBudget(players);
  }

  /** Superpixels and their pixel lists. */
  async segment(image: RgbImage): Promise<{ segments: SegmentMap; index: SegmentIndex }> {
    const { num_segments, segment_compactness } = this.config.methods.shap.image_config;
    try {
      return await this.cpu.segment(image, { numSegments: num_segments, compactness: segment_compactness });
    } catch (error) {
      if (error instanceof StopError) throw error;
      throw new StageError('segment', error instanceof Error ? error.message : String(error), { cause: error });
    }
  }

  async baselineFor(image: RgbImage, key: string): Promise<RgbImage> {
    const uri = this.config.methods.shap.baseline;
    if (uri) {
      const maxPixels = this.config.clarify_images.max_image_pixels;
      this.baselineImage ??= (this.baselineBytes ? this.baselineBytes.then((bytes) => decodeBaseline(bytes, uri, maxPixels)) : loadBaselineImage(uri, maxPixels, memoryBudgetBytes(this.config), this.storageOptions)).catch((error: unknown) => {
        throw new StageError('explain', `cannot use methods.shap.baseline: ${errorMessage(error)}`, { cause: error });
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

  /** Encode per content_type and ask the endpoint, like the prediction of the original image. */
  async predict(image: RgbImage): Promise<Prediction> {
    if (this.batcher) return this.batcher.predict(image);
    const { predictor, clarify_images: ext } = this.config;
    let payload: Uint8Array;
    try {
      payload = await encodeImage(image, predictor.content_type, { jpegQuality: ext.jpeg_quality });
    } catch (error) {
      throw new StageError('encode', error instanceof Error ? error.message : String(error), { cause: error });
    }
    return this.predictor.predict(payload, image.width, image.height);
  }

  /** Masked images prepared ahead of the endpoint limiter: enough to keep it busy, fewer for big images. */
  prepareAheadFor(image: { width: number; height: number }): number {
    const ext = this.config.clarify_images;
    return prepareAheadFor(image.width * image.height, ext.max_concurrency * 2 * ext.batch_size);
  }
}
