/**
 * Fault-injection soak: a clean run and a run under faults over the same ≥ 2,000 images listed
 * from the test S3 server (s3rver). The faulty run meets 1 % failing calls (HTTP 500) throughout,
 * 0.5 % answers that cannot be read (status 200 with an error page or a cut-off body), a 429 storm,
 * an S3 outage (a proxy that cuts every connection for a few seconds) and a SIGTERM, and is then
 * resumed over the same output. Reported: faults injected, images lost, whether the
 * final outputs are byte-identical to the clean run's, and peak RSS of each job process.
 */
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { CLI } from '../test/support/cli.js';
import { colourShareModel, type DecodedRequest, type Fault, startEndpointServer } from '../test/support/endpoint-server.js';
import { startFaultProxy } from '../test/support/fault-proxy.js';
import * as fx from '../test/support/fixtures.js';
import { startS3Server } from '../test/support/s3-server.js';
import { seededRandom } from '../src/explain/random.js';
import { vmHwmMb } from './peak-rss.js';

/** How long the 429 storm lasts: every call in it is throttled. */
export const STORM_MS = 5000;

export interface SoakResult {
  readonly images: number;
  readonly calls: number;
  readonly faults: { readonly failedCalls: number; readonly unreadableAnswers: number; readonly throttled: number; readonly s3ConnectionsCut: number; readonly sigterms: number };
  readonly runs: readonly { readonly name: string; readonly exit: number | null; readonly seconds: number; readonly peakRssMb: number; readonly retryLines: number }[];
  readonly lost: number;
  readonly failedImages: number;
  readonly identical: boolean;
}

interface ChildRun {
  readonly exit: number | null;
  readonly seconds: number;
  readonly peakRssMb: number;
  readonly stderr: string;
}

function startRun(args: readonly string[], env: Record<string, string>): { pid: number; kill: (signal: NodeJS.Signals) => void; done: Promise<ChildRun>; ended: () => ChildRun | undefined } {
  const started = performance.now();
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
    if (process.env['SOAK_LOG']) appendFileSync(process.env['SOAK_LOG'], c);
  });
  child.stdout.resume();
  let peak = 0;
  const poll = setInterval(() => {
    void vmHwmMb(child.pid!).then((mb) => (peak = Math.max(peak, mb ?? 0)));
  }, 100);
  let result: ChildRun | undefined;
  const done = new Promise<ChildRun>((resolve) =>
    child.on('close', (exit) => {
      clearInterval(poll);
      result = { exit, seconds: (performance.now() - started) / 1000, peakRssMb: peak, stderr };
      resolve(result);
    }),
  );
  return { pid: child.pid!, kill: (signal) => child.kill(signal), done, ended: () => result };
}

/** Waits for a condition while a run goes on; a run that ended first is an error that shows its log. */
async function until(condition: () => boolean, run: { ended: () => ChildRun | undefined }): Promise<void> {
  while (!condition()) {
    const ended = run.ended();
    if (ended) throw new Error(`the faulty run ended (exit ${ended.exit}) before the fault was due:\n${ended.stderr.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function runSoak(work: string, count = 2000): Promise<SoakResult> {
  const s3 = await startS3Server();
  // Faults are decided per request: every call is throttled during a storm, else 1 % fail with 500
  // and 0.5 % are answered with status 200 and a body that cannot be read. Those begin once a run
  // has read 200 answers (a job's first answers are not asked again: an answer the config cannot
  // read then fails at once, as it should), and spoil a masked image once at most, so that asking
  // again gets its answer, as from a proxy's passing fault.
  const state = { injecting: false, stormUntil: 0, failedCalls: 0, unreadableAnswers: 0, throttled: 0, runStart: 0 };
  const spoilt = new Set<string>();
  const unreadable = ['<html><body><h1>502 Bad Gateway</h1></body></html>', '{"prediction": [0.2'];
  const random = seededRandom(20261130);
  const answeredInRun = (): number => {
    let ok = 0;
    for (let i = state.runStart; i < endpoint.answered.length && ok < 200; i++) if (endpoint.answered[i] === 200) ok += 1;
    return ok;
  };
  const endpoint = await startEndpointServer({
    model: (r) => ({ prediction: colourShareModel(r) }),
    faults: (r: DecodedRequest): Fault | undefined => {
      if (!state.injecting) return undefined;
      if (performance.now() < state.stormUntil) {
        state.throttled += 1;
        return { status: 429, message: 'storm' };
      }
      if (random() < 0.01) {
        state.failedCalls += 1;
        return { status: 500, message: 'injected failure' };
      }
      if (random() < 0.005 && answeredInRun() >= 200) {
        const image = Buffer.from(r.pixels).toString('base64');
        if (spoilt.has(image)) return undefined;
        spoilt.add(image);
        state.unreadableAnswers += 1;
        return { malformed: unreadable[state.unreadableAnswers % unreadable.length]! };
      }
      return undefined;
    },
  });
  const proxy = await startFaultProxy(s3.endpoint);
  try {
    await s3.createBucket('soak');
    await s3.createBucket('results');
    const palette: fx.Rgb[] = [[220, 30, 30], [30, 200, 40], [40, 40, 220], [200, 200, 40], [120, 120, 120], [20, 20, 20]];
    const objects = await Promise.all(
      Array.from({ length: count }, async (_, i) => ({
        key: `set/${String(i).padStart(5, '0')}.png`,
        body: await fx.quadrantsPng(24, 24, [palette[i % 6]!, palette[(i >> 1) % 6]!, palette[(i >> 2) % 6]!, palette[(i >> 3) % 6]!]),
      })),
    );
    await s3.putMany('soak', objects);
    const config = path.join(work, 'soak.json');
    await writeFile(
      config,
      JSON.stringify({
        dataset_type: 'application/x-image',
        methods: { shap: { num_samples: 6, seed: 3, image_config: { model_type: 'IMAGE_CLASSIFICATION', num_segments: 4 } } },
        predictor: { content_type: 'image/png', probability: 'prediction', label_headers: ['red', 'green', 'blue'] },
        clarify_images: { endpoint_url: endpoint.url, max_concurrency: 16, s3_retry_base_delay_ms: 500, report_max_images: 20 },
      }),
    );
    const args = (output: string): string[] => ['run', '--config', config, '--dataset-uri', 's3://soak/set/', '--output', output, '--quiet'];

    const clean = await startRun(args('s3://results/clean'), s3.env()).done;
    const callsPerRun = endpoint.answered.filter((status) => status === 200).length;

    // The faulty run goes through the proxy; faults are placed by how far its calls have got.
    state.injecting = true;
    const viaProxy = { ...s3.env(), AWS_ENDPOINT_URL_S3: proxy.url };
    // Progress is answered calls (200s), so faults do not move the schedule.
    let scanned = endpoint.answered.length;
    let ok = 0;
    const progress = (): number => {
      for (; scanned < endpoint.answered.length; scanned++) if (endpoint.answered[scanned] === 200) ok += 1;
      return ok / callsPerRun;
    };
    if (clean.exit !== 0) throw new Error(`the clean soak run failed (exit ${clean.exit}):\n${clean.stderr.slice(-3000)}`);
    state.runStart = endpoint.answered.length;
    const faulty = startRun(args('s3://results/faulty').filter((a) => a !== '--quiet'), viaProxy);
    await until(() => progress() >= 0.15, faulty);
    state.stormUntil = performance.now() + STORM_MS;
    await until(() => progress() >= 0.35, faulty);
    proxy.mode = 'down';
    await new Promise((r) => setTimeout(r, 3000));
    proxy.mode = 'pass';
    await until(() => progress() >= 0.6, faulty);
    faulty.kill('SIGTERM');
    const stopped = await faulty.done;
    state.runStart = endpoint.answered.length;
    const resumed = await startRun(args('s3://results/faulty').filter((a) => a !== '--quiet'), viaProxy).done;

    const text = async (key: string): Promise<string> => (await (await s3.client.send(new GetObjectCommand({ Bucket: 'results', Key: key }))).Body!.transformToString());
    const predictionsClean = await text('clean/predictions.jsonl');
    const predictionsFaulty = await text('faulty/predictions.jsonl');
    const explanationsClean = await text('clean/explanations_shap/out.jsonl');
    const explanationsFaulty = await text('faulty/explanations_shap/out.jsonl');
    const records = predictionsFaulty.trim().split('\n').map((l) => JSON.parse(l) as { key: string; error?: unknown });
    const present = new Set(records.map((r) => r.key));
    const retryLines = (stderr: string): number => stderr.split('\n').filter((l) => /^(endpoint|S3): \d+ retr/.test(l)).length;
    return {
      images: count,
      calls: callsPerRun,
      faults: { failedCalls: state.failedCalls, unreadableAnswers: state.unreadableAnswers, throttled: state.throttled, s3ConnectionsCut: proxy.faults.cut, sigterms: 1 },
      runs: [
        { name: 'clean', exit: clean.exit, seconds: clean.seconds, peakRssMb: clean.peakRssMb, retryLines: retryLines(clean.stderr) },
        { name: 'faulty, until SIGTERM', exit: stopped.exit, seconds: stopped.seconds, peakRssMb: stopped.peakRssMb, retryLines: retryLines(stopped.stderr) },
        { name: 'faulty, resumed', exit: resumed.exit, seconds: resumed.seconds, peakRssMb: resumed.peakRssMb, retryLines: retryLines(resumed.stderr) },
      ],
      lost: objects.filter((o) => !present.has(o.key.slice('set/'.length))).length,
      failedImages: records.filter((r) => r.error).length,
      identical: predictionsClean === predictionsFaulty && explanationsClean === explanationsFaulty,
    };
  } finally {
    await proxy.stop();
    await endpoint.stop();
    await s3.stop();
  }
}
