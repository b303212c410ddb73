import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { AnalysisSummary } from '../src/output/records.js';
import { fewSegments, FewSegmentsNote } from '../src/output/segment-note.js';
import { colourShareModel, type DecodedRequest, startEndpointServer, type TestEndpointServer } from './support/endpoint-server.js';
import { runCli } from './support/cli.js';
import { scratchDir } from './support/scratch-dir.js';

describe('images whose segments come out far fewer than num_segments', () => {
  it('fewer than a quarter counts; the first five are said, all are counted, the first kept', () => {
    assert.equal(fewSegments(4, 20), true);
    assert.equal(fewSegments(5, 20), false);
    assert.equal(fewSegments(1, 4), false, 'a small ask: one segment of four is not "far fewer"');
    const said: string[] = [];
    const note = new FewSegmentsNote(20, (line) => said.push(line));
    note.add('s3://b/ok.jpg', 17);
    assert.equal(note.summary(), undefined);
    for (let i = 0; i < 7; i++) note.add(`s3://b/tex-${i}.jpg`, i % 2 === 0 ? 1 : 3);
    assert.deepEqual(note.summary(), { images: 7, num_segments: 20, first: { image: 's3://b/tex-0.jpg', segments: 1 } });
    assert.equal(said.length, 5);
    assert.match(said[0]!, /^s3:\/\/b\/tex-0\.jpg: SLIC found 1 segment where num_segments asks for 20, so its explanation can barely tell regions apart; a higher segment_compactness/);
    assert.match(said[1]!, /found 3 segments/);
    assert.match(said[4]!, /more such images are counted in analysis\.json, not said\)$/);
  });

  describe('a run (CLI, real endpoint)', () => {
    let tmp: string;
    let images: string;
    let endpoint: TestEndpointServer;
    before(async () => {
      tmp = await scratchDir('clarify-few-segments-');
      images = path.join(tmp, 'images');
      await mkdir(images);
      endpoint = await startEndpointServer({ model: (request: DecodedRequest) => ({ prediction: colourShareModel(request) }) });
      // A fine sawtooth of colours: SLIC's colour term splits every cluster into fragments, and
      // the connectivity pass merges them into one segment, unless compactness holds them together.
      const [w, h] = [256, 192];
      const texture = Buffer.alloc(w * h * 3);
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) texture.set([(x * 16) & 255, (y * 24) & 255, ((x + y) * 8) & 255], (y * w + x) * 3);
      await sharp(texture, { raw: { width: w, height: h, channels: 3 } }).png().toFile(path.join(images, 'texture.png'));
      // Four flat quadrants: segments enough.
      const quadrants = Buffer.alloc(w * h * 3);
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) quadrants.set(x < w / 2 ? (y < h / 2 ? [220, 30, 30] : [30, 220, 30]) : y < h / 2 ? [30, 30, 220] : [200, 200, 40], (y * w + x) * 3);
      await sharp(quadrants, { raw: { width: w, height: h, channels: 3 } }).png().toFile(path.join(images, 'quadrants.png'));
    });
    after(async () => endpoint.stop());

    const run = async (name: string, compactness: number): Promise<{ stdout: string; stderr: string; summary: AnalysisSummary }> => {
      const config = path.join(tmp, `${name}.json`);
      await writeFile(
        config,
        JSON.stringify({
          dataset_type: 'application/x-image',
          methods: { shap: { num_samples: 40, image_config: { model_type: 'IMAGE_CLASSIFICATION', num_segments: 20, segment_compactness: compactness } } },
          predictor: { content_type: 'image/png', probability: 'prediction', label_headers: ['red', 'green', 'blue'] },
          clarify_images: { endpoint_url: endpoint.url, estimator: 'kernel' },
        }),
      );
      const output = path.join(tmp, name);
      const result = await runCli(['run', '--config', config, '--dataset-uri', images, '--output', output]);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      return { stdout: result.stdout, stderr: result.stderr, summary: JSON.parse(await readFile(path.join(output, 'analysis.json'), 'utf8')) as AnalysisSummary };
    };

    it('says which image came out with few segments, and counts them in analysis.json', async () => {
      const { stdout, stderr, summary } = await run('low', 5);
      const few = summary.explanations?.few_segments;
      assert.ok(few, JSON.stringify(summary.explanations));
      assert.equal(few.images, 1);
      assert.equal(few.num_segments, 20);
      assert.match(few.first.image, /texture\.png$/);
      assert.ok(few.first.segments < 5, `${few.first.segments}`);
      assert.match(stderr, /texture\.png: SLIC found \d+ segments? where num_segments asks for 20/);
      assert.doesNotMatch(stderr, /quadrants\.png: SLIC found/);
      assert.match(stdout, /\n {2}note: 1 image came out with fewer than a quarter of num_segments 20 \(the first: .*texture\.png, with \d segments?\); a higher segment_compactness gives more on a finely textured image\n/);
      const html = await readFile(path.join(tmp, 'low', 'report.html'), 'utf8');
      assert.match(html, /<th>Segments<\/th><td>SLIC, num_segments 20, compactness 5\. Note: 1 image came out with fewer than a quarter/);
    });

    it('the advice holds: a higher segment_compactness gives that image its segments', async () => {
      const { stdout, summary } = await run('high', 100);
      assert.equal(summary.explanations?.few_segments, undefined);
      assert.doesNotMatch(stdout, /note: .*num_segments/);
    });
  });
});
