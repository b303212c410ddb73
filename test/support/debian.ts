/**
 * Debian packages a test needs (Chromium, nbformat), installed with apt-get where missing (CI runs
 * as root). Returns nothing when the package is there, or why it cannot be had.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
let updated = false;

export async function ensureAptPackage(name: string, present: () => Promise<boolean>): Promise<{ reason: string } | undefined> {
  if (await present()) return undefined;
  if (process.getuid?.() !== 0) return { reason: `Debian ${name} is not installed and installing it needs root` };
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    if (!updated) await run('apt-get', ['update', '-qq'], { env, timeout: 600_000 });
    updated = true;
    await run('apt-get', ['install', '-y', '-qq', name], { env, timeout: 900_000, maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    return { reason: `apt-get install ${name} failed: ${(error as Error).message.split('\n')[0]}` };
  }
  return (await present()) ? undefined : { reason: `${name} installed but not usable` };
}
