/**
 * Faults are surfaced fast and clearly (issue #12, part 4): an endpoint that is down or fails the
 * same way for every image stops the job early with one message and a written summary; retries
 * are logged as they happen and spend a job-wide budget; S3 outages and stalls are ridden out;
 * a stopped run counts the images it never reached.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli, startCli } from './support/cli.js';
import { writeColourShareConfig } from './support/configs.js';
import { colourShareModel, meanColour, startEndpointServer, type TestEndpointServer } from './support/endpoint-server.js';
import { startFaultProxy } from './support/fault-proxy.js';
import * as fx from './support/fixtures.js';
import { startS3Server, type TestS3Server } from './support/s3-server.js';
import type { AnalysisSummary } from '../src/output/records.js';
import { scratchDir } from './support/scratch-dir.js';

const readSummary = async (out: string): Promise<AnalysisSummary> => JSON.parse(await readFile(path.join(out, 'analysis.json'), 'utf8')) as AnalysisSummary;

/** A port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const isBlue = (r: Parameters<typeof meanColour>[0]): boolean => {
  const [red, green, blue] = meanColour(r);
  return blue > red + 40 && blue > green + 40;
};

describe('faults are surfaced fast and clearly', () => {
  let tmp: string;
  let healthy: TestEndpointServer;
  before(async () => {
    tmp = await scratchDir('ci-faults-');
    healthy = await startEndpointServer({ model: (r) => ({ prediction: colourShareModel(r) }) });
  });
  after(async () => {
    await healthy.stop();
  });

  const config = (name: string, clarify: Record<string, unknown>, predictor: Record<string, unknown> = {}): Promise<string> =>
    writeColourShareConfig(path.join(tmp, `${name}.json`), { predictor, clarify_images: { retry_base_delay_ms: 5, retry_max_delay_ms: 20, ...clarify } });

  async function images(name: string, colours: readonly fx.Rgb[]): Promise<string> {
    const dir = path.join(tmp, name);
    await mkdir(dir, { recursive: true });
    await Promise.all(colours.map(async (c, i) => writeFile(path.join(dir, `img-${String(i).padStart(3, '0')}.png`), await fx.solidPng(16, 16, c))));
    return dir;
  }

  it('a container endpoint that is down is said at once, before any image is read', async () => {
    const data = await images('down', [[200, 20, 20], [20, 200, 20]]);
    const out = path.join(tmp, 'down-out');
    const run = await runCli(['run', '--config', await config('down', { endpoint_url: `http://127.0.0.1:${await closedPort()}` }), '--dataset-uri', data, '--output', out]);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /the endpoint is not ready: GET http:\/\/127\.0\.0\.1:\d+\/ping failed: connect ECONNREFUSED.*no image was read/);
    assert.equal(run.stderr.split('\n').filter((l) => /ECONNREFUSED/.test(l)).length, 1, 'one message, not one per image');
  });

  it('a deterministic 500 on the first call stops the job after one call\'s retries, with the summary written (SageMaker route)', async () => {
    const broken = await startEndpointServer({ model: () => ({ prediction: [1, 0, 0] }), faults: () => ({ status: 500, message: 'content type image/png not supported' }) });
    try {
      const data = await images('always500', Array.from({ length: 40 }, (): fx.Rgb => [200, 20, 20]));
      const out = path.join(tmp, 'always500-out');
      const run = await runCli(['run', '--config', await config('always500', {}, { endpoint_name: 'broken' }), '--dataset-uri', data, '--output', out], {
        AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: broken.url.replace(/\/$/, ''),
        AWS_ACCESS_KEY_ID: 'test',
        AWS_SECRET_ACCESS_KEY: 'test',
        AWS_REGION: 'us-east-1',
      });
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stdout, /STOPPED: the endpoint failed the first call: .*not supported/);
      const summary = await readSummary(out);
      assert.equal(summary.status, 'partial');
      assert.match(summary.stop_reason ?? '', /first call/);
      assert.equal(summary.dataset.images_found, 40);
      assert.ok(summary.endpoint_calls.attempts <= 7 + 3, `${summary.endpoint_calls.attempts} attempts: one call's retries, not 40 images' worth`);
      assert.ok(broken.requests.length <= 10, `${broken.requests.length} requests reached the endpoint`);
      assert.match(run.stderr, /endpoint: 1 retry .*HTTP 500/, 'the first retry is logged as it happens');
    } finally {
      await broken.stop();
    }
  });

  it('the same endpoint failure on image after image stops the job at stop_after_failed_images', async () => {
    // Red images work; blue ones get a 424 (not retried, not endpoint-wide on its own).
    const picky = await startEndpointServer({ model: (r) => ({ prediction: colourShareModel(r) }), faults: (r) => (isBlue(r) ? { status: 424, message: 'model error' } : undefined) });
    try {
      const data = await images('picky', [[220, 20, 20], ...Array.from({ length: 16 }, (): fx.Rgb => [20, 20, 220])]);
      const out = path.join(tmp, 'picky-out');
      const run = await runCli(['run', '--config', await config('picky', { endpoint_url: picky.url, stop_after_failed_images: 5 }), '--dataset-uri', data, '--output', out]);
      assert.equal(run.code, 1, run.stderr);
      const summary = await readSummary(out);
      assert.equal(summary.status, 'partial');
      assert.match(summary.stop_reason ?? '', /5 images in a row failed at the endpoint \(clarify_images\.stop_after_failed_images is 5\)/);
      assert.ok(summary.images.failed >= 5 && summary.images.failed <= 8, `${summary.images.failed} failed`);
      assert.equal(summary.dataset.images_found, 17);
      assert.equal(summary.images.not_processed, 17 - summary.images.failed - summary.images.succeeded);
      assert.ok((summary.images.not_processed ?? 0) >= 8, `${summary.images.not_processed} not processed`);
    } finally {
      await picky.stop();
    }
  });

  it('retries spend a job-wide budget; once spent, failures are final at once and the log says so', async () => {
    // Every other attempt fails with 503: a retry usually succeeds, but each costs 5 tokens and a success returns 1.
    // With S successful calls and about as many failed attempts, all retried only if S − 1 ≤ (20 + S) / 5,
    // i.e. S ≤ 6: 12 images need more calls than that, so the budget runs out in any interleaving of the calls.
    const flaky = await startEndpointServer({ model: (r) => ({ prediction: colourShareModel(r) }), faults: (r) => (r.requestNumber % 2 === 0 ? { status: 503, message: 'busy' } : undefined) });
    try {
      const data = await images('flaky', Array.from({ length: 12 }, (_, i): fx.Rgb => [200, 20 + i * 10, 20]));
      const out = path.join(tmp, 'flaky-out');
      const run = await runCli(['run', '--config', await config('flaky', { endpoint_url: flaky.url, retry_budget: 20, stop_after_failed_images: 0, concurrency: 'fixed', max_concurrency: 2 }), '--dataset-uri', data, '--output', out]);
      const summary = await readSummary(out);
      const { retries, calls, failed_calls: failedCalls } = summary.endpoint_calls;
      assert.ok(retries > 0, 'some calls were retried');
      assert.ok(retries * 5 <= 20 + (calls - failedCalls), `${retries} retries within the budget of 20 tokens + 1 per success (${calls - failedCalls})`);
      assert.ok(failedCalls > 0, 'once the budget was spent, failing calls failed at once');
      assert.match(run.stderr, /the retry budget is spent \(clarify_images\.retry_budget\)/);
      assert.match(run.stderr, /endpoint: \d+ retr(y|ies).*HTTP 503/);
      assert.ok(summary.failures.some((f) => /retry budget \(clarify_images\.retry_budget\) is spent/.test(f.message)), JSON.stringify(summary.failures[0]));
    } finally {
      await flaky.stop();
    }
  });

  it('a 429 storm longer than the retry budget slows the job but fails no image; endless throttling is bounded by max_throttle_seconds', async () => {
    let first = -1;
    const stormy = await startEndpointServer({
      model: (r) => ({ prediction: colourShareModel(r) }),
      faults: (r) => {
        if (first < 0) first = r.requestNumber;
        const n = r.requestNumber - first;
        return n >= 3 && n < 203 ? { status: 429, message: 'storm' } : undefined;
      },
    });
    try {
      const data = await images('stormy', Array.from({ length: 6 }, (_, i): fx.Rgb => [200, 20 + i * 10, 20]));
      const out = path.join(tmp, 'stormy-out');
      const run = await runCli(['run', '--config', await config('stormy', { endpoint_url: stormy.url, retry_budget: 20 }), '--dataset-uri', data, '--output', out]);
      assert.equal(run.code, 0, run.stderr);
      const summary = await readSummary(out);
      assert.equal(summary.images.failed, 0);
      assert.ok(summary.endpoint_calls.retries >= 200, `${summary.endpoint_calls.retries} retries: every 429 was retried`);
      assert.match(run.stderr, /endpoint: \d+ retr(y|ies).*HTTP 429/);
    } finally {
      await stormy.stop();
    }
    const always = await startEndpointServer({ model: () => ({ prediction: [1, 0, 0] }), faults: () => ({ status: 429, message: 'account limit' }) });
    try {
      const data = await images('always429', [[200, 20, 20]]);
      const out = path.join(tmp, 'always429-out');
      const run = await runCli(['run', '--config', await config('always429', { endpoint_url: always.url, max_throttle_seconds: 1 }), '--dataset-uri', data, '--output', out]);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stdout, /still throttled after 1 s: clarify_images\.max_throttle_seconds/);
    } finally {
      await always.stop();
    }
  });

  it('an answer now and then that cannot be read (an error page with status 200) is retried: every image is explained as a clean run explains it', async () => {
    // Every 7th request gets a proxy's error page in place of the model's answer (counted here:
    // requestNumber is read after the body is decoded, so concurrent requests may share one), never
    // the same masked image twice, so each is answered when it is asked again.
    let served = 0;
    const spoilt = new Set<string>();
    const flaky = await startEndpointServer({
      model: (r) => ({ prediction: colourShareModel(r) }),
      faults: (r) => {
        const image = Buffer.from(r.pixels).toString('base64');
        if (++served % 7 !== 0 || spoilt.has(image)) return undefined;
        spoilt.add(image);
        return { malformed: '<html><body>502 Bad Gateway</body></html>' };
      },
    });
    try {
      // Quadrants: four segments each, so an image makes tens of calls.
      const data = path.join(tmp, 'flaky');
      await mkdir(data, { recursive: true });
      const quadrants: [fx.Rgb, fx.Rgb, fx.Rgb, fx.Rgb][] = [
        [[220, 20, 20], [20, 200, 40], [30, 30, 210], [200, 200, 200]],
        [[30, 30, 210], [220, 20, 20], [200, 200, 200], [20, 200, 40]],
        [[20, 200, 40], [200, 200, 200], [220, 20, 20], [30, 30, 210]],
      ];
      await Promise.all(quadrants.map(async (colours, i) => writeFile(path.join(data, `q-${i}.png`), await fx.quadrantsPng(32, 32, colours))));
      const runOn = async (url: string, name: string): Promise<{ out: string; stderr: string; code: number | null }> => {
        const out = path.join(tmp, name);
        const file = await writeColourShareConfig(path.join(tmp, `${name}.json`), { samples: 80, segments: 4, clarify_images: { endpoint_url: url, retry_base_delay_ms: 5, retry_max_delay_ms: 20 } });
        const run = await runCli(['run', '--config', file, '--dataset-uri', data, '--output', out]);
        return { out, stderr: run.stderr, code: run.code };
      };
      const clean = await runOn(healthy.url, 'flaky-clean');
      const faulty = await runOn(flaky.url, 'flaky-out');
      assert.equal(faulty.code, 0, faulty.stderr);
      const summary = await readSummary(faulty.out);
      assert.equal(summary.images.failed, 0);
      assert.ok(summary.endpoint_calls.retries >= 5, `${summary.endpoint_calls.retries} retries in ${summary.endpoint_calls.calls} calls`);
      assert.match(faulty.stderr, /endpoint: \d+ retr(y|ies).*\(unreadable answer ×\d+\); latest: attempt 1 of 3 failed: unreadable answer: the response is not valid JSON/);
      for (const file of ['predictions.jsonl', 'explanations_shap/out.jsonl']) {
        assert.equal(await readFile(path.join(faulty.out, file), 'utf8'), await readFile(path.join(clean.out, file), 'utf8'), file);
      }
    } finally {
      await flaky.stop();
    }
  });

  it('a hung endpoint: each timeout is logged as it happens', async () => {
    const hung = await startEndpointServer({ model: (r) => ({ prediction: colourShareModel(r) }), faults: (r) => (r.requestNumber === 1 ? { delayMs: 3000 } : undefined) });
    try {
      const data = await images('hung', [[200, 20, 20]]);
      const out = path.join(tmp, 'hung-out');
      const run = await runCli(['run', '--config', await config('hung', { endpoint_url: hung.url, request_timeout_ms: 400 }), '--dataset-uri', data, '--output', out]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stderr, /endpoint: 1 retry \(timeout ×1\).*no complete answer within 400 ms/);
    } finally {
      await hung.stop();
    }
  });

  it('a stopped run counts the images it never reached: images_found is the whole dataset', async () => {
    const slow = await startEndpointServer({ model: (r) => ({ prediction: colourShareModel(r) }), faults: () => ({ delayMs: 40 }) });
    try {
      const data = await images('sigterm', Array.from({ length: 30 }, (_, i): fx.Rgb => [200, 20 + i * 5, 20]));
      const out = path.join(tmp, 'sigterm-out');
      const run = startCli(['run', '--config', await config('sigterm', { endpoint_url: slow.url, stop_grace_seconds: 0 }), '--dataset-uri', data, '--output', out]);
      while (slow.requests.length < 12) await new Promise((r) => setTimeout(r, 20));
      run.child.kill('SIGTERM');
      assert.equal(await run.exited, 143, run.stderr);
      const summary = await readSummary(out);
      assert.equal(summary.status, 'partial');
      assert.equal(summary.dataset.images_found, 30);
      assert.equal(summary.images.not_processed, 30 - summary.images.succeeded - summary.images.failed);
      assert.ok((summary.images.not_processed ?? 0) >= 20, `${summary.images.not_processed} not processed`);
    } finally {
      await slow.stop();
    }
  });

  it('a second signal ends the run at once and leaves no staged file behind', async () => {
    // Every call takes 1.5 s, so the first SIGTERM's grace (60 s) is still running when the second comes.
    const slow = await startEndpointServer({ model: (r) => ({ prediction: colourShareModel(r) }), faults: () => ({ delayMs: 1500 }) });
    try {
      const data = await images('second-signal', Array.from({ length: 6 }, (_, i): fx.Rgb => [200, 20 + i * 5, 20]));
      const out = path.join(tmp, 'second-signal-out');
      const staging = path.join(tmp, '.second-signal-out.staging');
      const run = startCli(['run', '--config', await config('second-signal', { endpoint_url: slow.url, stop_grace_seconds: 60 }), '--dataset-uri', data, '--output', out]);
      while (slow.requests.length < 2) await new Promise((r) => setTimeout(r, 20));
      // The run's output files are open in the staging folder by now.
      const staged = await readdir(staging);
      assert.ok(staged.length > 0, 'the run stages its output files while it runs');
      run.child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      run.child.kill('SIGTERM');
      assert.equal(await run.exited, 143, run.stderr);
      const left = await readdir(staging).catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? [] : Promise.reject(error)));
      assert.deepEqual(left, [], 'no staged file is left beside the output');
    } finally {
      await slow.stop();
    }
  });
});

describe('S3 outages and stalls are ridden out', () => {
  let tmp: string;
  let s3: TestS3Server;
  let endpoint: TestEndpointServer;
  before(async () => {
    tmp = await scratchDir('ci-s3-faults-');
    s3 = await startS3Server();
    endpoint = await startEndpointServer({ model: (r) => ({ prediction: colourShareModel(r) }), faults: () => ({ delayMs: 10 }) });
    await s3.createBucket('data');
    await s3.createBucket('results');
    await s3.putMany(
      'data',
      await Promise.all(Array.from({ length: 24 }, async (_, i) => ({ key: `set/img-${String(i).padStart(2, '0')}.png`, body: await fx.solidPng(16, 16, [200, 10 + i * 8, 30]) }))),
    );
  });
  after(async () => {
    await endpoint.stop();
    await s3.stop();
  });

  async function runThroughProxy(name: string, fault: 'down' | 'stall', faultMs: number): Promise<{ code: number | null; stderr: string; faults: { cut: number; stalled: number } }> {
    const proxy = await startFaultProxy(s3.endpoint);
    const file = await writeColourShareConfig(path.join(tmp, `${name}.json`), {
      clarify_images: { endpoint_url: endpoint.url, s3_retry_base_delay_ms: 200, s3_idle_timeout_ms: 500, stop_after_failed_images: 0 },
    });
    const run = startCli(['run', '--config', file, '--dataset-uri', 's3://data/set/', '--output', `s3://results/${name}`], { ...s3.env(), AWS_ENDPOINT_URL_S3: proxy.url });
    const start = endpoint.requests.length;
    while (endpoint.requests.length < start + 20) await new Promise((r) => setTimeout(r, 10));
    proxy.mode = fault;
    await new Promise((r) => setTimeout(r, faultMs));
    proxy.mode = 'pass';
    const code = await run.exited;
    await proxy.stop();
    return { code, stderr: run.stderr, faults: { ...proxy.faults } };
  }

  it('a 3 s S3 outage mid-run: retried with backoff and logged; every image succeeds and the summary is written', async () => {
    const { code, stderr, faults } = await runThroughProxy('outage', 'down', 3000);
    assert.ok(faults.cut > 0, 'the outage hit the job');
    assert.equal(code, 0, stderr);
    assert.match(stderr, /S3: \d+ retr(y|ies)/);
    const summary = JSON.parse(await (await s3.client.send(new (await import('@aws-sdk/client-s3')).GetObjectCommand({ Bucket: 'results', Key: 'outage/analysis.json' }))).Body!.transformToString()) as AnalysisSummary;
    assert.equal(summary.status, 'completed');
    assert.equal(summary.images.succeeded, 24);
  });

  it('a stalled S3 is given up after s3_idle_timeout_ms and retried, with a word in the log', async () => {
    const { code, stderr, faults } = await runThroughProxy('stall', 'stall', 2000);
    assert.ok(faults.stalled > 0, 'the stall hit the job');
    assert.equal(code, 0, stderr);
    assert.match(stderr, /S3: \d+ retr(y|ies) .*(timeout|TimeoutError|socket)/i);
  });
});
