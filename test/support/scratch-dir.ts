import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const made: string[] = [];

/**
 * A fresh folder in the system temp dir, removed with all it holds when this test file's process
 * exits (node --test runs each file in its own process). Outputs the job writes should go in a
 * subfolder: the job stages files in a folder beside its output, which then goes too.
 */
export async function scratchDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  if (made.length === 0) process.once('exit', () => made.forEach((d) => rmSync(d, { recursive: true, force: true })));
  made.push(dir);
  return dir;
}
