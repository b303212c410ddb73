/**
 * Turning a coalition into an image: pixels of "on" segments come from the image, the rest from
 * the baseline. Segment pixel lists are computed once per image, so a masked image costs one
 * copy of whichever side (on or off) has fewer pixels, on top of one full copy.
 */
import { createRgbImage, type RgbImage } from '../image/rgb.js';
import type { SegmentMap } from '../segment/slic.js';

export interface SegmentIndex {
  readonly count: number;
  /** Pixel indices (y·width + x) of each segment. */
  readonly pixels: readonly Int32Array[];
}

export function indexSegments(segments: SegmentMap): SegmentIndex {
  const sizes = new Int32Array(segments.count);
  for (const label of segments.labels) sizes[label]! += 1;
  const pixels = Array.from(sizes, (size) => new Int32Array(size));
  const filled = new Int32Array(segments.count);
  segments.labels.forEach((label, p) => {
    pixels[label]![filled[label]!] = p;
    filled[label]! += 1;
  });
  return { count: segments.count, pixels };
}

function copyPixels(target: Uint8Array, source: Uint8Array, pixels: Int32Array): void {
  for (let i = 0; i < pixels.length; i++) {
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
  let onPixels = 0;
  for (let j = 0; j < index.count; j++) if (mask[j]) onPixels += index.pixels[j]!.length;
  const mostlyOn = onPixels * 2 > image.width * image.height;
  out.set(mostlyOn ? image.data : baseline.data);
  for (let j = 0; j < index.count; j++) {
    if (Boolean(mask[j]) !== mostlyOn) copyPixels(out, mostlyOn ? baseline.data : image.data, index.pixels[j]!);
  }
  return createRgbImage(image.width, image.height, out);
}
