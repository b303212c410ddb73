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

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

/** The candidate closest to a mistyped word, when it is close enough to be what was meant. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = distance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** One line: what was wrong with the command line, with the closest option for an unknown one. */
function usageProblem(error: unknown, options: readonly string[]): string {
  const message = errorMessage(error).split('\n')[0]!.replace(/\. To specify a positional argument.*$/, '');
  const unknown = /Unknown option '(-{1,2})([^']+)'/.exec(message);
  if (unknown) {
    const near = closest(unknown[2]!, [...options, 'help']);
    return `unknown option ${unknown[1]}${unknown[2]}${near ? ` (did you mean --${near}?)` : ''}`;
  }
  return message;
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
    const near = closest(name, Object.keys(commands));
    io.err(`clarify-images: unknown command "${name}"${near ? ` (did you mean "${near}"?)` : ''}. Run 'clarify-images --help' for the commands.`);
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
      io.err(`clarify-images ${name}: ${usageProblem(error, Object.keys(command.options))}. Run 'clarify-images ${name} --help' for its options.`);
      return EXIT_USAGE;
    }
    io.err(`clarify-images ${name}: ${errorMessage(error)}`);
    return EXIT_FAILURES;
  }
}
