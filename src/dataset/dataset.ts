/** The dataset stage: which objects below the dataset URI are images, in a deterministic order. */
import { ConfigError, errorMessage } from '../errors.js';
import { formatCount } from '../output/format.js';
import path from 'node:path';
import { parseLocation } from '../storage/location.js';
import { LineTooLongError, openDatasetStorage, readUri, readUriLines, type Storage, type StorageOptions, type StoredObject } from '../storage/storage.js';

/** What the job needs of a dataset: its objects, their bytes and their URIs. */
export type DatasetSource = Pick<Storage, 'list' | 'read' | 'readVersion' | 'uri'> & {
  /** Memory the source holds all run (a manifest's entries), taken from the images' budget. */
  readonly heldBytes?: number;
};

/** What a manifest entry costs in memory, as a Map of key → URI (measured 134 bytes at 44 + 49 one-byte characters; two-byte text counted). */
export const manifestEntryBytes = (key: string, imageUri: string): number => 64 + 2 * (key.length + imageUri.length);

const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png'];

export interface DatasetImage {
  /** Position in the dataset order, from 0. */
  readonly index: number;
  /** Key relative to the dataset root (`''` when the dataset URI names a single file). */
  readonly key: string;
  /** Full URI, as reported in outputs. */
  readonly uri: string;
  readonly size: number;
  /** S3's ETag, where the listing gives one: identifies the content without reading it. */
  readonly etag?: string;
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
export async function* listImages(storage: DatasetSource, counts: DatasetCounts, excluded?: (key: string) => boolean, stop?: AbortSignal): AsyncGenerator<DatasetImage> {
  for await (const object of storage.list(stop)) {
    if (excluded?.(object.key)) continue;
    const name = object.key === '' ? storage.uri('') : object.key;
    if (!isImageKey(name)) {
      counts.filesSkipped += 1;
      continue;
    }
    const index = counts.imagesFound;
    counts.imagesFound += 1;
    yield { index, key: object.key, uri: storage.uri(object.key), size: object.size, ...(object.etag ? { etag: object.etag } : {}) };
  }
}

/**
 * Keys of the dataset that belong to the job's own output (an output folder inside the dataset
 * folder), so the job never explains its own heatmaps. Undefined when the output is elsewhere.
 */
export function ownOutputFilter(dataset: DatasetSource, outputUri: string): ((key: string) => boolean) | undefined {
  if (!('location' in dataset)) return undefined;
  const d = (dataset as Storage).location;
  const o = parseLocation(outputUri);
  let inside: string | undefined;
  if (d.kind === 'local' && o.kind === 'local') {
    const relative = path.relative(d.dir, o.dir);
    if (relative && !relative.startsWith('..') && !path.isAbsolute(relative)) inside = relative.split(path.sep).join('/');
  } else if (d.kind === 's3' && o.kind === 's3' && d.bucket === o.bucket && o.prefix.startsWith(d.prefix) && o.prefix !== d.prefix) {
    inside = o.prefix.slice(d.prefix.length).replace(/\/$/, '');
  }
  if (inside === undefined) return undefined;
  const folder = inside;
  const staging = `${path.posix.dirname(folder) === '.' ? '' : `${path.posix.dirname(folder)}/`}.${path.posix.basename(folder)}.staging/`;
  return (key) => key === folder || key.startsWith(`${folder}/`) || key.startsWith(staging);
}

/** A JSON-array manifest, or one line of an augmented manifest, is read whole up to this size. */
export const MAX_MANIFEST_TEXT_MIB = 64;
const MAX_MANIFEST_TEXT_BYTES = MAX_MANIFEST_TEXT_MIB * 1024 * 1024;
const mib = (bytes: number): string => `${+(bytes / 1024 / 1024).toPrecision(3)}`;

/** A URI naming a manifest rather than images: SageMaker's ManifestFile or AugmentedManifestFile. */
export function isManifestUri(uri: string): boolean {
  return /\.(manifest|json|jsonl)$/i.test(uri);
}

/**
 * The images a manifest names, in its order. A manifest (S3DataType ManifestFile) is
 * `[{"prefix": "s3://bucket/images/"}, "a.jpg", "sub/b.png", …]`; an augmented manifest is JSON
 * Lines whose `source-ref` is each image's URI. Keys are the entries as written (relative paths,
 * or the source-ref without `s3://`); an entry named twice is listed once. An object the manifest
 * names but the store does not have fails that image when it is read, not the job.
 */
export class ManifestDataset implements DatasetSource {
  private constructor(
    private readonly entries: ReadonlyMap<string, string>,
    private readonly options: StorageOptions,
    readonly heldBytes: number,
  ) {}

  /**
   * @param maxHeldBytes what the entries may hold (the job gives a quarter of max_memory_mb): a
   *   manifest past it is refused while it is read, not held until the container is killed
   */
  static async load(uri: string, options: StorageOptions = {}, maxTextBytes = MAX_MANIFEST_TEXT_BYTES, maxHeldBytes = Number.POSITIVE_INFINITY): Promise<ManifestDataset> {
    const entries = new Map<string, string>();
    let heldBytes = 0;
    const problem = (message: string): ConfigError => new ConfigError([{ path: 'dataset_uri', message: `${uri} is not a manifest: ${message}` }]);
    const tooLarge = (message: string): ConfigError => new ConfigError([{ path: 'dataset_uri', message: `${uri} ${message}` }]);
    const add = (key: string, imageUri: string): void => {
      if (entries.has(key)) return;
      heldBytes += manifestEntryBytes(key, imageUri);
      if (heldBytes > maxHeldBytes) {
        throw tooLarge(
          `lists more than ${formatCount(entries.size)} images, and holding them needs more than ${mib(maxHeldBytes)} MiB (a quarter of clarify_images.max_memory_mb, about ${formatCount(manifestEntryBytes(key, imageUri))} bytes an entry): raise max_memory_mb, or split the manifest`,
        );
      }
      entries.set(key, imageUri);
    };
    // Read line by line: an augmented manifest (often large, with labels on every line) is never
    // held whole, only its keys. A JSON-array manifest must be parsed whole, so it is bounded.
    let array: string[] | undefined;
    let arrayBytes = 0;
    let lineNumber = 0;
    try {
      let first = true;
      for await (const read of readUriLines(uri, options, maxTextBytes)) {
        lineNumber += 1;
        const line = lineNumber === 1 ? read.replace(/^\uFEFF/, '') : read;
        if (array) {
          arrayBytes += Buffer.byteLength(line) + 1;
          if (arrayBytes > maxTextBytes) throw tooLarge(`is a JSON-array manifest larger than ${mib(maxTextBytes)} MiB (read whole to be parsed); write it as an augmented manifest (one {"source-ref": "s3://…"} per line), which is read a line at a time`);
          array.push(line);
          continue;
        }
        if (line.trim() === '') continue;
        // The first line with text says which kind of manifest this is.
        if (first && line.trimStart().startsWith('[')) {
          array = [line];
          arrayBytes = Buffer.byteLength(line) + 1;
          continue;
        }
        first = false;
        let record: unknown;
        try {
          record = JSON.parse(line);
        } catch (error) {
          throw problem(`line ${lineNumber} is not JSON (${errorMessage(error)})`);
        }
        const ref = (record as { 'source-ref'?: unknown } | null)?.['source-ref'];
        if (typeof ref !== 'string' || ref === '') throw problem(`line ${lineNumber} has no "source-ref"`);
        add(ref.replace(/^s3:\/\//i, ''), ref);
      }
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      if (error instanceof LineTooLongError) throw tooLarge(`has a line longer than a manifest's lines may be: ${error.message}`);
      throw new ConfigError([{ path: 'dataset_uri', message: `cannot read the manifest ${uri}: ${errorMessage(error)}` }]);
    }
    if (array) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(array.join('\n'));
      } catch (error) {
        throw problem(`invalid JSON (${errorMessage(error)})`);
      }
      const [head, ...files] = parsed as unknown[];
      const prefix = (head as { prefix?: unknown } | undefined)?.prefix;
      if (typeof prefix !== 'string') throw problem('the first entry must be {"prefix": "s3://bucket/folder/"}');
      const base = prefix.endsWith('/') ? prefix : `${prefix}/`;
      files.forEach((file, i) => {
        if (typeof file !== 'string' || file === '') throw problem(`entry ${i + 1} is not a relative path`);
        add(file, `${base}${file}`);
      });
    }
    return new ManifestDataset(entries, options, heldBytes);
  }

  async *list(): AsyncIterable<StoredObject> {
    for (const key of this.entries.keys()) yield { key, size: 0 };
  }

  read(key: string): Promise<Buffer> {
    return readUri(this.uri(key), this.options);
  }

  uri(key: string): string {
    const uri = this.entries.get(key);
    if (uri === undefined) throw new Error(`${key} is not in the manifest`);
    return uri;
  }
}

/** The dataset a URI names: a manifest, an S3 prefix (SageMaker's matching) or a local folder or file. */
export async function openDataset(uri: string, options: StorageOptions = {}, maxHeldBytes?: number): Promise<DatasetSource> {
  return isManifestUri(uri) ? ManifestDataset.load(uri, options, MAX_MANIFEST_TEXT_BYTES, maxHeldBytes) : openDatasetStorage(uri, options);
}
