/**
 * Memory with dataset size: peak RSS of a whole job (its own process) over 100, 1,000 and 10,000
 * small images listed from the test S3 server (s3rver), explained with a small budget.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { startS3Server } from '../test/support/s3-server.js';
import { startLatencyServer } from './throughput.js';

export interface MemoryRow {
  readonly images: number;
  readonly maxRssMb: number;
  readonly seconds: number;
}

export async function runMemory(sizes: readonly number[] = [100, 1000, 10_000]): Promise<MemoryRow[]> {
  const s3 = await startS3Server();
  const endpoint = await startLatencyServer(0, 1024);
  const rows: MemoryRow[] = [];
  try {
    await s3.createBucket('memory');
    const photo = fileURLToPath(new URL('../../examples/images/detection/astronaut.jpg', import.meta.url));
    const image = await sharp(photo).resize(24, 24).png().toBuffer();
    let uploaded = 0;
    for (const size of sizes) {
      // One growing prefix: upload only what the next size adds.
      const keys = Array.from({ length: size - uploaded }, (_, i) => ({ key: `set/${String(uploaded + i).padStart(6, '0')}.png`, body: image }));
      await s3.putMany('memory', keys);
      uploaded = size;
      const out = await mkdtemp(path.join(os.tmpdir(), 'clarify-mem-'));
      const started = performance.now();
      const result = await new Promise<{ maxRssMb: number; images: number }>((resolve, reject) => {
        const child = spawn(process.execPath, [fileURLToPath(new URL('./memory-child.js', import.meta.url)), 's3://memory/set/', out, endpoint.url], {
          env: { ...process.env, ...s3.env(), AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let text = '';
        child.stdout.on('data', (c: Buffer) => (text += c.toString()));
        child.on('close', (code) => (code === 0 ? resolve(JSON.parse(text) as { maxRssMb: number; images: number }) : reject(new Error(`memory child exited ${code}`))));
      });
      if (result.images !== size) throw new Error(`${result.images} of ${size} images explained`);
      rows.push({ images: size, maxRssMb: result.maxRssMb, seconds: (performance.now() - started) / 1000 });
      await rm(out, { recursive: true, force: true });
    }
  } finally {
    await endpoint.stop();
    await s3.stop();
  }
  return rows;
}
