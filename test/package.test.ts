/**
 * The job's production install carries no model runtime: `npm pack`, then install the tarball
 * into an empty folder as a user would (`npm install clarify-images`), and run the CLI from there.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { colourShareModel, startEndpointServer, type TestEndpointServer } from './support/endpoint-server.js';
import { runProcess } from './support/process.js';
import * as fx from './support/fixtures.js';
import { scratchDir } from './support/scratch-dir.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Measured 2026-11-29: the job's install is 67 MB of files (sharp's libvips, the AWS SDK clients
 * and pdfkit are most of it), against 416 MB for a clone's node_modules with the model runtime.
 * The bound leaves room for dependency updates, not for a model runtime (~300 MB).
 */
const MAX_INSTALL_MB = 80;

const env = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
const run = (command: string, args: readonly string[], cwd: string): ReturnType<typeof runProcess> => runProcess(command, args, { cwd, env });

/** Bytes of every file below dir (what `du --apparent-size` counts). */
async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) total += await treeBytes(full);
    else if (entry.isFile()) total += (await stat(full)).size;
  }
  return total;
}

describe('production install from the packed tarball (npm install clarify-images)', () => {
  let tmp: string;
  let app: string;
  let endpoint: TestEndpointServer;
  let cli: string;

  before(async () => {
    tmp = await scratchDir('ci-package-');
    const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], repo);
    assert.equal(packed.code, 0, packed.stderr);
    const tarball = path.join(tmp, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename);
    app = path.join(tmp, 'app');
    await mkdir(app);
    await writeFile(path.join(app, 'package.json'), JSON.stringify({ name: 'user-app', version: '1.0.0', private: true }));
    const installed = await run('npm', ['install', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', tarball], app);
    assert.equal(installed.code, 0, installed.stderr);
    cli = path.join(app, 'node_modules', 'clarify-images', 'bin', 'clarify-images.js');
    endpoint = await startEndpointServer({ model: colourShareModel });
  });

  after(async () => {
    await endpoint?.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  it('has no TensorFlow.js and no model weights, and stays below the stated size', async () => {
    const modules = path.join(app, 'node_modules');
    await assert.rejects(stat(path.join(modules, '@tensorflow')), 'no @tensorflow package');
    await assert.rejects(stat(path.join(modules, '@vladmandic')), 'no face-api weights');
    const mb = (await treeBytes(modules)) / 1e6;
    console.log(`# production install: ${mb.toFixed(1)} MB (bound ${MAX_INSTALL_MB} MB)`);
    assert.ok(mb < MAX_INSTALL_MB, `${mb.toFixed(1)} MB`);
  });

  it('runs --help and a small job against a local endpoint', async () => {
    const help = await run(process.execPath, [cli, '--help'], app);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /Commands:/);
    const data = path.join(tmp, 'images');
    await mkdir(data);
    await writeFile(path.join(data, 'red.png'), await fx.solidPng(24, 24, [220, 20, 20]));
    await writeFile(path.join(data, 'blue.jpg'), await fx.solidJpeg(24, 24, [20, 20, 220]));
    const config = path.join(tmp, 'analysis_config.json');
    await writeFile(
      config,
      JSON.stringify({
        dataset_type: 'application/x-image',
        methods: { shap: { num_samples: 20, image_config: { model_type: 'IMAGE_CLASSIFICATION', num_segments: 4 } } },
        predictor: { label_headers: ['red', 'green', 'blue'], content_type: 'image/png' },
        clarify_images: { endpoint_url: endpoint.url },
      }),
    );
    const out = path.join(tmp, 'out');
    const job = await run(process.execPath, [cli, 'run', '--config', config, '--dataset-uri', data, '--output', out, '--quiet'], app);
    assert.equal(job.code, 0, job.stdout + job.stderr);
    const predictions = (await readFile(path.join(out, 'predictions.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { predicted_label: string });
    assert.deepEqual(predictions.map((p) => p.predicted_label).sort(), ['blue', 'red']);
    await stat(path.join(out, 'report.pdf'));
  });

  it('serve-model and demo say how to install the models instead of a stack trace', async () => {
    for (const args of [['serve-model', '--model', 'face-expression', '--port', '0'], ['demo', '--output', path.join(tmp, 'demo')]]) {
      const result = await run(process.execPath, [cli, ...args], app);
      assert.equal(result.code, 1, args[0]);
      assert.match(result.stderr, /bundled models need packages that are not installed/);
      assert.match(result.stderr, /npm install @tensorflow\/tfjs@\^4\.22\.0 @tensorflow\/tfjs-backend-wasm@\^4\.22\.0 @vladmandic\/face-api@\^1\.7\.15/);
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
    }
  });
});
