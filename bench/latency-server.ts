/**
 * The benchmark endpoint, in its own process: a container-contract server with a fixed latency, a
 * hard concurrency cap (capacity = cap / latency calls per second), an optional per-request and
 * per-image cost, and a constant answer, so the client's work is what is measured.
 * Over the cap, a call waits for a slot (MODE queue, a real-time endpoint's queue) or is refused
 * at once with 429 (MODE throttle, as a serverless endpoint at its concurrency limit).
 * Usage: node latency-server.js LATENCY_MS CAP PER_REQUEST_MS PER_IMAGE_MS LABELS [MODE]
 * Prints {"port": N} when listening; GET answers {"served": images, "throttled": 429s}.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const [latencyMs, cap, perRequestMs, perImageMs, labels] = process.argv.slice(2, 7).map(Number) as [number, number, number, number, number];
const mode = process.argv[7] === 'throttle' ? 'throttle' : 'queue';
let throttled = 0;
const answer = { prediction: Array.from({ length: labels }, (_, i) => (i + 1) / ((labels * (labels + 1)) / 2)) };
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
    const n = imagesIn(Buffer.concat(chunks));
    const start = (): void => {
      active += 1;
      setTimeout(() => {
        active -= 1;
        served += n;
        const body = n > 1 ? JSON.stringify(Array.from({ length: n }, () => answer)) : JSON.stringify(answer);
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(body);
        waiting.shift()?.();
      }, latencyMs + perRequestMs + perImageMs * n);
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
