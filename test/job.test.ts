import assert from 'node:assert/strict';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { colourShareModel, type DecodedRequest, type Fault, meanColour, startEndpointServer, type TestEndpointServer } from './support/endpoint-server.js';
import * as fx from './support/fixtures.js';
import { runCli } from './support/cli.js';
import { startS3Server, type TestS3Server } from './support/s3-server.js';
import type { AnalysisSummary, PredictionRecord } from '../src/output/records.js';
import { scratchDir } from './support/scratch-dir.js';

const near = (a: readonly number[], b: readonly number[], t: number): boolean => a.every((v, i) => Math.abs(v - b[i]!) <= t);
const YELLOW = [250, 250, 0] as const; // first call throttled (429), then fine
const CYAN = [0, 250, 250] as const; // 500 twice, then fine
const MAGENTA = [250, 0, 250] as const; // the model always fails (424)

describe('the job end to end: CLI, S3 in and out, faulty endpoint', () => {
  let s3: TestS3Server;
  let endpoint: TestEndpointServer;
  let tmp: string;
  const attempts = new Map<string, number>();

  const faults = (request: DecodedRequest): Fault | undefined => {
    const mean = meanColour(request);
    const name = near(mean, YELLOW, 3) ? 'yellow' : near(mean, CYAN, 3) ? 'cyan' : near(mean, MAGENTA, 3) ? 'magenta' : undefined;
    if (!name) return undefined;
    const n = (attempts.get(name) ?? 0) + 1;
    attempts.set(name, n);
    if (name === 'yellow' && n === 1) return { status: 429 };
    if (name === 'cyan' && n <= 2) return { status: 500 };
    if (name === 'magenta') return { status: 424, message: 'the model failed on this image' };
    return undefined;
  };

  const dataset: Record<string, () => Promise<Uint8Array | string>> = {
    'good/red.png': () => fx.solidPng(32, 24, [220, 20, 20]),
    'good/green.jpg': () => fx.solidJpeg(32, 24, [20, 220, 20]),
    'good/sub dir/blue ü.jpeg': () => fx.solidJpeg(24, 32, [20, 20, 220]),
    'odd/grayscale.png': () => fx.grayscalePng(16, 16, 90),
    'odd/rgba.png': () => fx.rgbaPng(16, 16),
    'odd/palette.PNG': () => fx.palettePng(16, 16, [20, 200, 20]),
    'odd/sixteen-bit.png': () => fx.png16(16, 16, [30, 30, 200]),
    'odd/cmyk.jpg': () => fx.cmykJpeg(16, 16, [200, 30, 30]),
    'odd/exif-rotated.jpg': () => fx.exifRotatedJpeg(32, 16, [220, 20, 20], [220, 20, 20]),
    'bad/truncated.jpg': () => fx.truncatedJpeg(64, 64),
    'bad/zero.png': async () => new Uint8Array(),
    'bad/text.jpg': async () => 'this is not an image',
    'faults/throttled-yellow.png': () => fx.solidPng(16, 16, YELLOW),
    'faults/flaky-cyan.png': () => fx.solidPng(16, 16, CYAN),
    'faults/failing-magenta.png': () => fx.solidPng(16, 16, MAGENTA),
    'notes.txt': async () => 'not an image',
  };

  async function writeConfig(name: string, body: Record<string, unknown>): Promise<string> {
    const file = path.join(tmp, name);
    await writeFile(file, JSON.stringify(body));
    return file;
  }

  function config(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      dataset_type: 'application/x-image',
      methods: { shap: { num_samples: 8, image_config: { model_type: 'IMAGE_CLASSIFICATION' } } },
      predictor: { content_type: 'image/png', accept_type: 'application/json', probability: 'prediction', label_headers: ['red', 'green', 'blue'] },
      clarify_images: { endpoint_url: endpoint.url, max_concurrency: 4, retry_base_delay_ms: 5, retry_max_delay_ms: 40 },
      ...extra,
    };
  }

  async function s3Text(bucket: string, key: string): Promise<string> {
    const response = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return response.Body!.transformToString();
  }

  before(async () => {
    tmp = await scratchDir('clarify-job-');
    s3 = await startS3Server();
    endpoint = await startEndpointServer({ model: (r) => ({ prediction: colourShareModel(r) }), faults });
    await s3.createBucket('data');
    await s3.createBucket('results');
    for (const [key, make] of Object.entries(dataset)) await s3.put('data', `set/${key}`, await make());
  });
  after(async () => {
    await endpoint.stop();
    await s3.stop();
  });

  it('records every image as succeeded or failed, exits 1, and says why each failed', async () => {
    const file = await writeConfig('faulty.json', config());
    const run = await runCli(['run', '--config', file, '--dataset-uri', 's3://data/set/', '--output', 's3://results/run1'], s3.env());
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stdout, /11 of 15 images succeeded, 4 failed, 1 non-image files skipped/);

    const lines = (await s3Text('results', 'run1/predictions.jsonl')).trim().split('\n');
    const records = lines.map((l) => JSON.parse(l) as PredictionRecord);
    const byKey = new Map(records.map((r) => [r.key, r]));
    const imageKeys = Object.keys(dataset).filter((k) => k !== 'notes.txt');
    assert.equal(records.length, imageKeys.length, 'one line per image, none missing');
    assert.deepEqual([...byKey.keys()].sort(), [...imageKeys].sort());

    const expectLabel = (key: string, label: string): void => {
      const record = byKey.get(key)!;
      assert.equal(record.error, undefined, `${key}: ${JSON.stringify(record.error)}`);
      assert.equal(record.predicted_label, label, key);
    };
    expectLabel('good/red.png', 'red');
    expectLabel('good/green.jpg', 'green');
    expectLabel('good/sub dir/blue ü.jpeg', 'blue');
    expectLabel('odd/palette.PNG', 'green');
    expectLabel('odd/sixteen-bit.png', 'blue');
    expectLabel('odd/cmyk.jpg', 'red');
    expectLabel('odd/exif-rotated.jpg', 'red');
    expectLabel('faults/throttled-yellow.png', byKey.get('faults/throttled-yellow.png')!.predicted_label!);
    assert.deepEqual([byKey.get('odd/exif-rotated.jpg')!.width, byKey.get('odd/exif-rotated.jpg')!.height], [16, 32], 'EXIF rotation applied');
    const gray = byKey.get('odd/grayscale.png')!.predictions!.map((p) => p.score);
    assert.ok(near(gray, [1 / 3, 1 / 3, 1 / 3], 1e-9), `grayscale scores ${gray.join(',')}`);
    const rgba = byKey.get('odd/rgba.png')!.predictions!.map((p) => p.score);
    assert.ok(rgba[0]! > rgba[1]! && rgba[1]! === rgba[2]!, 'alpha flattened onto white: half red, half white');
    assert.equal(byKey.get('good/red.png')!.image, 's3://data/set/good/red.png');

    const failed = (key: string): { stage: string; message: string } => {
      const error = byKey.get(key)!.error;
      assert.ok(error, `${key} should have failed`);
      return error;
    };
    assert.deepEqual([failed('bad/truncated.jpg').stage, failed('bad/zero.png').stage, failed('bad/text.jpg').stage], ['decode', 'decode', 'decode']);
    assert.match(failed('bad/truncated.jpg').message, /truncated or corrupt/);
    assert.match(failed('bad/zero.png').message, /empty/);
    assert.match(failed('bad/text.jpg').message, /not a readable image/);
    assert.equal(failed('faults/failing-magenta.png').stage, 'invoke');
    assert.match(failed('faults/failing-magenta.png').message, /424.*the model failed on this image/);

    const summary = JSON.parse(await s3Text('results', 'run1/analysis.json')) as AnalysisSummary;
    assert.equal(summary.status, 'completed_with_failures');
    assert.deepEqual(summary.dataset, { uri: 's3://data/set/', images_found: 15, files_skipped: 1 });
    assert.deepEqual(summary.images, { succeeded: 11, failed: 4 });
    assert.deepEqual(summary.failures.map((f) => f.image).sort(), [
      's3://data/set/bad/text.jpg',
      's3://data/set/bad/truncated.jpg',
      's3://data/set/bad/zero.png',
      's3://data/set/faults/failing-magenta.png',
    ]);
    // 12 images reached the endpoint (one prediction each), and the 11 that succeeded were
    // explained with the calls out.jsonl lists; yellow needed 1 retry, cyan 2; magenta failed once (424 is final).
    const explained = (await s3Text('results', 'run1/explanations_shap/out.jsonl')).trim().split('\n').map((l) => JSON.parse(l) as { key: string; calls: number });
    assert.equal(explained.length, 11);
    const explanationCalls = explained.reduce((a, r) => a + r.calls, 0);
    assert.equal(summary.explanations?.calls, explanationCalls);
    assert.deepEqual(
      { calls: summary.endpoint_calls.calls, attempts: summary.endpoint_calls.attempts, retries: summary.endpoint_calls.retries, failed: summary.endpoint_calls.failed_calls },
      { calls: 12 + explanationCalls, attempts: 15 + explanationCalls, retries: 3, failed: 1 },
    );
    const effective = JSON.parse(await s3Text('results', 'run1/analysis_config.json')) as { dataset_uri: string; methods: { shap: { image_config: { num_segments: number } } } };
    assert.equal(effective.dataset_uri, 's3://data/set/');
    assert.equal(effective.methods.shap.image_config.num_segments, 20);
  });

  it('reads a manifest from S3; an entry whose object is missing fails that image only', async () => {
    await s3.put('data', 'manifests/good.manifest', JSON.stringify([{ prefix: 's3://data/set/good/' }, 'red.png', 'missing.png', 'green.jpg']));
    const file = await writeConfig('manifest.json', config({ dataset_uri: 's3://data/manifests/good.manifest' }));
    const out = path.join(tmp, 'manifest-out');
    const run = await runCli(['run', '--config', file, '--output', out], s3.env());
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stdout, /2 of 3 images succeeded, 1 failed/);
    const records = (await readFile(path.join(out, 'predictions.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as PredictionRecord);
    assert.deepEqual(records.map((r) => r.key), ['red.png', 'missing.png', 'green.jpg'], "the manifest's order");
    assert.deepEqual(records.map((r) => r.predicted_label ?? r.error?.stage), ['red', 'read', 'green']);
    assert.equal(records[1]!.image, 's3://data/set/good/missing.png');
  });

  it('exits 0 when every image succeeds; writes the same results to a local folder', async () => {
    const file = await writeConfig('good.json', config({ dataset_uri: 's3://data/set/good' }));
    const out = path.join(tmp, 'local-out');
    const run = await runCli(['run', '--config', file, '--output', out], s3.env());
    assert.equal(run.code, 0, run.stderr);
    const files = (await readdir(out)).sort();
    assert.deepEqual(files.filter((f) => !f.startsWith('shap_')), ['analysis.json', 'analysis_config.json', 'explanations_shap', 'predictions.jsonl', 'report.html', 'report.ipynb', 'report.pdf', 'state']);
    assert.equal(files.filter((f) => /^shap_.+\.jpeg$/.test(f)).length, 3, 'one heatmap per image');
    // Every file was staged beside the folder and moved in; the staging folder went with the last.
    await assert.rejects(stat(path.join(tmp, '.local-out.staging')), { code: 'ENOENT' });
    const records = (await readFile(path.join(out, 'predictions.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as PredictionRecord);
    assert.deepEqual(new Set(records.map((r) => r.predicted_label)), new Set(['red', 'green', 'blue']));
    const summary = JSON.parse(await readFile(path.join(out, 'analysis.json'), 'utf8')) as AnalysisSummary;
    assert.equal(summary.status, 'completed');
  });

  it('exits 2 with the JSON path on a config error, and on usage errors', async () => {
    const bad = await writeConfig('bad.json', config({ methods: { shap: { image_config: { model_type: 'IMAGE_CLASSIFICATION', num_segments: 2.5 } } } }));
    const run = await runCli(['run', '--config', bad, '--output', path.join(tmp, 'x')]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /methods\.shap\.image_config\.num_segments: must be integer, got 2\.5/);
    const validate = await runCli(['validate', '--config', bad]);
    assert.equal(validate.code, 2);
    assert.match(validate.stderr, /num_segments/);
    assert.equal((await runCli(['run'])).code, 2, 'missing --config');
    assert.equal((await runCli(['run', '--config', bad, '--bogus'])).code, 2, 'unknown flag');
    assert.equal((await runCli(['frobnicate'])).code, 2, 'unknown command');
    const missing = await runCli(['run', '--config', await writeConfig('nodata.json', config()), '--dataset-uri', path.join(tmp, 'nope'), '--output', path.join(tmp, 'y')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /dataset_uri: .*nope does not exist/);
  });

  it('validate prints the effective config and exits 0', async () => {
    const run = await runCli(['validate', '--config', await writeConfig('ok.json', config())]);
    assert.equal(run.code, 0, run.stderr);
    const effective = JSON.parse(run.stdout) as { methods: { report: { name: string } }; predictor: { content_type: string } };
    assert.equal(effective.methods.report.name, 'report');
  });

  it('--help works on every command', async () => {
    for (const args of [['--help'], ['run', '--help'], ['validate', '--help'], ['run', '-h']]) {
      const run = await runCli(args);
      assert.equal(run.code, 0, args.join(' '));
      assert.match(run.stdout, /Usage|clarify-images (run|validate)/);
    }
  });
});
