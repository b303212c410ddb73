/**
 * One folder's entries in S3's order (by the UTF-8 bytes of the name, a folder's name followed by
 * `/`), in bounded memory: a folder of a million images (a Processing job's S3 input, downloaded
 * flat) is read a block at a time, each block sorted and, once there are several, kept in a
 * temporary file, and the files merged. A folder that fits one block never touches the disk.
 */
import { createReadStream, rmSync } from 'node:fs';
import { mkdtemp, opendir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { errorMessage } from '../errors.js';
import { formatCount } from '../output/format.js';

export type FolderEntryKind = 'folder' | 'file' | 'broken-link';

export interface FolderEntry {
  readonly name: string;
  readonly kind: FolderEntryKind;
}

export interface SortedFolderOptions {
  /** Entries sorted in memory at once; past it, sorted blocks go to temporary files. */
  readonly blockEntries?: number;
  /** Where the temporary files go (a fresh folder inside, removed when the listing ends). */
  readonly tempDir?: string;
}

/** About 6 MB of names in memory at a time. */
export const DEFAULT_BLOCK_ENTRIES = 50_000;

/**
 * UTF-16 strings in code-point order, which is UTF-8's byte order: units from U+E000 up sort
 * below surrogates (which stand for code points past U+FFFF). No allocation, unlike comparing Buffers.
 */
export function compareCodePoints(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x += x < 0xe000 ? 0x2000 : -0x800;
      y += y < 0xe000 ? 0x2000 : -0x800;
    }
    return x - y;
  }
  return a.length - b.length;
}

/** What S3 sorts an entry by: a folder's name with its `/`. */
const sortKey = (entry: FolderEntry): string => (entry.kind === 'folder' ? `${entry.name}/` : entry.name);
const compareEntries = (a: FolderEntry, b: FolderEntry): number => compareCodePoints(sortKey(a), sortKey(b));

const KIND_CODE: Record<FolderEntryKind, string> = { folder: 'd', file: 'f', 'broken-link': 'b' };
const KIND_OF: Record<string, FolderEntryKind> = { d: 'folder', f: 'file', b: 'broken-link' };

/** A sorted block on disk as `kind name \0` records: a name holds neither `\0` nor `/`, and may hold a newline. */
async function writeBlock(file: string, entries: readonly FolderEntry[]): Promise<void> {
  await writeFile(file, entries.map((entry) => `${KIND_CODE[entry.kind]}${entry.name}\0`).join(''));
}

async function* readBlock(file: string): AsyncGenerator<FolderEntry> {
  let rest = '';
  for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: 16 * 1024 })) {
    const records = (rest + (chunk as string)).split('\0');
    rest = records.pop()!;
    for (const record of records) yield { name: record.slice(1), kind: KIND_OF[record[0]!]! };
  }
}

/** The block files merged: a binary heap of each file's next entry. */
async function* mergeBlocks(files: readonly string[]): AsyncGenerator<FolderEntry> {
  const heads: { entry: FolderEntry; source: AsyncGenerator<FolderEntry> }[] = [];
  const less = (i: number, j: number): boolean => compareEntries(heads[i]!.entry, heads[j]!.entry) < 0;
  const swap = (i: number, j: number): void => {
    [heads[i], heads[j]] = [heads[j]!, heads[i]!];
  };
  const siftDown = (start: number): void => {
    for (let i = start; ; ) {
      const left = 2 * i + 1;
      const right = left + 1;
      let least = i;
      if (left < heads.length && less(left, least)) least = left;
      if (right < heads.length && less(right, least)) least = right;
      if (least === i) return;
      swap(i, least);
      i = least;
    }
  };
  try {
    for (const file of files) {
      const source = readBlock(file);
      const first = await source.next();
      if (!first.done) heads.push({ entry: first.value, source });
    }
    for (let i = (heads.length >> 1) - 1; i >= 0; i--) siftDown(i);
    while (heads.length > 0) {
      const top = heads[0]!;
      yield top.entry;
      const next = await top.source.next();
      if (next.done) {
        swap(0, heads.length - 1);
        heads.pop();
      } else {
        top.entry = next.value;
      }
      siftDown(0);
    }
  } finally {
    await Promise.all(heads.map((head) => head.source.return(undefined)));
  }
}

/** What a directory entry is; a symbolic link is what it points to, or a broken link. Undefined: neither file nor folder. */
async function kindOf(dir: string, entry: { name: string; isDirectory(): boolean; isFile(): boolean; isSymbolicLink(): boolean }): Promise<FolderEntryKind | undefined> {
  if (entry.isDirectory()) return 'folder';
  if (entry.isFile()) return 'file';
  if (!entry.isSymbolicLink()) return undefined;
  const target = await stat(path.join(dir, entry.name)).catch(() => undefined);
  if (target === undefined) return 'broken-link';
  return target.isDirectory() ? 'folder' : target.isFile() ? 'file' : undefined;
}

/**
 * Block folders of listings under way. A second stop signal ends the process at once
 * (process.exit), past every `finally`: the exit hook removes them, synchronously.
 */
const liveTempFolders = new Set<string>();
let exitHookInstalled = false;

function removeLiveTempFolders(): void {
  for (const folder of liveTempFolders) {
    try {
      rmSync(folder, { recursive: true, force: true });
    } catch {
      // Best effort on the way out: nothing can be reported after exit.
    }
  }
  liveTempFolders.clear();
}

async function makeTempFolder(parent: string, blockEntries: number): Promise<string> {
  try {
    const folder = await mkdtemp(path.join(parent, 'clarify-images-listing-'));
    liveTempFolders.add(folder);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on('exit', removeLiveTempFolders);
    }
    return folder;
  } catch (error) {
    throw new Error(`a folder of more than ${formatCount(blockEntries)} entries is sorted in blocks on disk, and no temporary folder can be made in ${parent} (${errorMessage(error)}): set TMPDIR to a writable folder`, { cause: error });
  }
}

/** The folder's files, folders and broken links, in S3's order. Temporary files are removed however the caller stops. */
export async function* sortedFolderEntries(dir: string, options: SortedFolderOptions = {}): AsyncGenerator<FolderEntry> {
  const blockEntries = Math.max(1, options.blockEntries ?? DEFAULT_BLOCK_ENTRIES);
  let block: FolderEntry[] = [];
  let tempFolder: string | undefined;
  const files: string[] = [];
  try {
    for await (const dirent of await opendir(dir)) {
      const kind = await kindOf(dir, dirent);
      if (kind === undefined) continue;
      block.push({ name: dirent.name, kind });
      if (block.length >= blockEntries) {
        tempFolder ??= await makeTempFolder(options.tempDir ?? os.tmpdir(), blockEntries);
        const file = path.join(tempFolder, `block-${files.length}`);
        await writeBlock(file, block.sort(compareEntries));
        files.push(file);
        block = [];
      }
    }
    block.sort(compareEntries);
    if (files.length === 0) {
      yield* block;
      return;
    }
    if (block.length > 0) {
      const file = path.join(tempFolder!, `block-${files.length}`);
      await writeBlock(file, block);
      files.push(file);
    }
    block = [];
    yield* mergeBlocks(files);
  } finally {
    if (tempFolder) {
      await rm(tempFolder, { recursive: true, force: true });
      liveTempFolders.delete(tempFolder);
    }
  }
}
