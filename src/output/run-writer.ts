/**
 * Everything the job writes, fed one image result at a time in any order and written in dataset
 * order. A final writer produces the run's outputs; a part writer (one shard of a scaled-out run)
 * produces `parts/<i>-of-<n>/`, which `mergeParts` feeds through a final writer again, so a merged
 * run's files are the same bytes as a single process's.
 */
import { type AnalysisConfig, configForWriting } from '../config/config.js';
import type { CallStats } from '../predictor/invoker.js';
import type { Storage, TextSink } from '../storage/storage.js';
import { resultBytes } from '../compute/memory.js';
import { VERSION } from '../version.js';
import { EXPLANATIONS_DIR, type ExplanationLine, GlobalImportance } from './explanations.js';
import { OrderedEmitter } from './ordered.js';
import type { PaceSummary } from './pace.js';
import { FewSegmentsNote } from './segment-note.js';
import type { AnalysisSummary, ImageFailure, PredictionRecord } from './records.js';
import { renderHtml, renderPdf, ReportCollector, reportFacts, type ReportImage } from './report.js';
import { renderNotebook } from './notebook.js';

export interface ImageResult {
  /** Position in the whole dataset's order (all shards). */
  readonly index: number;
  readonly key: string;
  readonly uri: string;
  readonly record: PredictionRecord;
  readonly explanation?: ExplanationLine;
  readonly failure?: ImageFailure;
  readonly withoutDetections?: boolean;
  readonly report?: ReportImage;
}

/** About what a finished result holds while it waits to be written: its SHAP values and SEs. */
export function waitingBytesOf(result: ImageResult): number {
  const explanation = result.explanation;
  if (!explanation) return 0;
  const perOutput = 'explanations' in explanation ? explanation.explanations : explanation.objects;
  return perOutput.reduce((sum, output) => sum + resultBytes(1, output.shap_values.length), 0);
}

/** JSON with the report's JPEG buffers as base64. */
export function serializeResult(result: ImageResult): string {
  return JSON.stringify(result, (_key, value: unknown) => {
    if (value && typeof value === 'object' && (value as { type?: unknown }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)) {
      return { $base64: Buffer.from((value as { data: number[] }).data).toString('base64') };
    }
    return value;
  });
}

export function deserializeResult(text: string): ImageResult {
  return JSON.parse(text, (_key, value: unknown) => {
    if (value && typeof value === 'object' && typeof (value as { $base64?: unknown }).$base64 === 'string') return Buffer.from((value as { $base64: string }).$base64, 'base64');
    return value;
  }) as ImageResult;
}

/** What the job knows beyond the image results. */
export interface RunFacts {
  readonly datasetUri: string;
  readonly imagesFound: number;
  readonly filesSkipped: number;
  readonly endpoint: string;
  readonly calls: CallStats;
  readonly startedAt: Date;
  /** The run was stopped (signal) before every image was processed. */
  readonly partial: boolean;
  /** Images whose result a previous run stored and this one reused (after checking the endpoint). */
  readonly reused: number;
  readonly stopReason?: string;
  /** What set the pace of the images (absent when it could not be judged: see judgePace). */
  readonly pace?: PaceSummary;
  /** A merged run: each host's pace instead. */
  readonly paceByHost?: readonly (PaceSummary | null)[];
}

export interface ResultWriter {
  /** The job takes on image `index` (called in listing order, before its result is added). */
  admit(index: number): void;
  add(result: ImageResult): Promise<void>;
  /** Results that finished ahead of an earlier image, waiting in memory for it. */
  readonly backlog: number;
  /** What those results hold, about (`waitingBytesOf`). */
  readonly backlogBytes: number;
  finish(facts: RunFacts): Promise<AnalysisSummary>;
  abort(): Promise<void>;
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** What every summary opens with: who wrote it and how the run ended. */
function summaryHead(facts: RunFacts, failed: number): Pick<AnalysisSummary, 'tool' | 'status' | 'stop_reason'> {
  return {
    tool: { name: 'clarify-images', version: VERSION },
    status: facts.partial ? 'partial' : failed > 0 ? 'completed_with_failures' : 'completed',
    ...(facts.partial && facts.stopReason ? { stop_reason: facts.stopReason } : {}),
  };
}

function endpointCalls(calls: CallStats): AnalysisSummary['endpoint_calls'] {
  const answered = calls.calls - calls.failedCalls;
  return {
    calls: calls.calls,
    attempts: calls.attempts,
    retries: calls.retries,
    failed_calls: calls.failedCalls,
    mean_latency_ms: answered > 0 ? round(calls.latencyMsTotal / answered, 3) : 0,
  };
}

/** From the run's start to now. */
function durations(startedAt: Date): AnalysisSummary['durations'] {
  const finished = new Date();
  return {
    started_at: startedAt.toISOString(),
    finished_at: finished.toISOString(),
    total_seconds: round((finished.getTime() - startedAt.getTime()) / 1000, 3),
  };
}

/** analysis.json lists the first this many failures (in dataset order); predictions.jsonl has every one. */
export const MAX_LISTED_FAILURES = 1000;

/** Failed images as a summary lists them: every one counted, the first MAX_LISTED_FAILURES kept. */
class FailureList {
  readonly listed: ImageFailure[] = [];
  count = 0;

  add(failure: ImageFailure): void {
    this.count += 1;
    if (this.listed.length < MAX_LISTED_FAILURES) this.listed.push(failure);
  }

  /** The summary's `failures_not_listed`, present only when some were left out. */
  notListed(): { failures_not_listed?: number } {
    return this.count > this.listed.length ? { failures_not_listed: this.count - this.listed.length } : {};
  }
}

export class FinalWriter implements ResultWriter {
  private readonly importance: GlobalImportance;
  private readonly report: ReportCollector;
  private readonly failures = new FailureList();
  private succeeded = 0;
  private withoutDetections = 0;
  private explained = 0;
  private explanationCalls = 0;
  private objectsExplained = 0;
  private readonly emitter: OrderedEmitter<ImageResult>;
  private readonly fewSegments: FewSegmentsNote;

  private constructor(
    private readonly output: Storage,
    private readonly config: AnalysisConfig,
    private readonly predictions: TextSink,
    private readonly explanations: TextSink | undefined,
    private readonly log: (line: string) => void,
  ) {
    this.importance = new GlobalImportance(config.predictor.label_headers, config.methods.shap.agg_method);
    this.report = new ReportCollector(config.clarify_images.report_max_images);
    this.fewSegments = new FewSegmentsNote(config.methods.shap.image_config.num_segments, log);
    // Everything order-dependent (floating-point sums included) happens here, in dataset order.
    this.emitter = new OrderedEmitter<ImageResult>(async (result) => {
      await this.predictions.write(`${JSON.stringify(result.record)}\n`);
      if (result.failure) this.failures.add(result.failure);
      else {
        this.succeeded += 1;
        if (result.withoutDetections) this.withoutDetections += 1;
      }
      const explanation = result.explanation;
      if (explanation) {
        this.explained += 1;
        this.explanationCalls += explanation.calls;
        // A detector's image without objects explains nothing, so its segments do not matter.
        if (!('objects' in explanation) || explanation.objects.length > 0) this.fewSegments.add(explanation.image, explanation.num_segments);
        if ('objects' in explanation) this.objectsExplained += explanation.objects.length;
        else this.importance.add(explanation);
        await this.explanations?.write(`${JSON.stringify(explanation)}\n`);
      }
      if (result.report) await this.report.add(result.index, result.report);
    }, waitingBytesOf);
  }

  static async open(output: Storage, config: AnalysisConfig, log: (line: string) => void): Promise<FinalWriter> {
    // First, the summary says a run is under way: an earlier run's "completed" summary must never
    // stand next to this run's config (a killed run leaves "running", never a stale "completed").
    await output.write(
      'analysis.json',
      `${JSON.stringify({ tool: { name: 'clarify-images', version: VERSION }, status: 'running', started_at: new Date().toISOString(), note: 'this run has not finished; other files here may be from an earlier run until it does' }, null, 2)}\n`,
      'application/json',
    );
    await output.write('analysis_config.json', `${JSON.stringify(configForWriting(config), null, 2)}\n`, 'application/json');
    const predictions = await output.openTextSink('predictions.jsonl', 'application/jsonlines');
    const explanations = config.methods.shap.save_local_shap_values ? await output.openTextSink(`${EXPLANATIONS_DIR}/out.jsonl`, 'application/jsonlines') : undefined;
    return new FinalWriter(output, config, predictions, explanations, log);
  }

  /** Every listed image is admitted, so an image's dataset index is its place in the order. */
  admit(): void {}

  add(result: ImageResult): Promise<void> {
    return this.emitter.push(result.index, result);
  }

  get backlog(): number {
    return this.emitter.backlog;
  }

  get backlogBytes(): number {
    return this.emitter.backlogBytes;
  }

  async finish(facts: RunFacts): Promise<AnalysisSummary> {
    if (facts.partial) await this.emitter.flushGaps();
    else await this.emitter.drain();
    await this.predictions.close();
    await this.explanations?.close();
    const isDetection = this.config.methods.shap.image_config.model_type === 'OBJECT_DETECTION';
    const processed = this.succeeded + this.failures.count;
    const summary: AnalysisSummary = {
      ...summaryHead(facts, this.failures.count),
      model_type: this.config.methods.shap.image_config.model_type,
      endpoint: facts.endpoint,
      dataset: { uri: facts.datasetUri, images_found: facts.imagesFound, files_skipped: facts.filesSkipped },
      images: {
        succeeded: this.succeeded,
        failed: this.failures.count,
        ...(isDetection ? { without_detections: this.withoutDetections } : {}),
        ...(facts.partial ? { not_processed: facts.imagesFound - processed } : {}),
        ...(facts.reused > 0 ? { reused: facts.reused } : {}),
      },
      failures: this.failures.listed.sort((a, b) => (a.image < b.image ? -1 : a.image > b.image ? 1 : 0)),
      ...this.failures.notListed(),
      endpoint_calls: endpointCalls(facts.calls),
      explanations: {
        method: 'kernel_shap',
        estimator: this.config.clarify_images.estimator,
        images_explained: this.explained,
        calls: this.explanationCalls,
        mean_calls_per_image: this.explained > 0 ? round(this.explanationCalls / this.explained, 1) : 0,
        ...(isDetection ? { objects_explained: this.objectsExplained } : { global_importance: this.importance.summary() }),
        ...(this.fewSegments.summary() ? { few_segments: this.fewSegments.summary() } : {}),
      },
      durations: durations(facts.startedAt),
      ...(facts.pace ? { pace: facts.pace } : {}),
      ...(facts.paceByHost ? { pace_by_host: [...facts.paceByHost] } : {}),
    };
    summary.report = await this.writeReport(summary);
    await this.output.write('analysis.json', `${JSON.stringify(summary, null, 2)}\n`, 'application/json');
    return summary;
  }

  /** report.html always; report.pdf unless PDF rendering fails, which is said and does not fail the job. */
  private async writeReport(summary: AnalysisSummary): Promise<NonNullable<AnalysisSummary['report']>> {
    const images: ReportImage[] = this.report.images();
    const facts = reportFacts(this.config, summary, images.length);
    const name = this.config.methods.report.name;
    await this.output.write(`${name}.html`, renderHtml(facts, images), 'text/html');
    await this.output.write(`${name}.ipynb`, renderNotebook(facts, images), 'application/x-ipynb+json');
    try {
      await this.output.write(`${name}.pdf`, await renderPdf(facts, images), 'application/pdf');
      return { html: `${name}.html`, notebook: `${name}.ipynb`, pdf: `${name}.pdf`, images: images.length };
    } catch (error) {
      const message = `report.pdf not written: ${error instanceof Error ? error.message : String(error)} (report.html has the same content)`;
      this.log(message);
      return { html: `${name}.html`, notebook: `${name}.ipynb`, pdf_error: message, images: images.length };
    }
  }

  async abort(): Promise<void> {
    await this.predictions.abort();
    await this.explanations?.abort();
  }
}

export interface Shard {
  /** From 0. */
  readonly index: number;
  readonly count: number;
}

export function partPrefix(shard: Shard): string {
  return `parts/${shard.index}-of-${shard.count}`;
}

/** What a part says about its run, for the merge. */
export interface PartSummary {
  readonly shard: Shard;
  readonly dataset_uri: string;
  readonly images_found: number;
  readonly files_skipped: number;
  readonly endpoint: string;
  readonly calls: CallStats;
  readonly started_at: string;
  readonly partial: boolean;
  /** Absent in parts written before 2026-12-02. */
  readonly reused?: number;
  /** What set this host's pace; absent when it judged none (and in parts written before 2026-12-03). */
  readonly pace?: PaceSummary;
}

/**
 * One shard's results in dataset order, then its summary, then `_SUCCESS`. Each result is written
 * once every earlier image of the shard is, so only results that finished ahead of an earlier
 * image wait in memory, never the shard's whole share.
 */
export class PartWriter implements ResultWriter {
  /** A shard sees only some indices: each admitted image's place among the shard's images. */
  private readonly places = new Map<number, number>();
  private admitted = 0;
  private readonly emitter: OrderedEmitter<ImageResult>;
  private readonly failures = new FailureList();
  private written = 0;

  private constructor(
    private readonly output: Storage,
    private readonly shard: Shard,
    private readonly modelType: AnalysisSummary['model_type'],
    private readonly results: TextSink,
  ) {
    this.emitter = new OrderedEmitter<ImageResult>(async (result) => {
      await this.results.write(`${serializeResult(result)}\n`);
      this.written += 1;
      if (result.failure) this.failures.add(result.failure);
    }, waitingBytesOf);
  }

  static async open(output: Storage, config: AnalysisConfig, shard: Shard): Promise<PartWriter> {
    const prefix = partPrefix(shard);
    await output.write(`${prefix}/analysis_config.json`, `${JSON.stringify(configForWriting(config), null, 2)}\n`, 'application/json');
    return new PartWriter(output, shard, config.methods.shap.image_config.model_type, await output.openTextSink(`${prefix}/results.jsonl`, 'application/jsonlines'));
  }

  admit(index: number): void {
    this.places.set(index, this.admitted);
    this.admitted += 1;
  }

  add(result: ImageResult): Promise<void> {
    const place = this.places.get(result.index);
    if (place === undefined) throw new Error(`internal: image ${result.index} was not admitted to shard ${this.shard.index}`);
    this.places.delete(result.index);
    return this.emitter.push(place, result);
  }

  get backlog(): number {
    return this.emitter.backlog;
  }

  get backlogBytes(): number {
    return this.emitter.backlogBytes;
  }

  async finish(facts: RunFacts): Promise<AnalysisSummary> {
    if (facts.partial) await this.emitter.flushGaps();
    else await this.emitter.drain();
    await this.results.close();
    const prefix = partPrefix(this.shard);
    const part: PartSummary = {
      shard: this.shard,
      dataset_uri: facts.datasetUri,
      images_found: facts.imagesFound,
      files_skipped: facts.filesSkipped,
      endpoint: facts.endpoint,
      calls: facts.calls,
      started_at: facts.startedAt.toISOString(),
      partial: facts.partial,
      reused: facts.reused,
      ...(facts.pace ? { pace: facts.pace } : {}),
    };
    await this.output.write(`${prefix}/part.json`, `${JSON.stringify(part, null, 2)}\n`, 'application/json');
    if (!facts.partial) await this.output.write(`${prefix}/_SUCCESS`, '', 'text/plain');
    return {
      ...summaryHead(facts, this.failures.count),
      model_type: this.modelType,
      endpoint: facts.endpoint,
      dataset: { uri: facts.datasetUri, images_found: facts.imagesFound, files_skipped: facts.filesSkipped },
      images: {
        succeeded: this.written - this.failures.count,
        failed: this.failures.count,
        ...(facts.partial ? { not_processed: facts.imagesFound - this.written } : {}),
        ...(facts.reused > 0 ? { reused: facts.reused } : {}),
      },
      failures: this.failures.listed,
      ...this.failures.notListed(),
      endpoint_calls: endpointCalls(facts.calls),
      durations: durations(facts.startedAt),
      ...(facts.pace ? { pace: facts.pace } : {}),
    };
  }

  async abort(): Promise<void> {
    await this.results.abort();
  }
}
