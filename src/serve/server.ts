/**
 * A model server that speaks the SageMaker container contract: GET /ping, POST /invocations.
 * Requests: image/jpeg, image/png, or application/x-npy holding (H, W, 3) or a batch (N, H, W, 3).
 * Answers: application/json or application/jsonlines; a detector also answers image/jpeg or
 * image/png (the boxes drawn) and, in the Mask R-CNN style, {"labels", "boxes"}. As in that seed
 * API, a `response_type` custom attribute (jpeg, png, json) chooses the answer when Accept does not.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pLimit from 'p-limit';
import sharp from 'sharp';
import { decodeImage } from '../image/decode.js';
import { decodeNpy } from '../image/npy.js';
import { createRgbImage, type RgbImage } from '../image/rgb.js';
import { renderDetections } from '../output/heatmap.js';
import type { ModelDetection, ServedModel } from './face-models.js';

export type AnswerStyle = 'clarify' | 'mask_rcnn';

export interface ModelServerOptions {
  readonly model: ServedModel;
  readonly port: number;
  readonly host?: string;
  readonly style?: AnswerStyle;
  readonly maxBodyBytes?: number;
}

export interface RunningModelServer {
  readonly url: string;
  readonly invocations: () => number;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

async function decodePayload(body: Buffer, contentType: string): Promise<RgbImage[]> {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  if (type === 'application/x-npy') {
    let array;
    try {
      array = decodeNpy(body);
    } catch (error) {
      throw new HttpError(400, `bad .npy body: ${(error as Error).message}`);
    }
    const { shape, data } = array;
    if (shape.length === 3 && shape[2] === 3) return [createRgbImage(shape[1]!, shape[0]!, Uint8Array.from(data))];
    if (shape.length === 4 && shape[3] === 3) {
      const [n, h, w] = shape as [number, number, number, number];
      const frame = h * w * 3;
      return Array.from({ length: n }, (_, i) => createRgbImage(w, h, data.slice(i * frame, (i + 1) * frame)));
    }
    throw new HttpError(400, `expected an array of shape (H, W, 3) or (N, H, W, 3), got (${shape.join(', ')})`);
  }
  if (type === 'image/jpeg' || type === 'image/png') {
    try {
      return [await decodeImage(body, { maxPixels: 50_000_000 })];
    } catch (error) {
      throw new HttpError(400, `cannot decode the ${type} body: ${(error as Error).message}`);
    }
  }
  throw new HttpError(415, `unsupported Content-Type "${contentType}"; send image/jpeg, image/png or application/x-npy`);
}

/** Accept first, then the custom attribute {"response_type": ...}, then JSON. */
export function answerType(accept: string | undefined, customAttributes: string | undefined): 'json' | 'jsonlines' | 'jpeg' | 'png' {
  const a = (accept ?? '').split(',')[0]!.trim().toLowerCase();
  if (a === 'application/json') return 'json';
  if (a === 'application/jsonlines' || a === 'application/x-jsonlines') return 'jsonlines';
  if (a === 'image/jpeg') return 'jpeg';
  if (a === 'image/png') return 'png';
  if (customAttributes) {
    try {
      const parsed = JSON.parse(customAttributes) as { response_type?: unknown };
      if (parsed.response_type === 'json' || parsed.response_type === 'jpeg' || parsed.response_type === 'png') return parsed.response_type;
    } catch {
      // not JSON: ignore, as the seed API does
    }
  }
  if (a === '' || a === '*/*') return 'json';
  throw new HttpError(406, `unsupported Accept "${accept}"; use application/json, application/jsonlines, image/jpeg or image/png`);
}

function detectionAnswer(detections: readonly ModelDetection[], image: RgbImage, style: AnswerStyle): unknown {
  if (style === 'mask_rcnn') {
    return {
      labels: detections.map((d) => `${d.label} ${Math.round(d.score * 100)}%`),
      boxes: detections.map((d) => [d.box.x0 * image.width, d.box.y0 * image.height, d.box.x1 * image.width, d.box.y1 * image.height]),
    };
  }
  return { prediction: detections.map((d) => [d.classIndex, d.score, d.box.x0, d.box.y0, d.box.x1, d.box.y1]) };
}

export async function startModelServer(options: ModelServerOptions): Promise<RunningModelServer> {
  const { model } = options;
  const style = options.style ?? 'clarify';
  const maxBody = options.maxBodyBytes ?? 64 * 1024 * 1024;
  // A copy of the model runs one image at a time; queue requests beyond its copies rather than interleave them.
  const queue = pLimit(model.concurrency);
  let invocations = 0;

  const handle = async (req: http.IncomingMessage, body: Buffer): Promise<{ status: number; type: string; body: Buffer | string }> => {
    if (req.method === 'GET' && req.url === '/ping') return { status: 200, type: 'text/plain', body: '' };
    if (req.method !== 'POST' || req.url !== '/invocations') return { status: 404, type: 'text/plain', body: 'not found: use GET /ping or POST /invocations' };
    invocations += 1;
    const header = (name: string): string | undefined => {
      const v = req.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const images = await decodePayload(body, header('content-type') ?? '');
    const answer = answerType(header('accept'), header('x-amzn-sagemaker-custom-attributes'));
    if (model.kind === 'classification') {
      if (answer === 'jpeg' || answer === 'png') throw new HttpError(406, 'a classifier answers application/json or application/jsonlines');
      const results = await queue(async () => {
        const out: { prediction: number[] }[] = [];
        for (const image of images) out.push({ prediction: await model.classify(image) });
        return out;
      });
      return render(results, answer);
    }
    const results = await queue(async () => {
      const out: ModelDetection[][] = [];
      for (const image of images) out.push(await model.detect(image));
      return out;
    });
    if (answer === 'jpeg' || answer === 'png') {
      if (images.length !== 1) throw new HttpError(406, 'an image answer needs a single image in the request');
      const drawn = await renderDetections(
        images[0]!,
        results[0]!.map((d) => ({
          box: { x0: d.box.x0 * images[0]!.width, y0: d.box.y0 * images[0]!.height, x1: d.box.x1 * images[0]!.width, y1: d.box.y1 * images[0]!.height },
          caption: `${d.label} ${Math.round(d.score * 100)}%`,
        })),
      );
      const bytes = answer === 'png' ? await sharp(drawn).png().toBuffer() : drawn;
      return { status: 200, type: `image/${answer}`, body: bytes };
    }
    return render(
      results.map((r, i) => detectionAnswer(r, images[i]!, style)),
      answer,
    );
  };

  const render = (results: readonly unknown[], answer: 'json' | 'jsonlines'): { status: number; type: string; body: string } => {
    if (answer === 'jsonlines') return { status: 200, type: 'application/jsonlines', body: results.map((r) => `${JSON.stringify(r)}\n`).join('') };
    // One image: its answer object; a batch: a list of them.
    return { status: 200, type: 'application/json', body: JSON.stringify(results.length === 1 ? results[0] : results) };
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBody) chunks.push(chunk);
    });
    req.on('end', () => {
      const respond = (status: number, type: string, body: Buffer | string): void => {
        res.writeHead(status, { 'Content-Type': type }).end(body);
      };
      if (size > maxBody) {
        respond(413, 'text/plain', `request body over ${maxBody} bytes`);
        return;
      }
      handle(req, Buffer.concat(chunks))
        .then((r) => respond(r.status, r.type, r.body))
        .catch((error: unknown) => {
          const status = error instanceof HttpError ? error.status : 500;
          respond(status, 'text/plain', error instanceof Error ? error.message : String(error));
        });
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${address.address}:${address.port}`,
    invocations: () => invocations,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
