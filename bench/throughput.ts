/**
 * Throughput benchmarks: endpoint saturation, client cost per perturbed sample, and NPY batching.
 * The job runs in this process; the endpoint is bench/latency-server.ts in a child process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { type ContentType, validateConfig } from '../src/config/config.js';
import { runJob } from '../src/job.js';

export interface Endpoint {
  readonly url: string;
  stop(): Promise<void>;
}

export async function startLatencyServer(latencyMs: number, cap: number, perRequestMs = 0, perImageMs = 0, labels = 3, mode: 'queue' | 'throttle' = 'queue', sigma = 0): Promise<Endpoint> {
  const script = fileURLToPath(new URL('./latency-server.js', import.meta.url));
  const child: ChildProcess = spawn(process.execPath, [script, String(latencyMs), String(cap), String(perRequestMs), String(perImageMs), String(labels), mode, String(sigma)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve((JSON.parse(line) as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`latency server exited ${code}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      child.kill();
      await new Promise((r) => child.once('exit', r));
    },
  };
}

const PHOTO = fileURLToPath(new URL('../../examples/images/detection/astronaut.jpg', import.meta.url));

/** A real photo at the given size (each copy shifted a little), so SLIC and the encoders do real work. */
async function writeImages(dir: string, count: number, width: number, height: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < count; i++) {
    const side = 512 - (i % 8) * 8;
    await sharp(PHOTO)
      .extract({ left: (i % 8) * 4, top: (i % 8) * 4, width: side, height: side })
      .resize(width, height, { fit: 'fill' })
      .png()
      .toFile(path.join(dir, `img-${String(i).padStart(3, '0')}.png`));
  }
}

/**
 * Which estimator a measured job runs: the default (tree-adjusted), whose forests and regressions
 * cost CPU per image wherever the answers vary, or Kernel SHAP alone, whose solve is a small
 * share of the client's work, for the tables that measure the pipeline or the transport.
 */
export type Estimator = 'default' | 'kernel';

interface JobMeasure {
  readonly calls: number;
  readonly requests: number;
  readonly seconds: number;
  readonly cpuSeconds: number;
  /** HTTP attempts, retries included. */
  readonly attempts: number;
}

async function measureJob(
  endpoint: Endpoint,
  dataset: string,
  options: { contentType: ContentType; concurrency: number; samples: number; segments: number; batch?: number; mode?: 'adaptive' | 'fixed'; cpuWorkers?: number; estimator: Estimator },
): Promise<JobMeasure> {
  const config = validateConfig({
    dataset_type: 'application/x-image',
    methods: { shap: { num_samples: options.samples, seed: 1, save_local_shap_values: false, image_config: { model_type: 'IMAGE_CLASSIFICATION', num_segments: options.segments, segment_compactness: 10 } } },
    predictor: { content_type: options.contentType, probability: 'prediction', label_headers: ['a', 'b', 'c'] },
    clarify_images: {
      endpoint_url: endpoint.url,
      max_concurrency: options.concurrency,
      concurrency: options.mode ?? 'fixed',
      report_max_images: 0,
      batch_size: options.batch ?? 1,
      ...(options.cpuWorkers ? { cpu_workers: options.cpuWorkers } : {}),
      ...(options.estimator === 'kernel' ? { estimator: 'kernel' as const } : {}),
    },
  });
  // A subfolder, so that the staging folder the job makes beside it goes with it.
  const work = await mkdtemp(path.join(os.tmpdir(), 'clarify-bench-out-'));
  const out = path.join(work, 'out');
  const cpu = process.cpuUsage();
  const started = performance.now();
  const { summary } = await runJob(config, { datasetUri: dataset, outputUri: out, force: true });
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  await rm(work, { recursive: true, force: true });
  const calls = summary.explanations?.calls ?? 0;
  return { calls, requests: summary.endpoint_calls.calls, seconds, cpuSeconds: (used.user + used.system) / 1e6, attempts: summary.endpoint_calls.attempts };
}

export interface SaturationRow {
  readonly latencyMs: number;
  readonly cap: number;
  /** The job's default estimator, or Kernel SHAP alone (the same calls, less CPU per image). */
  readonly estimator: Estimator;
  readonly capacity: number;
  readonly achieved: number;
  readonly ratio: number;
  /** CPU of this process (the job: all its threads) per endpoint call. */
  readonly cpuSecondsPerCall: number;
}

/**
 * Achieved calls/s ÷ capacity (cap / latency), the job's client concurrency set to the cap; with
 * the default estimator and with Kernel SHAP alone, whose difference is the solve's share.
 */
export async function runSaturation(work: string): Promise<SaturationRow[]> {
  const dataset = path.join(work, 'saturation');
  await writeImages(dataset, 12, 64, 64);
  const rows: SaturationRow[] = [];
  for (const latencyMs of [5, 50]) {
    for (const cap of [4, 32]) {
      const endpoint = await startLatencyServer(latencyMs, cap);
      const capacity = (cap * 1000) / latencyMs;
      // About 4 s of calls at capacity, spread over the 12 images.
      const samples = Math.max(50, Math.round((capacity * 4) / 12));
      for (const estimator of ['default', 'kernel'] as const) {
        const m = await measureJob(endpoint, dataset, { contentType: 'application/x-npy', concurrency: cap, samples, segments: 30, estimator });
        const achieved = m.requests / m.seconds;
        rows.push({ latencyMs, cap, estimator, capacity, achieved, ratio: achieved / capacity, cpuSecondsPerCall: m.cpuSeconds / m.calls });
      }
      await endpoint.stop();
    }
  }
  return rows;
}

export interface ClientCostRow {
  readonly size: string;
  readonly contentType: ContentType;
  readonly samplesPerCpuSecond: number;
  readonly samplesPerSecond: number;
}

/** Perturbed samples per CPU-second of this process (the client), against an instant endpoint. */
export async function runClientCost(work: string): Promise<ClientCostRow[]> {
  const endpoint = await startLatencyServer(0, 1024);
  const rows: ClientCostRow[] = [];
  for (const [width, height] of [[224, 224], [640, 480]] as const) {
    const dataset = path.join(work, `cost-${width}x${height}`);
    await writeImages(dataset, 2, width, height);
    for (const contentType of ['image/jpeg', 'image/png', 'application/x-npy'] as const) {
      const m = await measureJob(endpoint, dataset, { contentType, concurrency: 16, samples: width === 224 ? 1500 : 400, segments: 50, estimator: 'kernel' });
      rows.push({ size: `${width}×${height}`, contentType, samplesPerCpuSecond: m.calls / m.cpuSeconds, samplesPerSecond: m.calls / m.seconds });
    }
  }
  await endpoint.stop();
  return rows;
}

export interface CoresRow {
  readonly workers: number;
  readonly samplesPerSecond: number;
}

/**
 * Client throughput with 1, 2 and all cores for the CPU-heavy stages (cpu_workers), against an
 * instant endpoint: 6 photos of 1024×768 with 100 segments, so segmentation, masking and the
 * solve are most of the work.
 */
export async function runCores(work: string): Promise<CoresRow[]> {
  const endpoint = await startLatencyServer(0, 1024);
  const dataset = path.join(work, 'cores');
  await writeImages(dataset, 6, 1024, 768);
  const all = os.availableParallelism();
  const rows: CoresRow[] = [];
  for (const workers of [...new Set([1, 2, all])]) {
    const m = await measureJob(endpoint, dataset, { contentType: 'application/x-npy', concurrency: 16, samples: 400, segments: 100, cpuWorkers: workers, estimator: 'default' });
    rows.push({ workers, samplesPerSecond: m.calls / m.seconds });
  }
  await endpoint.stop();
  return rows;
}

export interface BatchRow {
  readonly batch: number;
  readonly callsPerSecond: number;
  readonly requestsPerSecond: number;
}

/** NPY batches of 1, 8, 32 against an endpoint costing 20 ms per request + 0.5 ms per image, 4 at a time. */
export async function runBatching(work: string): Promise<BatchRow[]> {
  const dataset = path.join(work, 'batching');
  await writeImages(dataset, 4, 96, 96);
  const rows: BatchRow[] = [];
  for (const batch of [1, 8, 32]) {
    const endpoint = await startLatencyServer(0, 4, 20, 0.5);
    const m = await measureJob(endpoint, dataset, { contentType: 'application/x-npy', concurrency: 4, samples: batch === 1 ? 150 : 600, segments: 30, batch, estimator: 'kernel' });
    await endpoint.stop();
    rows.push({ batch, callsPerSecond: m.calls / m.seconds, requestsPerSecond: m.requests / m.seconds });
  }
  return rows;
}

export interface AdaptiveRow {
  readonly endpoint: 'throttle' | 'queue';
  readonly cap: number;
  /** The spread of the endpoint's log-normal latency noise (0: every call takes 50 ms). */
  readonly sigma: number;
  readonly mode: 'adaptive' | 'fixed';
  readonly maxConcurrency: number;
  readonly capacity: number;
  readonly achieved: number;
  readonly ratio: number;
  readonly throttlesPer1000: number;
}

/**
 * Endpoints of C = 2, 8, 32 slots of 50 ms, which the job is not told: adaptive concurrency
 * (max 64) against a fixed 16 (the old default). "throttle" endpoints refuse calls over capacity
 * with 429 (serverless); "queue" endpoints make them wait (real-time instances).
 * Achieved = successful calls per second; throttles per 1,000 successful calls.
 */
export interface AdaptiveCase {
  readonly endpointMode: 'throttle' | 'queue';
  readonly cap: number;
  readonly sigma: number;
}

export const ADAPTIVE_CASES: readonly AdaptiveCase[] = [
  ...[2, 8, 32].map((cap) => ({ endpointMode: 'throttle' as const, cap, sigma: 0 })),
  ...[8, 32].map((cap) => ({ endpointMode: 'queue' as const, cap, sigma: 0 })),
  // Answers that vary in time (log-normal, σ = 1: a tenth of calls take over 3.6× the median).
  ...[8, 32].map((cap) => ({ endpointMode: 'queue' as const, cap, sigma: 1 })),
];

export async function runAdaptive(work: string, cases: readonly AdaptiveCase[] = ADAPTIVE_CASES, modes: readonly (readonly ['adaptive' | 'fixed', number])[] = [['adaptive', 64], ['fixed', 16]], secondsOfCalls = 8): Promise<AdaptiveRow[]> {
  const dataset = path.join(work, 'adaptive');
  await writeImages(dataset, 12, 64, 64);
  const latencyMs = 50;
  const rows: AdaptiveRow[] = [];
  for (const { endpointMode, cap, sigma } of cases) {
    for (const [mode, maxConcurrency] of modes) {
      const endpoint = await startLatencyServer(latencyMs, cap, 0, 0, 3, endpointMode, sigma);
      const capacity = (cap * 1000) / latencyMs;
      // About 8 s of calls at capacity, spread over the 12 images.
      const samples = Math.max(30, Math.round((capacity * secondsOfCalls) / 12));
      const m = await measureJob(endpoint, dataset, { contentType: 'application/x-npy', concurrency: maxConcurrency, samples, segments: 30, mode, estimator: 'kernel' });
      const counts = (await (await fetch(endpoint.url)).json()) as { served: number; throttled: number };
      await endpoint.stop();
      const achieved = m.requests / m.seconds;
      rows.push({ endpoint: endpointMode, cap, sigma, mode, maxConcurrency, capacity, achieved, ratio: achieved / capacity, throttlesPer1000: (counts.throttled * 1000) / Math.max(1, counts.served) });
    }
  }
  return rows;
}
