/**
 * Headless Chromium for report tests: Debian's chromium, installed with apt-get where missing
 * (CI runs as root). Returns the executable, or why it cannot be had.
 */
import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);
const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

async function found(): Promise<string | undefined> {
  for (const path of CANDIDATES) {
    try {
      await access(path);
      return path;
    } catch {
      // next
    }
  }
  return undefined;
}

export async function ensureChromium(): Promise<{ path: string } | { reason: string }> {
  const existing = await found();
  if (existing) return { path: existing };
  if (process.getuid?.() !== 0) return { reason: 'Debian chromium is not installed and installing it needs root' };
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    await run('apt-get', ['update', '-qq'], { env, timeout: 600_000 });
    await run('apt-get', ['install', '-y', '-qq', 'chromium'], { env, timeout: 900_000, maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    return { reason: `apt-get install chromium failed: ${(error as Error).message.split('\n')[0]}` };
  }
  const installed = await found();
  return installed ? { path: installed } : { reason: 'chromium installed but not found at /usr/bin/chromium' };
}

/** The flags this workplace's Chromium needs to start headless without network noise. */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
