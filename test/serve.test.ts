import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { decodeImage } from '../src/image/decode.js';
import { encodeNpy } from '../src/image/npy.js';
import { EXPRESSION_LABELS, loadModel, type ModelDetection } from '../src/serve/face-models.js';
import { loadModelThreads } from '../src/serve/model-threads.js';
import { answerType, type RunningModelServer, startModelServer } from '../src/serve/server.js';

const examples = fileURLToPath(new URL('../../examples/images/', import.meta.url));

async function post(url: string, body: Uint8Array, headers: Record<string, string>): Promise<{ status: number; type: string; body: Buffer }> {
  const response = await fetch(`${url}/invocations`, { method: 'POST', body, headers });
  return { status: response.status, type: response.headers.get('content-type') ?? '', body: Buffer.from(await response.arrayBuffer()) };
}

describe('bundled model server (real pretrained weights, offline)', () => {
  let classifier: RunningModelServer;
  let detector: RunningModelServer;
  let maskRcnn: RunningModelServer;
  let astronaut: Buffer;
  let face: Buffer;

  before(async () => {
    const [expression, faces] = await Promise.all([loadModel('face-expression'), loadModel('face-detector')]);
    classifier = await startModelServer({ model: expression, port: 0 });
    detector = await startModelServer({ model: faces, port: 0 });
    maskRcnn = await startModelServer({ model: faces, port: 0, style: 'mask_rcnn' });
    astronaut = await readFile(`${examples}detection/astronaut.jpg`);
    face = await readFile(`${examples}classification/astronaut-face.jpg`);
  });
  after(async () => Promise.all([classifier.close(), detector.close(), maskRcnn.close()]));

  it('answers GET /ping', async () => {
    assert.equal((await fetch(`${classifier.url}/ping`)).status, 200);
  });

  it('the classifier reads a smiling face as happy (JSON), and answers JSON Lines', async () => {
    const answer = await post(classifier.url, face, { 'Content-Type': 'image/jpeg', Accept: 'application/json' });
    assert.equal(answer.status, 200);
    const { prediction } = JSON.parse(answer.body.toString()) as { prediction: number[] };
    assert.equal(prediction.length, EXPRESSION_LABELS.length);
    assert.ok(Math.abs(prediction.reduce((a, b) => a + b, 0) - 1) < 1e-4, 'a softmax');
    assert.equal(EXPRESSION_LABELS[prediction.indexOf(Math.max(...prediction))], 'happy');
    const lines = await post(classifier.url, face, { 'Content-Type': 'image/jpeg', Accept: 'application/jsonlines' });
    assert.equal(lines.body.toString().trim().split('\n').length, 1);
  });

  it('takes an (N, H, W, 3) NPY batch and answers N results', async () => {
    const image = await decodeImage(face, { maxPixels: 1e8 });
    const flipped = Uint8Array.from(image.data).reverse(); // the face upside down, colours reversed
    const batch = encodeNpy(Uint8Array.from([...image.data, ...flipped]), [2, image.height, image.width, 3]);
    const json = await post(classifier.url, batch, { 'Content-Type': 'application/x-npy', Accept: 'application/json' });
    const results = JSON.parse(json.body.toString()) as { prediction: number[] }[];
    assert.equal(results.length, 2);
    assert.notDeepEqual(results[0]!.prediction, results[1]!.prediction);
    const single = JSON.parse((await post(classifier.url, encodeNpy(image.data, [image.height, image.width, 3]), { 'Content-Type': 'application/x-npy', Accept: 'application/json' })).body.toString()) as { prediction: number[] };
    results[0]!.prediction.forEach((v, i) => assert.ok(Math.abs(v - single.prediction[i]!) < 1e-6, 'batch item 0 equals the single answer'));
    const lines = await post(classifier.url, batch, { 'Content-Type': 'application/x-npy', Accept: 'application/jsonlines' });
    assert.equal(lines.body.toString().trim().split('\n').length, 2);
  });

  it('the detector finds the astronaut\'s face, in Clarify rows and in the Mask R-CNN style', async () => {
    const rows = JSON.parse((await post(detector.url, astronaut, { 'Content-Type': 'image/jpeg', Accept: 'application/json' })).body.toString()) as { prediction: number[][] };
    const best = rows.prediction.sort((a, b) => b[1]! - a[1]!)[0]!;
    assert.equal(best[0], 0);
    assert.ok(best[1]! > 0.9, `score ${best[1]}`);
    // The face is at about x 0.32–0.55, y 0.15–0.36 of the 512×512 image.
    const [, , x0, y0, x1, y1] = best as [number, number, number, number, number, number];
    assert.ok(x0 > 0.25 && x0 < 0.4 && x1 > 0.48 && x1 < 0.62 && y0 > 0.08 && y0 < 0.22 && y1 > 0.3 && y1 < 0.45, JSON.stringify(best));
    const styled = JSON.parse((await post(maskRcnn.url, astronaut, { 'Content-Type': 'image/jpeg', Accept: 'application/json' })).body.toString()) as { labels: string[]; boxes: number[][] };
    assert.match(styled.labels[0]!, /^face \d+%$/);
    assert.ok(Math.abs(styled.boxes[0]![0]! - x0 * 512) < 2, 'pixel boxes');
  });

  it('the detector answers an image with the boxes drawn, by Accept or by response_type', async () => {
    const jpeg = await post(detector.url, astronaut, { 'Content-Type': 'image/jpeg', Accept: 'image/jpeg' });
    assert.equal(jpeg.type, 'image/jpeg');
    assert.equal((await sharp(jpeg.body).metadata()).format, 'jpeg');
    const png = await post(detector.url, astronaut, { 'Content-Type': 'image/jpeg', 'X-Amzn-SageMaker-Custom-Attributes': '{"response_type": "png"}' });
    assert.equal((await sharp(png.body).metadata()).format, 'png');
    assert.equal(answerType('application/json', '{"response_type": "png"}'), 'json', 'Accept comes first');
  });

  it('refuses what it cannot take, with a reason', async () => {
    const bad = await post(detector.url, Buffer.from('hello'), { 'Content-Type': 'text/plain', Accept: 'application/json' });
    assert.equal(bad.status, 415);
    assert.match(bad.body.toString(), /image\/jpeg, image\/png or application\/x-npy/);
    const corrupt = await post(detector.url, Buffer.from('not a jpeg'), { 'Content-Type': 'image/jpeg', Accept: 'application/json' });
    assert.equal(corrupt.status, 400);
    const accept = await post(classifier.url, face, { 'Content-Type': 'image/jpeg', Accept: 'image/jpeg' });
    assert.equal(accept.status, 406);
  });

  it('on worker threads, a model answers what it answers on the calling thread, several images at once', async () => {
    const image = await decodeImage(astronaut, { maxPixels: 1e8 });
    // The left half grayed: the face is partly masked, as in the job's coalitions.
    const masked = Uint8Array.from(image.data);
    for (let y = 0; y < image.height; y++) masked.fill(128, y * image.width * 3, (y * image.width + image.width / 2) * 3);
    const inputs = [image, { ...image, data: masked }];
    const [here, threaded] = await Promise.all([loadModel('face-detector'), loadModelThreads('face-detector', 2)]);
    try {
      assert.equal(threaded.concurrency, 2);
      assert.equal(here.kind, 'detection');
      assert.equal(threaded.kind, 'detection');
      if (here.kind !== 'detection' || threaded.kind !== 'detection') return;
      const expected: ModelDetection[][] = [];
      for (const input of inputs) expected.push(await here.detect(input));
      assert.notDeepEqual(expected[0], expected[1], 'masking changes the answer');
      // Four requests at once through a server on the threads: each answer is the calling thread's.
      const server = await startModelServer({ model: threaded, port: 0 });
      try {
        const bodies = await Promise.all([0, 1, 0, 1].map((i) => post(server.url, encodeNpy(inputs[i]!.data, [image.height, image.width, 3]), { 'Content-Type': 'application/x-npy', Accept: 'application/json' })));
        bodies.forEach((body, k) => {
          assert.equal(body.status, 200);
          const rows = (JSON.parse(body.body.toString()) as { prediction: number[][] }).prediction;
          const want = expected[k % 2]!;
          assert.equal(rows.length, want.length);
          rows.forEach((row, r) => assert.deepEqual(row, [want[r]!.classIndex, want[r]!.score, want[r]!.box.x0, want[r]!.box.y0, want[r]!.box.x1, want[r]!.box.y1]));
        });
        assert.equal(server.invocations(), 4);
      } finally {
        await server.close();
      }
    } finally {
      await threaded.close();
    }
    await assert.rejects(threaded.detect(image), 'closed: its threads are gone');
  });
});
