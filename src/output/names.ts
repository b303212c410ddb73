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

/** Names every image of one dataset; built from the whole listing before any image is named. */
export class OutputNamer {
  /** Lower-cased stem → how many images have it. */
  private readonly stems = new Map<string, number>();

  /** Count every image of the listing (keys only, so memory grows with distinct stems). */
  static async fromListing(images: AsyncIterable<DatasetImage>): Promise<OutputNamer> {
    const namer = new OutputNamer();
    for await (const image of images) namer.add(image.key, image.uri);
    return namer;
  }

  add(key: string, uri: string): void {
    const stem = imageStem(key, uri).toLowerCase();
    this.stems.set(stem, (this.stems.get(stem) ?? 0) + 1);
  }

  name(key: string, uri: string): string {
    const stem = imageStem(key, uri);
    if ((this.stems.get(stem.toLowerCase()) ?? 0) <= 1) return stem;
    const hash = keyHash(key, uri);
    const short = `${stem}-${hash.slice(0, 8)}`;
    return this.stems.has(short.toLowerCase()) ? `${stem}-${hash}` : short;
  }
}
