/** Encoding an RGB array into the payload the endpoint expects (`predictor.content_type`). */
import sharp from 'sharp';
import type { ContentType } from '../config/config.js';
import { encodeNpy } from './npy.js';
import type { RgbImage } from './rgb.js';

export interface EncodeOptions {
  readonly jpegQuality: number;
}

export async function encodeImage(image: RgbImage, contentType: ContentType, options: EncodeOptions): Promise<Uint8Array> {
  switch (contentType) {
    case 'application/x-npy':
      return encodeNpy(image.data, [image.height, image.width, 3]);
    case 'image/png':
      return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
        .png({ compressionLevel: 1, adaptiveFiltering: false })
        .toBuffer();
    case 'image/jpeg':
      return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
        .jpeg({ quality: options.jpegQuality, chromaSubsampling: '4:2:0' }) // PIL's default too; 4:4:4 costs 1.6× the CPU (BENCHMARKS.md)
        .toBuffer();
  }
}

/** Several images of one size as one (N,H,W,3) .npy payload. */
export function encodeNpyBatch(images: readonly RgbImage[]): Uint8Array {
  const first = images[0];
  if (!first) throw new RangeError('empty batch');
  const frame = first.width * first.height * 3;
  const data = new Uint8Array(frame * images.length);
  images.forEach((image, i) => {
    if (image.width !== first.width || image.height !== first.height) throw new RangeError('batch images differ in size');
    data.set(image.data, i * frame);
  });
  return encodeNpy(data, [images.length, first.height, first.width, 3]);
}
