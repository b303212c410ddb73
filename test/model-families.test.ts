/**
 * JumpStart, Hugging Face, TorchServe and Ultralytics YOLO endpoints, explained with the example configs in
 * examples/model-families/ unchanged but for where the endpoint and the images are, through the
 * SageMaker Runtime route (the real SDK client) and the container route.
 */
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { type EndpointServerOptions, startEndpointServer, type DecodedRequest, type Fault, type TestEndpointServer, type TestModel } from './support/endpoint-server.js';
import { runCli } from './support/cli.js';
import * as fx from './support/fixtures.js';
import {
  CLASSIFIER_LABELS,
  huggingFaceClassifier,
  huggingFaceDetector,
  jumpStartClassifier,
  jumpStartContentType,
  jumpStartDetector,
  torchServeClassifier,
  torchServeDetector,
  ultralyticsDetector,
} from './support/model-families.js';
import { scratchDir } from './support/scratch-dir.js';
import { squaresImage } from './support/square-detector.js';
import type { AnalysisSummary, PredictionRecord } from '../src/output/records.js';

const examples = fileURLToPath(new URL('../../examples/model-families/', import.meta.url));

type Route = 'sagemaker' | 'container';

interface Family {
  readonly example: string;
  readonly model: TestModel;
  readonly faults?: (request: DecodedRequest) => Fault | undefined;
  readonly kind: 'classification' | 'detection';
  readonly contentType: string;
  readonly accept: string;
  /** How the family's server reads a request, where it differs. */
  readonly server?: Pick<EndpointServerOptions, 'base64Images'>;
}

const FAMILIES: readonly Family[] = [
  { example: 'jumpstart-classification', model: jumpStartClassifier, faults: jumpStartContentType, kind: 'classification', contentType: 'application/x-image', accept: 'application/json;verbose' },
  { example: 'jumpstart-detection', model: jumpStartDetector, faults: jumpStartContentType, kind: 'detection', contentType: 'application/x-image', accept: 'application/json;verbose' },
  { example: 'huggingface-classification', model: huggingFaceClassifier(2), kind: 'classification', contentType: 'image/jpeg', accept: 'application/json' },
  { example: 'huggingface-detection', model: huggingFaceDetector, kind: 'detection', contentType: 'image/jpeg', accept: 'application/json' },
  { example: 'torchserve-classification', model: torchServeClassifier(2), kind: 'classification', contentType: 'image/jpeg', accept: 'application/json' },
  { example: 'torchserve-detection', model: torchServeDetector, kind: 'detection', contentType: 'image/jpeg', accept: 'application/json' },
  { example: 'ultralytics-detection', model: ultralyticsDetector, kind: 'detection', contentType: 'text/csv', accept: 'application/json', server: { base64Images: true } },
];

async function readJsonl<T>(file: string): Promise<T[]> {
  return (await readFile(file, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as T);
}

describe('JumpStart, Hugging Face, TorchServe and Ultralytics YOLO endpoints (examples/model-families)', () => {
  let tmp: string;
  const datasets = { classification: '', detection: '' };

  before(async () => {
    tmp = await scratchDir('ci-families-');
    datasets.classification = path.join(tmp, 'faces');
    datasets.detection = path.join(tmp, 'scenes');
    await writeFile(path.join(tmp, 'placeholder'), '');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(datasets.classification);
    await mkdir(datasets.detection);
    await writeFile(path.join(datasets.classification, 'red.jpg'), await fx.solidJpeg(48, 40, [220, 30, 30]));
    await writeFile(path.join(datasets.classification, 'blue.png'), await fx.solidPng(40, 48, [30, 40, 210]));
    const scene = squaresImage(160, 128, [
      { colour: 0, x: 16, y: 16, w: 40, h: 40 },
      { colour: 2, x: 96, y: 64, w: 40, h: 40 },
    ]);
    await writeFile(path.join(datasets.detection, 'scene.png'), await sharp(scene.data, { raw: { width: scene.width, height: scene.height, channels: 3 } }).png().toBuffer());
  });
  after(async () => rm(tmp, { recursive: true, force: true }));

  /** The example config as a user keeps it; only the endpoint location changes per route. */
  async function exampleConfig(family: Family, route: Route, endpoint: TestEndpointServer, edit?: (config: Record<string, Record<string, unknown>>) => void): Promise<string> {
    const config = JSON.parse(await readFile(path.join(examples, `${family.example}.analysis_config.json`), 'utf8')) as Record<string, Record<string, unknown>>;
    if (route === 'container') config['clarify_images'] = { ...config['clarify_images'], endpoint_url: endpoint.url };
    config['clarify_images'] = { ...config['clarify_images'], retry_base_delay_ms: 5, retry_max_delay_ms: 20 };
    edit?.(config);
    const file = path.join(tmp, `${family.example}-${route}-${Math.random().toString(36).slice(2)}.json`);
    await writeFile(file, JSON.stringify(config));
    return file;
  }

  const sdkEnv = (endpoint: TestEndpointServer): Record<string, string> => ({
    AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: endpoint.url,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: 'us-east-1',
  });

  for (const family of FAMILIES) {
    for (const route of ['sagemaker', 'container'] as const) {
      it(`${family.example} through the ${route} route: predictions read, every image explained, headers as the model wants`, async () => {
        const endpoint = await startEndpointServer({ model: family.model, faults: family.faults, ...family.server });
        try {
          const config = await exampleConfig(family, route, endpoint);
          const out = path.join(tmp, `out-${family.example}-${route}`);
          const run = await runCli(['run', '--config', config, '--dataset-uri', datasets[family.kind], '--output', out, '--quiet'], sdkEnv(endpoint));
          assert.equal(run.code, 0, run.stdout + run.stderr);
          assert.ok(endpoint.requests.length > 100, 'the explanation called the endpoint');
          assert.ok(endpoint.requests.every((r) => r.contentType === family.contentType && r.accept === family.accept && r.route === route));
          const predictions = await readJsonl<PredictionRecord>(path.join(out, 'predictions.jsonl'));
          if (family.kind === 'classification') {
            const byKey = new Map(predictions.map((p) => [p.key, p]));
            assert.equal(byKey.get('red.jpg')!.predicted_label, CLASSIFIER_LABELS[0]);
            assert.equal(byKey.get('blue.png')!.predicted_label, CLASSIFIER_LABELS[2]);
            const red = byKey.get('red.jpg')!.predictions!;
            assert.deepEqual(red.map((p) => p.label), CLASSIFIER_LABELS, 'scores matched to label_headers by label');
            if (family.example.startsWith('huggingface') || family.example.startsWith('torchserve')) {
              // Top 2 of 3: the third label was not returned and reads as missing_label_score 0.
              assert.equal(red.filter((p) => p.score === 0).length, 1);
            }
          } else {
            const objects = predictions[0]!.objects!;
            assert.deepEqual(objects.map((o) => o.label).sort(), ['car', 'person']);
            const person = objects.find((o) => o.label === 'person')!;
            assert.equal(person.class_index, 0, 'person is label_headers[0]');
            assert.deepEqual(person.box_pixels, { x0: 16, y0: 16, x1: 56, y1: 56 });
            const car = objects.find((o) => o.label === 'car')!;
            assert.equal(car.class_index, 2);
            assert.deepEqual(car.box_pixels, { x0: 96, y0: 64, x1: 136, y1: 104 });
          }
          const explained = await readJsonl<{ explanations?: unknown[]; objects?: { shap_values: number[] }[] }>(path.join(out, 'explanations_shap', 'out.jsonl'));
          assert.equal(explained.length, family.kind === 'classification' ? 2 : 1);
          if (family.kind === 'detection') assert.equal(explained[0]!.objects!.length, 2);
        } finally {
          await endpoint.stop();
        }
      });
    }
  }

  it('without wire_content_type a JumpStart model refuses every image, and precheck says which line fixes it', async () => {
    const family = FAMILIES[0]!;
    const endpoint = await startEndpointServer({ model: family.model, faults: family.faults, ...family.server });
    try {
      const config = await exampleConfig(family, 'container', endpoint, (c) => {
        delete c['clarify_images']!['wire_content_type'];
      });
      const out = path.join(tmp, 'out-refused');
      const run = await runCli(['run', '--config', config, '--dataset-uri', datasets.classification, '--output', out, '--quiet'], sdkEnv(endpoint));
      assert.equal(run.code, 1);
      const summary = JSON.parse(await readFile(path.join(out, 'analysis.json'), 'utf8')) as AnalysisSummary;
      assert.equal(summary.images.failed, 2);
      // The run's failure says which line fixes it, as precheck does.
      assert.match(summary.failures[0]!.message, /Content type image\/jpeg is not supported.*; the model refused the content type\. JumpStart image models take only application\/x-image: set "clarify_images\.wire_content_type": "application\/x-image"/);
      const precheck = await runCli(['precheck', '--config', config, '--image', path.join(datasets.classification, 'red.jpg')], sdkEnv(endpoint));
      assert.equal(precheck.code, 1);
      assert.match(precheck.stdout, /HINT: .*"clarify_images.wire_content_type": "application\/x-image"/);
      assert.doesNotMatch(precheck.stdout, /VERDICT: .*wire_content_type/, 'said once, on its own line');
    } finally {
      await endpoint.stop();
    }
  });

  it('precheck recognises each family\'s answer and prints the config lines that read it', async () => {
    const cases: { family: Family; strip: (c: Record<string, Record<string, unknown>>) => void; expect: RegExp[] }[] = [
      {
        family: FAMILIES[0]!,
        strip: (c) => {
          delete c['predictor']!['probability'];
          delete c['predictor']!['label'];
        },
        expect: [/Answer shape: JumpStart verbose classification/, /"predictor.probability": "probabilities"/, /"predictor.label": "labels"/],
      },
      {
        family: FAMILIES[1]!,
        strip: (c) => {
          delete c['clarify_images']!['detection_fields'];
        },
        expect: [/Answer shape: JumpStart verbose detection/, /"clarify_images.detection_fields": \{"boxes":"normalized_boxes","scores":"scores","classes":"classes","class_names":"labels","coordinates":"normalized"\}/],
      },
      {
        family: FAMILIES[2]!,
        strip: (c) => {
          delete c['predictor']!['probability'];
          delete c['predictor']!['label'];
          delete c['clarify_images']!['missing_label_score'];
        },
        expect: [/Answer shape: Hugging Face classification/, /"predictor.probability": "\[\*\]\.score"/, /"predictor.label": "\[\*\]\.label"/, /"clarify_images.missing_label_score": 0/],
      },
      {
        family: FAMILIES[3]!,
        strip: (c) => {
          delete c['clarify_images']!['detection_fields'];
        },
        expect: [/Answer shape: Hugging Face detection/, /"clarify_images.detection_fields": \{"boxes":"\[\*\]\.\[box\.xmin, box\.ymin, box\.xmax, box\.ymax\]","scores":"\[\*\]\.score","labels":"\[\*\]\.label","coordinates":"pixels"\}/],
      },
      {
        family: FAMILIES[4]!,
        strip: (c) => {
          delete c['predictor']!['probability'];
          delete c['predictor']!['label'];
          delete c['clarify_images']!['missing_label_score'];
        },
        expect: [/Answer shape: TorchServe image classification/, /"predictor.probability": "values\(@\)"/, /"predictor.label": "keys\(@\)"/, /"clarify_images.missing_label_score": 0/],
      },
      {
        family: FAMILIES[5]!,
        strip: (c) => {
          delete c['clarify_images']!['detection_fields'];
        },
        expect: [/Answer shape: TorchServe object detection/, /"clarify_images.detection_fields": \{"boxes":"\[\*\]\.values\(@\)\[0\]","scores":"\[\*\]\.score","labels":"\[\*\]\.keys\(@\)\[0\]","coordinates":"pixels"\}/],
      },
      {
        family: FAMILIES[6]!,
        strip: (c) => {
          delete c['clarify_images']!['detection_fields'];
        },
        expect: [/Answer shape: Ultralytics YOLO rows \[x0, y0, x1, y1, confidence, class\] in pixels under "boxes"/, /"clarify_images.detection_fields": \{"boxes":"boxes\[\*\]\[0:4\]","scores":"boxes\[\*\]\[4\]","classes":"boxes\[\*\]\[5\]","coordinates":"pixels"\}/],
      },
    ];
    for (const { family, strip, expect } of cases) {
      const endpoint = await startEndpointServer({ model: family.model, faults: family.faults, ...family.server });
      try {
        const image = family.kind === 'classification' ? path.join(datasets.classification, 'red.jpg') : path.join(datasets.detection, 'scene.png');
        const stripped = await runCli(['precheck', '--config', await exampleConfig(family, 'container', endpoint, strip), '--image', image]);
        assert.equal(stripped.code, 1, `${family.example}: the stripped config cannot read the answer\n${stripped.stdout}`);
        for (const pattern of expect) assert.match(stripped.stdout, pattern, family.example);
        assert.match(stripped.stdout, /^VERDICT: the answer does not fit/m);
        assert.doesNotMatch(stripped.stdout, /VERDICT: .*would read/, 'the lines are said once, above the verdict');
        // The example config itself reads the answer, and nothing is suggested.
        const whole = await runCli(['precheck', '--config', await exampleConfig(family, 'container', endpoint), '--image', image]);
        assert.equal(whole.code, 0, whole.stdout);
        assert.doesNotMatch(whole.stdout, /These config lines read it/);
      } finally {
        await endpoint.stop();
      }
    }
  });
});
