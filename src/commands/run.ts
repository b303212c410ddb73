import { type AnalysisConfig, DEFAULT_DATASET_URI, DEFAULT_OUTPUT_URI, endpointTarget } from '../config/config.js';
import { ShadowEndpoint, shadowJobKey } from '../predictor/shadow-endpoint.js';
import { ConfigError, errorMessage, stopSignalOf, StoppedBeforeStartError } from '../errors.js';
import { locationProblem } from '../storage/location.js';
import { type JobResult, runJob } from '../job.js';
import type { Shard } from '../output/run-writer.js';
import type { AnalysisSummary } from '../output/records.js';
import { fewSegmentsSaid } from '../output/segment-note.js';
import { awsNodeNotice, type CliIo, type Command, EXIT_FAILURES, EXIT_USAGE, loadRunnableConfig, optionalString, printConfigError, requireString, UsageError } from './command.js';
import { formatCount, formatCountOf } from '../output/format.js';

/** Exit codes of a run ended by a signal, as shells report them (128 + signal number). */
export const EXIT_SIGINT = 130;
export const EXIT_SIGTERM = 143;

export function signalExitCode(signal: NodeJS.Signals): number {
  return signal === 'SIGINT' ? EXIT_SIGINT : EXIT_SIGTERM;
}

/**
 * While `work` runs, the first SIGINT / SIGTERM aborts its stop signal (the reason is the signal's
 * name); a second one calls `onSecondSignal`, which by default exits at once.
 */
export async function withStopSignals<T>(work: (stop: AbortSignal) => Promise<T>, onSecondSignal: (signal: NodeJS.Signals) => void = (s) => process.exit(signalExitCode(s))): Promise<T> {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (controller.signal.aborted) onSecondSignal(signal);
    else controller.abort(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await work(controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** What set the pace: the run's, or each host's of a merged run (lines for the console). */
export function paceLines(summary: Pick<AnalysisSummary, 'pace' | 'pace_by_host'>): string[] {
  if (summary.pace) return [`  pace ${summary.pace.said}`];
  const hosts = summary.pace_by_host ?? [];
  return hosts.flatMap((pace, host) => (pace ? [`  pace of host ${host + 1} of ${hosts.length}: ${pace.said}`] : []));
}

/** One line and the failures, as the CLI and the demo print them. */
export function printSummary({ summary, reused }: JobResult, outputUri: string, io: CliIo): void {
  const { images, dataset, endpoint_calls: calls } = summary;
  const count = formatCount;
  io.out(
    `${count(images.succeeded)} of ${count(dataset.images_found)} images succeeded, ${count(images.failed)} failed, ` +
      `${count(dataset.files_skipped)} non-image files skipped; ${count(calls.calls)} endpoint calls (${count(calls.retries)} retries)` +
      `${images.without_detections ? `; ${formatCountOf(images.without_detections, 'image')} without detections` : ''}` +
      `${reused > 0 ? `; ${formatCountOf(reused, 'image')} reused from a previous run` : ''}; results in ${outputUri}`,
  );
  if (summary.status === 'partial') {
    const why = summary.stop_reason && summary.stop_reason !== 'stopped by a signal' ? ` ${summary.stop_reason}.` : '';
    io.out(`  STOPPED:${why} ${formatCountOf(images.not_processed ?? 0, 'image')} not processed; run again over the same output to finish (complete images are reused).`);
  }
  for (const line of paceLines(summary)) io.out(line);
  for (const failure of summary.failures.slice(0, 20)) io.out(`  FAILED ${failure.image} [${failure.stage}]: ${failure.message}`);
  if (images.failed > 20) {
    const listed = summary.failures.length;
    io.out(`  … and ${count(images.failed - 20)} more, ${images.failed > listed ? `the first ${count(listed)} listed in analysis.json, every one in predictions.jsonl` : 'listed in analysis.json'}`);
  }
  const few = fewSegmentsSaid(summary.explanations?.few_segments);
  if (few) io.out(`  note: ${few}`);
  if (summary.report?.pdf_error) io.out(`  note: ${summary.report.pdf_error}`);
}

export function parseShard(text: string | undefined): Shard | undefined {
  if (text === undefined) return undefined;
  const match = /^(\d+)\/(\d+)$/.exec(text);
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (!match || count < 1 || index >= count) throw new UsageError(`--shard must be INDEX/COUNT with 0 ≤ INDEX < COUNT (e.g. 0/3), got "${text}"`);
  return { index, count };
}


/**
 * Run the job with SIGINT / SIGTERM wired to a graceful stop. With only predictor.model_name, a
 * shadow endpoint is created first and deleted however the run ends (a second signal deletes it
 * before exiting, within 20 s; past that, the next run of the same job removes it).
 */
export async function runWithSignals(config: AnalysisConfig, options: Omit<Parameters<typeof runJob>[1], 'stop' | 'graceMs'>): Promise<{ result: JobResult; signal?: NodeJS.Signals }> {
  let shadow: ShadowEndpoint | undefined;
  // A second signal: now, after a bounded attempt to delete the shadow endpoint.
  const onSecondSignal = (s: NodeJS.Signals): void => {
    const code = signalExitCode(s);
    if (!shadow) process.exit(code);
    setTimeout(() => process.exit(code), 20_000).unref();
    void shadow.delete().finally(() => process.exit(code));
  };
  return withStopSignals(async (stop) => {
    let effective = config;
    if (endpointTarget(config).kind === 'shadow') {
      try {
        shadow = await ShadowEndpoint.create(config, {
          jobKey: shadowJobKey(options.outputUri, options.shard),
          region: config.clarify_images.region,
          log: options.log ?? (() => undefined),
          signal: stop,
          pollIntervalMs: Number(process.env['CLARIFY_IMAGES_SHADOW_POLL_MS'] ?? 15_000),
          timeoutMs: config.clarify_images.shadow_endpoint_timeout_seconds * 1000,
        });
      } catch (error) {
        const signal = stopSignalOf(stop);
        if (signal) throw new StoppedBeforeStartError(signal);
        throw error;
      }
      effective = { ...config, predictor: { ...config.predictor, endpoint_name: shadow.name } };
    }
    try {
      const result = await runJob(effective, { ...options, stop, graceMs: config.clarify_images.stop_grace_seconds * 1000 });
      return { result, signal: stopSignalOf(stop) };
    } finally {
      await shadow?.delete();
    }
  }, onSecondSignal);
}

export const runCommand: Command = {
  summary: 'explain every image of a dataset with the model behind an endpoint',
  usage: `clarify-images run --config FILE [--dataset-uri URI] [--output URI] [--shard I/N] [--force]

  --config FILE       analysis_config.json (SageMaker Clarify format; see config-schemas/)
  --dataset-uri URI   s3://bucket/prefix or a local folder; overrides dataset_uri in the config
                      (default when neither: ${DEFAULT_DATASET_URI})
  --output URI        s3://bucket/prefix or a local folder for the results (default: ${DEFAULT_OUTPUT_URI})
  --shard I/N         explain only shard I (from 0) of N, by a stable hash of each image's key, and
                      write a part; 'clarify-images merge' joins the N parts
  --force             recompute images a previous run over this output completed (default: reuse them)
  --quiet             print only the final summary
  -h, --help          show this help

Writes analysis_config.json (the effective config), predictions.jsonl (one line per image),
explanations_shap/out.jsonl, heatmaps, report.html / report.pdf, analysis.json (counts, failures,
endpoint calls, durations, what set the pace) and state/ (one marker per complete image, for
resuming). The summary ends with what set the run's pace (the endpoint, this machine's CPU or
max_memory_mb) and what would speed it up.
SIGTERM / SIGINT: no new images; in-flight ones may finish for clarify_images.stop_grace_seconds;
what is complete is written, analysis.json says "partial"; exit 143 / 130.
Exit 0 when every image succeeded, 1 when some failed (listed in analysis.json), 2 on a config or
usage error.`,
  options: {
    config: { type: 'string' },
    'dataset-uri': { type: 'string' },
    output: { type: 'string' },
    shard: { type: 'string' },
    force: { type: 'boolean' },
    quiet: { type: 'boolean' },
  },
  async run(values, io) {
    const file = requireString(values, 'config');
    const shard = parseShard(optionalString(values, 'shard'));
    const config = await loadRunnableConfig(file, io);
    if (!config) return EXIT_USAGE;
    const outputUri = optionalString(values, 'output') ?? DEFAULT_OUTPUT_URI;
    awsNodeNotice(config, [optionalString(values, 'dataset-uri'), outputUri], io);
    const uriProblems = [
      { path: '--dataset-uri', uri: optionalString(values, 'dataset-uri') },
      { path: '--output', uri: outputUri },
    ].flatMap(({ path, uri }) => {
      const message = uri === undefined ? undefined : locationProblem(uri);
      return message ? [{ path, message }] : [];
    });
    if (uriProblems.length > 0) {
      io.err('clarify-images: invalid arguments:');
      for (const p of uriProblems) io.err(`  ${p.path}: ${p.message}`);
      return EXIT_USAGE;
    }
    try {
      const { result, signal } = await runWithSignals(config, {
        datasetUri: optionalString(values, 'dataset-uri'),
        outputUri,
        shard,
        force: values['force'] === true,
        log: values['quiet'] === true ? undefined : (line) => io.err(line),
        progress: values['quiet'] === true ? undefined : { isTTY: Boolean(process.stderr.isTTY), stream: process.stderr, write: (text) => process.stderr.write(text) },
      });
      if (shard) {
        io.out(`part ${shard.index} of ${shard.count} written to ${outputUri}/parts/${shard.index}-of-${shard.count}: ${result.summary.images.succeeded} images succeeded, ${result.summary.images.failed} failed`);
        for (const line of paceLines(result.summary)) io.out(line);
        io.out(`when all ${shard.count} parts are written: clarify-images merge --output ${outputUri} --parts ${shard.count}`);
      } else {
        printSummary(result, outputUri, io);
      }
      if (signal) return signalExitCode(signal);
      return result.exitCode;
    } catch (error) {
      if (error instanceof ConfigError) {
        printConfigError(error, io, file);
        return EXIT_USAGE;
      }
      if (error instanceof StoppedBeforeStartError) {
        io.err(`clarify-images: ${error.message}`);
        return signalExitCode(error.signal);
      }
      io.err(`clarify-images: the job stopped: ${errorMessage(error)}`);
      return EXIT_FAILURES;
    }
  },
};
