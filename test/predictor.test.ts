import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AcceptType, ContentType } from '../src/config/config.js';
import { StageError } from '../src/errors.js';
import { encodeImage } from '../src/image/encode.js';
import { createRgbImage } from '../src/image/rgb.js';
import { createInvoker, Predictor } from '../src/predictor/predictor.js';
import { classificationConfig } from './support/configs.js';
import { colourShareModel, type Fault, startEndpointServer, type TestEndpointServer, type DecodedRequest } from './support/endpoint-server.js';
import { solidPixels } from './support/fixtures.js';

const RED = createRgbImage(12, 8, new Uint8Array(solidPixels(12, 8, [200, 40, 20])));
const EXPECTED_RED = [200 / 260, 40 / 260, 20 / 260];

describe('predictor against a local endpoint', () => {
  let server: TestEndpointServer;
  let faults: ((r: DecodedRequest) => Fault | undefined) | undefined;
  const saved = { ...process.env };

  before(async () => {
    server = await startEndpointServer({
      model: (request) => ({ prediction: colourShareModel(request) }),
      faults: (request) => faults?.(request),
    });
    // The standard AWS SDK way to point the SageMaker Runtime client elsewhere.
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: server.url,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_REGION: 'us-east-1',
    });
  });
  after(async () => {
    process.env = saved;
    await server.stop();
  });

  function predictorFor(route: 'sagemaker' | 'container', contentType: ContentType, accept: AcceptType, extra: Record<string, unknown> = {}): Predictor {
    const config = classificationConfig(server.url, {
      predictor: {
        content_type: contentType,
        accept_type: accept,
        ...(accept === 'text/csv' ? {} : { probability: 'prediction' }),
        ...(route === 'sagemaker' ? { endpoint_name: 'my-endpoint' } : {}),
        ...extra,
      },
    });
    if (route === 'sagemaker') delete config.clarify_images.endpoint_url;
    return new Predictor(config, createInvoker(config));
  }

  for (const route of ['sagemaker', 'container'] as const) {
    for (const contentType of ['image/jpeg', 'image/png', 'application/x-npy'] as const) {
      for (const accept of ['application/json', 'application/jsonlines', 'text/csv'] as const) {
        it(`${route}: ${contentType} → ${accept}`, async () => {
          faults = undefined;
          const predictor = predictorFor(route, contentType, accept);
          const payload = await encodeImage(RED, contentType, { jpegQuality: 95 });
          const prediction = await predictor.predict(payload, RED.width, RED.height);
          const last = server.requests.at(-1)!;
          assert.equal(last.route, route);
          assert.equal(last.contentType, contentType);
          assert.equal(last.accept, accept);
          assert.deepEqual([last.width, last.height], [12, 8], 'the endpoint decoded the payload to the right size');
          assert.equal(prediction.kind, 'classification');
          if (prediction.kind !== 'classification') return;
          assert.equal(prediction.predicted.label, 'red');
          const tolerance = contentType === 'image/jpeg' ? 0.02 : 1e-12;
          prediction.scores.forEach((s, i) => assert.ok(Math.abs(s.score - EXPECTED_RED[i]!) <= tolerance, `${s.label} ${s.score}`));
          predictor.invoker.close();
        });
      }
    }
  }

  it('passes CustomAttributes, TargetModel and the endpoint name through', async () => {
    faults = undefined;
    for (const route of ['sagemaker', 'container'] as const) {
      const predictor = predictorFor(route, 'image/png', 'application/json', { custom_attributes: 'trace=abc', target_model: 'model-2.tar.gz' });
      await predictor.predict(await encodeImage(RED, 'image/png', { jpegQuality: 95 }), 12, 8);
      const last = server.requests.at(-1)!;
      assert.equal(last.customAttributes, 'trace=abc');
      assert.equal(last.targetModel, 'model-2.tar.gz');
      if (route === 'sagemaker') assert.equal(last.endpointName, 'my-endpoint');
      predictor.invoker.close();
    }
  });

  for (const route of ['sagemaker', 'container'] as const) {
    it(`${route}: retries 429 and 5xx with backoff, not 424`, async () => {
      const payload = await encodeImage(RED, 'image/png', { jpegQuality: 95 });
      const start = server.requests.length;
      faults = (r) => (r.requestNumber - start <= 1 ? { status: 429 } : undefined);
      let predictor = predictorFor(route, 'image/png', 'application/json');
      await predictor.predict(payload, 12, 8);
      assert.deepEqual({ ...predictor.invoker.stats, latencyMsTotal: 0 }, { calls: 1, attempts: 2, retries: 1, failedCalls: 0, latencyMsTotal: 0 });

      const start500 = server.requests.length;
      faults = (r) => (r.requestNumber - start500 <= 2 ? { status: r.requestNumber - start500 === 1 ? 500 : 503 } : undefined);
      predictor = predictorFor(route, 'image/png', 'application/json');
      await predictor.predict(payload, 12, 8);
      assert.equal(predictor.invoker.stats.attempts, 3);

      faults = () => ({ status: 424, message: 'model raised KeyError' });
      predictor = predictorFor(route, 'image/png', 'application/json');
      await assert.rejects(predictor.predict(payload, 12, 8), (e: unknown) => {
        assert.ok(e instanceof StageError);
        assert.equal(e.stage, 'invoke');
        assert.match(e.message, route === 'sagemaker' ? /ModelError 424.*model raised KeyError/ : /HTTP 424.*model raised KeyError/);
        return true;
      });
      assert.equal(predictor.invoker.stats.attempts, 1, '424 is not retried');

      faults = () => ({ status: 500 });
      predictor = predictorFor(route, 'image/png', 'application/json');
      await assert.rejects(predictor.predict(payload, 12, 8), /gave up after 7 attempts/);
      assert.equal(predictor.invoker.stats.attempts, 7, 'max_retries 6 → 7 attempts');
      faults = undefined;
    });
  }

  it('a malformed body is a parse error naming the expression, accept type and body', async () => {
    faults = () => ({ malformed: '{"prediction": "oops"' });
    const predictor = predictorFor('container', 'image/png', 'application/json');
    await assert.rejects(predictor.predict(await encodeImage(RED, 'image/png', { jpegQuality: 95 }), 12, 8), (e: unknown) => {
      assert.ok(e instanceof StageError && e.stage === 'parse');
      assert.match(e.message, /not valid JSON.*probability expression "prediction", accept type application\/json; body starts: "\{\\"prediction\\": \\"oops\\""/);
      return true;
    });
    faults = undefined;
  });

  it('an unreadable answer is retried (at most twice) once an answer was read; before that, not at all', async () => {
    const payload = await encodeImage(RED, 'image/png', { jpegQuality: 95 });
    // The first answer of a predictor cannot be read: most likely the config, so one attempt only.
    faults = () => ({ malformed: '<html>502 Bad Gateway</html>' });
    let predictor = predictorFor('container', 'image/png', 'application/json');
    await assert.rejects(predictor.predict(payload, 12, 8), (e: unknown) => e instanceof StageError && e.stage === 'parse' && !/attempts/.test(e.message));
    assert.equal(predictor.invoker.stats.attempts, 1);
    // Once one was read, an error page with status 200 is retried, and the next answer is read.
    faults = undefined;
    predictor = predictorFor('container', 'image/png', 'application/json');
    await predictor.predict(payload, 12, 8);
    const start = server.requests.length;
    faults = (r) => (r.requestNumber === start + 1 ? { malformed: '<html>502 Bad Gateway</html>' } : undefined);
    const notices: string[] = [];
    predictor.invoker.onRetry = (notice) => notices.push(notice.reason);
    const prediction = await predictor.predict(payload, 12, 8);
    assert.equal(prediction.kind === 'classification' && prediction.predicted.label, 'red');
    assert.equal(predictor.invoker.stats.attempts, 3);
    assert.equal(predictor.invoker.stats.retries, 1);
    assert.match(notices[0]!, /^unreadable answer: .*not valid JSON/);
    // An answer that stays unreadable fails after three attempts, with the parse error and its count.
    faults = () => ({ malformed: '{"prediction": "oops"' });
    await assert.rejects(predictor.predict(payload, 12, 8), (e: unknown) => {
      assert.ok(e instanceof StageError && e.stage === 'parse');
      assert.match(e.message, /not valid JSON.*\(the same after 3 attempts\)$/);
      return true;
    });
    assert.equal(predictor.invoker.stats.attempts, 6);
    predictor.invoker.close();
    faults = undefined;
  });

  it('a slow answer past request_timeout_ms is retried', async () => {
    const start = server.requests.length;
    // A deadline well above a local answer's few ms, so that only the delayed call misses it, even
    // with other test files running beside this one.
    faults = (r) => (r.requestNumber === start + 1 ? { delayMs: 1500 } : undefined);
    const config = classificationConfig(server.url, { predictor: { probability: 'prediction' }, clarify_images: { request_timeout_ms: 400 } });
    const predictor = new Predictor(config, createInvoker(config));
    const prediction = await predictor.predict(await encodeImage(RED, 'image/png', { jpegQuality: 95 }), 12, 8);
    assert.equal(prediction.kind === 'classification' && prediction.predicted.label, 'red');
    assert.equal(predictor.invoker.stats.retries, 1);
    predictor.invoker.close();
    faults = undefined;
  });

  it('a call that fails because the job is stopping (its connections closed) is neither retried nor counted as a retry', async () => {
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const start = server.requests.length;
    faults = (r) => (r.requestNumber === start + 1 ? { until: held } : undefined);
    const config = classificationConfig(server.url, { predictor: { probability: 'prediction' } });
    const predictor = new Predictor(config, createInvoker(config));
    const pending = predictor.predict(await encodeImage(RED, 'image/png', { jpegQuality: 95 }), 12, 8);
    while (server.requests.length === start) await new Promise((r) => setTimeout(r, 5));
    // As a stopping job does: no new calls, then its connections are closed under the call in flight.
    predictor.invoker.cancel();
    predictor.invoker.close();
    await assert.rejects(pending, (e: unknown) => e instanceof Error && e.name === 'StopError');
    assert.deepEqual([predictor.invoker.stats.retries, predictor.invoker.stats.failedCalls], [0, 0]);
    assert.equal(server.requests.length, start + 1, 'not sent again');
    release();
    faults = undefined;
  });

  it('never runs more calls at once than max_concurrency', async () => {
    let inFlight = 0;
    let peak = 0;
    faults = () => {
      inFlight += 1;
      peak = Math.max(peak, inFlight);
      setTimeout(() => (inFlight -= 1), 20);
      return { delayMs: 20 };
    };
    const config = classificationConfig(server.url, { predictor: { probability: 'prediction' }, clarify_images: { max_concurrency: 3 } });
    const predictor = new Predictor(config, createInvoker(config));
    const payload = await encodeImage(RED, 'image/png', { jpegQuality: 95 });
    await Promise.all(Array.from({ length: 12 }, () => predictor.predict(payload, 12, 8)));
    assert.equal(peak, 3);
    predictor.invoker.close();
    faults = undefined;
  });
});
