/**
 * Output names for images, as SageMaker Clarify writes them: the file name without its
 * extension (`064.elephant-101_064_0003.jpg` → `shap_064.elephant-101_064_0003.jpeg`), so notebook
 * code that opens files by name finds them.
 *
 * Two images whose stems are the same, ignoring case (`a/cat.jpg` and `b/cat.jpg`, `cat.jpg` and
 * `cat.png`, `Cat.jpg` and `cat.jpg` on a case-insensitive disk), never share a name: each of them
 * gets `<stem>-<8 hex digits of a hash of its key>` instead. The rule depends only on the set of
 * keys in the dataset, never on order, shard or resume, so every host names every image alike.
 * A hashed name that is itself some image's stem takes the full 40-digit hash.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { DatasetImage } from '../dataset/dataset.js';
import { mib } from '../compute/memory.js';
import { formatCount } from './format.js';

/** The image's file name without its extension, made safe as a file name and S3 key. */
export function imageStem(key: string, uri: string): string {
  const source = path.posix.basename(key === '' ? uri.replace(/\\/g, '/') : key);
  const stem = source.replace(/\.[^.]*$/, '');
  const safe = stem
    .replace(/[^\p{L}\p{N}._ -]+/gu, '_')
    .replace(/^[. ]+/, '')
    .slice(0, 120);
  return safe || 'image';
}

function keyHash(key: string, uri: string): string {
  return createHash('sha1').update(key === '' ? uri : key).digest('hex');
}

/** Lower-cased stems are kept as 64-bit fingerprints, added in blocks of this many. */
const FINGERPRINT_BLOCK = 65_536;

/** A stem's first 64 bits of SHA-1: two stems of a 10-million-image dataset share one with odds of about 3·10⁻⁶. */
function stemFingerprint(lowerStem: string): bigint {
  return createHash('sha1').update(lowerStem).digest().readBigUInt64BE(0);
}

/** Whether a sorted array holds the value (binary search). */
function sortedHas(sorted: BigUint64Array, value: bigint): boolean {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo < sorted.length && sorted[lo] === value;
}

/** The listing would need more memory for its names than the job allows them. */
export class ListingTooLargeError extends Error {
  constructor(readonly images: number, readonly limitBytes: number) {
    super(
      `the dataset lists more than ${formatCount(images)} images, and naming them needs more than ${mib(limitBytes)} ` +
        '(a quarter of clarify_images.max_memory_mb, 16 bytes an image): raise max_memory_mb, or split the dataset into prefixes',
    );
    this.name = 'ListingTooLargeError';
  }
}

/**
 * Names every image of one dataset; built from the whole listing before any image is named.
 * Memory is 8–16 bytes an image, not the stems themselves (about 90 bytes an image as a Map of
 * strings: 1 GB at 10 million images), and is capped: past `maxBytes` the listing is refused.
 */
export class OutputNamer {
  private blocks: BigUint64Array[] = [];
  /** Fingerprints in the last block. */
  private filled = 0;
  /** After sealing: every distinct fingerprint, sorted, and those of stems two or more images share. */
  private distinct: BigUint64Array | undefined;
  private shared: BigUint64Array | undefined;

  constructor(private readonly maxBytes = Number.POSITIVE_INFINITY) {}

  /** Count every image of the listing; throws ListingTooLargeError once past `maxBytes`. */
  static async fromListing(images: AsyncIterable<DatasetImage>, maxBytes?: number): Promise<OutputNamer> {
    const namer = new OutputNamer(maxBytes);
    for await (const image of images) namer.add(image.key, image.uri);
    namer.seal();
    return namer;
  }

  /** Images added. */
  private get count(): number {
    return this.blocks.length === 0 ? 0 : (this.blocks.length - 1) * FINGERPRINT_BLOCK + this.filled;
  }

  /** What the names hold now; at most twice the fingerprints while sealing. */
  get bytes(): number {
    if (this.distinct) return this.distinct.byteLength + this.shared!.byteLength;
    return this.blocks.length * FINGERPRINT_BLOCK * 8;
  }

  add(key: string, uri: string): void {
    if (this.distinct) throw new Error('OutputNamer: every image is added before the first is named');
    if (this.filled === 0 || this.filled === FINGERPRINT_BLOCK) {
      // Sealing copies the fingerprints once, so 16 bytes an image are what the cap must allow.
      if ((this.blocks.length + 1) * FINGERPRINT_BLOCK * 16 > this.maxBytes) throw new ListingTooLargeError(this.count, this.maxBytes);
      this.blocks.push(new BigUint64Array(FINGERPRINT_BLOCK));
      this.filled = 0;
    }
    this.blocks.at(-1)![this.filled++] = stemFingerprint(imageStem(key, uri).toLowerCase());
  }

  /** Sorts the fingerprints once; the blocks are let go. */
  seal(): void {
    if (this.distinct) return;
    const all = new BigUint64Array(this.count);
    this.blocks.forEach((block, i) => all.set(i === this.blocks.length - 1 ? block.subarray(0, this.filled) : block, i * FINGERPRINT_BLOCK));
    this.blocks = [];
    all.sort();
    // Two passes over the sorted values: count, then compact the distinct ones to the front and
    // note each repeated one once (a plain array of bigints would cost far more than 8 bytes each).
    let sharedCount = 0;
    for (let i = 1; i < all.length; i++) if (all[i] === all[i - 1] && (i === 1 || all[i - 1] !== all[i - 2])) sharedCount += 1;
    const shared = new BigUint64Array(sharedCount);
    let distinctCount = 0;
    let sharedAt = 0;
    for (let i = 0; i < all.length; i++) {
      if (i > 0 && all[i] === all[i - 1]) {
        if (sharedAt === 0 || shared[sharedAt - 1] !== all[i]) shared[sharedAt++] = all[i]!;
        continue;
      }
      all[distinctCount++] = all[i]!;
    }
    this.distinct = all.slice(0, distinctCount);
    this.shared = shared;
  }

  name(key: string, uri: string): string {
    this.seal();
    const stem = imageStem(key, uri);
    if (!sortedHas(this.shared!, stemFingerprint(stem.toLowerCase()))) return stem;
    const hash = keyHash(key, uri);
    const short = `${stem}-${hash.slice(0, 8)}`;
    return sortedHas(this.distinct!, stemFingerprint(short.toLowerCase())) ? `${stem}-${hash}` : short;
  }
}
