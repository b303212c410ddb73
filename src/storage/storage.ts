/**
 * Reading and writing objects below a root location, the same way for S3 and local folders.
 * Keys are relative to the root and use `/`.
 */
import { createReadStream, rmdirSync, rmSync } from 'node:fs';
import { copyFile, type FileHandle, lstat, mkdir, open, readFile, realpath, rename, rm, rmdir, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { type Location, parseLocation, uriOf } from './location.js';
import { type SortedFolderOptions, sortedFolderEntries } from './sorted-folder.js';

export interface StoredObject {
  /** Key relative to the storage root, `/`-separated. */
  readonly key: string;
  readonly size: number;
  /** S3's ETag (a hash of the content), where the listing gives one. */
  readonly etag?: string;
}

/** How much of an object one read holds in memory when it is read line by line (by default). */
export const LINE_READ_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * Lines of UTF-8 text arriving in chunks, each decoded on its own from its bytes (a \n byte is
 * never inside a multi-byte character), so no line keeps a chunk alive. A line that spans chunks
 * is held as its pieces until its end.
 */
export async function* linesOf(chunks: AsyncIterable<Uint8Array>, maxLineBytes = Infinity): AsyncIterable<string> {
  let pieces: Buffer[] = [];
  let held = 0;
  let lineNumber = 0;
  const tooLong = (): Error => new LineTooLongError(lineNumber + 1, maxLineBytes);
  for await (const chunk of chunks) {
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    for (let end = bytes.indexOf(10); end >= 0; end = bytes.indexOf(10, start)) {
      if (held + end - start > maxLineBytes) throw tooLong();
      yield pieces.length === 0 ? bytes.toString('utf8', start, end) : Buffer.concat([...pieces, bytes.subarray(start, end)]).toString('utf8');
      lineNumber += 1;
      pieces = [];
      held = 0;
      start = end + 1;
    }
    if (start < bytes.length) {
      held += bytes.length - start;
      if (held > maxLineBytes) throw tooLong();
      pieces.push(Buffer.from(bytes.subarray(start)));
    }
  }
  if (pieces.length > 0) yield Buffer.concat(pieces).toString('utf8');
}

/** A line longer than a reader holds: said with its number, before it is read whole. */
export class LineTooLongError extends Error {
  constructor(readonly lineNumber: number, readonly maxLineBytes: number) {
    super(`line ${lineNumber} is longer than ${maxLineBytes >= 1 << 20 ? `${+(maxLineBytes / (1 << 20)).toFixed(1)} MiB` : `${maxLineBytes} bytes`}`);
    this.name = 'LineTooLongError';
  }
}

/** An S3 listing that would never end: the server went back to where it had been. */
export class ListingLoopError extends Error {
  constructor(uri: string, what: string) {
    super(`S3 list of ${uri}: the server returned ${what}; the listing is stopped rather than repeated forever`);
    this.name = 'ListingLoopError';
  }
}

/** A stream of text written to one object; only visible at its key once `close` resolves. */
export interface TextSink {
  write(text: string): Promise<void>;
  close(): Promise<void>;
  /** Give up: nothing is left at the key. */
  abort(): Promise<void>;
}

export interface Storage {
  readonly location: Location;
  /**
   * Every object below the root, in the store's listing order (S3 and local: byte order of keys),
   * one page in memory at a time. `stop` aborts an S3 page's request in flight and cuts short its
   * retries through an outage.
   */
  list(stop?: AbortSignal): AsyncIterable<StoredObject>;
  read(key: string): Promise<Buffer>;
  /**
   * The bytes and the ETag of the version read, where the store versions its objects (S3): an
   * object replaced after it was listed is then known by what was read, not by the listing.
   */
  readVersion?(key: string): Promise<{ bytes: Buffer; etag?: string }>;
  /** A text object's lines (split at \n), read `chunkBytes` at a time: memory holds one chunk and one line (a longer line than `maxLineBytes` throws LineTooLongError). */
  readLines(key: string, chunkBytes?: number, maxLineBytes?: number): AsyncIterable<string>;
  write(key: string, body: Uint8Array | string, contentType?: string): Promise<void>;
  openTextSink(key: string, contentType?: string): Promise<TextSink>;
  /** Whether a complete object is at the key. */
  exists(key: string): Promise<boolean>;
  uri(key: string): string;
}

export interface StorageOptions {
  readonly region?: string;
  /** Reused for every S3 location; created on first use when absent. */
  readonly s3Client?: S3Client;
}

let sharedS3: S3Client | undefined;

/** How S3 calls ride out an outage: whole operations retried with backoff, each attempt bounded. */
export interface S3Resilience {
  /** Attempts per operation (list page, read, write, exists). */
  maxAttempts: number;
  /** First backoff; doubled each attempt, with full jitter, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A socket with no bytes for this long is given up (a stalled S3), then retried. */
  idleTimeoutMs: number;
  /** Told of every retry, for the job's log. */
  onRetry: (what: string, error: unknown, attempt: number) => void;
}

/** Enough to ride out an S3 brown-out of about a minute (1 + 2 + 4 + 8 + 16 + 20 + 20 s of backoff at most). */
export const s3Resilience: S3Resilience = {
  maxAttempts: 8,
  baseDelayMs: 1000,
  maxDelayMs: 20_000,
  idleTimeoutMs: 20_000,
  onRetry: () => undefined,
};

/** The job's settings (clarify_images.s3_*); a shared client made with another idle timeout is replaced. */
export function configureS3Resilience(settings: Partial<S3Resilience>): void {
  const idleBefore = s3Resilience.idleTimeoutMs;
  Object.assign(s3Resilience, settings);
  if (s3Resilience.idleTimeoutMs !== idleBefore) sharedS3 = undefined;
}

const S3_RETRYABLE_STATUS = (status: number | undefined): boolean => status === undefined || status === 429 || status >= 500;

/** Throttling, 5xx, network errors and timeouts are worth another try; 4xx answers (no such key, access denied) are not. */
export function isRetryableS3Error(error: unknown): boolean {
  const e = error as { name?: string; code?: string; $metadata?: { httpStatusCode?: number }; $retryable?: unknown };
  if (e.name === 'NoSuchKey' || e.name === 'NotFound' || e.name === 'NoSuchBucket' || e.name === 'AccessDenied') return false;
  if (e.$retryable || e.name === 'SlowDown' || e.name === 'TimeoutError' || e.name === 'RequestTimeout') return true;
  return S3_RETRYABLE_STATUS(e.$metadata?.httpStatusCode);
}

const UNWRITABLE_CODES = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM']);
const UNWRITABLE_S3 = new Set(['AccessDenied', 'NoSuchBucket', 'ExpiredToken', 'InvalidAccessKeyId', 'AllAccessDisabled']);

/**
 * Whether a failed write says the output as a whole cannot take writes (a full or read-only disk,
 * a bucket gone or denied), rather than something about the one object: looks through causes.
 */
export function isOutputUnwritable(error: unknown): boolean {
  for (let e = error, depth = 0; e && typeof e === 'object' && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, name, Code } = e as { code?: string; name?: string; Code?: string };
    if ((code && UNWRITABLE_CODES.has(code)) || (name && UNWRITABLE_S3.has(name)) || (Code && UNWRITABLE_S3.has(Code))) return true;
  }
  return false;
}

/** One S3 operation, retried through an outage (the SDK's own few quick retries happen inside each attempt). */
/** @param stop ends the retries (the wait, or before the next attempt), the last failure standing: for a listing, never a write, which must still save what is complete after a stop */
export async function withS3Retries<T>(what: string, operation: () => Promise<T>, policy: S3Resilience = s3Resilience, stop?: AbortSignal): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      if (attempt >= policy.maxAttempts || !isRetryableS3Error(error) || stop?.aborted) throw error;
      policy.onRetry(what, error, attempt);
      const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      try {
        await sleep(ceiling / 2 + Math.random() * (ceiling / 2), undefined, stop && { signal: stop });
      } catch {
        throw error;
      }
    }
  }
}

/**
 * An S3 client configured the standard AWS way (credentials chain, AWS_REGION,
 * AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL). A custom endpoint is taken to be an
 * S3-compatible server, which wants path-style addressing and no optional checksums.
 */
export function createS3Client(region?: string): S3Client {
  const custom = Boolean(process.env['AWS_ENDPOINT_URL_S3'] ?? process.env['AWS_ENDPOINT_URL']);
  const config: S3ClientConfig = {
    region: region ?? process.env['AWS_REGION'] ?? process.env['AWS_DEFAULT_REGION'] ?? 'us-east-1',
    // A connection that cannot open, or a socket idle this long, fails the attempt instead of hanging the job.
    requestHandler: { connectionTimeout: 5000, requestTimeout: s3Resilience.idleTimeoutMs, throwOnRequestTimeout: true },
  };
  if (custom) {
    config.forcePathStyle = true;
    config.requestChecksumCalculation = 'WHEN_REQUIRED';
    config.responseChecksumValidation = 'WHEN_REQUIRED';
  }
  return new S3Client(config);
}

function s3ClientFor(options: StorageOptions): S3Client {
  return options.s3Client ?? (sharedS3 ??= createS3Client(options.region));
}

export function openStorage(uri: string, options: StorageOptions = {}): Storage {
  const location = parseLocation(uri);
  if (location.kind === 'local') return new LocalStorage(location);
  return new S3Storage(location, s3ClientFor(options));
}

/**
 * A dataset's images the way SageMaker's S3Prefix reads them: `s3://b/images/` is every key below
 * `images/`, `s3://b/images/cat.jpg` that one object, `s3://b/images/ca` every key starting with
 * `images/ca` (cat.jpg, car.png). Keys are relative to the prefix's last `/`. Local paths are a
 * folder (walked) or one file.
 */
export function openDatasetStorage(uri: string, options: StorageOptions = {}): Storage {
  if (!/^s3:\/\//i.test(uri)) return openStorage(uri, options);
  const rest = uri.slice(5);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  if (!bucket) throw new Error(`"${uri}" has no bucket name`);
  const keyPrefix = slash < 0 ? '' : rest.slice(slash + 1);
  const folder = keyPrefix.slice(0, keyPrefix.lastIndexOf('/') + 1);
  return new S3Storage({ kind: 's3', bucket, prefix: folder }, s3ClientFor(options), keyPrefix.slice(folder.length));
}

/** Read one object named by its full URI (s3://bucket/key or a local path). */
export async function readUri(uri: string, options: StorageOptions = {}): Promise<Buffer> {
  const object = objectAt(uri, options);
  return object ? object.storage.read(object.key) : readFile(localFile(uri));
}

/** One object's lines, a chunk at a time (see Storage.readLines). */
export function readUriLines(uri: string, options: StorageOptions = {}, maxLineBytes?: number): AsyncIterable<string> {
  const object = objectAt(uri, options);
  return object ? object.storage.readLines(object.key, LINE_READ_CHUNK_BYTES, maxLineBytes) : linesOf(createReadStream(localFile(uri), { highWaterMark: LINE_READ_CHUNK_BYTES }), maxLineBytes);
}

/** One object's size in bytes, from S3's HEAD or the file's stat, without reading it. */
export async function sizeOfUri(uri: string, options: StorageOptions = {}): Promise<number> {
  const object = objectAt(uri, options);
  if (!object) return (await stat(localFile(uri))).size;
  const { storage, key } = object;
  const head = await withS3Retries(`S3 head of ${uri}`, () => storage.client.send(new HeadObjectCommand({ Bucket: storage.location.bucket, Key: key })));
  return head.ContentLength ?? 0;
}

/** The bucket and key of an s3:// URI that names one object; undefined for a local path. */
function objectAt(uri: string, options: StorageOptions): { storage: S3Storage; key: string } | undefined {
  if (!/^s3:\/\//i.test(uri)) return undefined;
  const rest = uri.slice(5);
  const slash = rest.indexOf('/');
  if (slash <= 0 || slash === rest.length - 1) throw new Error(`"${uri}" does not name an object (s3://bucket/key)`);
  return { storage: new S3Storage({ kind: 's3', bucket: rest.slice(0, slash), prefix: '' }, s3ClientFor(options)), key: rest.slice(slash + 1) };
}

function localFile(uri: string): string {
  const location = parseLocation(uri);
  if (location.kind !== 'local') throw new Error(`cannot read ${uri}`);
  return location.dir;
}

/**
 * Where local files are written before they are moved into place: beside the output folder, never
 * in it, so a watcher of the folder (SageMaker Processing's S3UploadMode Continuous uploads every
 * file that appears there) never sees a temporary or half-written file. The folder is removed
 * whenever this storage has no file in it, so a finished job leaves only its output; other
 * writers to the same output (other storages, processes or jobs) share it, so a remove fails while
 * one of their files is in it, and a writer whose folder was removed under it makes it again.
 */
let stagingCounter = 0;

/**
 * This process's staged files not yet moved into place or discarded. A second stop signal ends the
 * process at once (process.exit), and these would stay in the staging folder for good; the exit
 * hook removes them, and the folder if that empties it, synchronously, as an exit hook must.
 */
const liveStagedFiles = new Set<string>();
let exitHookInstalled = false;

function trackStaged(temp: string): void {
  liveStagedFiles.add(temp);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', removeLiveStagedFiles);
}

function removeLiveStagedFiles(): void {
  const folders = new Set<string>();
  for (const temp of liveStagedFiles) {
    folders.add(path.dirname(temp));
    try {
      rmSync(temp, { force: true });
    } catch {
      // Best effort on the way out: nothing can be reported after exit.
    }
  }
  liveStagedFiles.clear();
  for (const folder of folders) {
    try {
      rmdirSync(folder); // fails while another writer's file is in it, as unstage's remove does
    } catch {
      // Another writer's files keep it.
    }
  }
}

/** Times a staged file is started again after its folder was removed by another writer. */
const STAGING_ATTEMPTS = 5;

export class LocalStorage implements Storage {
  readonly location: Location & { kind: 'local' };
  private staging: Promise<string> | undefined;
  /** Staged files of this storage not yet moved into place or discarded. */
  private staged = 0;
  /** @param listingOptions how big a folder is sorted in memory (tests make it small, to exercise the merge) */
  constructor(
    location: Location & { kind: 'local' },
    private readonly listingOptions: SortedFolderOptions = {},
  ) {
    this.location = location;
  }

  /** `<parent>/.<name>.staging`, or a folder in the system temp dir when the parent is not writable. */
  private stagingDir(): Promise<string> {
    this.staging ??= (async () => {
      const beside = path.join(path.dirname(this.location.dir), `.${path.basename(this.location.dir)}.staging`);
      try {
        await mkdir(beside, { recursive: true });
        return beside;
      } catch {
        const fallback = path.join(os.tmpdir(), `clarify-images-staging-${process.pid}`);
        await mkdir(fallback, { recursive: true });
        return fallback;
      }
    })();
    return this.staging;
  }

  /**
   * A new file in the staging folder, open for writing. Where another writer removed the folder
   * between its making and the file's (it was empty then), the folder is made again.
   */
  private async stagedFile(): Promise<{ temp: string; handle: FileHandle }> {
    // The number is taken before the await: two writes started together must never share a file.
    stagingCounter += 1;
    const name = `${process.pid}-${stagingCounter}`;
    this.staged += 1;
    for (let attempt = 1; ; attempt++) {
      const dir = await this.stagingDir();
      const temp = path.join(dir, name);
      try {
        const handle = await open(temp, 'w');
        trackStaged(temp);
        return { temp, handle };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= STAGING_ATTEMPTS) {
          await this.unstage(temp);
          throw error;
        }
        if (this.staging !== undefined && (await this.staging) === dir) this.staging = undefined;
      }
    }
  }

  /** Staged file `temp` is gone (moved in or discarded): with none left, the folder goes too. */
  private async unstage(temp: string): Promise<void> {
    liveStagedFiles.delete(temp);
    this.staged -= 1;
    if (this.staged > 0 || this.staging === undefined) return;
    const staging = this.staging;
    const dir = await staging;
    // Fails while another writer's file is in it (ENOTEMPTY): that writer removes it after.
    const removed = await rmdir(dir).then(
      () => true,
      () => false,
    );
    if (removed && this.staging === staging) this.staging = undefined;
  }

  /** Moves a complete staged file to its key: a rename, or a copy where the staging folder is on another disk. */
  private async publish(temp: string, file: string): Promise<void> {
    await mkdir(path.dirname(file), { recursive: true });
    try {
      await rename(temp, file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
      await copyFile(temp, file);
      await rm(temp, { force: true });
    }
  }

  uri(key: string): string {
    return uriOf(this.location, key);
  }

  /**
   * Depth-first, each folder sorted with a `/` after folder names: the same order S3 lists keys in.
   * Symbolic links are followed (a folder reached again through a link is not walked twice, so a
   * loop ends); a broken link is listed, and reading it says so.
   */
  async *list(): AsyncIterable<StoredObject> {
    const root = this.location.dir;
    const info = await stat(root);
    if (info.isFile()) {
      yield { key: '', size: info.size };
      return;
    }
    yield* this.walk(root, '', new Set([await realpath(root)]));
  }

  private async *walk(dir: string, prefix: string, visited: Set<string>): AsyncIterable<StoredObject> {
    // A folder's entries are sorted in bounded memory, however many it holds (sorted-folder.ts).
    for await (const { name, kind } of sortedFolderEntries(dir, this.listingOptions)) {
      const full = path.join(dir, name);
      if (kind === 'folder') {
        const real = await realpath(full);
        if (visited.has(real)) continue; // a link back to a folder already walked: a loop
        visited.add(real);
        yield* this.walk(full, `${prefix}${name}/`, visited);
      } else if (kind === 'broken-link') {
        yield { key: `${prefix}${name}`, size: 0 };
      } else {
        const { size } = await stat(full);
        yield { key: `${prefix}${name}`, size };
      }
    }
  }

  private pathOf(key: string): string {
    return key === '' ? this.location.dir : path.join(this.location.dir, ...key.split('/'));
  }

  async read(key: string): Promise<Buffer> {
    try {
      return await readFile(this.pathOf(key));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' && (await lstat(this.pathOf(key)).catch(() => undefined))?.isSymbolicLink()) {
        throw new Error(`${this.uri(key)} is a broken symbolic link (its target does not exist)`);
      }
      throw error;
    }
  }

  readLines(key: string, chunkBytes = LINE_READ_CHUNK_BYTES, maxLineBytes?: number): AsyncIterable<string> {
    return linesOf(createReadStream(this.pathOf(key), { highWaterMark: chunkBytes }), maxLineBytes);
  }

  async exists(key: string): Promise<boolean> {
    try {
      return (await stat(this.pathOf(key))).isFile();
    } catch {
      return false;
    }
  }

  /** Written to a staging file outside the folder and moved in, so a reader never sees half an object. */
  async write(key: string, body: Uint8Array | string): Promise<void> {
    const { temp, handle } = await this.stagedFile();
    try {
      try {
        await handle.writeFile(body);
      } finally {
        await handle.close();
      }
      await this.publish(temp, this.pathOf(key));
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    } finally {
      await this.unstage(temp);
    }
  }

  async openTextSink(key: string): Promise<TextSink> {
    const file = this.pathOf(key);
    const { temp, handle } = await this.stagedFile();
    const stream = handle.createWriteStream();
    // Once only, though a sink whose close failed may then be aborted.
    let unstaged = false;
    const unstage = async (): Promise<void> => {
      if (unstaged) return;
      unstaged = true;
      await this.unstage(temp);
    };
    return new StreamSink(
      stream,
      async () => {
        await finished(stream);
        await this.publish(temp, file);
        await unstage();
      },
      async () => {
        await rm(temp, { force: true });
        await unstage();
      },
    );
  }
}

export class S3Storage implements Storage {
  readonly location: Location & { kind: 's3' };
  readonly client: S3Client;
  /** Listing only: keys below the root must also start with this (SageMaker's S3Prefix matching). */
  private readonly listFilter: string;
  constructor(location: Location & { kind: 's3' }, client: S3Client, listFilter = '') {
    this.location = location;
    this.client = client;
    this.listFilter = listFilter;
  }

  uri(key: string): string {
    return uriOf(this.location, key);
  }

  private objectKey(key: string): string {
    return `${this.location.prefix}${key}`;
  }

  async *list(stop?: AbortSignal): AsyncIterable<StoredObject> {
    const { bucket, prefix } = this.location;
    let token: string | undefined;
    // An S3-compatible server that hands out a token it gave before, or the same page again, would
    // be listed forever: the listing stops there, saying why (a token per 1,000 keys is kept).
    const tokens = new Set<string>();
    let firstKey: string | undefined;
    do {
      const continuation = token;
      const page = await withS3Retries(`S3 list of ${this.uri('')}`, () =>
        // The stop aborts a request in flight too: a held list request would otherwise wait out s3_idle_timeout_ms.
        this.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}${this.listFilter}`, ContinuationToken: continuation }), stop ? { abortSignal: stop } : {}),
        s3Resilience,
        stop,
      );
      const first = page.Contents?.[0]?.Key;
      if (continuation !== undefined && first !== undefined && first === firstKey) throw new ListingLoopError(this.uri(''), `the same page, from ${JSON.stringify(first)}`);
      firstKey = first;
      for (const object of page.Contents ?? []) {
        if (!object.Key || object.Key.endsWith('/')) continue; // folder markers
        yield { key: object.Key.slice(prefix.length), size: object.Size ?? 0, ...(object.ETag ? { etag: object.ETag } : {}) };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
      if (token !== undefined) {
        if (tokens.has(token)) throw new ListingLoopError(this.uri(''), 'a continuation token it had given before');
        tokens.add(token);
      }
    } while (token);
  }

  async exists(key: string): Promise<boolean> {
    try {
      await withS3Retries(`S3 head of ${this.uri(key)}`, () => this.client.send(new HeadObjectCommand({ Bucket: this.location.bucket, Key: this.objectKey(key) })));
      return true;
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 404 || (error as { name?: string }).name === 'NotFound') return false;
      throw error;
    }
  }

  async read(key: string): Promise<Buffer> {
    return (await this.readVersion(key)).bytes;
  }

  readVersion(key: string): Promise<{ bytes: Buffer; etag?: string }> {
    return withS3Retries(`S3 read of ${this.uri(key)}`, async () => {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.location.bucket, Key: this.objectKey(key) }));
      if (!response.Body) throw new Error(`${this.uri(key)} has no body`);
      const bytes = Buffer.from(await response.Body.transformToByteArray());
      return response.ETag ? { bytes, etag: response.ETag } : { bytes };
    });
  }

  /**
   * Ranged reads of one version of the object (its ETag, checked by S3 on every range), each
   * retried as a whole like `read`, so a long object is never held at once.
   */
  readLines(key: string, chunkBytes = LINE_READ_CHUNK_BYTES, maxLineBytes?: number): AsyncIterable<string> {
    const { bucket } = this.location;
    const objectKey = this.objectKey(key);
    const uri = this.uri(key);
    const client = this.client;
    async function* chunks(): AsyncIterable<Uint8Array> {
      const head = await withS3Retries(`S3 head of ${uri}`, () => client.send(new HeadObjectCommand({ Bucket: bucket, Key: objectKey })));
      const size = head.ContentLength ?? 0;
      for (let start = 0; start < size; start += chunkBytes) {
        const range = `bytes=${start}-${Math.min(size, start + chunkBytes) - 1}`;
        yield await withS3Retries(`S3 read of ${uri} (${range})`, async () => {
          const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: objectKey, Range: range, ...(head.ETag ? { IfMatch: head.ETag } : {}) }));
          if (!response.Body) throw new Error(`${uri} has no body`);
          return response.Body.transformToByteArray();
        });
      }
    }
    return linesOf(chunks(), maxLineBytes);
  }

  /** lib-storage switches to multipart for large bodies. S3 makes an object visible only when complete. */
  async write(key: string, body: Uint8Array | string, contentType?: string): Promise<void> {
    await withS3Retries(`S3 write of ${this.uri(key)}`, () =>
      new Upload({
        client: this.client,
        params: { Bucket: this.location.bucket, Key: this.objectKey(key), Body: body, ContentType: contentType },
      }).done(),
    );
  }

  async openTextSink(key: string, contentType?: string): Promise<TextSink> {
    const body = new PassThrough();
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.location.bucket, Key: this.objectKey(key), Body: body, ContentType: contentType },
    });
    const done = upload.done();
    done.catch(() => undefined); // surfaced by close()
    return new StreamSink(
      body,
      async () => {
        await done;
      },
      async () => {
        await upload.abort();
      },
    );
  }
}

/** Writes with back-pressure, then commits (rename / finish the upload) or aborts. */
class StreamSink implements TextSink {
  private failure: Error | undefined;
  constructor(
    private readonly stream: Writable,
    private readonly commit: () => Promise<void>,
    private readonly discard: () => Promise<void>,
  ) {
    stream.on('error', (error: Error) => {
      this.failure = error;
    });
  }

  async write(text: string): Promise<void> {
    if (this.failure) throw this.failure;
    if (!this.stream.write(text)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => {
          this.stream.off('error', onError);
          resolve();
        };
        const onError = (error: Error): void => {
          this.stream.off('drain', onDrain);
          reject(error);
        };
        this.stream.once('drain', onDrain);
        this.stream.once('error', onError);
      });
    }
  }

  async close(): Promise<void> {
    this.stream.end();
    await this.commit();
    if (this.failure) throw this.failure;
  }

  async abort(): Promise<void> {
    this.stream.destroy();
    await this.discard().catch(() => undefined);
  }
}
