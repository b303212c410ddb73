import assert from 'node:assert/strict';
import { appendFile, cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import sharp from 'sharp';
import { validateConfig } from '../src/config/config.js';
import { runJob } from '../src/job.js';
import { spearman, topOverlap } from '../src/compare/stats.js';
import { readRun } from '../src/compare/runs.js';
import { runCli } from './support/cli.js';
import { startEndpointServer, type TestEndpointServer } from './support/endpoint-server.js';
import { blockImage, REGION_LABELS, regionMeans, regionScores } from './support/region-model.js';
import { scratchDir } from './support/scratch-dir.js';

const SCIPY_SPEARMAN = 0.19885368120992467; // scipy.stats.spearmanr([3,1,4,1,5,9,2,6], [2,7,1,8,2,8,1,8])
type Variant = 'normal' | 'swap' | 'ignore-region';
// The image the variants change is the only one of this size.
const TARGET = { width: 96, height: 64 };

describe('clarify-images compare', () => {
  let endpoint: TestEndpointServer;
  let tmp: string;
  let data: string;
  let variant: Variant = 'normal';

  before(async () => {
    tmp = await scratchDir('clarify-compare-');
    endpoint = await startEndpointServer({
      model: (r) => {
        const means = regionMeans(r.pixels, r.width, r.height);
        const isTarget = r.width === TARGET.width && r.height === TARGET.height;
        if (isTarget && variant === 'ignore-region') for (const c of [0, 1, 2]) means[4 * 3 + c] = 0.5; // the centre region no longer counts
        const scores = regionScores(means);
        if (isTarget && variant === 'swap') [scores[0], scores[1]] = [scores[1]!, scores[0]!];
        return { prediction: scores };
      },
    });
    data = path.join(tmp, 'data');
    await mkdir(data, { recursive: true });
    const images = { 'a-blocks.png': blockImage(2, 2), 'target.png': blockImage(2, 3, 32), 'c-blocks.png': blockImage(3, 2, 24) };
    for (const [file, image] of Object.entries(images)) {
      await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toFile(path.join(data, file));
    }
    assert.deepEqual([images['target.png'].width, images['target.png'].height], [TARGET.width, TARGET.height]);
  });
  after(async () => endpoint.stop());

  async function run(name: string, v: Variant, numSegments = 6): Promise<string> {
    variant = v;
    const out = path.join(tmp, name);
    const config = validateConfig({
      dataset_type: 'application/x-image',
      methods: { shap: { num_samples: 40, seed: 5, image_config: { model_type: 'IMAGE_CLASSIFICATION', num_segments: numSegments, segment_compactness: 10 } } },
      predictor: { content_type: 'image/png', probability: 'prediction', label_headers: REGION_LABELS },
      clarify_images: { endpoint_url: endpoint.url },
    });
    const { summary } = await runJob(config, { datasetUri: data, outputUri: out });
    assert.equal(summary.images.failed, 0);
    variant = 'normal';
    return out;
  }

  let baseline: string;
  before(async () => {
    baseline = await run('baseline', 'normal');
  });

  it('two runs of the same model and seed compare clean (exit 0)', async () => {
    const again = await run('same', 'normal');
    const md = path.join(tmp, 'same.md');
    const result = await runCli(['compare', '--baseline', baseline, '--candidate', again, '--markdown', md]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /3 images compared, 0 regressed/);
    assert.match(await readFile(md, 'utf8'), /✅ clarify-images: 3 images within tolerance/);
  });

  for (const [v, reason] of [
    ['swap', /top-1 label changed/],
    ['ignore-region', /explanation rank correlation|top-5 segments kept|changed sign|score of "\w+" changed by/],
  ] as const) {
    it(`catches a model that ${v === 'swap' ? 'swaps two classes' : 'ignores one region'} for one image, naming it first (exit 1)`, async () => {
      const candidate = await run(`candidate-${v}`, v);
      const md = path.join(tmp, `${v}.md`);
      const junit = path.join(tmp, `${v}.xml`);
      const result = await runCli(['compare', '--baseline', baseline, '--candidate', candidate, '--markdown', md, '--junit', junit]);
      assert.equal(result.code, 1, result.stdout + result.stderr);
      const markdown = await readFile(md, 'utf8');
      const firstRow = markdown.split('\n').find((l) => l.startsWith('| `'));
      assert.ok(firstRow?.startsWith('| `target.png` | ❌ regression |'), `first row: ${firstRow}`);
      assert.match(firstRow!, reason);
      assert.match(markdown, /#### `target.png`/);
      assert.match(markdown, /<img src="[^"]+shap_target\.jpeg"/, 'heatmaps side by side');
      assert.equal((markdown.match(/❌ regression/g) ?? []).length, 1, 'only the changed image regresses');

      const xml = await readFile(junit, 'utf8');
      assert.equal(XMLValidator.validate(xml), true);
      const parsed = new XMLParser({ ignoreAttributes: false }).parse(xml) as { testsuite: { '@_tests': string; '@_failures': string; testcase: { '@_name': string; failure?: unknown }[] } };
      assert.equal(parsed.testsuite.testcase.length, 3, 'one testcase per image');
      assert.equal(parsed.testsuite['@_failures'], '1');
      assert.deepEqual(parsed.testsuite.testcase.filter((c) => c.failure !== undefined).map((c) => c['@_name']), ['target.png']);
    });
  }

  it('refuses runs made with different configs, naming the field (exit 2)', async () => {
    const other = await run('other-segments', 'normal', 9);
    const result = await runCli(['compare', '--baseline', baseline, '--candidate', other]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /methods\.shap\.image_config\.num_segments: baseline 6, candidate 9/);
  });

  it('says what is wrong with its inputs (exit 2)', async () => {
    const missing = await runCli(['compare', '--baseline', path.join(tmp, 'nope'), '--candidate', baseline]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--baseline: cannot read .*analysis_config\.json/);
    const thresholds = path.join(tmp, 'bad-thresholds.json');
    await writeFile(thresholds, JSON.stringify({ max_score_chnage: 0.1 }));
    const bad = await runCli(['compare', '--baseline', baseline, '--candidate', baseline, '--thresholds', thresholds]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown threshold "max_score_chnage"/);
  });

  it('reads an output a line at a time, keeping only the top class\'s explanation; a damaged explanations file is said, not skipped (exit 2)', async () => {
    const run = await readRun(baseline, 'baseline');
    assert.ok((run.config.predictor.label_headers ?? []).length > 1, 'the model has several labels');
    assert.equal(run.explanations.size, 3);
    for (const record of run.explanations.values()) {
      assert.ok(!('objects' in record));
      assert.deepEqual(record.explanations.map((e) => e.label), [record.predicted_label], 'only the explanation the comparison reads');
    }
    // Until 2026-12-03 an out.jsonl that could not be read (past V8's longest string, about 512 MB)
    // was taken for a run without explanations, and compared clean.
    const damaged = path.join(tmp, 'damaged');
    await cp(baseline, damaged, { recursive: true });
    await appendFile(path.join(damaged, 'explanations_shap', 'out.jsonl'), '{"key": "cut short\n');
    const result = await runCli(['compare', '--baseline', baseline, '--candidate', damaged]);
    assert.equal(result.code, 2, result.stdout + result.stderr);
    assert.match(result.stderr, /--candidate: cannot read .*explanations_shap\/out\.jsonl: a line is not JSON \(.*\); is .*damaged the output of a clarify-images run\?/);
  });

  it('rank statistics: Spearman with ties, top-5 overlap', () => {
    assert.equal(spearman([1, 2, 3, 4], [10, 20, 30, 40]), 1);
    assert.equal(spearman([1, 2, 3, 4], [4, 3, 2, 1]), -1);
    // Reference values from scipy.stats.spearmanr.
    assert.ok(Math.abs(spearman([1, 1, 2, 3], [1, 2, 2, 3]) - 5 / 6) < 1e-12);
    assert.ok(Math.abs(spearman([3, 1, 4, 1, 5, 9, 2, 6], [2, 7, 1, 8, 2, 8, 1, 8]) - SCIPY_SPEARMAN) < 1e-12);
    assert.equal(topOverlap([5, -4, 3, 0, 0, 1], [5, 4, -3, 0, 2, 0], 5), 0.8);
  });
});
