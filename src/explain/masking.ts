/**
 * Turning a coalition into an image: pixels of "on" segments come from the image, the rest from
 * the baseline. Segment pixel lists are computed once per image (one flat list, so it can be
 * shared with worker threads without copying), so a masked image costs one copy of whichever
 * side (on or off) has fewer pixels, on top of one full copy.
 */
import { createRgbImage, type RgbImage } from '../image/rgb.js';
import type { SegmentMap } from '../segment/slic.js';

export interface SegmentIndex {
  readonly count: number;
  /** Segment j's pixels are pixels[offsets[j] .. offsets[j + 1]). */
  readonly offsets: Int32Array;
  /** Pixel indices (y·width + x), grouped by segment. */
  readonly pixels: Int32Array;
}

/** Where the arrays live: plain memory, or shared memory that worker threads read without a copy. */
export type ArrayMemory = (bytes: number) => ArrayBufferLike;
export const plainMemory: ArrayMemory = (bytes) => new ArrayBuffer(bytes);
export const sharedMemory: ArrayMemory = (bytes) => new SharedArrayBuffer(bytes);

export function indexSegments(segments: SegmentMap, memory: ArrayMemory = plainMemory): SegmentIndex {
  const offsets = new Int32Array(memory(4 * (segments.count + 1)));
  for (const label of segments.labels) offsets[label + 1]! += 1;
  for (let j = 0; j < segments.count; j++) offsets[j + 1]! += offsets[j]!;
  const pixels = new Int32Array(memory(4 * segments.labels.length));
  const filled = offsets.slice(0, segments.count);
  segments.labels.forEach((label, p) => {
    pixels[filled[label]!] = p;
    filled[label]! += 1;
  });
  return { count: segments.count, offsets, pixels };
}

function copyPixels(target: Uint8Array, source: Uint8Array, pixels: Int32Array, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const o = pixels[i]! * 3;
    target[o] = source[o]!;
    target[o + 1] = source[o + 1]!;
    target[o + 2] = source[o + 2]!;
  }
}

/** The image with every segment whose mask entry is 0 replaced by the baseline's pixels. */
export function maskImage(image: RgbImage, baseline: RgbImage, index: SegmentIndex, mask: Uint8Array, target?: Uint8Array): RgbImage {
  if (baseline.width !== image.width || baseline.height !== image.height) throw new RangeError('baseline and image differ in size');
  const out = target ?? new Uint8Array(image.data.length);
  const { offsets, pixels } = index;
  let onPixels = 0;
  for (let j = 0; j < index.count; j++) if (mask[j]) onPixels += offsets[j + 1]! - offsets[j]!;
  const mostlyOn = onPixels * 2 > image.width * image.height;
  out.set(mostlyOn ? image.data : baseline.data);
  for (let j = 0; j < index.count; j++) {
    if (Boolean(mask[j]) !== mostlyOn) copyPixels(out, mostlyOn ? baseline.data : image.data, pixels, offsets[j]!, offsets[j + 1]!);
  }
  return createRgbImage(image.width, image.height, out);
}
