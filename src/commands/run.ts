import { type AnalysisConfig, DEFAULT_DATASET_URI, DEFAULT_OUTPUT_URI, endpointTarget, loadConfig } from '../config/config.js';
import { ConfigError, errorMessage } from '../errors.js';
import { type JobResult, runJob } from '../job.js';
import { type CliIo, type Command, EXIT_FAILURES, EXIT_USAGE, optionalString, printConfigError, requireString } from './command.js';

/** One line and the failures, as the CLI and the demo print them. */
export function printSummary({ summary }: JobResult, outputUri: string, io: CliIo): void {
  const { images, dataset, endpoint_calls: calls } = summary;
  io.out(
    `${images.succeeded} of ${dataset.images_found} images succeeded, ${images.failed} failed, ` +
      `${dataset.files_skipped} non-image files skipped; ${calls.calls} endpoint calls (${calls.retries} retries); ` +
      `results in ${outputUri}`,
  );
  for (const failure of summary.failures.slice(0, 20)) io.out(`  FAILED ${failure.image} [${failure.stage}]: ${failure.message}`);
  if (summary.failures.length > 20) io.out(`  … and ${summary.failures.length - 20} more, listed in analysis.json`);
  if (summary.report?.pdf_error) io.out(`  note: ${summary.report.pdf_error}`);
}

export const runCommand: Command = {
  summary: 'explain every image of a dataset with the model behind an endpoint',
  usage: `clarify-images run --config FILE [--dataset-uri URI] [--output URI]

  --config FILE       analysis_config.json (SageMaker Clarify format; see config-schemas/)
  --dataset-uri URI   s3://bucket/prefix or a local folder; overrides dataset_uri in the config
                      (default when neither: ${DEFAULT_DATASET_URI})
  --output URI        s3://bucket/prefix or a local folder for the results (default: ${DEFAULT_OUTPUT_URI})
  --quiet             print only the final summary
  -h, --help          show this help

Writes analysis_config.json (the effective config), predictions.jsonl (one line per image),
explanations_shap/out.jsonl, heatmaps, report.html / report.pdf and analysis.json (counts,
failures, endpoint calls, durations). Exit 0 when every image succeeded, 1 when some failed
(listed in analysis.json), 2 on a config or usage error.`,
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
    const outputUri = optionalString(values, 'output') ?? DEFAULT_OUTPUT_URI;
    try {
      const result = await runJob(config, {
        datasetUri: optionalString(values, 'dataset-uri'),
        outputUri,
        log: values['quiet'] === true ? undefined : (line) => io.err(line),
      });
      printSummary(result, outputUri, io);
      return result.exitCode;
    } catch (error) {
      if (error instanceof ConfigError) {
        printConfigError(error, io, file);
        return EXIT_USAGE;
      }
      io.err(`clarify-images: the job stopped: ${errorMessage(error)}`);
      return EXIT_FAILURES;
    }
  },
};
