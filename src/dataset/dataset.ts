/** The dataset stage: which objects below the dataset URI are images, in a deterministic order. */
import type { Storage } from '../storage/storage.js';

const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png'];

export interface DatasetImage {
  /** Position in the dataset order, from 0. */
  readonly index: number;
  /** Key relative to the dataset root (`''` when the dataset URI names a single file). */
  readonly key: string;
  /** Full URI, as reported in outputs. */
  readonly uri: string;
  readonly size: number;
}

export interface DatasetCounts {
  imagesFound: number;
  filesSkipped: number;
}

export function isImageKey(key: string): boolean {
  const lower = key.toLowerCase();
  return IMAGE_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

/**
 * Streams the images of a dataset. Listing is paged by the storage, so memory does not grow
 * with the number of keys; `counts` is updated as the listing goes.
 */
export async function* listImages(storage: Storage, counts: DatasetCounts): AsyncGenerator<DatasetImage> {
  for await (const object of storage.list()) {
    const name = object.key === '' ? storage.uri('') : object.key;
    if (!isImageKey(name)) {
      counts.filesSkipped += 1;
      continue;
    }
    const index = counts.imagesFound;
    counts.imagesFound += 1;
    yield { index, key: object.key, uri: storage.uri(object.key), size: object.size };
  }
}
