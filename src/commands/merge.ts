import { MergeStoppedError, mergeParts } from '../output/merge.js';
import { openStorage } from '../storage/storage.js';
import { type Command, EXIT_FAILURES, EXIT_OK, optionalString, requireString, UsageError } from './command.js';
import { formatCount } from '../output/format.js';
import { paceLines, signalExitCode, withStopSignals } from './run.js';

export const mergeCommand: Command = {
  summary: 'join the parts of a sharded run into one analysis',
  usage: `clarify-images merge --output URI --parts N [--timeout SECONDS]

  --output URI       the output every shard wrote to (s3:// prefix or local folder)
  --parts N          how many shards (the N of --shard I/N)
  --timeout SECONDS  how long to wait for every part to be complete (default 3600)
  -h, --help         show this help

Writes predictions.jsonl, explanations_shap/out.jsonl, analysis.json and the report at the output
root, in dataset order: the same files one process would have written. Exit 0 when every image
succeeded, 1 when some failed or a part did not complete in time.
SIGTERM / SIGINT: stops waiting, or stops writing and discards the merged files it had begun
(analysis.json then says "running"); exit 143 / 130. Run the merge again to finish.`,
  options: { output: { type: 'string' }, parts: { type: 'string' }, timeout: { type: 'string' } },
  async run(values, io) {
    const output = requireString(values, 'output');
    const parts = Number(requireString(values, 'parts'));
    if (!Number.isInteger(parts) || parts < 1) throw new UsageError('--parts must be a positive integer');
    const timeout = Number(optionalString(values, 'timeout') ?? '3600');
    if (!(timeout >= 0)) throw new UsageError('--timeout must be a number of seconds');
    try {
      const summary = await withStopSignals((stop) => mergeParts(openStorage(output), { parts, timeoutMs: timeout * 1000, log: (l) => io.err(l), stop }));
      io.out(`merged ${parts} parts: ${formatCount(summary.images.succeeded)} of ${formatCount(summary.dataset.images_found)} images succeeded, ${formatCount(summary.images.failed)} failed; results in ${output}`);
      for (const line of paceLines(summary)) io.out(line);
      return summary.images.failed > 0 ? EXIT_FAILURES : EXIT_OK;
    } catch (error) {
      io.err(`clarify-images merge: ${error instanceof Error ? error.message : String(error)}`);
      return error instanceof MergeStoppedError && error.signal ? signalExitCode(error.signal) : EXIT_FAILURES;
    }
  },
};
