/**
 * The batch job: dataset → image → segment → explain ↔ predictor → output. Images stream through
 * a small window while one limiter keeps the endpoint full. A failing image is recorded and the
 * job goes on. A shard explains its own share of the images; a resumed run reuses verified
 * complete images; a stop signal lets in-flight images finish within a grace period.
 */
import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { stat } from 'node:fs/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { type AnalysisConfig, answerBytesPerImage, DEFAULT_DATASET_URI, explainedOutputsSaid, listingBudgetBytes, memoryBudgetBytes, plannedCallsPerImage } from './config/config.js';
import { type DatasetCounts, type DatasetImage, listImages, openDataset, ownOutputFilter } from './dataset/dataset.js';
import { ConfigError, errorMessage, StageError, stopSignalOf, StoppedBeforeStartError } from './errors.js';
import { formatCount, formatCountOf } from './output/format.js';
import { readBaseline } from './explain/baseline.js';
import { ExplanationGroundwork } from './explain/groundwork.js';
import { ImageExplainer } from './explain/outcome.js';
import { availableCores, defaultWorkerCount, WorkerStages } from './compute/stages.js';
import { fnv1a32 } from './explain/hash.js';
import { decodedSize, decodeImage, describeDecodeError } from './image/decode.js';
import { largestSideThatFits, MemoryBudget, OverBudgetError, unreadOverBudget, workingBytes } from './compute/memory.js';
import { inSharedMemory } from './compute/transfer.js';
import { encodeImage } from './image/encode.js';
import { writeExplanation } from './output/explanations.js';
import { type PictureView, pictureView, renderSegmentBoundaries, renderSideBySide } from './output/heatmap.js';
import { OutputNamer } from './output/names.js';
import { judgePace, type PaceSummary, readPace } from './output/pace.js';
import { type AnalysisSummary, failureRecord, type ImageFailure, predictionRecord } from './output/records.js';
import { shownInReport, type ReportImage } from './output/report.js';
import { type ReuseDecision, ResumeStore } from './output/resume.js';
import { ProgressReporter, type ProgressSink } from './output/progress.js';
import { FinalWriter, type ImageResult, PartWriter, type ResultWriter, type RunFacts, type Shard } from './output/run-writer.js';
import { RetryLog } from './output/retry-log.js';
import { isEndpointWide, StopError } from './predictor/invoker.js';
import { createInvoker, Predictor } from './predictor/predictor.js';
import type { EndpointTransport } from './predictor/transport.js';
import { parseLocation } from './storage/location.js';
import { configureS3Resilience, isOutputUnwritable, openStorage } from './storage/storage.js';
import { VERSION } from './version.js';

/** Results that may wait in memory for a slower earlier image before the job stops starting new ones. */
export const MAX_WAITING_RESULTS = 64;
/** What those results may hold at most, as a share of max_memory_mb (beside the images in flight). */
export const WAITING_RESULTS_MEMORY_SHARE = 0.25;

/** Whether the results waiting for an earlier image are as many, or hold as much, as the job lets wait. */
export function waitingResultsFull(writer: Pick<ResultWriter, 'backlog' | 'backlogBytes'>, memoryCapacity: number): boolean {
  return writer.backlog >= MAX_WAITING_RESULTS || writer.backlogBytes >= memoryCapacity * WAITING_RESULTS_MEMORY_SHARE;
}

export interface JobOptions {
  /** Overrides config.dataset_uri. */
  readonly datasetUri?: string;
  readonly outputUri: string;
  readonly log?: (line: string) => void;
  readonly s3Client?: S3Client;
  /** Use this transport instead of the one the config names (tests, embedding). */
  readonly transport?: EndpointTransport;
  /** Explain only this shard's images and write a part (see mergeParts). */
  readonly shard?: Shard;
  /** Recompute images that a previous run over this output completed. */
  readonly force?: boolean;
  /** Aborted: stop taking images, let in-flight ones finish within `graceMs`, write what is complete. */
  readonly stop?: AbortSignal;
  readonly graceMs?: number;
  /** Where progress goes (a bar on a terminal, JSON lines otherwise); none when absent. */
  readonly progress?: ProgressSink;
  readonly progressIntervalMs?: number;
}

export interface JobResult {
  readonly summary: AnalysisSummary;
  /** 0: every image succeeded; 1: some failed. */
  readonly exitCode: 0 | 1;
  /** Stopped by a signal. */
  readonly stopped: boolean;
  /** The job stopped itself: the endpoint could not serve (summary.stop_reason says why). */
  readonly halted: boolean;
  /** Images reused from a previous run over the same output. */
  readonly reused: number;
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
    throw error instanceof StageError || error instanceof StopError ? error : new StageError(stage, describe(error), { cause: error });
  });
}

/** Which shard an object belongs to: a stable hash of its key, so every host agrees. */
export function shardOf(key: string, count: number): number {
  return fnv1a32(key) % count;
}

export async function runJob(config: AnalysisConfig, options: JobOptions): Promise<JobResult> {
  const write = options.log ?? (() => undefined);
  // While a progress bar is up, lines go above it, so neither garbles the other.
  let progress: ProgressReporter | undefined;
  const log = (line: string): void => {
    if (!progress?.log(line)) write(line);
  };
  const startedAt = new Date();
  const datasetUri = options.datasetUri ?? config.dataset_uri ?? DEFAULT_DATASET_URI;
  const effective: AnalysisConfig = { ...config, dataset_uri: datasetUri };
  await checkDatasetExists(datasetUri);

  const ext = config.clarify_images;
  // Retries are said as they happen, summed up at most every few seconds.
  const s3Retries = new RetryLog('S3', log);
  const endpointRetries = new RetryLog('endpoint', log);
  configureS3Resilience({
    maxAttempts: ext.s3_max_attempts,
    baseDelayMs: ext.s3_retry_base_delay_ms,
    idleTimeoutMs: ext.s3_idle_timeout_ms,
    onRetry: (what, error, attempt) => s3Retries.note(errorMessage(error) || String((error as { name?: string }).name), `${what}, attempt ${attempt} of ${ext.s3_max_attempts}`),
  });
  const storageOptions = { region: ext.region, s3Client: options.s3Client };
  // A manifest's entries and the names below are held all run: each may take a quarter of the budget.
  const dataset = await openDataset(datasetUri, storageOptions, listingBudgetBytes(config));
  const output = openStorage(options.outputUri, storageOptions);
  const invoker = createInvoker(config, options.transport);
  invoker.onRetry = (notice) => endpointRetries.note(notice.reason, `attempt ${notice.attempt} of ${notice.maxRetries + 1} failed`);
  invoker.onBudgetSpent = () => log('the retry budget is spent (clarify_images.retry_budget): failing calls now fail at once, until calls succeed again');
  const predictor = new Predictor(config, invoker);
  const shard = options.shard;
  log(
    `clarify-images ${VERSION}: ${datasetUri} → ${options.outputUri} via ${invoker.transport.description}` +
      (shard ? ` (shard ${shard.index + 1} of ${shard.count})` : ''),
  );
  // A server that is down or not ready is said at once, before any image is read.
  if (invoker.transport.ping) {
    try {
      await invoker.transport.ping();
    } catch (error) {
      invoker.close();
      throw new Error(`the endpoint is not ready: ${errorMessage(error)}; no image was read`, { cause: error });
    }
  }

  /** `request`: what the stop found a list request doing, if one was under way. */
  const stoppedWhileListing = (listed: number, request?: string): StoppedBeforeStartError =>
    new StoppedBeforeStartError(
      stopSignalOf(options.stop!) ?? 'SIGTERM',
      `while the dataset was listed (${formatCount(listed)} images so far${request ? `; ${request}` : ''}); this run explained and wrote nothing`,
    );
  /** A list request the stop aborted in flight, or one it found failing and retried. */
  const listRequestStopped = (error: unknown): string =>
    error instanceof Error && error.name === 'AbortError' ? 'a list request was cut short' : `a list request was being retried: ${errorMessage(error)}`;
  // Clarify's names need the whole listing first: only then is a stem known to be unique. The
  // same listing counts the images, so a stopped run still knows how many it did not reach.
  // An output folder inside the dataset folder is never listed: the job must not explain its own heatmaps.
  const ownOutput = ownOutputFilter(dataset, options.outputUri);
  const fullListing: DatasetCounts = { imagesFound: 0, filesSkipped: 0 };
  let myImagesInListing = 0;
  const namer = await OutputNamer.fromListing(
    (async function* counted() {
      // A stop is honoured during the listing too (and cuts short an S3 page's retries): nothing is written yet, so nothing is lost.
      for await (const image of listImages(dataset, fullListing, ownOutput, options.stop)) {
        if (options.stop?.aborted) throw stoppedWhileListing(fullListing.imagesFound - 1);
        if (!shard || shardOf(image.key, shard.count) === shard.index) myImagesInListing += 1;
        yield image;
      }
    })(),
    listingBudgetBytes(config),
  ).catch((error: unknown) => {
    invoker.close();
    if (error instanceof StoppedBeforeStartError) throw error;
    if (options.stop?.aborted) throw stoppedWhileListing(fullListing.imagesFound, listRequestStopped(error));
    throw new Error(`cannot list the dataset ${datasetUri}: ${errorMessage(error)}`, { cause: error });
  });
  const writer: ResultWriter = shard ? await PartWriter.open(output, effective, shard) : await FinalWriter.open(output, effective, log);
  // A baseline image shapes every result, and may be replaced under the same URI: it is read once,
  // its hash joins the resume fingerprint, and the same bytes are explained with.
  const baselineUri = config.methods.shap.baseline;
  const baselineBytes = baselineUri === undefined ? undefined : readBaseline(baselineUri, storageOptions, memoryBudgetBytes(config));
  // The rejection is handled here (as 'unreadable'); each image still reports it (StageError), as before.
  const baselineContent = baselineBytes && (await baselineBytes.then((bytes) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`, () => 'unreadable'));
  const resume = new ResumeStore(output, effective, !options.force, baselineContent, log);
  // CPU-heavy stages run on worker threads: the event loop stays free for calls, timeouts and signals.
  const cpuAbort = new AbortController();
  setMaxListeners(0, cpuAbort.signal); // one listener per queued task (Piscina), many by design
  const cpu = new WorkerStages(ext.cpu_workers ?? defaultWorkerCount(), cpuAbort.signal);
  // The names' fingerprints (16 bytes an image at most) and a manifest's entries are held all run, so images get what is left.
  const memory = new MemoryBudget(memoryBudgetBytes(config) - namer.bytes - (dataset.heldBytes ?? 0));
  // A classifier's explanation holds every label's answer to every call (a detector's, every
  // object's), as much as its pixels at a few thousand labels: each image is admitted with them.
  const answerBytes = answerBytesPerImage(config);
  const groundwork = new ExplanationGroundwork(config, predictor, storageOptions, log, cpu, baselineBytes);
  const explainer = new ImageExplainer(groundwork);
  const wantsReport = (index: number): boolean => shownInReport(index, ext.report_max_images);
  /** The report's fields every model type shares, drawn from the view (a shrunk copy of a big image). */
  const reportBase = async (image: DatasetImage, name: string, view: PictureView, calls: number, unit: string, firstHeatmap: Buffer | undefined): Promise<Omit<ReportImage, 'ranking' | 'panels'>> => ({
    uri: image.uri,
    name,
    width: Math.round(view.rgb.width / view.scale),
    height: Math.round(view.rgb.height / view.scale),
    pair: firstHeatmap && (await renderSideBySide(view.rgb, firstHeatmap, 'original')),
    segments: await renderSegmentBoundaries(view.rgb, view.segments),
    numSegments: view.segments.count,
    calls,
    unit,
  });

  /** One image through every stage; undefined when the run stopped before it was complete. */
  const processImage = async (image: DatasetImage): Promise<ImageResult | undefined> => {
    const name = namer.name(image.key, image.uri);
    // What the image is: S3's ETag from the listing, or a hash of the bytes (read once, used below).
    let bytes: Buffer | undefined;
    let contentId: string;
    // A file larger than the whole memory budget (a video named .png, a stray archive) is never read.
    const oversize = image.size > memory.capacity;
    try {
      if (image.etag) contentId = `etag:${image.etag}`;
      else if (oversize) contentId = `size:${image.size}`;
      else {
        bytes = await dataset.read(image.key);
        contentId = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      }
    } catch {
      contentId = 'unreadable';
    }
    // A file over the budget is refused as a fresh run would, even where an earlier run (with more memory) explained it.
    const reuse: ReuseDecision = oversize ? { kind: 'explain' } : await resume.decide(name, image.key, image.index, contentId);
    if (reuse.kind === 'reuse') {
      reusedImages.add(image.index);
      return reuse.result;
    }
    // The first stored image is predicted again before any stored result is reused: same answer, reused.
    const check = reuse.kind === 'check' ? reuse : undefined;
    /** The bytes to explain. An S3 object replaced since it was listed is known by the version read: its result must not be reused for the listed one. */
    const readListed = async (): Promise<Buffer> => {
      if (!image.etag || !dataset.readVersion) return dataset.read(image.key);
      const { bytes: read, etag } = await dataset.readVersion(image.key);
      if (etag && etag !== image.etag) contentId = `etag:${etag}`;
      return read;
    };
    let size: { width: number; height: number; original?: { width: number; height: number } } | undefined;
    let releaseMemory: (() => void) | undefined;
    try {
      const read = bytes;
      bytes = undefined;
      if (oversize) throw new StageError('read', `the file ${unreadOverBudget(image.size, memory.capacity)} (raise max_memory_mb if the container has the memory)`);
      const data = read ?? (await stageOf('read', readListed));
      const decodeOptions = { maxPixels: ext.max_image_pixels, maxSide: ext.max_image_side };
      // Admitted by its working size, read from the header: a huge image waits for room, or is refused before it is decoded.
      const planned = await stageOf('decode', () => decodedSize(data, decodeOptions), describeDecodeError);
      // The file's bytes are held until the image is done, beside its pixels.
      const neededAt = (at: { width: number; height: number }): number => workingBytes(at.width * at.height, groundwork.prepareAheadFor(at)) + answerBytes + data.length;
      const needed = neededAt(planned);
      // The labels (or objects) are named in the refusal where their answers are a good part of the need.
      const withLabels = answerBytes >= needed / 4 ? ` with ${explainedOutputsSaid(config)}` : '';
      releaseMemory = await stageOf('decode', () => memory.acquire(needed), (error) => {
        if (!(error instanceof OverBudgetError)) return errorMessage(error);
        // The side that fits, worked out: a fixed example (2048) was no help to a 1600 × 1200 image that needs more than the budget.
        const side = largestSideThatFits(planned, neededAt, memory.capacity);
        const shrink = side === undefined ? '' : `set clarify_images.max_image_side to ${side} or less to explain it shrunk, or `;
        return `${planned.width}×${planned.height} image${withLabels} ${error.message}: ${shrink}raise max_memory_mb if the container has the memory`;
      });
      const decoded = await stageOf('decode', () => decodeImage(data, decodeOptions), describeDecodeError);
      // Pixels in shared memory once: the worker threads read them without a copy.
      const rgb = inSharedMemory(decoded);
      size = { width: rgb.width, height: rgb.height, original: planned.original };
      const payload = await stageOf('encode', () => encodeImage(rgb, config.predictor.content_type, { jpegQuality: ext.jpeg_quality }));
      const prediction = await predictor.predict(payload, rgb.width, rgb.height);
      const record = predictionRecord(image, size, prediction);
      const stored = check?.settle(record);
      if (stored) {
        reusedImages.add(image.index);
        return stored;
      }
      const outcome = await stageOf('explain', () => explainer.explain(rgb, image.key, prediction));
      const view = wantsReport(image.index) ? await pictureView(rgb, outcome.segments) : undefined;
      const written = await stageOf('write', () => writeExplanation(output, image, name, rgb, outcome, view));
      const pictures = view && written.pictures;
      const report: ReportImage | undefined = pictures && {
        ...(await reportBase(image, name, view, written.line.calls, pictures.unit, pictures.firstHeatmap)),
        ranking: pictures.ranking,
        ...(pictures.overview ? { overview: pictures.overview } : {}),
        panels: pictures.panels,
      };
      const result: ImageResult = { index: image.index, key: image.key, uri: image.uri, record, explanation: written.line, withoutDetections: written.withoutDetections, report };
      await stageOf('write', () => resume.save(name, result, contentId));
      return result;
    } catch (error) {
      if (error instanceof StopError) return undefined;
      const stage = error instanceof StageError ? error.stage : 'explain';
      const failure: ImageFailure = { image: image.uri, stage, message: errorMessage(error) };
      log(`failed: ${image.uri} [${stage}] ${failure.message}`);
      // A full disk or a denied bucket fails every image after this one, each after all its calls.
      if (stage === 'write' && isOutputUnwritable(error)) halt(`the output cannot be written (${failure.message}), so more images would spend their endpoint calls for nothing`);
      const report: ReportImage | undefined = wantsReport(image.index) ? { uri: image.uri, name, width: 0, height: 0, ranking: [], panels: [], failure } : undefined;
      return { index: image.index, key: image.key, uri: image.uri, record: failureRecord(image, failure, size && { width: size.width, height: size.height }), failure, report };
    } finally {
      check?.settle(undefined); // not predicted: the next stored image checks instead
      releaseMemory?.();
    }
  };

  // A few images in flight keep every endpoint slot busy (an explained image alone makes
  // hundreds of calls) while memory stays bounded.
  const window = 4;
  const inFlight = new Set<Promise<void>>();
  const counts: DatasetCounts = { imagesFound: 0, filesSkipped: 0 };
  let myImages = 0;
  let fatal: unknown;
  let done = 0;
  let failedSoFar = 0;
  /** Images explained here so far, and their calls: what an image costs, for the progress's total. */
  let explainedSoFar = 0;
  let explainedCalls = 0;
  /** Images in flight whose result is a previous run's (they made no calls for it). */
  const reusedImages = new Set<number>();
  let stopped = false;
  /** Why the job stopped itself (a failing endpoint), as opposed to a signal. */
  let haltReason: string | undefined;
  let endpointFailuresInARow = 0;
  const halt = (reason: string): void => {
    if (haltReason || stopped) return;
    haltReason = reason;
    stopped = true;
    log(`stopping the job: ${reason}`);
    invoker.cancel(); // the endpoint cannot serve: in-flight images are unfinished, not retried for minutes
    cpuAbort.abort();
  };
  const noteEndpointOutcome = (result: ImageResult | undefined): void => {
    if (!result) return;
    const failure = result.failure;
    if (failure && (failure.stage === 'invoke' || failure.stage === 'parse')) {
      endpointFailuresInARow += 1;
      const limit = ext.stop_after_failed_images;
      if (limit > 0 && endpointFailuresInARow >= limit) {
        halt(`${formatCountOf(endpointFailuresInARow, 'image')} in a row failed at the endpoint (clarify_images.stop_after_failed_images is ${limit}); the last: [${failure.stage}] ${failure.message}`);
      }
    } else if (!failure) {
      endpointFailuresInARow = 0;
    }
  };
  const callsPerImage = plannedCallsPerImage(config);
  /** What the summary says beyond the images; the listing before the run counted every image. */
  const runFacts = (): Omit<RunFacts, 'partial'> => {
    const listed = counts.imagesFound >= fullListing.imagesFound ? counts : fullListing;
    return {
      datasetUri,
      // A shard reports its own images; skipped files are counted by shard 0 only, so parts add up.
      imagesFound: shard ? Math.max(myImages, myImagesInListing) : listed.imagesFound,
      filesSkipped: shard ? (shard.index === 0 ? listed.filesSkipped : 0) : listed.filesSkipped,
      endpoint: invoker.transport.description,
      calls: invoker.stats,
      startedAt,
      reused: resume.reused,
      ...(pace ? { pace } : {}),
    };
  };
  progress = options.progress
    ? new ProgressReporter(
        () => ({
          imagesDone: done,
          // The whole listing was made before the first image (for the names), so the total is
          // known from the start: the bar's total and ETA count every image, not those admitted so far.
          imagesListed: shard ? Math.max(myImages, myImagesInListing) : Math.max(counts.imagesFound, fullListing.imagesFound),
          failed: failedSoFar,
          calls: invoker.stats.calls,
          retries: invoker.stats.retries,
          callsPerImage,
          inFlight: inFlight.size,
          explained: explainedSoFar,
          callsOfExplained: explainedCalls,
        }),
        options.progress,
        options.progressIntervalMs,
      )
    : undefined;
  progress?.start();
  const onStop = (): void => {
    if (stopped) return;
    stopped = true;
    log(`stopping: no new images; waiting up to ${((options.graceMs ?? 30_000) / 1000).toFixed(0)} s for ${inFlight.size} in flight`);
    setTimeout(() => {
      if (inFlight.size > 0) log(`grace period over: cancelling ${inFlight.size} unfinished images`);
      invoker.cancel();
      cpuAbort.abort();
    }, options.graceMs ?? 30_000).unref();
  };
  if (options.stop?.aborted) onStop();
  options.stop?.addEventListener('abort', onStop, { once: true });
  // What set the pace is judged over the images alone: the listing is done, the report is after.
  const paceSources = { occupancy: () => invoker.limiter.occupancy(), busySeconds: () => cpu.busySeconds(), memoryWaitedSeconds: () => memory.waitedSeconds() };
  const paceStart = readPace(paceSources);
  let pace: PaceSummary | undefined;
  try {
    try {
      for await (const image of listImages(dataset, counts, ownOutput)) {
        if (stopped || fatal) break;
        if (shard && shardOf(image.key, shard.count) !== shard.index) continue;
        myImages += 1;
        writer.admit(image.index);
        const task: Promise<void> = processImage(image)
          .then(async (result) => {
            if (result) await writer.add(result);
            if (result?.failure) failedSoFar += 1;
            const reused = reusedImages.delete(image.index);
            if (result?.explanation && !reused) {
              explainedSoFar += 1;
              explainedCalls += result.explanation.calls + 1; // and its prediction
            }
            done += 1;
            noteEndpointOutcome(result);
          })
          .catch((error: unknown) => {
            fatal ??= error;
          })
          .finally(() => inFlight.delete(task));
        inFlight.add(task);
        if (myImages === 1) {
          // The first call checks the endpoint for real: a failure that says it cannot serve at all
          // stops the job with one message instead of failing every image the same way.
          const first = await Promise.race([invoker.firstCall, task.then(() => undefined)]);
          if (first !== undefined && isEndpointWide(first)) halt(`the endpoint failed the first call: ${errorMessage(first)}`);
        }
        // Results are written in dataset order: those that finish ahead of a slow image wait for it
        // in memory, so past MAX_WAITING_RESULTS of them, or a quarter of max_memory_mb (a
        // 5,000-label result over 50 segments holds about 16 MB), no new image starts until it is done.
        while (inFlight.size >= window || (waitingResultsFull(writer, memory.capacity) && inFlight.size > 0)) await Promise.race(inFlight);
      }
    } catch (error) {
      fatal ??= new Error(`cannot list the dataset ${datasetUri}: ${errorMessage(error)}`, { cause: error });
    }
    await Promise.all(inFlight);
    progress?.stop();
    // Nothing to judge when no image was explained here (every one reused) or no call was made.
    if (invoker.stats.calls > 0 && done > resume.reused) {
      pace = judgePace(paceStart, readPace(paceSources), { cores: availableCores(), workers: cpu.threads, limit: invoker.limiter.limit, concurrency: ext.concurrency, maxConcurrency: ext.max_concurrency, memoryBytes: memory.capacity }, ext.estimator);
    }
    if (fatal) {
      // A job that must stop still says what is complete, when the output can still be written.
      invoker.close();
      options.stop?.removeEventListener('abort', onStop);
      await writer
        .finish({ ...runFacts(), partial: true, stopReason: `the job stopped: ${errorMessage(fatal)}` })
        .catch(() => writer.abort());
      throw fatal;
    }
    if (counts.imagesFound === 0) {
      throw new ConfigError([{ path: 'dataset_uri', message: `no images (.jpg, .jpeg, .png) under ${datasetUri} (${counts.filesSkipped} other files skipped)` }]);
    }
  } catch (error) {
    progress?.stop();
    if (error !== fatal) await writer.abort();
    invoker.close();
    options.stop?.removeEventListener('abort', onStop);
    throw error;
  } finally {
    await cpu.close();
    s3Retries.flush();
    endpointRetries.flush();
    configureS3Resilience({ onRetry: () => undefined });
  }
  invoker.close();
  options.stop?.removeEventListener('abort', onStop);
  const summary = await writer.finish({ ...runFacts(), partial: stopped, stopReason: haltReason ?? (stopped ? 'stopped by a signal' : undefined) });
  if (resume.reused > 0) log(`${formatCountOf(resume.reused, 'image')} reused from a previous run (their files verified, and the endpoint's answer to one of them; --force recomputes)`);
  return { summary, exitCode: summary.images.failed > 0 || haltReason ? 1 : 0, stopped: stopped && !haltReason, halted: haltReason !== undefined, reused: resume.reused };
}
