/** The one image representation the pipeline passes between stages: H×W×3 uint8 RGB, row-major. */
import ndarray, { type NdArray } from 'ndarray';

export interface RgbImage {
  readonly width: number;
  readonly height: number;
  /** Length width·height·3, index (y·width + x)·3 + channel. */
  readonly data: Uint8Array;
}

export function createRgbImage(width: number, height: number, data?: Uint8Array): RgbImage {
  const size = width * height * 3;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`image size must be positive integers, got ${width}×${height}`);
  }
  if (data && data.length !== size) {
    throw new RangeError(`pixel buffer has ${data.length} bytes, expected ${size} for ${width}×${height}×3`);
  }
  return { width, height, data: data ?? new Uint8Array(size) };
}

/** An ndarray view [H, W, 3] over the same pixels (no copy). */
export function asNdarray(image: RgbImage): NdArray<Uint8Array> {
  return ndarray(image.data, [image.height, image.width, 3]);
}
