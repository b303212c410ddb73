import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { WorkerStages } from '../src/compute/stages.js';
import { MemoryBudget } from '../src/compute/memory.js';
import { ConcurrencyLimiter } from '../src/predictor/concurrency.js';
import { CPU_BOUND_SHARE, ENDPOINT_BOUND_SHARE, judgePace, MEMORY_BOUND_SHARE, MIN_PACE_SECONDS, type PaceCapacity, type PaceReading, type PaceSummary } from '../src/output/pace.js';
import type { AnalysisSummary } from '../src/output/records.js';
import { createRgbImage } from '../src/image/rgb.js';
import { colourShareModel, type DecodedRequest, startEndpointServer, type TestEndpointServer } from './support/endpoint-server.js';
import { runCli } from './support/cli.js';
import { writeColourShareConfig } from './support/configs.js';
import { scratchDir } from './support/scratch-dir.js';
import { KernelShapDesign } from '../src/explain/kernel-shap.js';
import { seededRandom } from '../src/explain/random.js';

const IDLE = { segment: 0, mask: 0, solve: 0, guide: 0 };

/** Two readings `seconds` apart, with what happened between them. */
function readings(seconds: number, between: { cpu?: number; callSeconds?: number; fullSeconds?: number; busy?: Partial<typeof IDLE>; memoryWaited?: number }): [PaceReading, PaceReading] {
  const start: PaceReading = { at: 1000, cpu: { user: 5e6, system: 1e6 }, occupancy: { callSeconds: 7, fullSeconds: 3 }, busy: { segment: 1, mask: 1, solve: 1, guide: 1 }, memoryWaited: 2 };
  const busy = { ...IDLE, ...between.busy };
  const end: PaceReading = {
    at: 1000 + seconds * 1000,
    cpu: { user: 5e6 + (between.cpu ?? 0) * 1e6, system: 1e6 },
    occupancy: { callSeconds: 7 + (between.callSeconds ?? 0), fullSeconds: 3 + (between.fullSeconds ?? 0) },
    busy: { segment: 1 + busy.segment, mask: 1 + busy.mask, solve: 1 + busy.solve, guide: 1 + busy.guide },
    memoryWaited: 2 + (between.memoryWaited ?? 0),
  };
  return [start, end];
}

/** judgePace over a window long enough to judge. */
function judged(...args: Parameters<typeof judgePace>): PaceSummary {
  const pace = judgePace(...args);
  assert.ok(pace, 'a window of MIN_PACE_SECONDS or more is judged');
  return pace;
}

const ADAPTIVE: PaceCapacity = { cores: 4, workers: 4, limit: 12, concurrency: 'adaptive', maxConcurrency: 64, memoryBytes: 1100 * 2 ** 20 };

describe('pace: what set a run’s pace', () => {
  it('says the endpoint set it when every call slot was taken most of the time, and what would help', () => {
    const [start, end] = readings(10, { fullSeconds: 9, callSeconds: 110, cpu: 4, busy: { solve: 2 } });
    const pace = judged(start, end, ADAPTIVE, 'tree-adjusted');
    assert.equal(pace.bound_by, 'endpoint');
    assert.equal(pace.seconds, 10);
    assert.equal(pace.endpoint.slots_full_share, 0.9);
    assert.equal(pace.endpoint.mean_calls_in_flight, 11);
    assert.equal(pace.cpu.seconds, 4);
    assert.equal(pace.cpu.share_of_cores, 0.1);
    assert.equal(pace.cpu.workers_busy_share, 0.05);
    // Adaptive below its ceiling: the endpoint's own capacity, so more instances.
    assert.match(pace.said, /^set by the endpoint: call slots all taken 90 % of the time \(11\.0 calls in flight on average, limit 12\)/);
    assert.match(pace.said, /more endpoint instances \(adaptive concurrency settled at 12 calls at once/);
    assert.doesNotMatch(pace.said, /max_concurrency/);
    // At the ceiling, or with a fixed limit, the limit may be what holds it back.
    for (const capacity of [{ ...ADAPTIVE, limit: 64 }, { ...ADAPTIVE, concurrency: 'fixed' as const, limit: 16, maxConcurrency: 16 }]) {
      const said = judged(start, end, capacity, 'tree-adjusted').said;
      assert.match(said, new RegExp(`raise clarify_images\\.max_concurrency \\(${capacity.maxConcurrency}\\) if the endpoint can take more calls at once`));
    }
  });

  it('says the CPU set it when the stages kept their threads busy, naming the largest stage and the cheaper estimator', () => {
    const [start, end] = readings(10, { fullSeconds: 1, callSeconds: 3, cpu: 30, busy: { solve: 24, guide: 4, segment: 2, mask: 2 } });
    const pace = judged(start, end, ADAPTIVE, 'tree-adjusted');
    assert.equal(pace.bound_by, 'cpu');
    assert.equal(pace.cpu.workers_busy_share, 0.8);
    assert.deepEqual(pace.cpu.stage_seconds, { segmentation: 2, masking: 2, solve: 24, guided_sampling: 4 });
    assert.match(pace.said, /^set by this machine's CPU: CPU stages 80 % busy on 4 threads, the process at 75 % of 4 cores \(the solve 75 % of that, guided sampling 13 %\); call slots all taken 10 % of the time/);
    assert.match(pace.said, /Faster: more cores, more hosts \(instance_count, or --shard and merge\), or clarify_images\.estimator "kernel"/);
    // With cpu_workers below the cores, the threads come first.
    assert.match(judged(start, end, { ...ADAPTIVE, workers: 1 }, 'tree-adjusted').said, /Faster: raise clarify_images\.cpu_workers \(1 of 4 cores\), more hosts/);
    // Kernel SHAP already, or a run whose CPU went to segmentation: no estimator to suggest.
    assert.doesNotMatch(judged(start, end, ADAPTIVE, 'kernel').said, /estimator/);
    const [s2, e2] = readings(10, { cpu: 30, busy: { segment: 30, solve: 2 } });
    const segmenting = judged(s2, e2, ADAPTIVE, 'tree-adjusted');
    assert.equal(segmenting.bound_by, 'cpu');
    assert.match(segmenting.said, /\(segmentation 94 % of that, the solve 6 %\)/);
    assert.doesNotMatch(segmenting.said, /estimator/);
  });

  it('counts the process’s CPU too: work outside the stages (encoding, HTTP) can set the pace', () => {
    const [start, end] = readings(10, { fullSeconds: 2, cpu: 0.7 * 40, busy: { mask: 4 } });
    const pace = judged(start, end, ADAPTIVE, 'kernel');
    assert.equal(pace.cpu.workers_busy_share, 0.1);
    assert.equal(pace.bound_by, 'cpu');
  });

  it('says max_memory_mb set it when images waited for room most of the time, the endpoint and the CPU not busy', () => {
    const [start, end] = readings(10, { fullSeconds: 2, callSeconds: 8, cpu: 8, busy: { solve: 4 }, memoryWaited: 7 });
    const pace = judged(start, end, ADAPTIVE, 'tree-adjusted');
    assert.equal(pace.bound_by, 'memory');
    assert.deepEqual(pace.memory, { waiting_share: 0.7, for_images_mb: 1100 });
    assert.match(pace.said, /^set by max_memory_mb: images waited for room in its 1,100 MiB for images 70 % of the time, so few were in flight; call slots all taken 20 % .*Faster: raise clarify_images\.max_memory_mb .*or set clarify_images\.max_image_side/);
    // A busy CPU still sets the pace when images also wait for memory.
    const [s2, e2] = readings(10, { cpu: 30, busy: { solve: 30 }, memoryWaited: 9 });
    assert.equal(judged(s2, e2, ADAPTIVE, 'kernel').bound_by, 'cpu');
  });

  it('says neither when both were mostly idle, and where the time may have gone', () => {
    const [start, end] = readings(10, { fullSeconds: 2, callSeconds: 8, cpu: 8, busy: { solve: 4 } });
    const pace = judged(start, end, ADAPTIVE, 'tree-adjusted');
    assert.equal(pace.bound_by, 'neither');
    assert.match(pace.said, /^set by neither the endpoint \(call slots all taken 20 % of the time .*\) nor the CPU \(CPU stages 10 % busy on 4 threads, the process at 20 % of 4 cores\)/);
    assert.match(pace.said, /with few images|With few images/);
  });

  it('judges nothing over a window too short to tell start-up from the steady work', () => {
    const [start, end] = readings(MIN_PACE_SECONDS - 0.5, { fullSeconds: MIN_PACE_SECONDS - 0.5 });
    assert.equal(judgePace(start, end, ADAPTIVE, 'kernel'), undefined);
    const [start2, end2] = readings(MIN_PACE_SECONDS, { fullSeconds: MIN_PACE_SECONDS });
    assert.equal(judgePace(start2, end2, ADAPTIVE, 'kernel')?.bound_by, 'endpoint');
  });

  it('draws the lines where it says (thresholds are shares of the judged time)', () => {
    const at = (full: number, busy: number, waiting = 0): string => {
      const [start, end] = readings(100, { fullSeconds: full * 100, busy: { solve: busy * 400 }, memoryWaited: waiting * 100 });
      return judged(start, end, ADAPTIVE, 'kernel').bound_by;
    };
    assert.equal(at(ENDPOINT_BOUND_SHARE, 0.99, 0.99), 'endpoint');
    assert.equal(at(ENDPOINT_BOUND_SHARE - 0.01, CPU_BOUND_SHARE, 0.99), 'cpu');
    assert.equal(at(ENDPOINT_BOUND_SHARE - 0.01, CPU_BOUND_SHARE - 0.01, MEMORY_BOUND_SHARE), 'memory');
    assert.equal(at(ENDPOINT_BOUND_SHARE - 0.01, CPU_BOUND_SHARE - 0.01, MEMORY_BOUND_SHARE - 0.01), 'neither');
  });
});

describe('pace: the measurements behind it', () => {
  it('the limiter integrates calls in flight, and the time every slot was taken', async () => {
    let now = 1000; // ms, moved by hand: the integrals are exact
    const limiter = new ConcurrencyLimiter({ mode: 'fixed', max: 2, clock: () => now });
    assert.deepEqual(limiter.occupancy(), { callSeconds: 0, fullSeconds: 0 });
    const first = await limiter.acquire();
    now += 40;
    // One of two slots: calls accrue, the limiter is not full.
    assert.deepEqual(limiter.occupancy(), { callSeconds: 0.04, fullSeconds: 0 });
    const second = await limiter.acquire();
    now += 30;
    // The release ends the full time: the 30 ms before it count as they stood (full, two calls).
    first({ kind: 'ok', latencyMs: 70 });
    now += 10;
    assert.deepEqual(limiter.occupancy(), { callSeconds: 0.04 + 0.06 + 0.01, fullSeconds: 0.03 });
    // Both taken again, and a call queued for a slot: full while it waits, and when it is handed one.
    const third = await limiter.acquire();
    const queued = limiter.acquire();
    now += 20;
    third({ kind: 'ok', latencyMs: 20 });
    const release4 = await queued;
    now += 5;
    second({ kind: 'ok', latencyMs: 65 });
    const handedOn = limiter.occupancy();
    assert.ok(Math.abs(handedOn.fullSeconds - (0.03 + 0.025)) < 1e-12, `${handedOn.fullSeconds}`);
    assert.ok(Math.abs(handedOn.callSeconds - (0.11 + 2 * 0.025)) < 1e-12, `${handedOn.callSeconds}`);
    // One call of two slots: not full; it accrues alone.
    now += 50;
    const later = limiter.occupancy();
    assert.ok(Math.abs(later.fullSeconds - handedOn.fullSeconds) < 1e-12);
    assert.ok(Math.abs(later.callSeconds - handedOn.callSeconds - 0.05) < 1e-12);
    release4({ kind: 'ok', latencyMs: 55 });
    const idle = limiter.occupancy();
    now += 100;
    assert.deepEqual(limiter.occupancy(), idle, 'nothing accrues with no call in flight');
  });

  it('the memory budget integrates the time some image waited for room', async () => {
    let now = 0;
    const budget = new MemoryBudget(100, () => now);
    const first = await budget.acquire(60);
    now += 30;
    assert.equal(budget.waitedSeconds(), 0, 'nobody waits while images fit');
    const second = budget.acquire(60); // does not fit beside the first: waits
    now += 40;
    first();
    const release = await second;
    assert.equal(budget.waitedSeconds(), 0.04);
    now += 30;
    assert.equal(budget.waitedSeconds(), 0.04, 'admitted: the wait ended with the release');
    release();
  });

  it('worker threads add each task’s time to its stage, in shared memory', async () => {
    const stages = new WorkerStages(1);
    try {
      assert.deepEqual(stages.busySeconds(), { segment: 0, mask: 0, solve: 0, guide: 0 });
      const width = 96;
      const pixels = new Uint8Array(width * width * 3);
      for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37 + (i >> 7) * 11) & 255;
      await stages.segment(createRgbImage(width, width, pixels), { numSegments: 30, compactness: 10 });
      const afterSegment = stages.busySeconds();
      assert.ok(afterSegment.segment > 0, `segmentation timed: ${afterSegment.segment}`);
      assert.equal(afterSegment.solve, 0);
      const m = 10;
      const design = KernelShapDesign.enumerate(m, 300, seededRandom(1));
      const values = design.masks.map((mask) => Float64Array.of(mask.reduce((a, b) => a + b, 0) ** 2));
      await stages.solve(design, values, Float64Array.of(m * m), Float64Array.of(0), { estimator: 'tree-adjusted', seed: 1 });
      const afterSolve = stages.busySeconds();
      assert.ok(afterSolve.solve > 0, `solve timed: ${afterSolve.solve}`);
      assert.equal(afterSolve.segment, afterSegment.segment, 'the solve is not counted as segmentation');
    } finally {
      await stages.close();
    }
  });
});

describe('pace: a run says what set it (CLI, real endpoint)', () => {
  let tmp: string;
  let images: string;
  let slow: TestEndpointServer;

  before(async () => {
    tmp = await scratchDir('clarify-pace-');
    images = path.join(tmp, 'images');
    await mkdir(images);
    const model = (request: DecodedRequest): unknown => ({ prediction: colourShareModel(request) });
    slow = await startEndpointServer({ model, faults: () => ({ delayMs: 40 }) });
    // 4 × 4 blocks of colours: SLIC finds about 16 segments, each moving the colour shares.
    const blocks = Buffer.alloc(64 * 64 * 3);
    for (let y = 0; y < 64; y++) {
      for (let x = 0; x < 64; x++) {
        const b = (y >> 4) * 4 + (x >> 4);
        blocks.set([(b * 53) % 256, (b * 97 + 40) % 256, (b * 151 + 90) % 256], (y * 64 + x) * 3);
      }
    }
    for (const name of ['a', 'b', 'c', 'd']) {
      await sharp(blocks, { raw: { width: 64, height: 64, channels: 3 } }).png().toFile(path.join(images, `${name}.png`));
    }
  });

  after(async () => {
    await slow.stop();
  });

  const summaryOf = async (output: string): Promise<AnalysisSummary> => JSON.parse(await readFile(path.join(output, 'analysis.json'), 'utf8')) as AnalysisSummary;

  // 4 images × 81 calls × 40 ms, one call at a time: 13 s at least, over MIN_PACE_SECONDS on any
  // machine. (A run the CPU sets the pace of takes as long as the machine is slow, so it is judged in
  // the tests above from its readings, and its busy clock is tested on real worker threads.)
  const output = (): string => path.join(tmp, 'out-slow');
  /** The slow endpoint's run over the images, into the same output each time. */
  const runSlow = async (): Promise<{ stdout: string; summary: AnalysisSummary }> => {
    const config = await writeColourShareConfig(path.join(tmp, 'slow.json'), {
      samples: 80,
      segments: 16,
      clarify_images: { endpoint_url: slow.url, concurrency: 'fixed', max_concurrency: 1, estimator: 'kernel' },
    });
    const run = await runCli(['run', '--config', config, '--dataset-uri', images, '--output', output(), '--quiet']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    return { stdout: run.stdout, summary: await summaryOf(output()) };
  };

  it('an endpoint that answers slowly, one call at a time: the endpoint set the pace', async () => {
    const run = await runSlow();
    const { pace } = run.summary;
    assert.ok(pace, 'analysis.json has the pace');
    assert.equal(pace.bound_by, 'endpoint', pace.said);
    assert.ok(pace.endpoint.slots_full_share >= ENDPOINT_BOUND_SHARE, `${pace.endpoint.slots_full_share}`);
    assert.ok(pace.endpoint.mean_calls_in_flight <= 1, 'one slot: never more than one call in flight');
    assert.equal(pace.endpoint.limit, 1);
    assert.match(run.stdout, /\n {2}pace set by the endpoint: .*raise clarify_images\.max_concurrency \(1\)/);
    const html = await readFile(path.join(output(), 'report.html'), 'utf8');
    assert.match(html, /<th>Pace<\/th><td>Set by the endpoint: /);
  });

  it('a resumed run (every image reused) says no pace', async () => {
    const run = await runSlow();
    const { summary } = run;
    assert.equal(summary.images.reused, 4);
    assert.equal(summary.pace, undefined);
    assert.doesNotMatch(run.stdout, /\n {2}pace /);
  });

  it('a merged scale-out run lists each host’s pace, in shard order', async () => {
    const config = await writeColourShareConfig(path.join(tmp, 'shards.json'), { samples: 6, clarify_images: { endpoint_url: slow.url } });
    const output = path.join(tmp, 'out-shards');
    for (const shard of ['0/2', '1/2']) {
      const run = await runCli(['run', '--config', config, '--dataset-uri', images, '--output', output, '--shard', shard, '--quiet']);
      assert.equal(run.code, 0, run.stdout + run.stderr);
    }
    // The hosts' images took a second or two, too short to judge: give host 0 the pace a longer run would have.
    const partFile = path.join(output, 'parts', '0-of-2', 'part.json');
    const part = JSON.parse(await readFile(partFile, 'utf8')) as Record<string, unknown>;
    assert.equal(part['pace'], undefined, 'a host whose images took under MIN_PACE_SECONDS says none');
    const [start, end] = readings(20, { fullSeconds: 18, callSeconds: 70 });
    const hostPace = judged(start, end, ADAPTIVE, 'kernel');
    await writeFile(partFile, JSON.stringify({ ...part, pace: hostPace }));
    const merged = await runCli(['merge', '--output', output, '--parts', '2']);
    assert.equal(merged.code, 0, merged.stdout + merged.stderr);
    assert.ok(merged.stdout.includes(`\n  pace of host 1 of 2: ${hostPace.said}\n`), merged.stdout);
    assert.doesNotMatch(merged.stdout, /host 2 of 2/);
    const summary = await summaryOf(output);
    assert.deepEqual(summary.pace_by_host, [hostPace, null]);
    assert.equal(summary.pace, undefined, 'hosts are judged one by one, not as one run');
  });
});
