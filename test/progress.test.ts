import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { validateConfig } from '../src/config/config.js';
import { runJob } from '../src/job.js';
import { expectedCalls, ProgressReporter, RATE_WINDOW_MS, type ProgressRecord, type ProgressState } from '../src/output/progress.js';
import { startEndpointServer, type TestEndpointServer } from './support/endpoint-server.js';
import { blockImage, REGION_LABELS, regionModel } from './support/region-model.js';
import { CLI } from './support/cli.js';
import { runProcess } from './support/process.js';
import { ensureAptPackage } from './support/debian.js';
import { scratchDir } from './support/scratch-dir.js';

describe('progress', () => {
  let endpoint: TestEndpointServer;
  let data: string;
  before(async () => {
    endpoint = await startEndpointServer({ model: (r) => ({ prediction: regionModel(r.pixels, r.width, r.height) }), faults: () => ({ delayMs: 2 }) });
    data = await scratchDir('clarify-progress-');
    await mkdir(path.join(data, 'in'));
    for (let i = 0; i < 4; i++) {
      const image = blockImage(2, 3, 20 + i);
      await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toFile(path.join(data, 'in', `${i}.png`));
    }
  });
  after(async () => endpoint.stop());

  async function run(isTTY: boolean): Promise<string> {
    let text = '';
    const config = validateConfig({
      dataset_type: 'application/x-image',
      methods: { shap: { num_samples: 80, image_config: { model_type: 'IMAGE_CLASSIFICATION', num_segments: 12 } } },
      predictor: { content_type: 'application/x-npy', probability: 'prediction', label_headers: REGION_LABELS },
      clarify_images: { endpoint_url: endpoint.url, max_concurrency: 2 },
    });
    await runJob(config, { datasetUri: path.join(data, 'in'), outputUri: path.join(await scratchDir('clarify-progress-out-'), 'out'), force: true, progress: { isTTY, write: (t) => (text += t) }, progressIntervalMs: 15 });
    return text;
  }

  it('writes single-line JSON records when not on a terminal', async () => {
    const lines = (await run(false)).trim().split('\n');
    assert.ok(lines.length >= 2, `${lines.length} records`);
    const records = lines.map((l) => JSON.parse(l) as ProgressRecord);
    assert.ok(records.every((r) => r.event === 'progress' && typeof r.calls_per_second === 'number'));
    assert.ok(records.at(-1)!.calls >= records[0]!.calls);
    assert.ok(records.some((r) => r.calls_per_second > 0));
  });

  it('expects each image left to cost what those explained so far did, however many are in flight', () => {
    const base: ProgressState = { imagesDone: 0, imagesListed: 100, failed: 0, calls: 0, retries: 0, callsPerImage: 1201, inFlight: 0, explained: 0, callsOfExplained: 0 };
    // Before any image is explained: the budget, for every image.
    assert.equal(expectedCalls(base), 120_100);
    // 16 images in flight, 486 calls made each, and 10 explained that took 972 each (an adaptive stop).
    const busy = { ...base, imagesDone: 10, inFlight: 16, explained: 10, callsOfExplained: 9720, calls: 9720 + 16 * 486 };
    const perImage = (9720 + 2 * 1201) / 12; // drawn toward the budget while few are explained
    assert.equal(expectedCalls(busy), Math.round(9720 + 16 * perImage + 74 * perImage));
    // Every image taking 972, the run makes 97,200: this is within 4 % of it, where the calls over
    // the images done (plus one), as before, read 64 % over.
    assert.ok(Math.abs(expectedCalls(busy) / 97_200 - 1) < 0.04);
    assert.ok((100 * busy.calls) / 11 / 97_200 > 1.6);
    // Images in flight that made more than an image's cost already count what they made.
    const late = { ...busy, calls: 9720 + 16 * 1150 };
    assert.equal(expectedCalls(late), Math.round(9720 + 16 * 1150 + 74 * perImage));
    // Images reused (40 more done, at no call) cost nothing; never less than the calls already made.
    const resumed = { ...busy, imagesDone: 50 };
    assert.equal(expectedCalls(resumed), Math.round(9720 + 16 * perImage + 34 * perImage));
    assert.equal(expectedCalls({ ...busy, imagesListed: 10, inFlight: 0, calls: 30_000 }), 30_000);
  });

  it('counts calls per second over the last few seconds, so a pause between bursts does not read as 0', async () => {
    let calls = 0;
    const reporter = new ProgressReporter(
      () => ({ imagesDone: 0, imagesListed: 4, failed: 0, calls, retries: 0, callsPerImage: 100, inFlight: 4, explained: 0, callsOfExplained: 0 }),
      { isTTY: false, write: () => undefined },
    );
    reporter.record();
    calls = 200; // a burst of calls, then a solve with none
    await sleep(100);
    const burst = reporter.record().calls_per_second;
    assert.ok(burst > 0, `${burst}`);
    await sleep(200);
    const paused = reporter.record();
    // Counted since the start (under RATE_WINDOW_MS ago): 200 calls over the whole time, not 0 over the pause.
    assert.ok(paused.calls_per_second > 0 && paused.calls_per_second < burst, `${paused.calls_per_second} after ${burst}`);
    assert.ok(RATE_WINDOW_MS >= 1000);
  });

  it('on a terminal (tmux): the bar moves with calls before any image is done, failures print above it, and the summary is the last line', async (t) => {
    const missing = await ensureAptPackage('tmux', async () => (await runProcess('tmux', ['-V'])).code === 0);
    if (missing) {
      t.skip(missing.reason);
      return;
    }
    const dir = await scratchDir('clarify-progress-tty-');
    await mkdir(path.join(dir, 'in'));
    for (let i = 0; i < 3; i++) {
      const image = blockImage(2, 3, 24 + i);
      await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toFile(path.join(dir, 'in', `${i}.png`));
    }
    await writeFile(path.join(dir, 'in', 'broken.png'), 'not a png');
    const slow = await startEndpointServer({ model: (r) => ({ prediction: regionModel(r.pixels, r.width, r.height) }), faults: () => ({ delayMs: 15 }) });
    const config = path.join(dir, 'config.json');
    await writeFile(
      config,
      JSON.stringify({
        dataset_type: 'application/x-image',
        methods: { shap: { num_samples: 150, image_config: { model_type: 'IMAGE_CLASSIFICATION', num_segments: 12 } } },
        predictor: { content_type: 'application/x-npy', probability: 'prediction', label_headers: REGION_LABELS },
        clarify_images: { endpoint_url: slow.url, max_concurrency: 2, concurrency: 'fixed' },
      }),
    );
    const session = `clarify-progress-${process.pid}`;
    const command = `AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true ${process.execPath} ${CLI} run --config ${config} --dataset-uri ${path.join(dir, 'in')} --output ${path.join(dir, 'out')}; echo EXITED $?; sleep 60`;
    try {
      assert.equal((await runProcess('tmux', ['new-session', '-d', '-s', session, '-x', '150', '-y', '40', command])).code, 0);
      const screens: string[] = [];
      for (let i = 0; i < 600; i++) {
        const screen = (await runProcess('tmux', ['capture-pane', '-p', '-t', session])).stdout;
        screens.push(screen);
        if (/EXITED \d+/.test(screen)) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const last = screens.at(-1)!;
      assert.match(last, /EXITED 1/, last);
      // Before the first image was explained (only the broken one is done), the bar already counted calls.
      const frames = screens.map((s) => /(\d+)\/(\d+)\+? images \| (\d+)\/\d+ calls/.exec(s)).filter((m): m is RegExpExecArray => m !== null);
      assert.ok(frames.some((m) => Number(m[1]) <= 1 && Number(m[3]) > 0), `no frame shows calls before an image was explained:\n${screens.filter((x) => /calls/.test(x)).slice(0, 3).join('\n---\n')}`);
      // The listing before the first image counted them all: every frame shows the whole of them (3 and the broken one).
      assert.ok(frames.length > 0 && frames.every((m) => m[2] === '4'), frames.map((m) => m[0]).join('\n'));
      assert.ok(!screens.some((x) => /\d+\/\d+\+ images/.test(x)), 'no frame says more images are still to be listed');
      const moving = new Set(screens.map((s) => /(\d+)\/\d+ calls/.exec(s)?.[1]).filter(Boolean));
      assert.ok(moving.size >= 3, `the call count moved through ${moving.size} values`);
      assert.ok(screens.some((s) => /failed: .*broken\.png \[decode\]/.test(s) && /calls\/s/.test(s)), 'the failure is printed while the bar is up');
      // The final screen: the summary is the last thing before EXITED, and no bar frame is left.
      const lines = last.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '');
      const exited = lines.findIndex((l) => l.startsWith('EXITED'));
      assert.match(lines[exited - 1]!, /FAILED .*broken\.png \[decode\]/);
      assert.ok(lines.slice(0, exited).some((l) => /3 of 4 images succeeded, 1 failed/.test(l)));
      assert.ok(!lines.some((l) => /calls\/s/.test(l)), `a bar frame was left on screen:\n${last}`);
    } finally {
      await runProcess('tmux', ['kill-session', '-t', session]);
      await slow.stop();
    }
  });
});
