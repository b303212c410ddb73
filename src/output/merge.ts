/**
 * Merging a scaled-out run: wait until every part `parts/<i>-of-<n>/` has its `_SUCCESS`, then feed
 * all part results, merged by dataset index, through one final writer. The merged files are the
 * bytes one process would have written (timings aside).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { AnalysisConfig } from '../config/config.js';
import { stopSignalOf } from '../errors.js';
import type { CallStats } from '../predictor/invoker.js';
import { LINE_READ_CHUNK_BYTES, type Storage } from '../storage/storage.js';
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

const MIB = 1024 * 1024;

export class MergeTimeoutError extends Error {}

/** The merge was stopped (by `signal`, when the stop's reason names one); the message says where, and what the output holds. */
export class MergeStoppedError extends Error {
  readonly signal: NodeJS.Signals | undefined;
  constructor(stop: AbortSignal, where: string) {
    const signal = stopSignalOf(stop);
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

async function nextResult(part: AsyncIterator<string>): Promise<ImageResult | undefined> {
  for (;;) {
    const line = await part.next();
    if (line.done) return undefined;
    if (line.value !== '') return deserializeResult(line.value);
  }
}

/** Every part's results through one final writer, lowest dataset index first. */
async function mergeInto(output: Storage, config: AnalysisConfig, parts: AsyncIterator<string>[], options: MergeOptions): Promise<FinalWriter> {
  const heads = await Promise.all(parts.map(nextResult));
  if (options.stop?.aborted) throw new MergeStoppedError(options.stop, 'before writing; nothing was written');
  const writer = await FinalWriter.open(output, config, options.log ?? (() => undefined));
  for (;;) {
    let best = -1;
    heads.forEach((r, p) => {
      if (r && (best < 0 || r.index < heads[best]!.index)) best = p;
    });
    if (best < 0) return writer;
    if (options.stop?.aborted) {
      await writer.abort();
      throw new MergeStoppedError(options.stop, 'while writing: the merged predictions and explanations were discarded, analysis.json says "running"; run the merge again');
    }
    await writer.add(heads[best]!);
    heads[best] = await nextResult(parts[best]!);
  }
}

export async function mergeParts(output: Storage, options: MergeOptions): Promise<AnalysisSummary> {
  await waitForParts(output, options);
  const shards = Array.from({ length: options.parts }, (_, index) => ({ index, count: options.parts }));
  const summaries = await Promise.all(shards.map(async (s) => JSON.parse((await output.read(`${partPrefix(s)}/part.json`)).toString('utf8')) as PartSummary));
  const config = JSON.parse((await output.read(`${partPrefix(shards[0]!)}/analysis_config.json`)).toString('utf8')) as AnalysisConfig;
  // Each part is in dataset order already: a k-way merge that holds one result per part, and one
  // read chunk per part (together at most 256 MiB up to 256 parts, 1 MiB each beyond).
  const chunkBytes = Math.max(MIB, Math.min(LINE_READ_CHUNK_BYTES, Math.floor((256 * MIB) / options.parts)));
  const parts = shards.map((s) => output.readLines(`${partPrefix(s)}/results.jsonl`, chunkBytes)[Symbol.asyncIterator]());
  const writer = await mergeInto(output, config, parts, options).finally(() => Promise.all(parts.map((part) => part.return?.())));
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
    reused: summaries.reduce((a, s) => a + (s.reused ?? 0), 0),
    // Each host's, in shard order, when any host judged one (a host's images under 10 s say none).
    ...(summaries.some((s) => s.pace) ? { paceByHost: summaries.map((s) => s.pace ?? null) } : {}),
  });
}
