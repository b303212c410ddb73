/**
 * The offline demo: starts the two bundled models, runs the job on examples/ for each, and says
 * where the reports are. No AWS account and no network are needed.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultWorkerCount } from '../compute/stages.js';
import { validateConfig } from '../config/config.js';
import { loadModelThreads } from '../serve/model-threads.js';
import { startModelServer } from '../serve/server.js';
import { type Command, EXIT_FAILURES, EXIT_OK, optionalString } from './command.js';
import { StoppedBeforeStartError } from '../errors.js';
import { printSummary, runWithSignals, signalExitCode } from './run.js';

const examplesDir = fileURLToPath(new URL('../../../examples/', import.meta.url));

const RUNS = [
  { kind: 'classification', model: 'face-expression', config: 'demo/classification.analysis_config.json', images: 'images/classification' },
  { kind: 'detection', model: 'face-detector', config: 'demo/detection.analysis_config.json', images: 'images/detection' },
] as const;

export const demoCommand: Command = {
  summary: 'explain a real classifier and a real detector on the bundled examples, offline',
  usage: `clarify-images demo [--output DIR]

  --output DIR   where to write the results (default ./demo-output)
  -h, --help     show this help

Starts the bundled face-expression classifier and face detector (weights from the
@vladmandic/face-api npm package) as local SageMaker-contract servers, runs the job on
examples/images/classification and examples/images/detection with the configs in
examples/demo/, and prints where report.html and report.pdf are. SIGINT / SIGTERM stop it as
they stop a run: images in flight finish, what is complete is written; exit 130 / 143.`,
  options: { output: { type: 'string' } },
  async run(values, io) {
    const output = path.resolve(optionalString(values, 'output') ?? 'demo-output');
    const started = Date.now();
    let exit = EXIT_OK;
    let stoppedBy: NodeJS.Signals | undefined;
    /** Whether any run got as far as writing its output (a stop while the first lists its images writes none). */
    let wroteOutput = false;
    for (const run of RUNS) {
      // The model on its own threads, one per core: it runs beside the job rather than stopping its event loop.
      const model = await loadModelThreads(run.model, defaultWorkerCount());
      const server = await startModelServer({ model, port: 0 });
      try {
        const raw = JSON.parse(await readFile(path.join(examplesDir, run.config), 'utf8')) as { clarify_images?: Record<string, unknown> };
        raw.clarify_images = { ...raw.clarify_images, endpoint_url: server.url };
        const config = validateConfig(raw);
        const outputUri = path.join(output, run.kind);
        io.out(`\n${run.kind}: ${model.name} at ${server.url}, images in ${path.join(examplesDir, run.images)}`);
        const runStarted = Date.now();
        // SIGINT / SIGTERM stop the demo as they stop a run: what is complete is written, nothing is left staged.
        let ran: Awaited<ReturnType<typeof runWithSignals>>;
        try {
          ran = await runWithSignals(config, { datasetUri: path.join(examplesDir, run.images), outputUri, log: (line) => io.err(`  ${line}`) });
        } catch (error) {
          // Stopped before its first image (while the images were listed): nothing of this run to write.
          if (!(error instanceof StoppedBeforeStartError)) throw error;
          io.out(`  ${error.message}`);
          stoppedBy = error.signal;
          break;
        }
        const { result, signal } = ran;
        wroteOutput = true;
        printSummary(result, outputUri, io);
        if (signal) {
          stoppedBy = signal;
          break;
        }
        io.out(`  ${((Date.now() - runStarted) / 1000).toFixed(1)} s; report: ${path.join(outputUri, result.summary.report?.html ?? 'report.html')}${result.summary.report?.pdf ? ` and ${path.join(outputUri, result.summary.report.pdf)}` : ''}`);
        if (result.exitCode !== 0) exit = EXIT_FAILURES;
      } finally {
        await server.close();
        await model.close();
      }
    }
    if (stoppedBy) {
      io.out(`\ndemo stopped by ${stoppedBy} after ${((Date.now() - started) / 1000).toFixed(1)} s; ${wroteOutput ? `what was complete is in ${output}` : 'nothing was written'}`);
      return signalExitCode(stoppedBy);
    }
    io.out(`\ndemo finished in ${((Date.now() - started) / 1000).toFixed(1)} s; open ${path.join(output, 'classification', 'report.html')} and ${path.join(output, 'detection', 'report.html')}`);
    return exit;
  },
};
