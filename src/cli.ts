/**
 * clarify-images command line. Exit codes: 0 success, 1 some images failed (or the job broke),
 * 2 config or usage error.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { type AnalysisConfig, DEFAULT_OUTPUT_URI, endpointTarget, loadConfig } from './config/config.js';
import { ConfigError, errorMessage } from './errors.js';
import { runJob } from './job.js';
import { VERSION } from './version.js';

export const EXIT_OK = 0;
export const EXIT_FAILURES = 1;
export const EXIT_USAGE = 2;

type Options = NonNullable<ParseArgsConfig['options']>;

interface Command {
  readonly summary: string;
  readonly usage: string;
  readonly options: Options;
  run(values: Record<string, string | boolean | undefined>, io: CliIo): Promise<number>;
}

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

const defaultIo: CliIo = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
};

class UsageError extends Error {}

function requireString(values: Record<string, string | boolean | undefined>, name: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${name} is required`);
  return value;
}

function printConfigError(error: ConfigError, io: CliIo, file?: string): void {
  io.err(`clarify-images: invalid config${file ? ` ${file}` : ''}:`);
  for (const p of error.problems) io.err(`  ${p.path || '(root)'}: ${p.message}`);
}

const commands: Record<string, Command> = {
  run: {
    summary: 'explain every image of a dataset with the model behind an endpoint',
    usage: `clarify-images run --config FILE [--dataset-uri URI] [--output URI]

  --config FILE       analysis_config.json (SageMaker Clarify format; see config-schemas/)
  --dataset-uri URI   s3://bucket/prefix or a local folder; overrides dataset_uri in the config
                      (default when neither: ${'/opt/ml/processing/input/data'})
  --output URI        s3://bucket/prefix or a local folder for the results (default: ${DEFAULT_OUTPUT_URI})
  --quiet             print only the final summary line
  -h, --help          show this help

Writes analysis_config.json (the effective config), predictions.jsonl (one line per image) and
analysis.json (counts, failures, endpoint calls, durations). Exit 0 when every image succeeded,
1 when some failed (listed in analysis.json), 2 on a config or usage error.`,
    options: {
      config: { type: 'string' },
      'dataset-uri': { type: 'string' },
      output: { type: 'string' },
      quiet: { type: 'boolean' },
    },
    async run(values, io) {
      const file = requireString(values, 'config');
      let config: AnalysisConfig;
      try {
        config = await loadConfig(file);
        endpointTarget(config);
      } catch (error) {
        if (error instanceof ConfigError) {
          printConfigError(error, io, file);
          return EXIT_USAGE;
        }
        throw error;
      }
      const quiet = values['quiet'] === true;
      const datasetUri = typeof values['dataset-uri'] === 'string' ? values['dataset-uri'] : undefined;
      const outputUri = typeof values['output'] === 'string' ? values['output'] : DEFAULT_OUTPUT_URI;
      try {
        const { summary, exitCode } = await runJob(config, {
          datasetUri,
          outputUri,
          log: quiet ? undefined : (line) => io.err(line),
        });
        const { images, dataset, endpoint_calls: calls } = summary;
        io.out(
          `${images.succeeded} of ${dataset.images_found} images succeeded, ${images.failed} failed, ` +
            `${dataset.files_skipped} non-image files skipped; ${calls.calls} endpoint calls (${calls.retries} retries); ` +
            `results in ${outputUri}`,
        );
        for (const failure of summary.failures.slice(0, 20)) io.out(`  FAILED ${failure.image} [${failure.stage}]: ${failure.message}`);
        if (summary.failures.length > 20) io.out(`  … and ${summary.failures.length - 20} more, listed in analysis.json`);
        return exitCode;
      } catch (error) {
        if (error instanceof ConfigError) {
          printConfigError(error, io, file);
          return EXIT_USAGE;
        }
        io.err(`clarify-images: the job stopped: ${errorMessage(error)}`);
        return EXIT_FAILURES;
      }
    },
  },
  validate: {
    summary: 'check an analysis config and print the effective config with defaults',
    usage: `clarify-images validate --config FILE

  --config FILE   analysis_config.json to check
  -h, --help      show this help

Prints the effective config (every default filled in) on success, exit 0; otherwise lists each
problem by its JSON path, exit 2.`,
    options: { config: { type: 'string' } },
    async run(values, io) {
      const file = requireString(values, 'config');
      try {
        const config = await loadConfig(file);
        io.out(JSON.stringify(config, null, 2));
        try {
          endpointTarget(config);
        } catch (error) {
          if (error instanceof ConfigError) io.err(`note: ${error.message} — needed by 'run'.`);
        }
        return EXIT_OK;
      } catch (error) {
        if (error instanceof ConfigError) {
          printConfigError(error, io, file);
          return EXIT_USAGE;
        }
        throw error;
      }
    },
  },
};

function mainUsage(): string {
  const list = Object.entries(commands)
    .map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
    .join('\n');
  return `clarify-images ${VERSION}: explain what image models see (SageMaker Clarify compatible)

Usage: clarify-images <command> [options]

Commands:
${list}

Run 'clarify-images <command> --help' for a command's options.`;
}

export async function main(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? io.err : io.out)(mainUsage());
    return name === undefined ? EXIT_USAGE : EXIT_OK;
  }
  if (name === '--version' || name === '-v') {
    io.out(VERSION);
    return EXIT_OK;
  }
  const command = commands[name];
  if (!command) {
    io.err(`clarify-images: unknown command "${name}"\n\n${mainUsage()}`);
    return EXIT_USAGE;
  }
  try {
    const { values, positionals } = parseArgs({
      args: [...rest],
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: true,
    });
    if (values['help']) {
      io.out(command.usage);
      return EXIT_OK;
    }
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    return await command.run(values as Record<string, string | boolean | undefined>, io);
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`clarify-images ${name}: ${errorMessage(error)}\n\n${command.usage}`);
      return EXIT_USAGE;
    }
    io.err(`clarify-images ${name}: ${errorMessage(error)}`);
    return EXIT_FAILURES;
  }
}
