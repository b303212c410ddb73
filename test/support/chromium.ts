/**
 * Headless Chromium for report tests: Debian's chromium, installed with apt-get where missing
 * (CI runs as root). Returns the executable, or why it cannot be had.
 */
import { access } from 'node:fs/promises';
import { ensureAptPackage } from './debian.js';

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
  const missing = await ensureAptPackage('chromium', async () => (await found()) !== undefined);
  if (missing) return missing;
  return { path: (await found())! };
}

/** The flags this workplace's Chromium needs to start headless without network noise. */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
