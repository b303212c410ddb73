/**
 * Pictures, reports and command-line messages a person reads: checked by program where a program
 * can (text inside the picture, PDF text through poppler's pdftotext, section order), and rendered
 * for a look in the session that changes them.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import { createRgbImage, type RgbImage } from '../src/image/rgb.js';
import { heatmapTextLayer, pictureLayout, renderHeatmap, renderSegmentBoundaries, segmentAnchors } from '../src/output/heatmap.js';
import { type AnalysisConfig, validateConfig } from '../src/config/config.js';
import { estimatorDescription, IMPORTANCE_SHOWN, type ReportFacts, type ReportImage, renderHtml, renderPdf } from '../src/output/report.js';
import { slic } from '../src/segment/slic.js';
import { runCli } from './support/cli.js';
import { ensureAptPackage } from './support/debian.js';
import { runProcess as run } from './support/process.js';
import { blockImage } from './support/region-model.js';
import { colourShareModel, startEndpointServer } from './support/endpoint-server.js';
import { scratchDir } from './support/scratch-dir.js';


/** RGBA pixels of an SVG text layer. */
async function rasterise(svg: string): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(Buffer.from(svg)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

function image(width: number, height: number, fill: number): RgbImage {
  return createRgbImage(width, height, new Uint8Array(width * height * 3).fill(fill));
}

describe('heatmaps a person can read', () => {
  before(async () => {
    // librsvg draws the text with the system's fonts; Debian's DejaVu is what the pictures are sized for.
    const missing = await ensureAptPackage('fonts-dejavu-core', async () => (await run('fc-list', [])).stdout.includes('DejaVuSans'));
    if (missing) console.log(`# ${missing.reason}`);
  });

  for (const [width, height, maxAbs, title] of [
    [128, 128, 0.521, 'happy: 0.974 (probability); base value 0.143'],
    [64, 48, 14.3333, 'a very long label name that goes on and on: 14.333 (log-odds); base value −1.876'],
    [1000, 300, 0.000123, 'Object 1: face 0.97'],
    [300, 1000, 123.456, 'x'],
  ] as const) {
    it(`${width}×${height}, values ±${maxAbs}: every label is inside the picture and has ink`, async () => {
      const layout = pictureLayout(width, height);
      assert.ok(Math.max(layout.imageWidth, layout.imageHeight) >= 480 || layout.scale === 1, 'small images are enlarged');
      assert.ok(layout.fontSize >= 13);
      const heatmap = await renderHeatmap(image(width, height, 128), { width, height, count: 1, labels: new Int32Array(width * height) } as never, [maxAbs], { title, unit: 'log-odds' });
      const meta = await sharp(heatmap).metadata();
      const svg = heatmapTextLayer(layout, meta.width!, meta.height!, maxAbs, { title, unit: 'log-odds' });
      assert.match(svg, /SHAP values \(log-odds\)/, 'the unit is said');
      const { data, width: w, height: h } = await rasterise(svg);
      const alpha = (x: number, y: number): number => data[(y * w + x) * 4 + 3]!;
      let border = 0;
      for (let x = 0; x < w; x++) border += alpha(x, 0) + alpha(x, h - 1);
      for (let y = 0; y < h; y++) border += alpha(0, y) + alpha(w - 1, y);
      assert.equal(border, 0, 'no text touches an edge (none is cut off)');
      // Ink right of the bar: the three value labels; in the header: the title.
      let labels = 0;
      let header = 0;
      for (let y = 0; y < h; y++) for (let x = layout.imageWidth + 30; x < w; x++) labels += alpha(x, y) > 128 ? 1 : 0;
      for (let y = 0; y < layout.top; y++) for (let x = 0; x < w; x++) header += alpha(x, y) > 128 ? 1 : 0;
      assert.ok(labels > 50 && header > 50, `ink: labels ${labels}, header ${header}`);
    });
  }

  it('the title band does not depend on the image: legible on white and on black', async () => {
    const segments = { width: 100, height: 80, count: 1, labels: new Int32Array(100 * 80) } as never;
    const [white, black] = await Promise.all(
      [255, 0].map(async (fill) => sharp(await renderHeatmap(image(100, 80, fill), segments, [0.5], { title: 'happy 0.97' })).raw().toBuffer({ resolveWithObject: true })),
    );
    const { info } = white!;
    const top = pictureLayout(100, 80).top;
    let differ = 0;
    for (let i = 0; i < top * info.width * 3; i++) differ += Math.abs(white!.data[i]! - black!.data[i]!) > 40 ? 1 : 0;
    assert.equal(differ, 0);
  });

  it('numbers segments where they are, and hatches what was always masked with context < 1', async () => {
    const blocks = blockImage(2, 3, 40);
    const rgb = createRgbImage(blocks.width, blocks.height, blocks.data);
    const segments = slic(rgb, { numSegments: 6, compactness: 10 });
    const anchors = segmentAnchors(segments);
    anchors.forEach((a, id) => assert.equal(segments.labels[a.y * segments.width + a.x], id, `anchor of segment ${id} lies in it`));
    const values = Array.from({ length: segments.count }, (_, i) => (i % 2 ? 0.3 : -0.2));
    const region = { x0: 0, y0: 0, x1: 60, y1: 80 };
    const picture = await renderHeatmap(rgb, segments, values, { title: 'Object 1: face 0.9', contextRegion: region, numbered: [0, 1, 2] });
    const { data, info } = await sharp(picture).raw().toBuffer({ resolveWithObject: true });
    const layout = pictureLayout(rgb.width, rgb.height);
    // Outside the context region: gray hatching, no blue or red tint.
    let tinted = 0;
    for (let y = 5; y < rgb.height - 5; y++) {
      for (let x = 70; x < rgb.width - 5; x++) {
        const o = ((layout.top + y * layout.scale) * info.width + x * layout.scale) * 3;
        if (Math.abs(data[o]! - data[o + 2]!) > 30) tinted += 1;
      }
    }
    assert.equal(tinted, 0, 'no tint outside the context region');
    const numbered = await renderSegmentBoundaries(rgb, segments);
    assert.equal((await sharp(numbered).metadata()).width, rgb.width * layout.scale);
  });
});

describe('reports a person can read', () => {
  const facts = (overrides: Partial<ReportFacts> = {}): ReportFacts => ({
    title: 'SageMaker Analysis Report',
    rows: [
      ['Model type', 'IMAGE_CLASSIFICATION'],
      ['Time', '12 s (2026-11-29T10:00:00Z → 2026-11-29T10:00:12Z)'],
    ],
    failures: [{ image: 's3://bucket/images/broken.jpg', stage: 'decode', message: 'image is truncated or corrupt: '.padEnd(400, 'x') }],
    failed: 1,
    importance: Array.from({ length: 257 }, (_, i) => ({ label: `${String(i + 1).padStart(3, '0')}.class`, value: (257 - i) / 1000 })),
    aggMethod: 'mean_abs',
    classification: true,
    shown: 1,
    total: 2,
    ...overrides,
  });
  const images = async (): Promise<ReportImage[]> => {
    const jpeg = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#8090a0' } }).jpeg().toBuffer();
    return [
      {
        uri: 's3://bucket/images/cat.jpg',
        name: 'cat',
        width: 64,
        height: 48,
        pair: jpeg,
        segments: jpeg,
        numSegments: 12,
        calls: 301,
        unit: 'log-odds',
        ranking: [{ label: '001.class', score: 0.9 }],
        panels: [{ title: 'Predicted: 001.class', heatmap: jpeg, prediction: 2.2, baseValue: -1.5, topSegments: [{ segment: 3, value: -0.4, standardError: 0.05 }] }],
      },
    ];
  };

  it('the run facts name the estimator that solved the run, as the config resolved it', () => {
    const given = (clarify: Record<string, unknown>, samples = 300, segments = 20): AnalysisConfig =>
      validateConfig({
        dataset_type: 'application/x-image',
        methods: { shap: { num_samples: samples, image_config: { model_type: 'IMAGE_CLASSIFICATION', num_segments: segments } } },
        predictor: { content_type: 'image/jpeg', probability: 'prediction', label_headers: ['a', 'b'] },
        clarify_images: { endpoint_url: 'http://127.0.0.1:1', ...clarify },
      });
    assert.match(estimatorDescription(given({})), /^Tree-adjusted Kernel SHAP \(a random-forest surrogate for the top 3 labels or objects of each image, guided sampling; Kernel SHAP alone/);
    assert.doesNotMatch(estimatorDescription(given({ guided_sampling: false })), /guided/);
    assert.equal(estimatorDescription(given({ estimator: 'kernel' })), 'Kernel SHAP');
    // Where the default yields to Kernel SHAP (too much CPU per image), the run facts say Kernel SHAP.
    const large = given({}, 30_000, 200);
    assert.equal(large.clarify_images.estimator, 'kernel');
    assert.equal(estimatorDescription(large), 'Kernel SHAP');
  });

  it('HTML: run facts, then failures, then global importance (sorted, explained, the top 10 with the rest folded), then images', async () => {
    const html = renderHtml(facts(), await images());
    const at = (id: string): number => html.indexOf(`id="${id}"`);
    assert.ok(at('run') < at('failures') && at('failures') < at('importance') && at('importance') < at('images'), 'section order');
    assert.match(html, /a label can rank high without being predicted for any image/);
    const visible = html.slice(at('importance'), html.indexOf('<details>'));
    assert.equal((visible.match(/<tr><td>\d+<\/td>/g) ?? []).length, IMPORTANCE_SHOWN);
    assert.match(html, /<details><summary>All 257 labels<\/summary>/);
    assert.match(html, /values in log-odds/);
    const empty = renderHtml(facts({ importance: undefined, failures: [], failed: 0 }), []);
    assert.match(empty, /No data: no image was explained/);
    assert.doesNotMatch(empty, /0\.0000/);
  });

  it('PDF: a real font is embedded, so → and − survive (pdftotext), importance fits the first page, the full list is at the end', async (t) => {
    const missing = await ensureAptPackage('poppler-utils', async () => (await run('pdftotext', ['-v'])).code === 0);
    if (missing) {
      t.skip(missing.reason);
      return;
    }
    const pdf = await renderPdf(facts(), await images());
    const dir = await scratchDir('ci-pdf-');
    const file = path.join(dir, 'report.pdf');
    await writeFile(file, pdf);
    const text = (await run('pdftotext', ['-layout', file, '-'])).stdout;
    assert.match(text, /2026-11-29T10:00:00Z → 2026-11-29T10:00:12Z/);
    assert.match(text, /prediction −\s+base value/);
    assert.match(text, /segment 3: −?-?0\.4000 ± 0\.0500/);
    const pages = text.split('\f');
    assert.match(pages[0]!, /Global importance/);
    assert.match(pages[0]!, /10\. 010\.class/);
    assert.doesNotMatch(pages[0]!, /11\. 011\.class/, 'only the top labels on the first page');
    assert.match(pages.slice(1).join(''), /257\. 257\.class/, 'every label, at the end');
    const fonts = (await run('pdffonts', [file])).stdout;
    assert.match(fonts, /DejaVu/i);
    assert.doesNotMatch(fonts, /Helvetica/);
  });
});

describe('a command line that says what is wrong', () => {
  it('a usage error is one line with a pointer to --help, and suggests the closest option or command', async () => {
    const option = await runCli(['run', '--confg', 'x.json']);
    assert.equal(option.code, 2);
    assert.equal(option.stderr.trim().split('\n').length, 1);
    assert.match(option.stderr, /unknown option --confg \(did you mean --config\?\)\. Run 'clarify-images run --help'/);
    const command = await runCli(['valdate']);
    assert.match(command.stderr, /unknown command "valdate" \(did you mean "validate"\?\)/);
    assert.equal(command.stderr.trim().split('\n').length, 1);
  });

  it("on Node < 22 the AWS SDK's 8-line warning is replaced by one note where AWS is used", async (t) => {
    if (Number(process.versions.node.split('.')[0]) >= 22) {
      t.skip('the warning is only printed on Node < 22');
      return;
    }
    const endpoint = await startEndpointServer({ model: colourShareModel });
    try {
      const dir = await scratchDir('ci-notice-');
      const img = path.join(dir, 'red.png');
      await writeFile(img, await sharp({ create: { width: 16, height: 16, channels: 3, background: '#d02020' } }).png().toBuffer());
      const config = path.join(dir, 'config.json');
      await writeFile(
        config,
        JSON.stringify({
          dataset_type: 'application/x-image',
          methods: { shap: { image_config: { model_type: 'IMAGE_CLASSIFICATION' } } },
          predictor: { endpoint_name: 'my-endpoint', content_type: 'image/png', label_headers: ['red', 'green', 'blue'] },
        }),
      );
      const env: Record<string, string | undefined> = { ...process.env, AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: endpoint.url, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1' };
      delete env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'];
      const result = await run(process.execPath, [path.resolve('bin/clarify-images.js'), 'precheck', '--config', config, '--image', img], { env });
      assert.equal(result.code, 0, result.stderr);
      assert.doesNotMatch(result.stderr, /NodeVersionSupportWarning/);
      assert.equal(result.stderr.match(/^note: AWS SDK releases after January 2027 need Node 22/gm)?.length, 1);
    } finally {
      await endpoint.stop();
    }
  });

  it('a missing config file is said to be missing', async () => {
    const missing = await runCli(['validate', '--config', '/nonexistent/analysis_config.json']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /the config file \/nonexistent\/analysis_config\.json does not exist/);
  });

  it('the demo configs work from any folder: local paths in a config are relative to the config file', async () => {
    const config = path.resolve('examples/demo/classification.analysis_config.json');
    const result = await run(process.execPath, [path.resolve('bin/clarify-images.js'), 'validate', '--config', config], { cwd: os.tmpdir() });
    assert.equal(result.code, 0);
    assert.equal((JSON.parse(result.stdout) as { dataset_uri: string }).dataset_uri, path.resolve('examples/images/classification'));
  });
});
