/**
 * The batch job: dataset → image → predictor → output, one image at a time per slot, with the
 * endpoint limiter kept full. A failing image is recorded and the job goes on.
 */
import { stat } from 'node:fs/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { type AnalysisConfig, DEFAULT_DATASET_URI } from './config/config.js';
import { type DatasetCounts, type DatasetImage, listImages } from './dataset/dataset.js';
import { ConfigError, errorMessage, StageError } from './errors.js';
import { decodeImage, describeDecodeError } from './image/decode.js';
import { encodeImage } from './image/encode.js';
import type { RgbImage } from './image/rgb.js';
import { OrderedEmitter } from './output/ordered.js';
import { type AnalysisSummary, failureRecord, type ImageFailure, type PredictionRecord, predictionRecord } from './output/records.js';
import type { EndpointTransport } from './predictor/transport.js';
import { ClassificationExplainer } from './explain/classification.js';
import { ExplanationGroundwork } from './explain/groundwork.js';
import { DetectionExplainer } from './explain/detection.js';
import {
  type DetectionExplanationRecord,
  detectionRecord,
  EXPLANATIONS_DIR,
  type ExplanationRecord,
  explanationRecord,
  GlobalImportance,
  writeDetectionArtifacts,
  writeExplanationArtifacts,
} from './output/explanations.js';
import { outputName } from './output/names.js';
import { renderSegmentBoundaries } from './output/heatmap.js';
import { renderHtml, renderPdf, ReportCollector, reportFacts, type ReportImage, topSegments } from './output/report.js';
import { encodeImage as encodeForReport } from './image/encode.js';
import type { SegmentMap } from './segment/slic.js';
import { createInvoker, Predictor } from './predictor/predictor.js';
import { parseLocation } from './storage/location.js';
import { openStorage, type Storage } from './storage/storage.js';
import { VERSION } from './version.js';

export interface JobOptions {
  /** Overrides config.dataset_uri. */
  readonly datasetUri?: string;
  readonly outputUri: string;
  readonly log?: (line: string) => void;
  readonly s3Client?: S3Client;
  /** Use this transport instead of the one the config names (tests, embedding). */
  readonly transport?: EndpointTransport;
}

export interface JobResult {
  readonly summary: AnalysisSummary;
  /** 0: every image succeeded; 1: some failed. */
  readonly exitCode: 0 | 1;
}

interface ImageOutcome {
  readonly record: PredictionRecord;
  readonly explanation?: ExplanationRecord | DetectionExplanationRecord;
  readonly failure?: ImageFailure;
  readonly withoutDetections?: boolean;
}

async function checkDatasetExists(uri: string): Promise<void> {
  const location = parseLocation(uri);
  if (location.kind !== 'local') return;
  try {
    await stat(location.dir);
  } catch {
    throw new ConfigError([{ path: 'dataset_uri', message: `${location.dir} does not exist` }]);
  }
}

function stageOf<T>(stage: StageError['stage'], work: () => Promise<T>, describe: (e: unknown) => string = errorMessage): Promise<T> {
  return work().catch((error: unknown) => {
    throw error instanceof StageError ? error : new StageError(stage, describe(error), { cause: error });
  });
}

export async function runJob(config: AnalysisConfig, options: JobOptions): Promise<JobResult> {
  const log = options.log ?? (() => undefined);
  const started = new Date();
  const datasetUri = options.datasetUri ?? config.dataset_uri ?? DEFAULT_DATASET_URI;
  const effective: AnalysisConfig = { ...config, dataset_uri: datasetUri };
  await checkDatasetExists(datasetUri);

  const ext = config.clarify_images;
  const storageOptions = { region: ext.region, s3Client: options.s3Client };
  const dataset = openStorage(datasetUri, storageOptions);
  const output = openStorage(options.outputUri, storageOptions);
  const invoker = createInvoker(config, options.transport);
  const predictor = new Predictor(config, invoker);
  log(`clarify-images ${VERSION}: ${datasetUri} → ${options.outputUri} via ${invoker.transport.description}`);

  await output.write('analysis_config.json', `${JSON.stringify(effective, null, 2)}\n`, 'application/json');
  const sink = await output.openTextSink('predictions.jsonl', 'application/jsonlines');
  const emitter = new OrderedEmitter<PredictionRecord>((record) => sink.write(`${JSON.stringify(record)}\n`));

  const groundwork = new ExplanationGroundwork(config, predictor, storageOptions);
  const classification = new ClassificationExplainer(groundwork);
  const detection = new DetectionExplainer(groundwork);
  const outSink = config.methods.shap.save_local_shap_values ? await output.openTextSink(`${EXPLANATIONS_DIR}/out.jsonl`, 'application/jsonlines') : undefined;
  const outEmitter = new OrderedEmitter<ExplanationRecord | DetectionExplanationRecord | undefined>(async (record) => {
    if (record && outSink) await outSink.write(`${JSON.stringify(record)}\n`);
  });
  const importance = new GlobalImportance(config.predictor.label_headers, config.methods.shap.agg_method);
  let explained = 0;
  let explanationCalls = 0;
  let objectsExplained = 0;
  const report = new ReportCollector(ext.report_max_images);
  const reportBase = async (rgb: RgbImage, segments: SegmentMap): Promise<{ original: Buffer; segments: Buffer }> => ({
    original: Buffer.from(await encodeForReport(rgb, 'image/jpeg', { jpegQuality: 85 })),
    segments: await renderSegmentBoundaries(rgb, segments),
  });

  const counts: DatasetCounts = { imagesFound: 0, filesSkipped: 0 };
  const failures: ImageFailure[] = [];
  let succeeded = 0;
  let withoutDetections = 0;

  const explainOne = async (image: DatasetImage): Promise<ImageOutcome> => {
    let size: { width: number; height: number } | undefined;
    try {
      const bytes = await stageOf('read', () => dataset.read(image.key));
      const rgb: RgbImage = await stageOf('decode', () => decodeImage(bytes, { maxPixels: ext.max_image_pixels }), describeDecodeError);
      size = { width: rgb.width, height: rgb.height };
      const payload = await stageOf('encode', () => encodeImage(rgb, config.predictor.content_type, { jpegQuality: ext.jpeg_quality }));
      const prediction = await predictor.predict(payload, rgb.width, rgb.height);
      const record = predictionRecord(image, size, prediction);
      const name = outputName(image.key, image.uri);
      if (prediction.kind === 'detection') {
        const explanation = await stageOf('explain', () => detection.explain(rgb, image.key, prediction.objects, prediction.all));
        const line = detectionRecord(image, name, rgb, explanation);
        const drawn = await stageOf('write', () => writeDetectionArtifacts(output, line, rgb, explanation));
        if (report.wants(image.index)) {
          await report.add(image.index, {
            uri: image.uri,
            name,
            width: rgb.width,
            height: rgb.height,
            ...(await reportBase(rgb, explanation.segments)),
            numSegments: explanation.segments.count,
            calls: explanation.calls,
            ranking: line.objects.map((o) => ({ label: `${o.index}. ${o.label}`, score: o.score })),
            overview: drawn.overview,
            panels: line.objects.map((o, k) => ({
              title: `Object ${o.index}: ${o.label} ${o.score.toFixed(3)}`,
              heatmap: drawn.heatmaps[k]!,
              prediction: o.prediction,
              baseValue: o.base_value,
              topSegments: topSegments(o.shap_values, o.std_errors),
            })),
          });
        }
        return { record, explanation: line, withoutDetections: prediction.objects.length === 0 };
      }
      const explanation = await stageOf('explain', () => classification.explain(rgb, image.key, prediction.scores.map((s) => s.score)));
      const line = explanationRecord(image, name, rgb, config.predictor.label_headers, prediction.predicted.index, explanation);
      const drawn = await stageOf('write', () => writeExplanationArtifacts(output, line, rgb, explanation, prediction.predicted.index));
      if (report.wants(image.index)) {
        const top = line.explanations[prediction.predicted.index]!;
        await report.add(image.index, {
          uri: image.uri,
          name,
          width: rgb.width,
          height: rgb.height,
          ...(await reportBase(rgb, explanation.segments)),
          numSegments: explanation.segments.count,
          calls: line.calls,
          ranking: [...prediction.scores].sort((a, b) => b.score - a.score).slice(0, 5).map((s) => ({ label: s.label, score: s.score })),
          panels: [{ title: `Predicted: ${top.label}`, heatmap: drawn.heatmap, prediction: top.prediction, baseValue: top.base_value, topSegments: topSegments(top.shap_values, top.std_errors) }],
        });
      }
      return { record, explanation: line };
    } catch (error) {
      const stage = error instanceof StageError ? error.stage : 'explain';
      const failure: ImageFailure = { image: image.uri, stage, message: errorMessage(error) };
      return { record: failureRecord(image, failure, size), failure };
    }
  };

  // A few images in flight keep every endpoint slot busy (an explained image alone makes
  // hundreds of calls) while memory stays bounded.
  const window = 4;
  const inFlight = new Set<Promise<void>>();
  let fatal: unknown;
  try {
    try {
      for await (const image of listImages(dataset, counts)) {
        const task: Promise<void> = explainOne(image)
          .then(async (outcome) => {
            if (outcome.failure) {
              failures.push(outcome.failure);
              if (report.wants(image.index)) {
                await report.add(image.index, { uri: image.uri, name: image.key, width: 0, height: 0, ranking: [], panels: [], failure: outcome.failure });
              }
              log(`failed: ${outcome.failure.image} [${outcome.failure.stage}] ${outcome.failure.message}`);
            } else {
              succeeded += 1;
              if (outcome.withoutDetections) withoutDetections += 1;
            }
            if (outcome.explanation) {
              explained += 1;
              explanationCalls += outcome.explanation.calls;
              if ('objects' in outcome.explanation) objectsExplained += outcome.explanation.objects.length;
              else importance.add(outcome.explanation);
            }
            await Promise.all([emitter.push(image.index, outcome.record), outEmitter.push(image.index, outcome.explanation)]);
          })
          .catch((error: unknown) => {
            fatal ??= error;
          })
          .finally(() => inFlight.delete(task));
        inFlight.add(task);
        if (inFlight.size >= window) await Promise.race(inFlight);
        if (fatal) break;
        if ((image.index + 1) % 100 === 0) log(`${image.index + 1} images listed, ${succeeded + failures.length} done`);
      }
    } catch (error) {
      fatal ??= new Error(`cannot list the dataset ${datasetUri}: ${errorMessage(error)}`, { cause: error });
    }
    await Promise.all(inFlight);
    if (fatal) throw fatal;
    await emitter.drain();
    await outEmitter.drain();
    if (counts.imagesFound === 0) {
      throw new ConfigError([
        { path: 'dataset_uri', message: `no images (.jpg, .jpeg, .png) under ${datasetUri} (${counts.filesSkipped} other files skipped)` },
      ]);
    }
    await sink.close();
    await outSink?.close();
  } catch (error) {
    await sink.abort();
    await outSink?.abort();
    invoker.close();
    throw error;
  }
  invoker.close();

  const finished = new Date();
  const stats = invoker.stats;
  const isDetection = config.methods.shap.image_config.model_type === 'OBJECT_DETECTION';
  const summary: AnalysisSummary = {
    tool: { name: 'clarify-images', version: VERSION },
    status: failures.length > 0 ? 'completed_with_failures' : 'completed',
    model_type: config.methods.shap.image_config.model_type,
    endpoint: invoker.transport.description,
    dataset: { uri: datasetUri, images_found: counts.imagesFound, files_skipped: counts.filesSkipped },
    images: { succeeded, failed: failures.length, ...(isDetection ? { without_detections: withoutDetections } : {}) },
    failures: failures.sort((a, b) => (a.image < b.image ? -1 : a.image > b.image ? 1 : 0)),
    endpoint_calls: {
      calls: stats.calls,
      attempts: stats.attempts,
      retries: stats.retries,
      failed_calls: stats.failedCalls,
      mean_latency_ms: stats.attempts - stats.failedCalls > 0 ? round(stats.latencyMsTotal / Math.max(1, stats.calls - stats.failedCalls), 3) : 0,
    },
    explanations: {
      method: 'kernel_shap' as const,
      images_explained: explained,
      calls: explanationCalls,
      mean_calls_per_image: explained > 0 ? round(explanationCalls / explained, 1) : 0,
      ...(isDetection ? { objects_explained: objectsExplained } : { global_importance: importance.summary() }),
    },
    durations: {
      started_at: started.toISOString(),
      finished_at: finished.toISOString(),
      total_seconds: round((finished.getTime() - started.getTime()) / 1000, 3),
    },
  };
  summary.report = await writeReport(output, config, summary, report, log);
  await output.write('analysis.json', `${JSON.stringify(summary, null, 2)}\n`, 'application/json');
  return { summary, exitCode: failures.length > 0 ? 1 : 0 };
}

/** report.html always; report.pdf unless PDF rendering fails, which is said and does not fail the job. */
async function writeReport(output: Storage, config: AnalysisConfig, summary: AnalysisSummary, collector: ReportCollector, log: (line: string) => void): Promise<NonNullable<AnalysisSummary['report']>> {
  const images: ReportImage[] = collector.images();
  const facts = reportFacts(config, summary, images.length);
  const name = config.methods.report.name;
  await output.write(`${name}.html`, renderHtml(facts, images), 'text/html');
  try {
    await output.write(`${name}.pdf`, await renderPdf(facts, images), 'application/pdf');
    return { html: `${name}.html`, pdf: `${name}.pdf`, images: images.length };
  } catch (error) {
    const message = `report.pdf not written: ${errorMessage(error)} (report.html has the same content)`;
    log(message);
    return { html: `${name}.html`, pdf_error: message, images: images.length };
  }
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export type { Storage };
