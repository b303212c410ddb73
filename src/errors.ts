/** Errors that carry what the user needs to act on them. */

/** One problem in the analysis config, located by its JSON path (e.g. `methods.shap.num_samples`). */
export interface ConfigProblem {
  readonly path: string;
  readonly message: string;
}

/** The config (or a command-line option standing in for it) is not usable. Exit code 2. */
export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];
  constructor(problems: readonly ConfigProblem[]) {
    super(problems.map((p) => `${p.path || '(root)'}: ${p.message}`).join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Where in the per-image pipeline something went wrong. */
export type Stage = 'read' | 'decode' | 'encode' | 'invoke' | 'parse' | 'segment' | 'explain' | 'write';

/** A failure of one image at one stage; the job records it and goes on with the rest. */
export class StageError extends Error {
  readonly stage: Stage;
  constructor(stage: Stage, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StageError';
    this.stage = stage;
  }
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * The run was stopped by a signal before its first image: while a shadow endpoint was created, or
 * while the dataset was listed (a listing of millions of keys takes minutes, longer than a stop may wait).
 */
export class StoppedBeforeStartError extends Error {
  constructor(
    readonly signal: NodeJS.Signals,
    detail = '',
  ) {
    super(`stopped by ${signal} before the first image${detail ? `, ${detail}` : ''}`);
    this.name = 'StoppedBeforeStartError';
  }
}

/** The signal that stopped some work, when its stop was aborted with the signal's name as reason (withStopSignals). */
export function stopSignalOf(stop: AbortSignal): NodeJS.Signals | undefined {
  return stop.aborted && (stop.reason === 'SIGINT' || stop.reason === 'SIGTERM') ? stop.reason : undefined;
}
