/**
 * clarify-images command line. Exit codes: 0 success, 1 some images failed (or the job broke),
 * 2 config or usage error.
 */
import { parseArgs } from 'node:util';
import { errorMessage } from './errors.js';
import { VERSION } from './version.js';
import { type CliIo, type Command, EXIT_FAILURES, EXIT_OK, EXIT_USAGE, type OptionValues, UsageError } from './commands/command.js';
import { compareCommand } from './commands/compare.js';
import { mergeCommand } from './commands/merge.js';
import { processingCommand } from './commands/processing.js';
import { demoCommand } from './commands/demo.js';
import { precheckCommand } from './commands/precheck.js';
import { runCommand } from './commands/run.js';
import { serveModelCommand } from './commands/serve-model.js';
import { validateCommand } from './commands/validate.js';

export { EXIT_FAILURES, EXIT_OK, EXIT_USAGE, type CliIo } from './commands/command.js';

const defaultIo: CliIo = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
};

const commands: Record<string, Command> = {
  run: runCommand,
  validate: validateCommand,
  precheck: precheckCommand,
  'serve-model': serveModelCommand,
  demo: demoCommand,
  compare: compareCommand,
  merge: mergeCommand,
  processing: processingCommand,
};

function mainUsage(): string {
  const list = Object.entries(commands)
    .map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`)
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
    return await command.run(values as OptionValues, io);
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`clarify-images ${name}: ${errorMessage(error)}\n\n${command.usage}`);
      return EXIT_USAGE;
    }
    io.err(`clarify-images ${name}: ${errorMessage(error)}`);
    return EXIT_FAILURES;
  }
}
