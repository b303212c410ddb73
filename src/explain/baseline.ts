/**
 * What a switched-off segment shows. Clarify's rule: `methods.shap.baseline` is an image (resized
 * to each image), and without it, white noise. clarify-images adds `mean` (the image's mean
 * colour) and `blur` (a strong Gaussian blur of the image) through `clarify_images.baseline_fill`.
 */
import sharp from 'sharp';
import { type AnalysisConfig, memoryBudgetBytes } from '../config/config.js';
import { ConfigError, errorMessage } from '../errors.js';
import { decodeImage, describeDecodeError } from '../image/decode.js';
import { createRgbImage, type RgbImage } from '../image/rgb.js';
import { readUri, sizeOfUri, type StorageOptions } from '../storage/storage.js';
import { unreadOverBudget } from '../compute/memory.js';
import type { Random } from './random.js';

export type BaselineFill = 'noise' | 'mean' | 'blur';

/** Uniform noise in 0..255 per channel, from the given generator (seeded per image). */
export function noiseBaseline(width: number, height: number, random: Random): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(random() * 256);
  return createRgbImage(width, height, data);
}

export function meanBaseline(image: RgbImage): RgbImage {
  const sums = [0, 0, 0];
  for (let i = 0; i < image.data.length; i += 3) {
    sums[0]! += image.data[i]!;
    sums[1]! += image.data[i + 1]!;
    sums[2]! += image.data[i + 2]!;
  }
  const n = image.width * image.height;
  const colour = sums.map((s) => Math.round(s / n));
  const data = new Uint8Array(image.data.length);
  for (let i = 0; i < data.length; i += 3) data.set(colour, i);
  return createRgbImage(image.width, image.height, data);
}

/** Gaussian blur with σ = 5 % of the shorter side (at least 0.3, sharp's minimum). */
export async function blurBaseline(image: RgbImage): Promise<RgbImage> {
  const sigma = Math.max(0.3, 0.05 * Math.min(image.width, image.height));
  const data = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).blur(sigma).raw().toBuffer();
  return createRgbImage(image.width, image.height, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

/** A decoded baseline image stretched to the image's size. */
export async function resizeBaseline(baseline: RgbImage, width: number, height: number): Promise<RgbImage> {
  if (baseline.width === width && baseline.height === height) return baseline;
  const data = await sharp(baseline.data, { raw: { width: baseline.width, height: baseline.height, channels: 3 } })
    .resize(width, height, { fit: 'fill' })
    .raw()
    .toBuffer();
  return createRgbImage(width, height, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

/** A baseline file larger than the memory budget: refused before it is read. */
export class BaselineTooLargeError extends Error {
  constructor(uri: string, bytes: number, budget: number) {
    super(`${uri} ${unreadOverBudget(bytes, budget)}`);
    this.name = 'BaselineTooLargeError';
  }
}

/** Reads `methods.shap.baseline`'s bytes, at most `maxBytes`; errors say what is wrong with the URI. */
export async function readBaseline(uri: string, options: StorageOptions, maxBytes: number): Promise<Buffer> {
  try {
    const bytes = await sizeOfUri(uri, options);
    if (bytes > maxBytes) throw new BaselineTooLargeError(uri, bytes, maxBytes);
    return await readUri(uri, options);
  } catch (error) {
    if (error instanceof BaselineTooLargeError) throw error;
    const code = (error as { code?: string; name?: string }).code ?? (error as { name?: string }).name;
    if (code === 'ENOENT' || code === 'NoSuchKey' || code === 'NotFound') throw new Error(`${uri} does not exist`);
    if (code === 'EISDIR') throw new Error(`${uri} is a folder, not an image`);
    throw new Error(`cannot read ${uri}: ${errorMessage(error)}`);
  }
}

/** Decodes the baseline's bytes; errors name the URI. */
export async function decodeBaseline(bytes: Buffer, uri: string, maxPixels: number): Promise<RgbImage> {
  try {
    return await decodeImage(bytes, { maxPixels });
  } catch (error) {
    throw new Error(`${uri}: ${describeDecodeError(error)}`);
  }
}

/** Reads and decodes `methods.shap.baseline`; errors say which part failed (reading or decoding). */
export async function loadBaselineImage(uri: string, maxPixels: number, maxBytes: number, options: StorageOptions): Promise<RgbImage> {
  return decodeBaseline(await readBaseline(uri, options, maxBytes), uri, maxPixels);
}

/** Before any image: the baseline a config names exists and is an image (a ConfigError otherwise). */
export async function checkBaseline(config: AnalysisConfig, options: StorageOptions = { region: config.clarify_images.region }): Promise<void> {
  const uri = config.methods.shap.baseline;
  if (uri === undefined) return;
  try {
    await loadBaselineImage(uri, config.clarify_images.max_image_pixels, memoryBudgetBytes(config), options);
  } catch (error) {
    const message = error instanceof BaselineTooLargeError ? error.message : `must be an image: ${errorMessage(error)}`;
    throw new ConfigError([{ path: 'methods.shap.baseline', message }]);
  }
}
