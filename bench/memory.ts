/**
 * Memory with dataset size: peak RSS of a whole job (its own process) over 100, 1,000 and 10,000
 * small images listed from the test S3 server (s3rver), explained with a small budget.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
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

interface ChildResult {
  readonly maxRssMb: number;
  readonly images: number;
  readonly failed: number;
  readonly failures: string[];
}

function runChild(datasetUri: string, out: string, endpointUrl: string, env: Record<string, string>, extra?: object): Promise<ChildResult> {
  return new Promise<ChildResult>((resolve, reject) => {
    const args = [fileURLToPath(new URL('./memory-child.js', import.meta.url)), datasetUri, out, endpointUrl, ...(extra ? [JSON.stringify(extra)] : [])];
    const child = spawn(process.execPath, args, {
      env: { ...process.env, ...env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let text = '';
    child.stdout.on('data', (c: Buffer) => (text += c.toString()));
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(text) as ChildResult) : reject(new Error(`memory child exited ${code}`))));
  });
}

export interface LargeImageRow {
  readonly case: string;
  readonly succeeded: number;
  readonly failed: number;
  readonly maxRssMb: number;
  readonly seconds: number;
  readonly note: string;
}

/**
 * Peak RSS of whole jobs on big photos (each its own process, default settings unless stated):
 * 10 × 12 MP, and 1 × 36 MP refused by the default budget, shrunk by max_image_side, and explained
 * at full size with a raised budget.
 */
export async function runLargeImages(work: string): Promise<LargeImageRow[]> {
  const endpoint = await startLatencyServer(0, 1024);
  const rows: LargeImageRow[] = [];
  const photo = fileURLToPath(new URL('../../examples/images/detection/astronaut.jpg', import.meta.url));
  try {
    const twelve = path.join(work, 'large-12mp');
    const thirtySix = path.join(work, 'large-36mp');
    await mkdir(twelve, { recursive: true });
    await mkdir(thirtySix, { recursive: true });
    for (let i = 0; i < 10; i++) {
      await sharp(photo).extract({ left: i * 3, top: i * 3, width: 480, height: 480 }).resize(4000, 3000, { fit: 'fill' }).jpeg({ quality: 90 }).toFile(path.join(twelve, `photo-${i}.jpg`));
    }
    await sharp(photo).resize(6928, 5196, { fit: 'fill' }).jpeg({ quality: 90 }).toFile(path.join(thirtySix, 'photo.jpg'));
    const cases: { name: string; dir: string; extra: object }[] = [
      { name: '10 × 12 MP (4000×3000), defaults', dir: twelve, extra: {} },
      { name: '1 × 36 MP (6928×5196), defaults', dir: thirtySix, extra: {} },
      { name: '1 × 36 MP, max_image_side 4096', dir: thirtySix, extra: { clarify_images: { max_image_side: 4096 } } },
      { name: '1 × 36 MP, max_memory_mb 4096 (full size)', dir: thirtySix, extra: { clarify_images: { max_memory_mb: 4096 } } },
    ];
    for (const c of cases) {
      const scratch = await mkdtemp(path.join(os.tmpdir(), 'clarify-large-'));
      // A subfolder, so that the staging folder the job makes beside it goes with it.
      const out = path.join(scratch, 'out');
      const started = performance.now();
      // The default budget and segment count; few samples, since memory, not calls, is measured.
      const result = await runChild(c.dir, out, endpoint.url, {}, { shap: { num_samples: 16 }, image_config: { num_segments: 20, segment_compactness: 5 }, ...c.extra });
      rows.push({
        case: c.name,
        succeeded: result.images,
        failed: result.failed,
        maxRssMb: result.maxRssMb,
        seconds: (performance.now() - started) / 1000,
        note: result.failures[0] ?? '',
      });
      await rm(scratch, { recursive: true, force: true });
    }
  } finally {
    await endpoint.stop();
  }
  return rows;
}

export interface ManyLabelsRow {
  readonly labels: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly maxRssMb: number;
  readonly seconds: number;
}

/**
 * Peak RSS of whole jobs whose classifier answers many labels: 6 photos (512×512, about 50
 * segments), 2,048 samples each, the default budget and estimator. Every label's answer to every
 * call is held while an image is explained, and the job admits images with it (explanationBytes).
 */
export async function runManyLabels(work: string, counts: readonly number[] = [3, 1000, 5000]): Promise<ManyLabelsRow[]> {
  const photos = path.join(work, 'many-labels');
  await mkdir(photos, { recursive: true });
  const photo = fileURLToPath(new URL('../../examples/images/detection/astronaut.jpg', import.meta.url));
  for (let i = 0; i < 6; i++) await sharp(photo).extract({ left: i * 4, top: i * 4, width: 480, height: 480 }).resize(512, 512).jpeg({ quality: 90 }).toFile(path.join(photos, `photo-${i}.jpg`));
  const rows: ManyLabelsRow[] = [];
  for (const labels of counts) {
    const endpoint = await startLatencyServer(0, 1024, 0, 0, labels);
    const scratch = await mkdtemp(path.join(os.tmpdir(), 'clarify-labels-'));
    try {
      const started = performance.now();
      const result = await runChild(photos, path.join(scratch, 'out'), endpoint.url, {}, { labels, shap: { num_samples: 2048 }, image_config: { num_segments: 50, segment_compactness: 10 } });
      rows.push({ labels, succeeded: result.images, failed: result.failed, maxRssMb: result.maxRssMb, seconds: (performance.now() - started) / 1000 });
    } finally {
      await endpoint.stop();
      await rm(scratch, { recursive: true, force: true });
    }
  }
  return rows;
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
      const scratch = await mkdtemp(path.join(os.tmpdir(), 'clarify-mem-'));
      // A subfolder, so that the staging folder the job makes beside it goes with it.
      const out = path.join(scratch, 'out');
      const started = performance.now();
      const result = await runChild('s3://memory/set/', out, endpoint.url, s3.env());
      if (result.images !== size) throw new Error(`${result.images} of ${size} images explained`);
      rows.push({ images: size, maxRssMb: result.maxRssMb, seconds: (performance.now() - started) / 1000 });
      await rm(scratch, { recursive: true, force: true });
    }
  } finally {
    await endpoint.stop();
    await s3.stop();
  }
  return rows;
}
