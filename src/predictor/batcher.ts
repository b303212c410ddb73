/**
 * Batching for application/x-npy: masked images of one size that are waiting at the same moment
 * go to the endpoint as one (N, H, W, 3) array, and the N answers (a JSON list, or N JSON lines)
 * come back split. The batch shrinks to fit the payload limit (InvokeEndpoint: 6 MiB), halves on
 * a 413, and falls back to single images for good when the endpoint rejects batches (as Clarify
 * does), so later images do not retry what failed.
 */
import pLimit, { type LimitFunction } from 'p-limit';
import type { AcceptType } from '../config/config.js';
import { StageError } from '../errors.js';
import { encodeNpyBatch } from '../image/encode.js';
import { encodeNpy } from '../image/npy.js';
import type { RgbImage } from '../image/rgb.js';
import { EndpointError } from './transport.js';
import type { Prediction, Predictor } from './predictor.js';

interface Waiting {
  readonly image: RgbImage;
  resolve(prediction: Prediction): void;
  reject(error: unknown): void;
}

/** Split a batch answer into one body per image. */
export function splitBatchAnswer(body: Uint8Array, accept: AcceptType, count: number): Uint8Array[] {
  const text = Buffer.from(body).toString('utf8');
  if (accept === 'application/jsonlines') {
    const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
    if (lines.length !== count) throw new Error(`a batch of ${count} got ${lines.length} JSON lines`);
    return lines.map((l) => Buffer.from(l));
  }
  if (accept === 'application/json') {
    const parsed = JSON.parse(text) as unknown;
    if (!Array.isArray(parsed) || parsed.length !== count) throw new Error(`a batch of ${count} got ${Array.isArray(parsed) ? `a list of ${parsed.length}` : 'no list'}`);
    return parsed.map((answer) => Buffer.from(JSON.stringify(answer)));
  }
  throw new Error(`batches need JSON or JSON Lines answers, not ${accept}`);
}

/** Images per request that fit the payload limit. */
export function fittingBatch(image: RgbImage, wanted: number, maxPayloadBytes: number): number {
  const header = 128; // an .npy v1.0 header is 64 or 128 bytes
  const perImage = image.width * image.height * 3;
  return Math.max(1, Math.min(wanted, Math.floor((maxPayloadBytes - header) / perImage)));
}

function statusOf(error: unknown): number | undefined {
  const cause = error instanceof StageError ? error.cause : error;
  return cause instanceof EndpointError ? cause.status : undefined;
}

/** How long a partly filled batch waits for more masked images before it is sent. */
export const BATCH_LINGER_MS = 5;

export class NpyBatcher {
  private readonly queues = new Map<string, Waiting[]>();
  private scheduled = false;
  /** Batches in flight, at most the endpoint concurrency, so a refusal reaches batches not yet sent. */
  private readonly slots: LimitFunction;
  /** The batch size that works with this endpoint (shrinks, never grows back). */
  batchSize: number;

  constructor(
    private readonly predictor: Predictor,
    private readonly accept: AcceptType,
    wanted: number,
    private readonly maxPayloadBytes: number,
    concurrency: number,
    private readonly log: (line: string) => void = () => undefined,
  ) {
    this.batchSize = Math.max(1, wanted);
    this.slots = pLimit(Math.max(1, concurrency));
  }

  predict(image: RgbImage): Promise<Prediction> {
    return new Promise<Prediction>((resolve, reject) => {
      const key = `${image.width}x${image.height}`;
      const queue = this.queues.get(key) ?? [];
      queue.push({ image, resolve, reject });
      this.queues.set(key, queue);
      if (queue.length >= this.batchSize) this.flush(key);
      else if (!this.scheduled) {
        // Masked images come back from worker threads one message at a time: a batch waits a
        // few milliseconds to fill, then goes as it is.
        this.scheduled = true;
        setTimeout(() => {
          this.scheduled = false;
          for (const k of [...this.queues.keys()]) this.flush(k);
        }, BATCH_LINGER_MS);
      }
    });
  }

  private flush(key: string): void {
    const queue = this.queues.get(key);
    if (!queue || queue.length === 0) return;
    while (queue.length > 0) {
      const size = fittingBatch(queue[0]!.image, this.batchSize, this.maxPayloadBytes);
      void this.send(queue.splice(0, size));
    }
    this.queues.delete(key);
  }

  private send(batch: Waiting[]): Promise<void> {
    return this.slots(async () => {
      // Formed before a refusal shrank the batch size: form it again at the size that applies now.
      if (batch.length > this.batchSize) {
        for (const w of batch) this.predict(w.image).then(w.resolve, w.reject);
        return;
      }
      await this.sendNow(batch);
    });
  }

  private async sendNow(batch: Waiting[]): Promise<void> {
    const first = batch[0]!.image;
    try {
      if (batch.length === 1) {
        const payload = encodeNpy(first.data, [first.height, first.width, 3]);
        batch[0]!.resolve(await this.predictor.predict(payload, first.width, first.height));
        return;
      }
      const payload = encodeNpyBatch(batch.map((w) => w.image));
      const response = await this.predictor.invokeRaw(payload);
      let bodies: Uint8Array[];
      try {
        bodies = splitBatchAnswer(response.body, this.accept, batch.length);
      } catch (error) {
        throw new StageError('parse', error instanceof Error ? error.message : String(error));
      }
      bodies.forEach((body, i) => {
        const waiting = batch[i]!;
        try {
          waiting.resolve(this.predictor.interpret(body, first.width, first.height));
        } catch {
          // One answer of the batch cannot be read: the image is asked again alone, with the retries a single call gets.
          this.predictor.predict(encodeNpy(waiting.image.data, [first.height, first.width, 3]), first.width, first.height).then(waiting.resolve, waiting.reject);
        }
      });
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(error);
        return;
      }
      const status = statusOf(error);
      // Several batches may be in flight when the first answer says no: change (and say) it once.
      if (status === 413) {
        const smaller = Math.max(1, Math.floor(batch.length / 2));
        if (smaller < this.batchSize) {
          this.batchSize = smaller;
          this.log(`the endpoint refused a ${batch.length}-image request as too large (413): batches of ${this.batchSize} from now on`);
        }
      } else if ((status !== undefined && status >= 400 && status < 500) || (error instanceof StageError && error.stage === 'parse')) {
        if (this.batchSize > 1) {
          this.batchSize = 1;
          this.log(`the endpoint does not take batches (${error instanceof Error ? error.message.slice(0, 160) : String(error)}): sending one image per request from now on`);
        }
      } else {
        for (const w of batch) w.reject(error);
        return;
      }
      // Send the same images again at the size that now applies.
      for (const w of batch) this.predict(w.image).then(w.resolve, w.reject);
    }
  }
}
