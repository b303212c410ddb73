import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import { chromium } from 'playwright-core';
import type { DetectionExplanationRecord, ExplanationRecord } from '../src/output/explanations.js';
import type { AnalysisSummary } from '../src/output/records.js';
import { CHROMIUM_ARGS, ensureChromium } from './support/chromium.js';
import { runCli, startCli } from './support/cli.js';
import { scratchDir } from './support/scratch-dir.js';

async function readLabels(file: string): Promise<{ labels: Uint16Array; width: number }> {
  const { data, info } = await sharp(file).pipelineColourspace('grey16').toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
  return { labels: new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)), width: info.width };
}

async function records<T>(dir: string): Promise<T[]> {
  return (await readFile(path.join(dir, 'explanations_shap', 'out.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as T);
}

function pdfPages(pdf: Buffer): number {
  assert.equal(pdf.subarray(0, 5).toString(), '%PDF-');
  return (pdf.toString('latin1').match(/\/Type\s*\/Page\b/g) ?? []).length;
}

describe('npm run demo: a real classifier and a real detector, offline', () => {
  let out: string;
  let stdout: string;

  before(async () => {
    out = await scratchDir('clarify-demo-');
    const run = await runCli(['demo', '--output', out]);
    stdout = run.stdout;
    assert.equal(run.code, 0, run.stderr);
  });

  it('writes report.html, report.pdf, heatmaps and out.jsonl for both model types', async () => {
    for (const kind of ['classification', 'detection']) {
      const files = await readdir(path.join(out, kind));
      for (const file of ['report.html', 'report.pdf', 'analysis.json', 'predictions.jsonl']) assert.ok(files.includes(file), `${kind}/${file}`);
      assert.ok(files.some((f) => f.startsWith('shap_') && f.endsWith('.jpeg')), `${kind} heatmaps`);
      assert.ok(pdfPages(await readFile(path.join(out, kind, 'report.pdf'))) > 0);
    }
    assert.match(stdout, /report: .*classification\/report\.html/);
    assert.deepEqual((await readdir(out)).sort(), ['classification', 'detection'], 'no staging folder left beside them');
    for (const kind of ['classification', 'detection']) {
      // The default estimator, named as such in the summary and in the report's run facts.
      const summary = JSON.parse(await readFile(path.join(out, kind, 'analysis.json'), 'utf8')) as AnalysisSummary;
      assert.equal(summary.explanations?.estimator, 'tree-adjusted');
      assert.match(await readFile(path.join(out, kind, 'report.html'), 'utf8'), /<th>SHAP<\/th><td>Tree-adjusted Kernel SHAP \(a random-forest surrogate for the top 3 labels or objects of each image, guided sampling;/);
    }
    const classified = await records<ExplanationRecord>(path.join(out, 'classification'));
    assert.deepEqual(classified.map((r) => r.predicted_label), ['happy', 'neutral', 'sad']);
  });

  it('pointing game: each face\'s top-valued segment lies inside that face\'s box', async () => {
    const dir = path.join(out, 'detection');
    let hits = 0;
    let total = 0;
    for (const record of await records<DetectionExplanationRecord>(dir)) {
      const { labels, width } = await readLabels(path.join(dir, record.segments_path));
      for (const object of record.objects) {
        const best = object.shap_values.indexOf(Math.max(...object.shap_values));
        let sx = 0;
        let sy = 0;
        let n = 0;
        labels.forEach((label, p) => {
          if (label !== best) return;
          sx += p % width;
          sy += Math.floor(p / width);
          n += 1;
        });
        const [cx, cy] = [sx / n, sy / n];
        const b = object.box_pixels;
        total += 1;
        if (cx >= b.x0 && cx <= b.x1 && cy >= b.y0 && cy <= b.y1) hits += 1;
      }
    }
    console.log(`pointing game on the demo's faces: ${hits}/${total} hits`);
    assert.ok(total >= 5, `${total} faces explained`);
    assert.ok(hits / total >= 0.8, `${hits}/${total}`);
  });

  it('report.html renders in headless Chromium: every image loads, no console errors', async (t) => {
    const browser = await ensureChromium();
    if ('reason' in browser) {
      t.skip(`Chromium unavailable: ${browser.reason}`);
      return;
    }
    const instance = await chromium.launch({ executablePath: browser.path, args: CHROMIUM_ARGS });
    try {
      for (const kind of ['classification', 'detection']) {
        const page = await instance.newPage();
        const errors: string[] = [];
        page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
        page.on('pageerror', (e) => errors.push(e.message));
        await page.goto(`file://${path.join(out, kind, 'report.html')}`, { waitUntil: 'load' });
        // Runs in the page (this project's types have no DOM).
        const images = (await page.evaluate('Array.from(document.images).map((img) => ({ complete: img.complete, width: img.naturalWidth }))')) as { complete: boolean; width: number }[];
        assert.ok(images.length >= 6, `${kind}: ${images.length} images`);
        assert.ok(images.every((i) => i.complete && i.width > 0), `${kind}: an image did not load`);
        assert.deepEqual(errors, []);
        await page.close();
      }
    } finally {
      await instance.close();
    }
  });

  it('SIGINT stops the demo as it stops a run: exit 130, what was complete written, nothing staged, the detector never started', async () => {
    const stopped = await scratchDir('clarify-demo-stop-');
    const run = startCli(['demo', '--output', stopped]);
    // The classifier's job has listed its images and opened its output (analysis.json says "running")
    // when the signal comes; a signal before that stops the listing, and nothing is written (dataset.test.ts).
    const summaryFile = path.join(stopped, 'classification', 'analysis.json');
    while (!(await readFile(summaryFile, 'utf8').catch(() => '')).includes('"running"')) await new Promise((r) => setTimeout(r, 20));
    run.child.kill('SIGINT');
    assert.equal(await run.exited, 130, run.stderr);
    assert.match(run.stdout, /demo stopped by SIGINT/);
    assert.deepEqual(await readdir(stopped), ['classification'], 'no detection run, no staging folder');
    const summary = JSON.parse(await readFile(path.join(stopped, 'classification', 'analysis.json'), 'utf8')) as AnalysisSummary;
    assert.equal(summary.status, 'partial');
    assert.equal(summary.stop_reason, 'stopped by a signal');
  });
});
