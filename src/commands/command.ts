/** What every subcommand of the CLI is made of. */
import type { ParseArgsConfig } from 'node:util';
import { type AnalysisConfig, configNotes, endpointTarget, loadConfig } from '../config/config.js';
import { checkBaseline } from '../explain/baseline.js';
import { ConfigError } from '../errors.js';

export const EXIT_OK = 0;
export const EXIT_FAILURES = 1;
export const EXIT_USAGE = 2;

export type OptionValues = Record<string, string | boolean | undefined>;

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

export interface Command {
  readonly summary: string;
  readonly usage: string;
  readonly options: NonNullable<ParseArgsConfig['options']>;
  run(values: OptionValues, io: CliIo): Promise<number>;
}

export class UsageError extends Error {}

export function requireString(values: OptionValues, name: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${name} is required`);
  return value;
}

export function optionalString(values: OptionValues, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

export function printConfigError(error: ConfigError, io: CliIo, file?: string): void {
  io.err(`clarify-images: invalid config${file ? ` ${file}` : ''}:`);
  for (const p of error.problems) io.err(`  ${p.path || '(root)'}: ${p.message}`);
}

/** Resolves on SIGINT or SIGTERM (for long-running commands). */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const done = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve(signal);
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}

/** Loads a config and checks what needs I/O (the baseline image); prints notes on stderr. */
export async function loadCheckedConfig(file: string, io: CliIo): Promise<AnalysisConfig> {
  const config = await loadConfig(file);
  for (const note of configNotes(config)) io.err(`note: ${note}`);
  await checkBaseline(config);
  return config;
}

/** A config `run`-like commands can use (it names an endpoint), or the printed problems. */
export async function loadRunnableConfig(file: string, io: CliIo): Promise<AnalysisConfig | undefined> {
  try {
    const config = await loadCheckedConfig(file, io);
    endpointTarget(config);
    return config;
  } catch (error) {
    if (error instanceof ConfigError) {
      printConfigError(error, io, file);
      return undefined;
    }
    throw error;
  }
}

let noticeShown = false;

/**
 * Once per process, where a command uses AWS on Node < 22: the one line that replaces the AWS
 * SDK's 8-line Node-version warning (bin/clarify-images.js silences that one).
 */
export function awsNodeNotice(config: AnalysisConfig, uris: readonly (string | undefined)[], io: CliIo): void {
  if (noticeShown || process.env['CLARIFY_IMAGES_NODE_NOTICE'] !== '1') return;
  const target = endpointTarget(config).kind;
  const aws = target !== 'url' || [config.dataset_uri, config.methods.shap.baseline, ...uris].some((u) => u !== undefined && /^s3:\/\//i.test(u));
  if (!aws) return;
  noticeShown = true;
  io.err(`note: AWS SDK releases after January 2027 need Node 22; this is Node ${process.versions.node}, which works with the SDK installed now.`);
}
