/** Decoding any supported file into the pipeline's RGB array. */
import sharp from 'sharp';
import { createRgbImage, type RgbImage } from './rgb.js';

export interface DecodeOptions {
  /** Refuse images with more pixels than this (decompression-bomb guard). */
  readonly maxPixels: number;
  /** Shrink images whose longer side is over this, keeping their aspect (clarify_images.max_image_side). */
  readonly maxSide?: number;
}

/** The size an image will have once decoded (EXIF rotation and maxSide applied), read from its header only. */
export async function decodedSize(bytes: Uint8Array, options: DecodeOptions): Promise<{ width: number; height: number; original: { width: number; height: number } }> {
  if (bytes.length === 0) throw new Error('the file is empty (0 bytes)');
  const meta = await sharp(bytes, { limitInputPixels: options.maxPixels }).metadata();
  if (!meta.width || !meta.height) throw new Error('cannot read the image size from its header');
  const turned = (meta.orientation ?? 1) >= 5;
  const original = turned ? { width: meta.height, height: meta.width } : { width: meta.width, height: meta.height };
  return { ...fitWithin(original, options.maxSide), original };
}

/** The size after shrinking to fit maxSide (sharp's fit "inside", rounded as sharp rounds). */
export function fitWithin(size: { width: number; height: number }, maxSide: number | undefined): { width: number; height: number } {
  const longer = Math.max(size.width, size.height);
  if (maxSide === undefined || longer <= maxSide) return { width: size.width, height: size.height };
  const scale = maxSide / longer;
  return size.width >= size.height
    ? { width: maxSide, height: Math.max(1, Math.round(size.height * scale)) }
    : { width: Math.max(1, Math.round(size.width * scale)), height: maxSide };
}

/**
 * JPEG / PNG (and what else libvips reads) → H×W×3 uint8 sRGB: EXIF orientation applied,
 * alpha flattened onto white, grayscale / CMYK / palette / 16-bit converted.
 */
export async function decodeImage(bytes: Uint8Array, options: DecodeOptions): Promise<RgbImage> {
  if (bytes.length === 0) throw new Error('the file is empty (0 bytes)');
  let pipeline = sharp(bytes, { limitInputPixels: options.maxPixels, failOn: 'warning' }).rotate();
  if (options.maxSide !== undefined) pipeline = pipeline.resize({ width: options.maxSide, height: options.maxSide, fit: 'inside', withoutEnlargement: true });
  const { data, info } = await pipeline
    .flatten({ background: { r: 255, g: 255, b: 255 } })
    .toColourspace('srgb')
    .removeAlpha()
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
  return createRgbImage(info.width, info.height, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

/** Turn libvips' wording into something a user can act on. */
export function describeDecodeError(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  if (/pixel limit/i.test(text)) return `image is larger than the pixel limit (clarify_images.max_image_pixels): ${text}`;
  if (/unsupported image format/i.test(text)) return 'not a readable image (unsupported or unrecognised format)';
  if (/premature end|truncated|end of (jpeg|file)|read error/i.test(text)) return `image is truncated or corrupt: ${text.trim()}`;
  // libvips reports the decoder's warning through a process-wide handler, so under load the
  // thrown error sometimes carries only this generic text; with failOn 'warning' it still
  // means the decoder met damaged data.
  if (/warning treated as error/i.test(text)) return 'image is truncated or corrupt (the decoder warned about damaged data)';
  return `cannot decode image: ${text.trim()}`;
}
