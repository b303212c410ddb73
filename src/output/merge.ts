/**
 * Merging a scaled-out run: wait until every part `parts/<i>-of-<n>/` has its `_SUCCESS`, then feed
 * all part results, merged by dataset index, through one final writer. The merged files are the
 * bytes one process would have written (timings aside).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { AnalysisConfig } from '../config/config.js';
import type { CallStats } from '../predictor/invoker.js';
import type { Storage } from '../storage/storage.js';
import type { AnalysisSummary } from './records.js';
import { deserializeResult, FinalWriter, type ImageResult, partPrefix, type PartSummary } from './run-writer.js';

export interface MergeOptions {
  /** How many parts to wait for. */
  readonly parts: number;
  readonly timeoutMs: number;
  readonly pollMs?: number;
  readonly log?: (line: string) => void;
  /** Aborted: stop waiting, or stop writing and discard what was staged. */
  readonly stop?: AbortSignal;
}

export class MergeTimeoutError extends Error {}

/** The merge was stopped (by `signal`, when the stop's reason names one); the message says where, and what the output holds. */
export class MergeStoppedError extends Error {
  readonly signal: NodeJS.Signals | undefined;
  constructor(stop: AbortSignal, where: string) {
    const signal = stop.reason === 'SIGINT' || stop.reason === 'SIGTERM' ? stop.reason : undefined;
    super(`merge stopped${signal ? ` by ${signal}` : ''} ${where}`);
    this.name = 'MergeStoppedError';
    this.signal = signal;
  }
}

async function waitForParts(output: Storage, options: MergeOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  const missing = new Set(Array.from({ length: options.parts }, (_, i) => i));
  const listed = (): string => `${[...missing].map((i) => `${i + 1}`).join(', ')} of ${options.parts}`;
  for (;;) {
    if (options.stop?.aborted) throw new MergeStoppedError(options.stop, `while waiting for parts ${listed()}; nothing was written`);
    for (const i of [...missing]) if (await output.exists(`${partPrefix({ index: i, count: options.parts })}/_SUCCESS`)) missing.delete(i);
    if (missing.size === 0) return;
    if (Date.now() > deadline) {
      throw new MergeTimeoutError(`parts ${listed()} not complete after ${Math.round(options.timeoutMs / 1000)} s`);
    }
    options.log?.(`waiting for ${missing.size} of ${options.parts} parts`);
    await sleep(options.pollMs ?? 2000, undefined, options.stop ? { signal: options.stop } : undefined).catch(() => undefined);
  }
}

export async function mergeParts(output: Storage, options: MergeOptions): Promise<AnalysisSummary> {
  await waitForParts(output, options);
  const shards = Array.from({ length: options.parts }, (_, index) => ({ index, count: options.parts }));
  const summaries = await Promise.all(shards.map(async (s) => JSON.parse((await output.read(`${partPrefix(s)}/part.json`)).toString('utf8')) as PartSummary));
  const config = JSON.parse((await output.read(`${partPrefix(shards[0]!)}/analysis_config.json`)).toString('utf8')) as AnalysisConfig;
  const results: ImageResult[][] = await Promise.all(
    shards.map(async (s) =>
      (await output.read(`${partPrefix(s)}/results.jsonl`))
        .toString('utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map(deserializeResult),
    ),
  );
  if (options.stop?.aborted) throw new MergeStoppedError(options.stop, 'before writing; nothing was written');
  const writer = await FinalWriter.open(output, config, options.log ?? (() => undefined));
  // k-way merge: each part is in dataset order already.
  const heads = results.map(() => 0);
  for (;;) {
    let best = -1;
    results.forEach((part, p) => {
      const r = part[heads[p]!];
      if (r && (best < 0 || r.index < results[best]![heads[best]!]!.index)) best = p;
    });
    if (best < 0) break;
    if (options.stop?.aborted) {
      await writer.abort();
      throw new MergeStoppedError(options.stop, 'while writing: the merged predictions and explanations were discarded, analysis.json says "running"; run the merge again');
    }
    const result = results[best]![heads[best]!]!;
    heads[best]! += 1;
    await writer.add(result);
  }
  const calls: CallStats = { calls: 0, attempts: 0, retries: 0, failedCalls: 0, latencyMsTotal: 0 };
  for (const s of summaries) {
    calls.calls += s.calls.calls;
    calls.attempts += s.calls.attempts;
    calls.retries += s.calls.retries;
    calls.failedCalls += s.calls.failedCalls;
    calls.latencyMsTotal += s.calls.latencyMsTotal;
  }
  const first = summaries[0]!;
  return writer.finish({
    datasetUri: first.dataset_uri,
    imagesFound: summaries.reduce((a, s) => a + s.images_found, 0),
    filesSkipped: summaries.reduce((a, s) => a + s.files_skipped, 0),
    endpoint: first.endpoint,
    calls,
    startedAt: new Date(Math.min(...summaries.map((s) => Date.parse(s.started_at)))),
    partial: false,
  });
}
