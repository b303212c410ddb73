/**
 * The benchmark endpoint, in its own process: a container-contract server with a fixed latency, a
 * hard concurrency cap (capacity = cap / latency calls per second), an optional per-request and
 * per-image cost, and an answer that follows the image (a softmax of its mean byte), cheap to
 * compute so that the client's work is what is measured, but not constant: the default
 * estimator's forests and regressions have work only where the answers differ between masks.
 * Over the cap, a call waits for a slot (MODE queue, a real-time endpoint's queue) or is refused
 * at once with 429 (MODE throttle, as a serverless endpoint at its concurrency limit).
 * With SIGMA > 0 each call's latency is LATENCY_MS times log-normal noise of that spread (mean 1,
 * seeded): an endpoint whose answers vary in time, as most real ones do.
 * Usage: node latency-server.js LATENCY_MS CAP PER_REQUEST_MS PER_IMAGE_MS LABELS [MODE] [SIGMA]
 * Prints {"port": N} when listening; GET answers {"served": images, "throttled": 429s}.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const [latencyMs, cap, perRequestMs, perImageMs, labels] = process.argv.slice(2, 7).map(Number) as [number, number, number, number, number];
const mode = process.argv[7] === 'throttle' ? 'throttle' : 'queue';
const sigma = Number(process.argv[8] ?? 0);
let throttled = 0;

let seed = 12345;
/** Uniform in (0, 1), seeded (an LCG), so runs are alike. */
function uniform(): number {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return (seed + 0.5) / 2 ** 32;
}

/** Log-normal noise with mean 1; exactly 1 when sigma is 0. */
function noise(): number {
  if (sigma === 0) return 1;
  const normal = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return Math.exp(sigma * normal - (sigma * sigma) / 2);
}

/** Every this many bytes is read for an image's mean: cheap beside the client's work, and a prime, so no channel is favoured. */
const MEAN_STRIDE = 7;

/** The answer for one image whose bytes are body[from, to): a softmax over the labels of its mean byte. */
function answerFor(body: Buffer, from: number, to: number): { prediction: number[] } {
  let sum = 0;
  let count = 0;
  for (let i = from; i < to; i += MEAN_STRIDE) {
    sum += body[i]!;
    count += 1;
  }
  const brightness = count > 0 ? sum / count / 255 - 0.5 : 0;
  const logits = Array.from({ length: labels }, (_, i) => 6 * brightness * (i - (labels - 1) / 2));
  const most = Math.max(...logits);
  const exps = logits.map((z) => Math.exp(z - most));
  const total = exps.reduce((a, b) => a + b, 0);
  return { prediction: exps.map((e) => e / total) };
}

/** One answer per image in the body (`n`, from `imagesIn`): an .npy (H, W, 3) or (N, H, W, 3) array, or one encoded image. */
function answersFor(body: Buffer, n: number): { prediction: number[] }[] {
  if (body[0] !== 0x93) return [answerFor(body, 0, body.length)];
  const data = 10 + body.readUInt16LE(8);
  const perImage = Math.floor((body.length - data) / n);
  return Array.from({ length: n }, (_, k) => answerFor(body, data + k * perImage, data + (k + 1) * perImage));
}
let active = 0;
const waiting: (() => void)[] = [];
let served = 0;

/** Images in an .npy body: the product of the shape's leading dimensions (one for (H, W, 3)). */
function imagesIn(body: Buffer): number {
  if (body[0] !== 0x93) return 1;
  const header = body.subarray(10, 10 + body.readUInt16LE(8)).toString('latin1');
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1]?.split(',').map((s) => s.trim()).filter(Boolean) ?? [];
  return shape.length === 4 ? Number(shape[0]) : 1;
}

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (req.method === 'GET') {
      res.end(JSON.stringify({ served, throttled }));
      return;
    }
    const request = Buffer.concat(chunks);
    const n = imagesIn(request);
    const start = (): void => {
      active += 1;
      setTimeout(() => {
        active -= 1;
        served += n;
        const answers = answersFor(request, n);
        const body = n > 1 ? JSON.stringify(answers) : JSON.stringify(answers[0]);
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(body);
        waiting.shift()?.();
      }, latencyMs * noise() + perRequestMs + perImageMs * n);
    };
    if (active < cap) start();
    else if (mode === 'throttle') {
      throttled += 1;
      res.writeHead(429, { 'Content-Type': 'text/plain' }).end('ThrottlingException: Rate exceeded');
    } else waiting.push(start);
  });
});
server.keepAliveTimeout = 60_000;
server.maxConnections = 10_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`));
