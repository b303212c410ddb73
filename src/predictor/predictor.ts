/** The predictor stage: send one encoded image, get back class scores or detections. */
import { type AnalysisConfig, endpointTarget } from '../config/config.js';
import { errorMessage, StageError } from '../errors.js';
import { EndpointInvoker, StopError } from './invoker.js';
import { type ClassScore, type Detection, parseClassScores, parseDetections, type ResponseFormat, selectDetections } from './parse.js';
import { ContainerHttpTransport, EndpointError, type EndpointTransport, type InvokeResponse, SageMakerRuntimeTransport } from './transport.js';

export type Prediction =
  | { readonly kind: 'classification'; readonly scores: readonly ClassScore[]; readonly predicted: ClassScore }
  | {
      readonly kind: 'detection';
      /** Kept detections: score ≥ probability_threshold, best first, at most max_objects. */
      readonly objects: readonly Detection[];
      /** Every detection the model returned. */
      readonly all: readonly Detection[];
    };

export function createTransport(config: AnalysisConfig): EndpointTransport {
  const target = endpointTarget(config);
  const ext = config.clarify_images;
  const options = { maxSockets: ext.max_concurrency, requestTimeoutMs: ext.request_timeout_ms, maxResponseBytes: ext.max_response_bytes };
  if (target.kind === 'url') return new ContainerHttpTransport(target.url, options);
  if (target.kind === 'sagemaker') return new SageMakerRuntimeTransport(target.endpointName, { ...options, region: ext.region });
  // The commands create the shadow endpoint and name it in predictor.endpoint_name before this.
  throw new Error(`predictor.model_name "${target.modelName}" needs a shadow endpoint first (the run and processing commands create it)`);
}

/** The Content-Type and Accept headers sent: the payload's own names unless the model wants others (JumpStart's application/x-image). */
export function wireHeaders(config: AnalysisConfig): { contentType: string; accept: string } {
  const ext = config.clarify_images;
  return { contentType: ext.wire_content_type ?? config.predictor.content_type, accept: ext.wire_accept ?? config.predictor.accept_type };
}

/** The request body: the payload's bytes, or their base64 text where the model server decodes that. */
export function wireBody(payload: Uint8Array, encoding: AnalysisConfig['clarify_images']['wire_encoding']): Uint8Array {
  return encoding === 'base64' ? Buffer.from(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('base64'), 'ascii') : payload;
}

/**
 * A refusal of the content type is the usual first error with JumpStart image models, which take
 * only application/x-image: what to set, or undefined for any other failure (or already that type).
 */
export function contentTypeRefusal(error: unknown, wireContentType: string): string | undefined {
  if (!(error instanceof EndpointError) && !(error instanceof Error && error.cause instanceof EndpointError)) return undefined;
  if (!/content[ -_]?type|unsupported media|415/i.test(errorMessage(error))) return undefined;
  return wireContentType === 'application/x-image'
    ? undefined
    : 'the model refused the content type. JumpStart image models take only application/x-image: set "clarify_images.wire_content_type": "application/x-image" (the payload stays JPEG or PNG, per predictor.content_type)';
}

export function createInvoker(config: AnalysisConfig, transport: EndpointTransport = createTransport(config)): EndpointInvoker {
  const ext = config.clarify_images;
  return new EndpointInvoker(
    transport,
    { maxRetries: ext.max_retries, baseDelayMs: ext.retry_base_delay_ms, maxDelayMs: ext.retry_max_delay_ms, maxThrottleMs: ext.max_throttle_seconds * 1000 },
    { mode: ext.concurrency, max: ext.max_concurrency },
    Math.random,
    ext.retry_budget,
  );
}

export class Predictor {
  private readonly format: ResponseFormat;
  constructor(
    private readonly config: AnalysisConfig,
    readonly invoker: EndpointInvoker,
  ) {
    const { predictor } = config;
    this.format = {
      acceptType: predictor.accept_type,
      probability: predictor.probability,
      label: predictor.label,
      missingLabelScore: config.clarify_images.missing_label_score,
    };
  }

  /** The raw answer; failures become StageError('invoke'). */
  invokeRaw(payload: Uint8Array): Promise<InvokeResponse> {
    return this.invokeAndRead(payload, (response) => response);
  }

  /** The answer as `read` reads it (an unreadable one is retried once the job has read one); call failures become StageError('invoke'). */
  private async invokeAndRead<T>(payload: Uint8Array, read: (response: InvokeResponse) => T): Promise<T> {
    const { predictor } = this.config;
    try {
      return await this.invoker.invokeAndRead(
        {
          body: wireBody(payload, this.config.clarify_images.wire_encoding),
          ...wireHeaders(this.config),
          customAttributes: predictor.custom_attributes,
          targetModel: predictor.target_model,
        },
        read,
      );
    } catch (error) {
      if (error instanceof StopError || error instanceof StageError) throw error;
      const refused = contentTypeRefusal(error, wireHeaders(this.config).contentType);
      throw new StageError('invoke', `${error instanceof Error ? error.message : String(error)}${refused ? `; ${refused}` : ''}`, { cause: error });
    }
  }

  /** Read an answer per model type; a misfit becomes StageError('parse'). */
  interpret(body: Uint8Array, width: number, height: number): Prediction {
    const { predictor, methods } = this.config;
    try {
      if (methods.shap.image_config.model_type === 'IMAGE_CLASSIFICATION') {
        const scores = parseClassScores(body, this.format, predictor.label_headers);
        const predicted = scores.reduce((best, s) => (s.score > best.score ? s : best));
        return { kind: 'classification', scores, predicted };
      }
      const all = parseDetections(body, this.format, {
        detectionFormat: this.config.clarify_images.detection_format,
        detectionFields: this.config.clarify_images.detection_fields,
        labelHeaders: predictor.label_headers,
        width,
        height,
      });
      const { probability_threshold: threshold } = this.config;
      return { kind: 'detection', objects: selectDetections(all, threshold, methods.shap.image_config.max_objects), all };
    } catch (error) {
      throw new StageError('parse', error instanceof Error ? error.message : String(error), { cause: error });
    }
  }

  predict(payload: Uint8Array, width: number, height: number): Promise<Prediction> {
    return this.invokeAndRead(payload, (response) => this.interpret(response.body, width, height));
  }
}
