/**
 * Debian packages the tests need (Chromium, poppler, nbformat, fonts, tmux), installed with apt-get
 * where missing (CI runs as root). Returns nothing when the package is there, or why it cannot be had.
 *
 * Test files run in parallel processes, and dpkg allows one installer at a time: installs take a
 * file lock (flock, from util-linux, which every Debian has). The first test to need one of them
 * installs every one still missing in one transaction, so later tests find theirs in place.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Every package a test asks for: one apt-get update and one install on a fresh machine. */
export const TEST_PACKAGES = ['chromium', 'poppler-utils', 'python3-nbformat', 'fonts-dejavu-core', 'tmux'] as const;
export type TestPackage = (typeof TEST_PACKAGES)[number];

// Where Debian keeps lock files (not the temp dir, which tests leave as they found it).
const LOCK = path.join(existsSync('/run/lock') ? '/run/lock' : os.tmpdir(), 'clarify-images-apt.lock');

async function aptInstall(names: readonly string[]): Promise<void> {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // Under the lock: the update, then only what is still missing (another process may have installed it).
  const script = 'apt-get update -qq && apt-get install -y -qq -o DPkg::Lock::Timeout=600 "$@"';
  await run('flock', ['--timeout', '1500', LOCK, 'sh', '-c', script, 'apt-install', ...names], { env, timeout: 1_800_000, maxBuffer: 64 * 1024 * 1024 });
}

async function installed(name: string): Promise<boolean> {
  try {
    const { stdout } = await run('dpkg-query', ['-W', '-f', '${Status}', name]);
    return stdout.includes('install ok installed');
  } catch {
    return false;
  }
}

export async function ensureAptPackage(name: TestPackage, present: () => Promise<boolean>): Promise<{ reason: string } | undefined> {
  if (await present()) return undefined;
  if (process.getuid?.() !== 0) return { reason: `Debian ${name} is not installed and installing it needs root` };
  try {
    const missing: string[] = [];
    for (const other of TEST_PACKAGES) if (other === name || !(await installed(other))) missing.push(other);
    try {
      await aptInstall(missing);
    } catch (error) {
      // One unavailable package must not cost the others: try the one asked for alone.
      if (missing.length === 1) throw error;
      await aptInstall([name]);
    }
  } catch (error) {
    return { reason: `apt-get install ${name} failed: ${(error as Error).message.split('\n')[0]}` };
  }
  return (await present()) ? undefined : { reason: `${name} installed but not usable` };
}
