/**
 * A local model endpoint for tests. It answers both the SageMaker Runtime API
 * (POST /endpoints/{name}/invocations, reached through the real SDK client) and the container
 * contract (POST /invocations, GET /ping). It decodes the JPEG / PNG / NPY it receives and answers
 * from the pixels, so a wrong encoding fails a test; it can inject errors, delays and malformed bodies.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { decodeNpy } from '../../src/image/npy.js';

export interface DecodedRequest {
  readonly width: number;
  readonly height: number;
  /** H×W×3 uint8. */
  readonly pixels: Uint8Array;
  readonly contentType: string;
  readonly accept: string;
  readonly customAttributes?: string;
  readonly targetModel?: string;
  readonly route: 'sagemaker' | 'container';
  readonly endpointName?: string;
  /** 1-based count of requests so far (including this one). */
  readonly requestNumber: number;
}

export type Fault =
  | { readonly status: number; readonly message?: string }
  | { readonly delayMs: number }
  /** Answer once this settles (a call held open by the test). */
  | { readonly until: Promise<void> }
  | { readonly malformed: string };

/** A model: pixels in, the JSON value to answer out. */
export type TestModel = (request: DecodedRequest) => unknown;

export interface EndpointServerOptions {
  model: TestModel;
  faults?: (request: DecodedRequest) => Fault | undefined;
  /** (N, H, W, 3) NPY requests: answered per image (default), or refused with 400. */
  acceptBatches?: boolean;
  /** The body is an image's base64 text, whatever the Content-Type (AWS's YOLOv8 sample): decoded strictly, any image format. */
  base64Images?: boolean;
  /** Bodies larger than this are refused with 413. */
  maxBodyBytes?: number;
  /** SageMaker route: which endpoint names exist and are InService (others: 400, as SageMaker answers). */
  endpointInService?: (name: string) => boolean;
  /** Answer a single image as a batch of one (a list around its answer), as batch-only servers do. */
  alwaysBatch?: boolean;
}

export interface TestEndpointServer {
  readonly url: string;
  readonly requests: DecodedRequest[];
  /** Status codes answered, in order. */
  readonly answered: number[];
  /** Sizes (images per request) of the NPY batch requests answered. */
  readonly batchSizes: number[];
  stop(): Promise<void>;
}

export function meanColour(request: Pick<DecodedRequest, 'pixels'>): [number, number, number] {
  const sums = [0, 0, 0];
  const { pixels } = request;
  for (let i = 0; i < pixels.length; i += 3) {
    sums[0]! += pixels[i]!;
    sums[1]! += pixels[i + 1]!;
    sums[2]! += pixels[i + 2]!;
  }
  const n = pixels.length / 3;
  return [sums[0]! / n, sums[1]! / n, sums[2]! / n];
}

/** Classifier over labels [red, green, blue]: each score is that channel's share of the mean colour. */
export const colourShareModel: TestModel = (request) => {
  const mean = meanColour(request);
  const total = mean[0] + mean[1] + mean[2] || 1;
  return mean.map((m) => m / total);
};

interface DecodedImage {
  width: number;
  height: number;
  pixels: Uint8Array;
}

async function decodeBody(body: Buffer, contentType: string, acceptBatches: boolean): Promise<{ images: DecodedImage[]; batch: boolean }> {
  if (contentType.startsWith('application/x-npy')) {
    const array = decodeNpy(body);
    if (array.shape.length === 4 && array.shape[3] === 3 && acceptBatches) {
      const [n, h, w] = array.shape as [number, number, number];
      return { batch: true, images: Array.from({ length: n }, (_, i) => ({ height: h, width: w, pixels: array.data.subarray(i * h * w * 3, (i + 1) * h * w * 3) })) };
    }
    if (array.shape.length !== 3 || array.shape[2] !== 3) throw new Error(`expected (H, W, 3), got (${array.shape.join(', ')})`);
    return { batch: false, images: [{ height: array.shape[0]!, width: array.shape[1]!, pixels: array.data }] };
  }
  // application/x-image (JumpStart): any image format, told apart by its bytes.
  if (contentType.startsWith('image/jpeg') || contentType.startsWith('image/png') || contentType.startsWith('application/x-image')) {
    const { data, info } = await sharp(body).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const format = (await sharp(body).metadata()).format;
    const expected = contentType.startsWith('image/jpeg') ? 'jpeg' : contentType.startsWith('image/png') ? 'png' : format;
    if (format !== expected) throw new Error(`Content-Type ${contentType} but the body is ${format}`);
    return { batch: false, images: [{ width: info.width, height: info.height, pixels: data }] };
  }
  throw new Error(`unsupported content type ${contentType}`);
}

/** As Python's base64.b64decode(validate=True), then cv2.imdecode: any image format. */
async function decodeBase64Image(body: Buffer): Promise<{ images: DecodedImage[]; batch: boolean }> {
  const text = body.toString('latin1');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw new Error('the body is not base64 text');
  const { data, info } = await sharp(Buffer.from(text, 'base64')).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { batch: false, images: [{ width: info.width, height: info.height, pixels: data }] };
}

function render(value: unknown, accept: string): { body: string; type: string } {
  if (accept === 'application/jsonlines') return { body: `${JSON.stringify(value)}\n`, type: accept };
  if (accept === 'text/csv') {
    const row = Array.isArray(value) ? value : (value as { prediction?: unknown }).prediction;
    return { body: `${(row as unknown[]).join(',')}\n`, type: accept };
  }
  return { body: JSON.stringify(value), type: 'application/json' };
}

const ERROR_TYPES: Record<number, string> = {
  400: 'ValidationError',
  424: 'ModelError',
  429: 'ThrottlingException',
  500: 'InternalFailure',
  503: 'ServiceUnavailable',
};

export async function startEndpointServer(options: EndpointServerOptions): Promise<TestEndpointServer> {
  const requests: DecodedRequest[] = [];
  const answered: number[] = [];
  const batchSizes: number[] = [];
  let count = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const url = req.url ?? '';
        if (req.method === 'GET' && url === '/ping') {
          res.writeHead(200).end();
          return;
        }
        const sagemaker = /^\/endpoints\/([^/]+)\/invocations$/.exec(url);
        if (req.method !== 'POST' || (!sagemaker && url !== '/invocations')) {
          res.writeHead(404).end();
          return;
        }
        const respondError = (status: number, message: string): void => {
          answered.push(status);
          if (sagemaker) {
            const type = ERROR_TYPES[status] ?? 'InternalFailure';
            const payload: Record<string, unknown> = { message };
            if (status === 424) Object.assign(payload, { OriginalStatusCode: 500, OriginalMessage: message });
            res.writeHead(status, { 'Content-Type': 'application/json', 'x-amzn-ErrorType': `${type}:` }).end(JSON.stringify(payload));
          } else {
            res.writeHead(status, { 'Content-Type': 'text/plain' }).end(message);
          }
        };
        if (sagemaker && options.endpointInService && !options.endpointInService(decodeURIComponent(sagemaker[1]!))) {
          respondError(400, `Endpoint ${decodeURIComponent(sagemaker[1]!)} of account 123456789012 not found.`);
          return;
        }
        count += 1;
        const header = (name: string): string | undefined => {
          const v = req.headers[name];
          return Array.isArray(v) ? v[0] : v;
        };
        const contentType = header('content-type') ?? '';
        const raw = Buffer.concat(chunks);
        if (options.maxBodyBytes !== undefined && raw.length > options.maxBodyBytes) {
          respondError(413, `request body of ${raw.length} bytes is over ${options.maxBodyBytes}`);
          return;
        }
        let images: DecodedImage[];
        let batch: boolean;
        try {
          ({ images, batch } = options.base64Images ? await decodeBase64Image(raw) : await decodeBody(raw, contentType, options.acceptBatches ?? true));
        } catch (error) {
          respondError(400, `cannot decode request: ${(error as Error).message}`);
          return;
        }
        const decoded = images[0]!;
        const request: DecodedRequest = {
          ...decoded,
          contentType,
          accept: header('accept') ?? 'application/json',
          customAttributes: header('x-amzn-sagemaker-custom-attributes'),
          targetModel: header('x-amzn-sagemaker-target-model'),
          route: sagemaker ? 'sagemaker' : 'container',
          endpointName: sagemaker?.[1] ? decodeURIComponent(sagemaker[1]) : undefined,
          requestNumber: count,
        };
        requests.push(request);
        const fault = options.faults?.(request);
        if (fault && 'delayMs' in fault) await sleep(fault.delayMs);
        if (fault && 'until' in fault) await fault.until;
        if (fault && 'status' in fault) {
          respondError(fault.status, fault.message ?? `injected ${fault.status}`);
          return;
        }
        answered.push(200);
        if (fault && 'malformed' in fault) {
          res.writeHead(200, { 'Content-Type': request.accept }).end(fault.malformed);
          return;
        }
        if (batch) {
          batchSizes.push(images.length);
          const answers = images.map((image) => options.model({ ...request, ...image }));
          const body = request.accept === 'application/jsonlines' ? answers.map((a) => `${JSON.stringify(a)}\n`).join('') : JSON.stringify(answers);
          res.writeHead(200, { 'Content-Type': request.accept }).end(body);
          return;
        }
        const answer = options.model(request);
        const { body, type } = render(options.alwaysBatch ? [answer] : answer, request.accept);
        res.writeHead(200, { 'Content-Type': type }).end(body);
      })();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    answered,
    batchSizes,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
