/**
 * What set a run's pace: the endpoint (every call slot taken), this machine's CPU (the stages'
 * threads busy), max_memory_mb (images waiting for room), or none of them. Measured over the
 * images' part of the run (after the listing, before the report) from the call limiter's
 * occupancy, the process's CPU time, the CPU stages' busy clock and the memory budget's waits;
 * said in analysis.json (`pace`), on the console and in the report, so a slow run says whether a
 * bigger endpoint, more cores, more memory or another estimator would speed it up.
 */
import type { CpuStageKind } from '../compute/stage-clock.js';
import type { LimiterOccupancy } from '../predictor/concurrency.js';
import { formatCount, formatCountOf } from './format.js';

/** The readings a pace is judged from, taken at the start and at the end of the images. */
export interface PaceReading {
  /** performance.now(), ms. */
  readonly at: number;
  /** process.cpuUsage(): every thread of the process (workers and libvips' too). */
  readonly cpu: NodeJS.CpuUsage;
  readonly occupancy: LimiterOccupancy;
  readonly busy: Record<CpuStageKind, number>;
  /** Seconds during which some image waited for room in max_memory_mb. */
  readonly memoryWaited: number;
}

export interface PaceSources {
  occupancy(): LimiterOccupancy;
  busySeconds(): Record<CpuStageKind, number>;
  memoryWaitedSeconds(): number;
}

export function readPace(sources: PaceSources): PaceReading {
  return { at: performance.now(), cpu: process.cpuUsage(), occupancy: sources.occupancy(), busy: sources.busySeconds(), memoryWaited: sources.memoryWaitedSeconds() };
}

/** What the run could use, for the shares. */
export interface PaceCapacity {
  /** Cores the process may use. */
  readonly cores: number;
  /** Threads the CPU stages run on (clarify_images.cpu_workers). */
  readonly workers: number;
  /** The call limit at the end (fixed: max_concurrency; adaptive: where it settled). */
  readonly limit: number;
  readonly concurrency: 'fixed' | 'adaptive';
  /** clarify_images.max_concurrency: the fixed limit, or the adaptive one's ceiling. */
  readonly maxConcurrency: number;
  /** What max_memory_mb leaves the images, in bytes. */
  readonly memoryBytes: number;
}

export type PaceBound = 'endpoint' | 'cpu' | 'memory' | 'neither';

/** analysis.json's `pace`. */
export interface PaceSummary {
  /** Seconds from the first image to the last (the listing before and the report after excluded). */
  readonly seconds: number;
  readonly endpoint: {
    readonly mean_calls_in_flight: number;
    /** Share of the time every call slot was taken (or calls waited for one). */
    readonly slots_full_share: number;
    readonly limit: number;
    readonly concurrency: 'fixed' | 'adaptive';
  };
  readonly cpu: {
    /** CPU seconds of the whole process (all its threads) over those seconds. */
    readonly seconds: number;
    readonly cores: number;
    /** seconds ÷ (cores × wall seconds). */
    readonly share_of_cores: number;
    readonly workers: number;
    /** The CPU stages' busy time ÷ (workers × wall seconds). */
    readonly workers_busy_share: number;
    /** Busy seconds per stage, summed over the workers. */
    readonly stage_seconds: { readonly segmentation: number; readonly masking: number; readonly solve: number; readonly guided_sampling: number };
  };
  readonly memory: {
    /** Share of the time some image waited for room in max_memory_mb before it was decoded. */
    readonly waiting_share: number;
    /** What max_memory_mb leaves the images, MiB. */
    readonly for_images_mb: number;
  };
  readonly bound_by: PaceBound;
  /** The same in a sentence, with what would speed such a run up. */
  readonly said: string;
}

/**
 * Images that took less than this say no pace: a worker thread's start and code still cold take a
 * second or so, and over a few seconds they, not the endpoint or the steady work, would be judged.
 */
export const MIN_PACE_SECONDS = 10;

/** Slots full this share of the time or more: the endpoint (or the limit) set the pace. */
export const ENDPOINT_BOUND_SHARE = 0.6;
/** Workers busy this share of the time (or the process's CPU this share of the cores): the CPU set it. */
export const CPU_BOUND_SHARE = 0.6;
/** Some image waited for memory this share of the time, the endpoint and the CPU not busy: max_memory_mb set it. */
export const MEMORY_BOUND_SHARE = 0.6;

const round = (value: number, digits: number): number => Math.round(value * 10 ** digits) / 10 ** digits;
const percent = (share: number): string => `${Math.round(share * 100)} %`;

/**
 * Judges the pace between two readings (undefined under MIN_PACE_SECONDS). Pure, so that each
 * verdict and its words can be tested.
 */
export function judgePace(start: PaceReading, end: PaceReading, capacity: PaceCapacity, estimator: 'tree-adjusted' | 'kernel'): PaceSummary | undefined {
  const seconds = (end.at - start.at) / 1000;
  if (!(seconds >= MIN_PACE_SECONDS)) return undefined;
  const cpuSeconds = (end.cpu.user - start.cpu.user + end.cpu.system - start.cpu.system) / 1e6;
  const stage = (kind: CpuStageKind): number => Math.max(0, end.busy[kind] - start.busy[kind]);
  const stageSeconds = { segmentation: stage('segment'), masking: stage('mask'), solve: stage('solve'), guided_sampling: stage('guide') };
  const busy = stageSeconds.segmentation + stageSeconds.masking + stageSeconds.solve + stageSeconds.guided_sampling;
  const fullShare = Math.min(1, (end.occupancy.fullSeconds - start.occupancy.fullSeconds) / seconds);
  const meanInFlight = (end.occupancy.callSeconds - start.occupancy.callSeconds) / seconds;
  const shareOfCores = cpuSeconds / (Math.max(1, capacity.cores) * seconds);
  const workersBusy = busy / (Math.max(1, capacity.workers) * seconds);
  const memoryWaiting = Math.min(1, Math.max(0, end.memoryWaited - start.memoryWaited) / seconds);
  const bound: PaceBound =
    fullShare >= ENDPOINT_BOUND_SHARE
      ? 'endpoint'
      : workersBusy >= CPU_BOUND_SHARE || shareOfCores >= CPU_BOUND_SHARE
        ? 'cpu'
        : memoryWaiting >= MEMORY_BOUND_SHARE
          ? 'memory'
          : 'neither';
  const facts = { fullShare, meanInFlight, shareOfCores, workersBusy, busy, stageSeconds, memoryWaiting };
  return {
    seconds: round(seconds, 3),
    endpoint: { mean_calls_in_flight: round(meanInFlight, 2), slots_full_share: round(fullShare, 3), limit: capacity.limit, concurrency: capacity.concurrency },
    cpu: {
      seconds: round(cpuSeconds, 3),
      cores: capacity.cores,
      share_of_cores: round(shareOfCores, 3),
      workers: capacity.workers,
      workers_busy_share: round(workersBusy, 3),
      stage_seconds: {
        segmentation: round(stageSeconds.segmentation, 3),
        masking: round(stageSeconds.masking, 3),
        solve: round(stageSeconds.solve, 3),
        guided_sampling: round(stageSeconds.guided_sampling, 3),
      },
    },
    memory: { waiting_share: round(memoryWaiting, 3), for_images_mb: Math.round(capacity.memoryBytes / 2 ** 20) },
    bound_by: bound,
    said: paceSentence(bound, facts, capacity, estimator),
  };
}

function paceSentence(
  bound: PaceBound,
  f: { fullShare: number; meanInFlight: number; shareOfCores: number; workersBusy: number; busy: number; stageSeconds: PaceSummary['cpu']['stage_seconds']; memoryWaiting: number },
  capacity: PaceCapacity,
  estimator: 'tree-adjusted' | 'kernel',
): string {
  const slots = `call slots all taken ${percent(f.fullShare)} of the time (${f.meanInFlight.toFixed(1)} calls in flight on average, limit ${formatCount(capacity.limit)})`;
  const cpu = `CPU stages ${percent(f.workersBusy)} busy on ${formatCountOf(capacity.workers, 'thread')}, the process at ${percent(f.shareOfCores)} of ${formatCountOf(capacity.cores, 'core')}`;
  if (bound === 'endpoint') {
    const atMax = capacity.concurrency === 'fixed' || capacity.limit >= capacity.maxConcurrency;
    const faster = atMax
      ? `raise clarify_images.max_concurrency (${formatCount(capacity.maxConcurrency)}) if the endpoint can take more calls at once, or give the endpoint more instances`
      : `more endpoint instances (adaptive concurrency settled at ${formatCount(capacity.limit)} calls at once, what the endpoint took without queueing or refusing)`;
    return `set by the endpoint: ${slots}; ${cpu}. Faster: ${faster}.`;
  }
  if (bound === 'cpu') {
    // The two largest stages, which is where the time went.
    const largest = (
      [
        ['the solve', f.stageSeconds.solve],
        ['guided sampling', f.stageSeconds.guided_sampling],
        ['segmentation', f.stageSeconds.segmentation],
        ['masking', f.stageSeconds.masking],
      ] as const
    )
      .filter(([, s]) => s > 0)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 2)
      .map(([name, s], k) => `${name} ${percent(s / f.busy)}${k === 0 ? ' of that' : ''}`);
    const solving = f.busy > 0 ? (f.stageSeconds.solve + f.stageSeconds.guided_sampling) / f.busy : 0;
    const kernel = estimator === 'tree-adjusted' && solving >= 0.5 ? ', or clarify_images.estimator "kernel" (about a tenth of the CPU per call, but more calls for the same accuracy)' : '';
    // Stages on fewer threads than cores: the threads first (cpu_workers set low), then the machine.
    const cores = capacity.workers < capacity.cores ? `raise clarify_images.cpu_workers (${capacity.workers} of ${capacity.cores} cores)` : 'more cores';
    return `set by this machine's CPU: ${cpu}${largest.length > 0 ? ` (${largest.join(', ')})` : ''}; ${slots}. Faster: ${cores}, more hosts (instance_count, or --shard and merge)${kernel}.`;
  }
  if (bound === 'memory') {
    return `set by max_memory_mb: images waited for room in its ${formatCount(Math.round(capacity.memoryBytes / 2 ** 20))} MiB for images ${percent(f.memoryWaiting)} of the time, so few were in flight; ${slots}; ${cpu}. Faster: raise clarify_images.max_memory_mb if the machine has the memory, or set clarify_images.max_image_side to explain large images shrunk.`;
  }
  return `set by neither the endpoint (${slots}) nor the CPU (${cpu}): the images in flight waited on something else. With few images, each image's calls come in waves that wait on its own segmentation and solve; otherwise look at reading and writing (S3) or retries.`;
}
