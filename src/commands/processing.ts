/**
 * The SageMaker Processing container contract (what the Dockerfile's entrypoint runs):
 * config from /opt/ml/processing/input/config/analysis_config.json, data from
 * /opt/ml/processing/input/data unless dataset_uri is set, results to /opt/ml/processing/output,
 * hosts from /opt/ml/config/resourceconfig.json. Exit 0 on success; otherwise non-zero with a
 * one-line reason in /opt/ml/output/message. CLARIFY_IMAGES_ML_ROOT moves /opt/ml (tests).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type AnalysisConfig, endpointTarget } from '../config/config.js';
import { ConfigError, errorMessage, StoppedBeforeStartError } from '../errors.js';
import { MergeStoppedError, mergeParts } from '../output/merge.js';
import type { Shard } from '../output/run-writer.js';
import { openStorage } from '../storage/storage.js';
import { awsNodeNotice, type Command, EXIT_FAILURES, EXIT_OK, EXIT_USAGE, loadCheckedConfig } from './command.js';
import { formatCount, formatCountOf } from '../output/format.js';
import { paceLines, printSummary, runWithSignals, signalExitCode, withStopSignals } from './run.js';

export function mlRoot(): string {
  return process.env['CLARIFY_IMAGES_ML_ROOT'] ?? '/opt/ml';
}

interface ResourceConfig {
  current_host?: string;
  hosts?: string[];
}

/** This host's shard, from resourceconfig.json; none on a single host (or outside SageMaker). */
export async function shardFromResourceConfig(root: string): Promise<Shard | undefined> {
  let resource: ResourceConfig;
  try {
    resource = JSON.parse(await readFile(path.join(root, 'config', 'resourceconfig.json'), 'utf8')) as ResourceConfig;
  } catch {
    return undefined;
  }
  const hosts = resource.hosts ?? [];
  if (hosts.length <= 1 || !resource.current_host) return undefined;
  const index = hosts.indexOf(resource.current_host);
  if (index < 0) throw new ConfigError([{ path: 'resourceconfig.json', message: `current_host "${resource.current_host}" is not among hosts ${JSON.stringify(hosts)}` }]);
  return { index, count: hosts.length };
}

interface ProcessingJobConfig {
  ProcessingOutputConfig?: { Outputs?: { OutputName?: string; S3Output?: { S3Uri?: string; LocalPath?: string; S3UploadMode?: string } }[] };
}

/**
 * The S3 URI that SageMaker uploads /opt/ml/processing/output to, from the job's own
 * ProcessingOutputConfig (/opt/ml/config/processingjobconfig.json). Every host can write there
 * during the job, so a multi-instance job merges its parts with no extra config.
 */
export async function processingOutputUri(root: string): Promise<string | undefined> {
  let job: ProcessingJobConfig;
  try {
    job = JSON.parse(await readFile(path.join(root, 'config', 'processingjobconfig.json'), 'utf8')) as ProcessingJobConfig;
  } catch {
    return undefined;
  }
  const outputs = job.ProcessingOutputConfig?.Outputs ?? [];
  const local = (p: string | undefined): string => (p ?? '').replace(/\/+$/, '');
  const match = outputs.find((o) => local(o.S3Output?.LocalPath) === '/opt/ml/processing/output') ?? (outputs.length === 1 ? outputs[0] : undefined);
  return match?.S3Output?.S3Uri;
}

async function failureMessage(root: string, message: string): Promise<void> {
  const dir = path.join(root, 'output');
  await mkdir(dir, { recursive: true });
  // SageMaker shows the first line of this file as the job's FailureReason.
  await writeFile(path.join(dir, 'message'), `${message.split('\n')[0]!.slice(0, 1000)}\n`);
}

export const processingCommand: Command = {
  summary: 'run as a SageMaker Processing job (the container entrypoint)',
  usage: `clarify-images processing

Follows the SageMaker Processing contract, with no options:
  config   /opt/ml/processing/input/config/analysis_config.json
  data     /opt/ml/processing/input/data (unless dataset_uri is set in the config)
  output   /opt/ml/processing/output (SageMaker uploads it)
  hosts    /opt/ml/config/resourceconfig.json: with several hosts each explains a disjoint share of
           the images (stable hash of the key), writes its part to the job's output S3 URI (from
           /opt/ml/config/processingjobconfig.json, or clarify_images.output_uri), and the first
           host merges the parts
           (waiting up to clarify_images.merge_timeout_seconds)
On failure: non-zero exit and a one-line reason in /opt/ml/output/message. SIGTERM (a stopped job):
in-flight images finish within clarify_images.stop_grace_seconds and what is complete is written.
CLARIFY_IMAGES_ML_ROOT replaces /opt/ml (for tests).`,
  options: {},
  async run(_values, io) {
    const root = mlRoot();
    const processing = path.join(root, 'processing');
    const configFile = path.join(processing, 'input', 'config', 'analysis_config.json');
    let outputUri = path.join(processing, 'output');
    let config: AnalysisConfig;
    let shard: Shard | undefined;
    try {
      config = await loadCheckedConfig(configFile, io);
      endpointTarget(config);
      awsNodeNotice(config, [config.clarify_images.output_uri], io);
      shard = await shardFromResourceConfig(root);
      outputUri = config.clarify_images.output_uri ?? outputUri;
      if (shard && !config.clarify_images.output_uri) {
        // Each host's /opt/ml/processing/output is only uploaded when the job ends, so the hosts
        // write their parts straight to the job's output S3 URI, where the first host merges them.
        const shared = await processingOutputUri(root);
        if (!shared) {
          throw new ConfigError([
            {
              path: 'clarify_images.output_uri',
              message: `a ${shard.count}-instance job needs an output every host can reach: /opt/ml/config/processingjobconfig.json names no S3 output for /opt/ml/processing/output; set clarify_images.output_uri (an s3:// prefix), or run 'clarify-images merge --output URI --parts ${shard.count}' after the job`,
            },
          ]);
        }
        outputUri = shared;
      }
    } catch (error) {
      const message = error instanceof ConfigError ? `invalid config: ${error.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}` : errorMessage(error);
      io.err(`clarify-images processing: ${message}`);
      await failureMessage(root, message);
      return EXIT_USAGE;
    }
    try {
      const datasetUri = config.dataset_uri ?? path.join(processing, 'input', 'data');
      const { result, signal } = await runWithSignals(config, {
        datasetUri,
        outputUri,
        shard,
        log: (l) => io.err(l),
        progress: { isTTY: false, write: (text) => process.stderr.write(text) },
      });
      if (signal) {
        await failureMessage(root, `stopped by ${signal}: ${formatCountOf(result.summary.images.not_processed ?? 0, 'image')} not processed; complete images are in the output and are reused by a new run over it`);
        return signalExitCode(signal);
      }
      let summary = result.summary;
      if (shard) {
        io.out(`part ${shard.index} of ${shard.count} written`);
        for (const line of paceLines(result.summary)) io.out(line);
        if (shard.index !== 0) return result.exitCode;
        const timeoutMs = config.clarify_images.merge_timeout_seconds * 1000;
        summary = await withStopSignals((stop) => mergeParts(openStorage(outputUri), { parts: shard.count, timeoutMs, log: (l) => io.err(l), stop }));
        printSummary({ ...result, summary }, outputUri, io);
      } else {
        printSummary(result, outputUri, io);
      }
      if (summary.images.failed > 0) {
        const first = summary.failures[0]!;
        await failureMessage(root, `${formatCount(summary.images.failed)} of ${formatCount(summary.dataset.images_found)} images failed (first: ${first.image} [${first.stage}] ${first.message}); see analysis.json`);
        return EXIT_FAILURES;
      }
      return EXIT_OK;
    } catch (error) {
      const message = error instanceof ConfigError ? error.problems.map((p) => `${p.path}: ${p.message}`).join('; ') : errorMessage(error);
      io.err(`clarify-images processing: ${message}`);
      await failureMessage(root, message);
      if (error instanceof StoppedBeforeStartError) return signalExitCode(error.signal);
      if (error instanceof MergeStoppedError && error.signal) return signalExitCode(error.signal);
      return error instanceof ConfigError ? EXIT_USAGE : EXIT_FAILURES;
    }
  },
};
