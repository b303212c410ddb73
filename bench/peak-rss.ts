/**
 * Peak RSS of a process (all its threads), from /proc: VmHWM, the high-water mark of its own
 * memory since it started. Not `process.resourceUsage().maxRSS` in a child: Linux carries the
 * high-water mark of the forked copy of the parent across exec, so a child spawned by a 500 MB
 * bench process reports at least 500 MB whatever it used itself. Undefined where /proc is absent.
 */
import { readFile } from 'node:fs/promises';

export async function vmHwmMb(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
  const match = status && /VmHWM:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) / 1024 : undefined;
}
