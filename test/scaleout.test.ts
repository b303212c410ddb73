import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, watch } from 'node:fs';
import { cp, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { CLI, runCli, startCli } from './support/cli.js';
import { runProcess } from './support/process.js';
import { type DecodedRequest, startEndpointServer, type TestEndpointServer } from './support/endpoint-server.js';
import { blockImage, REGION_LABELS, regionModel } from './support/region-model.js';
import { startS3Server, type TestS3Server } from './support/s3-server.js';
import { scratchDir } from './support/scratch-dir.js';
import { MergeStoppedError, mergeParts } from '../src/output/merge.js';
import { openStorage, type Storage } from '../src/storage/storage.js';
import { deserializeResult, PartWriter, type PartSummary } from '../src/output/run-writer.js';
import type { AnalysisSummary } from '../src/output/records.js';
import type { AnalysisConfig } from '../src/config/config.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Images of distinct sizes, so the endpoint can count calls per image. Five share a stem with
 * another (ignoring case), so Clarify's names would collide; they get hashed names instead.
 */
const FILES = ['img-0.png', 'img-1.png', 'a/cat.png', 'img-3.png', 'b/cat.png', 'Cat.png', 'dog.png', 'dog.jpg', 'img-8.png'];
const IMAGES = FILES.map((file, i) => ({ file, image: blockImage(2, 3, 20 + 2 * i) }));
const hashed = (stem: string, key: string): string => `${stem}-${createHash('sha1').update(key).digest('hex').slice(0, 8)}`;
const EXPECTED_NAMES = ['img-0', 'img-1', hashed('cat', 'a/cat.png'), 'img-3', hashed('cat', 'b/cat.png'), hashed('Cat', 'Cat.png'), hashed('dog', 'dog.png'), hashed('dog', 'dog.jpg'), 'img-8'];
const sizeKey = (r: { width: number; height: number }): string => `${r.width}x${r.height}`;

async function writeImages(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const { file, image } of IMAGES) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toFile(path.join(dir, file));
  }
}

async function walk(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) out.push(...(await walk(path.join(dir, entry.name), `${prefix}${entry.name}/`)));
    else out.push(`${prefix}${entry.name}`);
  }
  return out.sort();
}

/** A storage that does what `base` does, except for the methods given. */
function delegating(base: Storage, overrides: Partial<Storage>): Storage {
  return {
    location: base.location,
    list: () => base.list(),
    read: (key) => base.read(key),
    readLines: (key, chunkBytes) => base.readLines(key, chunkBytes),
    write: (key, body, contentType) => base.write(key, body, contentType),
    openTextSink: (key, contentType) => base.openTextSink(key, contentType),
    exists: (key) => base.exists(key),
    uri: (key) => base.uri(key),
    ...overrides,
  };
}

/** analysis.json without what legitimately differs between runs: timings and latency (and, for a resumed run, the calls it saved). */
function stable(summary: Record<string, unknown>, resumed = false): Record<string, unknown> {
  const copy = JSON.parse(JSON.stringify(summary)) as Record<string, Record<string, unknown>>;
  delete copy['durations'];
  if (copy['endpoint_calls']) delete copy['endpoint_calls']['mean_latency_ms'];
  if (resumed) {
    // A resumed run makes fewer calls, and says how many results it reused.
    delete copy['endpoint_calls'];
    if (copy['images']) delete copy['images']['reused'];
  }
  return copy;
}

describe('SageMaker Processing, scale-out, resume and graceful stop', () => {
  let endpoint: TestEndpointServer;
  let s3: TestS3Server;
  let tmp: string;
  let data: string;
  const calls = new Map<string, number>();
  let delayMs = 0;

  before(async () => {
    tmp = await scratchDir('clarify-scale-');
    endpoint = await startEndpointServer({
      model: (r) => ({ prediction: regionModel(r.pixels, r.width, r.height) }),
      faults: (r: DecodedRequest) => {
        calls.set(sizeKey(r), (calls.get(sizeKey(r)) ?? 0) + 1);
        return delayMs > 0 ? { delayMs } : undefined;
      },
    });
    s3 = await startS3Server();
    data = path.join(tmp, 'data');
    await writeImages(data);
  });
  after(async () => {
    await endpoint.stop();
    await s3.stop();
  });

  function configObject(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      dataset_type: 'application/x-image',
      methods: { shap: { num_samples: 60, seed: 11, image_config: { model_type: 'IMAGE_CLASSIFICATION', num_segments: 12, segment_compactness: 10 } } },
      predictor: { content_type: 'image/png', probability: 'prediction', label_headers: REGION_LABELS },
      clarify_images: { endpoint_url: endpoint.url, max_concurrency: 4, ...extra },
    };
  }

  async function configFile(name: string, extra: Record<string, unknown> = {}): Promise<string> {
    const file = path.join(tmp, `${name}.json`);
    await writeFile(file, JSON.stringify(configObject(extra)));
    return file;
  }

  /** Every object below an S3 prefix, into a local folder (returned). */
  async function download(bucket: string, prefix: string, local: string): Promise<string> {
    const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    for (const object of listed.Contents ?? []) {
      const file = path.join(local, object.Key!.slice(prefix.length));
      await mkdir(path.dirname(file), { recursive: true });
      const body = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: object.Key! }));
      await writeFile(file, Buffer.from(await body.Body!.transformToByteArray()));
    }
    return local;
  }

  let single: string;
  before(async () => {
    single = path.join(tmp, 'single');
    const run = await runCli(['run', '--config', await configFile('single'), '--dataset-uri', data, '--output', single]);
    assert.equal(run.code, 0, run.stderr);
  });

  async function assertSameOutputs(dir: string, reference: string, resumed = false): Promise<void> {
    for (const file of ['predictions.jsonl', 'explanations_shap/out.jsonl']) {
      const [a, b] = await Promise.all([readFile(path.join(dir, file)), readFile(path.join(reference, file))]);
      assert.equal(Buffer.compare(a, b), 0, `${file} differs`);
    }
    const artifacts = (await walk(reference)).filter((f) => f.startsWith('shap_') || f.startsWith('explanations_shap/segments/'));
    assert.equal(artifacts.length, IMAGES.length * 2);
    // Clarify's names where a stem is unique, hashed names where stems collide: none overwritten.
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.startsWith('shap_')).sort(),
      EXPECTED_NAMES.map((n) => `shap_${n}.jpeg`).sort(),
    );
    for (const file of artifacts) assert.equal(Buffer.compare(await readFile(path.join(dir, file)), await readFile(path.join(reference, file))), 0, `${file} differs`);
    const [a, b] = await Promise.all([readFile(path.join(dir, 'analysis.json'), 'utf8'), readFile(path.join(reference, 'analysis.json'), 'utf8')]);
    assert.deepEqual(stable(JSON.parse(a) as Record<string, unknown>, resumed), stable(JSON.parse(b) as Record<string, unknown>, resumed));
  }

  it('the Processing entrypoint on a fake /opt/ml tree writes what the CLI writes', async () => {
    const root = path.join(tmp, 'opt-ml');
    await mkdir(path.join(root, 'processing', 'input', 'config'), { recursive: true });
    await writeFile(path.join(root, 'processing', 'input', 'config', 'analysis_config.json'), JSON.stringify(configObject()));
    await cp(data, path.join(root, 'processing', 'input', 'data'), { recursive: true });
    // S3UploadMode Continuous uploads every file that appears under the output: watch it.
    const output = path.join(root, 'processing', 'output');
    await mkdir(output, { recursive: true });
    const appeared = new Set<string>();
    const watcher = watch(output, { recursive: true }, (_event, name) => {
      if (name) appeared.add(String(name));
    });
    const run = await runCli(['processing'], { CLARIFY_IMAGES_ML_ROOT: root });
    watcher.close();
    assert.equal(run.code, 0, run.stderr);
    const final = new Set([...(await walk(output)), 'state', 'explanations_shap', 'explanations_shap/segments']);
    assert.ok(appeared.size > IMAGES.length, `the watcher saw ${appeared.size} names`);
    assert.deepEqual([...appeared].filter((name) => !final.has(name)), [], 'only final files ever appear under the output (no temporary or partial names)');
    // The dataset path differs (it is in the fake tree), so compare with that field aligned.
    const summary = JSON.parse(await readFile(path.join(output, 'analysis.json'), 'utf8')) as { dataset: { uri: string } };
    assert.equal(summary.dataset.uri, path.join(root, 'processing', 'input', 'data'));
    for (const file of ['predictions.jsonl', 'explanations_shap/out.jsonl']) {
      const ours = (await readFile(path.join(output, file), 'utf8')).split(path.join(root, 'processing', 'input', 'data')).join(data);
      assert.equal(ours, await readFile(path.join(single, file), 'utf8'), `${file} differs from the CLI run`);
    }
  });

  it('the Processing entrypoint fails with a one-line reason in /opt/ml/output/message', async () => {
    const root = path.join(tmp, 'opt-ml-bad');
    await mkdir(path.join(root, 'processing', 'input', 'config'), { recursive: true });
    await writeFile(path.join(root, 'processing', 'input', 'config', 'analysis_config.json'), JSON.stringify({ ...configObject(), dataset_type: 'text/csv' }));
    const run = await runCli(['processing'], { CLARIFY_IMAGES_ML_ROOT: root });
    assert.equal(run.code, 2);
    const message = await readFile(path.join(root, 'output', 'message'), 'utf8');
    assert.match(message, /^invalid config: dataset_type: this job explains images/);
    assert.equal(message.trim().split('\n').length, 1);
  });

  it('three shards against S3 cover every image once; merged outputs equal the single run', async () => {
    await s3.createBucket('shard-data');
    await s3.createBucket('shard-out');
    for (const { file } of IMAGES) await s3.put('shard-data', `set/${file}`, await readFile(path.join(data, file)));
    const config = await configFile('sharded');
    const runs = await Promise.all([0, 1, 2].map((i) => runCli(['run', '--config', config, '--dataset-uri', 's3://shard-data/set/', '--output', 's3://shard-out/run', '--shard', `${i}/3`], s3.env())));
    runs.forEach((r, i) => assert.equal(r.code, 0, `shard ${i}: ${r.stderr}`));
    // Every image in exactly one part.
    const keysPerPart = await Promise.all(
      [0, 1, 2].map(async (i) => {
        const body = await s3.client.send(new GetObjectCommand({ Bucket: 'shard-out', Key: `run/parts/${i}-of-3/results.jsonl` }));
        return (await body.Body!.transformToString()).trim().split('\n').filter((l) => l).map((l) => (JSON.parse(l) as { key: string }).key);
      }),
    );
    const all = keysPerPart.flat();
    assert.equal(all.length, IMAGES.length);
    assert.deepEqual([...new Set(all)].sort(), IMAGES.map((i) => i.file).sort());
    assert.ok(keysPerPart.every((k) => k.length > 0), `every shard got work: ${keysPerPart.map((k) => k.length).join(', ')}`);
    const merge = await runCli(['merge', '--output', 's3://shard-out/run', '--parts', '3'], s3.env());
    assert.equal(merge.code, 0, merge.stderr);
    // Download the merged run and compare it with the single-process run.
    const local = await download('shard-out', 'run/', path.join(tmp, 'merged'));
    const rewrite = async (file: string): Promise<void> => {
      const text = await readFile(path.join(local, file), 'utf8');
      await writeFile(path.join(local, file), text.split('"s3://shard-data/set/"').join(JSON.stringify(data)).split('s3://shard-data/set/').join(`${data}/`));
    };
    for (const file of ['predictions.jsonl', 'explanations_shap/out.jsonl', 'analysis.json']) await rewrite(file);
    await assertSameOutputs(local, single);
  });

  it('multi-instance Processing with no extra key: hosts write their parts to the job\'s own output S3 URI, the first merges', async () => {
    await s3.createBucket('processing-out');
    const jobConfig = {
      ProcessingJobName: 'clarify-images-2-hosts',
      ProcessingOutputConfig: {
        Outputs: [{ OutputName: 'analysis_result', S3Output: { S3Uri: 's3://processing-out/clarify/output', LocalPath: '/opt/ml/processing/output', S3UploadMode: 'Continuous' } }],
      },
    };
    const hosts = ['algo-1', 'algo-2'];
    const roots = await Promise.all(
      hosts.map(async (host) => {
        const root = path.join(tmp, `ml-${host}`);
        await mkdir(path.join(root, 'processing', 'input', 'config'), { recursive: true });
        await mkdir(path.join(root, 'config'), { recursive: true });
        await writeFile(path.join(root, 'processing', 'input', 'config', 'analysis_config.json'), JSON.stringify({ ...configObject({ merge_timeout_seconds: 120 }), dataset_uri: data }));
        await writeFile(path.join(root, 'config', 'resourceconfig.json'), JSON.stringify({ current_host: host, hosts }));
        await writeFile(path.join(root, 'config', 'processingjobconfig.json'), JSON.stringify(jobConfig));
        return root;
      }),
    );
    const runs = await Promise.all(roots.map((root) => runCli(['processing'], { CLARIFY_IMAGES_ML_ROOT: root, ...s3.env() })));
    runs.forEach((r, i) => assert.equal(r.code, 0, `${hosts[i]}: ${r.stderr}`));
    const local = await download('processing-out', 'clarify/output/', path.join(tmp, 'processing-merged'));
    await assertSameOutputs(local, single);
  });

  it('a part writes each result once the earlier images of its shard are written, not all at the end', async () => {
    // Real results of a one-shard run, fed to the part of shard 1 of 2 that holds every other image.
    const whole = path.join(tmp, 'one-shard');
    assert.equal((await runCli(['run', '--config', await configFile('one-shard'), '--dataset-uri', data, '--output', whole, '--shard', '0/1'])).code, 0);
    const results = (await readFile(path.join(whole, 'parts', '0-of-1', 'results.jsonl'), 'utf8')).trim().split('\n').map(deserializeResult);
    const mine = results.filter((r) => r.index % 2 === 1);
    const out = openStorage(path.join(tmp, 'part-order'));
    const written: number[] = [];
    const counting = delegating(out, {
      openTextSink: async (key, contentType) => {
        const sink = await out.openTextSink(key, contentType);
        return { write: async (text) => (written.push(deserializeResult(text).index), sink.write(text)), close: () => sink.close(), abort: () => sink.abort() };
      },
    });
    const writer = await PartWriter.open(counting, JSON.parse(await readFile(path.join(whole, 'parts', '0-of-1', 'analysis_config.json'), 'utf8')) as AnalysisConfig, { index: 1, count: 2 });
    for (const r of mine) writer.admit(r.index);
    // Finished out of order: the second and third wait for the first; then the first frees them.
    const [first, second, third, ...rest] = mine;
    await writer.add(second!);
    await writer.add(third!);
    assert.deepEqual(written, []);
    await writer.add(first!);
    assert.deepEqual(written, [first!.index, second!.index, third!.index]);
    for (const r of rest) {
      await writer.add(r);
      assert.equal(written[written.length - 1], r.index, 'written as it arrives, in order');
    }
    const summary = await writer.finish({ datasetUri: data, imagesFound: mine.length, filesSkipped: 0, endpoint: 'test', calls: { calls: 0, attempts: 0, retries: 0, failedCalls: 0, latencyMsTotal: 0 }, startedAt: new Date(), partial: false, reused: 0 });
    assert.equal(summary.images.succeeded, mine.length);
    const part = (await readFile(path.join(tmp, 'part-order', 'parts', '1-of-2', 'results.jsonl'), 'utf8')).trim().split('\n');
    assert.deepEqual(part.map((l) => deserializeResult(l).index), mine.map((r) => r.index));
  });

  it('a stopped part says how many of its images it never reached, and its summary has the run\'s facts', async () => {
    // The Processing entrypoint's "stopped by SIGTERM: N images not processed" reads not_processed from this summary.
    const whole = path.join(tmp, 'one-shard');
    const config = JSON.parse(await readFile(path.join(whole, 'parts', '0-of-1', 'analysis_config.json'), 'utf8')) as AnalysisConfig;
    const mine = (await readFile(path.join(whole, 'parts', '0-of-1', 'results.jsonl'), 'utf8')).trim().split('\n').map(deserializeResult).filter((r) => r.index % 2 === 1);
    assert.ok(mine.length >= 3, `${mine.length} images in the shard`);
    const writer = await PartWriter.open(openStorage(path.join(tmp, 'part-stopped')), config, { index: 1, count: 2 });
    for (const r of mine) writer.admit(r.index);
    await writer.add(mine[0]!);
    await writer.add(mine[1]!);
    const calls = { calls: 10, attempts: 12, retries: 2, failedCalls: 2, latencyMsTotal: 400 };
    const summary = await writer.finish({ datasetUri: data, imagesFound: mine.length, filesSkipped: 0, endpoint: 'test', calls, startedAt: new Date(Date.now() - 1500), partial: true, stopReason: 'stopped by a signal', reused: 1 });
    assert.equal(summary.status, 'partial');
    assert.equal(summary.stop_reason, 'stopped by a signal');
    assert.deepEqual(summary.images, { succeeded: 2, failed: 0, not_processed: mine.length - 2, reused: 1 });
    assert.equal((JSON.parse(await readFile(path.join(tmp, 'part-stopped', 'parts', '1-of-2', 'part.json'), 'utf8')) as PartSummary).reused, 1, 'for the merge to add up');
    assert.equal(summary.model_type, config.methods.shap.image_config.model_type);
    assert.equal(summary.endpoint_calls.mean_latency_ms, 50, '400 ms over 8 answered calls');
    assert.ok(summary.durations.total_seconds >= 1.5, `${summary.durations.total_seconds} s`);
    assert.equal(existsSync(path.join(tmp, 'part-stopped', 'parts', '1-of-2', '_SUCCESS')), false, 'a stopped part is not marked complete');
  });

  it('a merge holds one result per part in memory, not the parts: 2 × 10,000 results (40 MB) merge under a 64 MB heap', async () => {
    // Real results of a one-shard run, copied to new dataset positions (the merge reads only their order).
    const template = (await readFile(path.join(tmp, 'one-shard', 'parts', '0-of-1', 'results.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const out = path.join(tmp, 'merge-many');
    const count = 20_000;
    for (const shard of [0, 1]) {
      const dir = path.join(out, 'parts', `${shard}-of-2`);
      await mkdir(dir, { recursive: true });
      await cp(path.join(tmp, 'one-shard', 'parts', '0-of-1', 'analysis_config.json'), path.join(dir, 'analysis_config.json'));
      const part = JSON.parse(await readFile(path.join(tmp, 'one-shard', 'parts', '0-of-1', 'part.json'), 'utf8')) as Record<string, unknown>;
      // Shard 0 reused 5 stored results and shard 1 none: the merged summary adds them up.
      await writeFile(path.join(dir, 'part.json'), JSON.stringify({ ...part, shard: { index: shard, count: 2 }, images_found: count / 2, reused: shard === 0 ? 5 : 0 }));
      const lines: string[] = [];
      for (let index = shard; index < count; index += 2) {
        const { report, ...result } = template[index % template.length]!;
        lines.push(JSON.stringify({ ...result, index, ...(index < 10 ? { report } : {}) }));
      }
      await writeFile(path.join(dir, 'results.jsonl'), `${lines.join('\n')}\n`);
      await writeFile(path.join(dir, '_SUCCESS'), '');
    }
    const partBytes = (await Promise.all([0, 1].map(async (shard) => (await stat(path.join(out, 'parts', `${shard}-of-2`, 'results.jsonl'))).size))).reduce((a, b) => a + b, 0);
    // Read whole and parsed (as the merge did before 2026-12-02), these exceed the heap several times over.
    assert.ok(partBytes > 30e6, `${partBytes} bytes of results`);
    const merge = await runProcess(process.execPath, ['--max-old-space-size=64', CLI, 'merge', '--output', out, '--parts', '2'], { env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } });
    assert.equal(merge.code, 0, merge.stderr.slice(-2000));
    const merged = (await readFile(path.join(out, 'predictions.jsonl'), 'utf8')).trim().split('\n');
    assert.equal(merged.length, count);
    const summary = JSON.parse(await readFile(path.join(out, 'analysis.json'), 'utf8')) as AnalysisSummary;
    assert.equal(summary.images.reused, 5);
  });

  it('a merge stopped while it waits for parts: Processing\'s first host and `merge` exit 143 / 130 saying which parts, and write nothing', async () => {
    await s3.createBucket('stopped-merge');
    const hosts = ['algo-1', 'algo-2'];
    const root = path.join(tmp, 'ml-stopped-merge');
    await mkdir(path.join(root, 'processing', 'input', 'config'), { recursive: true });
    await mkdir(path.join(root, 'config'), { recursive: true });
    await writeFile(path.join(root, 'processing', 'input', 'config', 'analysis_config.json'), JSON.stringify({ ...configObject({ output_uri: 's3://stopped-merge/out' }), dataset_uri: data }));
    await writeFile(path.join(root, 'config', 'resourceconfig.json'), JSON.stringify({ current_host: hosts[0], hosts }));
    const objects = async (): Promise<string[]> => ((await s3.client.send(new ListObjectsV2Command({ Bucket: 'stopped-merge' }))).Contents ?? []).map((o) => o.Key!).sort();
    // The second host never comes: the first writes its part, then waits for the other (an hour by default).
    const stopWhileWaiting = async (args: string[], env: Record<string, string>, signal: NodeJS.Signals): Promise<{ code: number | null; stderr: string }> => {
      const run = startCli(args, env);
      let done = false;
      void run.exited.then(() => (done = true));
      while (!done && !/waiting for 1 of 2 parts/.test(run.stderr)) await new Promise((r) => setTimeout(r, 10));
      run.child.kill(signal);
      return { code: await run.exited, stderr: run.stderr };
    };
    const host = await stopWhileWaiting(['processing'], { CLARIFY_IMAGES_ML_ROOT: root, ...s3.env() }, 'SIGTERM');
    assert.equal(host.code, 143, host.stderr);
    assert.equal(await readFile(path.join(root, 'output', 'message'), 'utf8'), 'merge stopped by SIGTERM while waiting for parts 2 of 2; nothing was written\n');
    const part = await objects();
    assert.ok(part.includes('out/parts/0-of-2/_SUCCESS'), part.join(', '));
    // Each host writes its images' heatmaps and segments at the root; the merge writes the run's files.
    const merged = ['analysis.json', 'analysis_config.json', 'predictions.jsonl', 'explanations_shap/out.jsonl', 'report.html', 'report.pdf', 'report.ipynb'].map((f) => `out/${f}`);
    assert.deepEqual(part.filter((k) => merged.includes(k)), [], 'nothing merged at the output root');
    // The same for the merge command, by Ctrl-C.
    const merge = await stopWhileWaiting(['merge', '--output', 's3://stopped-merge/out', '--parts', '2'], s3.env(), 'SIGINT');
    assert.equal(merge.code, 130, merge.stderr);
    assert.match(merge.stderr, /clarify-images merge: merge stopped by SIGINT while waiting for parts 2 of 2; nothing was written/);
    assert.deepEqual(await objects(), part);
  });

  it('a merge stopped while it writes discards what it began (analysis.json says "running", nothing staged is left); merging again gives the single run', async () => {
    const out = path.join(tmp, 'merge-stopped-writing');
    const config = await configFile('merge-stopped-writing');
    for (const shard of ['0/2', '1/2']) assert.equal((await runCli(['run', '--config', config, '--dataset-uri', data, '--output', out, '--shard', shard])).code, 0);
    const before = await walk(out);
    const stop = new AbortController();
    const local = openStorage(out);
    // Stopped as the merge starts writing: once it has said "running", before the first result.
    const stopping = delegating(local, {
      write: async (key, body, contentType) => {
        await local.write(key, body, contentType);
        if (key === 'analysis.json') stop.abort('SIGTERM');
      },
    });
    await assert.rejects(mergeParts(stopping, { parts: 2, timeoutMs: 10_000, stop: stop.signal }), (error: unknown) => {
      assert.ok(error instanceof MergeStoppedError);
      assert.equal(error.signal, 'SIGTERM');
      assert.match(error.message, /^merge stopped by SIGTERM while writing: the merged predictions and explanations were discarded, analysis.json says "running"; run the merge again$/);
      return true;
    });
    assert.equal((JSON.parse(await readFile(path.join(out, 'analysis.json'), 'utf8')) as { status: string }).status, 'running');
    assert.deepEqual((await walk(out)).filter((f) => !before.includes(f)).sort(), ['analysis.json', 'analysis_config.json'], 'no merged predictions, explanations or report');
    assert.deepEqual((await readdir(tmp)).filter((f) => f.includes('staging')), [], 'no staging folder beside the output');
    const again = await runCli(['merge', '--output', out, '--parts', '2']);
    assert.equal(again.code, 0, again.stderr);
    await assertSameOutputs(out, single);
  });

  it('SIGTERM mid-way, then a re-run: every image once, no calls for finished images, no partial files', async () => {
    const out = path.join(tmp, 'stopped');
    const config = await configFile('stoppable', { stop_grace_seconds: 0 });
    delayMs = 15;
    calls.clear();
    const run = startCli(['run', '--config', config, '--dataset-uri', data, '--output', out]);
    // Stop once two images are complete (their markers exist).
    for (;;) {
      const markers = await readdir(path.join(out, 'state')).catch(() => []);
      if (markers.length >= 2) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    run.child.kill('SIGTERM');
    assert.equal(await run.exited, 143, run.stderr);
    delayMs = 0;
    const files = await walk(out);
    assert.deepEqual(files.filter((f) => f.includes('.partial-')), [], 'no partial file left');
    const summary = JSON.parse(await readFile(path.join(out, 'analysis.json'), 'utf8')) as { status: string; images: { succeeded: number; not_processed: number } };
    assert.equal(summary.status, 'partial');
    const finished = (await readdir(path.join(out, 'state'))).length;
    assert.ok(finished >= 2 && finished < IMAGES.length, `${finished} finished before the stop`);
    const written = (await readFile(path.join(out, 'predictions.jsonl'), 'utf8')).trim().split('\n').filter((l) => l);
    assert.equal(written.length, summary.images.succeeded, 'predictions.jsonl holds the complete images');
    const finishedKeys = written.map((l) => (JSON.parse(l) as { key: string }).key);

    const before = new Map(calls);
    const again = await runCli(['run', '--config', config, '--dataset-uri', data, '--output', out]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`${finishedKeys.length} images? reused`));
    // One call checks that the endpoint still gives the stored answer (the first finished image's prediction); no other.
    const repeated = finishedKeys.map((key) => {
      const { image } = IMAGES.find((i) => i.file === key)!;
      return (calls.get(sizeKey(image)) ?? 0) - (before.get(sizeKey(image)) ?? 0);
    });
    assert.deepEqual(repeated.filter((n) => n > 0), [1], `calls for the finished images: ${repeated.join(', ')}`);
    const lines = (await readFile(path.join(out, 'predictions.jsonl'), 'utf8')).trim().split('\n');
    assert.deepEqual(lines.map((l) => (JSON.parse(l) as { key: string }).key), IMAGES.map((i) => i.file).sort(), 'every image once, in order');
    assert.deepEqual((await walk(out)).filter((f) => f.includes('.partial-')), []);
    await assertSameOutputs(out, single, true);
  });

  it('a re-run verifies reused images: a missing heatmap is recomputed; --force recomputes all', async () => {
    const out = path.join(tmp, 'verify');
    const config = await configFile('verify');
    assert.equal((await runCli(['run', '--config', config, '--dataset-uri', data, '--output', out])).code, 0);
    const heatmap = (await readdir(out)).find((f) => f === 'shap_img-3.jpeg')!;
    await rm(path.join(out, heatmap));
    calls.clear();
    const again = await runCli(['run', '--config', config, '--dataset-uri', data, '--output', out]);
    assert.match(again.stdout, /8 images reused/);
    // The image with the missing heatmap is explained again; one other call checks the endpoint's answer.
    assert.ok(calls.get(sizeKey(IMAGES[3]!.image))! > 1, 'the image with the missing heatmap was explained again');
    assert.deepEqual([...calls].filter(([key]) => key !== sizeKey(IMAGES[3]!.image)).map(([, n]) => n), [1], 'and one other call, the check');
    assert.ok((await stat(path.join(out, heatmap))).size > 0);
    calls.clear();
    const forced = await runCli(['run', '--config', config, '--dataset-uri', data, '--output', out, '--force']);
    assert.doesNotMatch(forced.stdout, /reused/);
    assert.equal(calls.size, IMAGES.length);
  });

  it('Dockerfile: the entrypoint exists in the package, and its `npm ci --omit=dev` layout runs the Processing contract as the CLI does', async () => {
    const dockerfile = await readFile(path.join(repo, 'Dockerfile'), 'utf8');
    assert.match(dockerfile, /^FROM node:20-slim/m);
    assert.match(dockerfile, /npm ci --omit=dev/);
    // Root, as SageMaker mounts /opt/ml/processing/output owned by root (a non-root USER cannot write it).
    assert.doesNotMatch(dockerfile, /^USER /m);
    assert.match(dockerfile, /apt-get install -y --no-install-recommends fonts-dejavu-core/, 'fonts for the heatmap labels');
    const entrypoint = /ENTRYPOINT \["node", "\/opt\/clarify-images\/([^"]+)"\]/.exec(dockerfile)?.[1];
    assert.equal(entrypoint, 'bin/clarify-images.js');
    assert.match(dockerfile, /^CMD \["processing"\]$/m);
    const pkg = JSON.parse(await readFile(path.join(repo, 'package.json'), 'utf8')) as { files: string[]; bin: Record<string, string> };
    assert.equal(pkg.bin['clarify-images'], entrypoint);
    // The runtime image's layout: production dependencies only, the compiled CLI, schemas.
    const layout = path.join(tmp, 'image');
    await mkdir(layout, { recursive: true });
    for (const item of ['package.json', 'package-lock.json', 'bin', 'config-schemas', 'examples']) await cp(path.join(repo, item), path.join(layout, item), { recursive: true });
    await cp(path.join(repo, 'dist', 'src'), path.join(layout, 'dist', 'src'), { recursive: true });
    const install = await new Promise<{ code: number | null; err: string }>((resolve) => {
      const child = spawn('npm', ['ci', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: layout, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      child.on('close', (code) => resolve({ code, err }));
    });
    assert.equal(install.code, 0, install.err);
    await assert.rejects(stat(path.join(layout, 'node_modules', 'typescript')), 'no dev dependencies');
    await assert.rejects(stat(path.join(layout, 'node_modules', '@tensorflow')), 'no model runtime in the container');
    for (const args of [['--help'], ['processing', '--help']]) {
      const help = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, [path.join(layout, entrypoint!), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (c: Buffer) => (out += c.toString()));
        child.on('close', (code) => resolve({ code, out }));
      });
      assert.equal(help.code, 0, args.join(' '));
      assert.match(help.out, /processing/);
    }
    // The container's default command (CMD ["processing"]) with the image's environment, from the
    // layout alone: a module, file or font only a clone has would fail it here.
    const root = path.join(tmp, 'opt-ml-image');
    await mkdir(path.join(root, 'processing', 'input', 'config'), { recursive: true });
    await writeFile(path.join(root, 'processing', 'input', 'config', 'analysis_config.json'), JSON.stringify(configObject()));
    await cp(data, path.join(root, 'processing', 'input', 'data'), { recursive: true });
    const env = { PATH: process.env['PATH'], HOME: tmp, NODE_ENV: 'production', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', CLARIFY_IMAGES_ML_ROOT: root };
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)![1]!) as string[];
    const job = await runProcess(process.execPath, [path.join(layout, entrypoint!), ...cmd], { cwd: layout, env });
    assert.equal(job.code, 0, job.stdout + job.stderr);
    const output = path.join(root, 'processing', 'output');
    for (const file of ['predictions.jsonl', 'explanations_shap/out.jsonl']) {
      const ours = (await readFile(path.join(output, file), 'utf8')).split(path.join(root, 'processing', 'input', 'data')).join(data);
      assert.equal(ours, await readFile(path.join(single, file), 'utf8'), `${file} differs from the CLI run`);
    }
    for (const file of ['report.html', 'report.pdf', 'report.ipynb', ...EXPECTED_NAMES.map((n) => `shap_${n}.jpeg`)]) assert.ok((await stat(path.join(output, file))).size > 0, file);
  });
});
