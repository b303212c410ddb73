import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { decodeImage, describeDecodeError } from '../src/image/decode.js';
import { encodeImage, encodeNpyBatch } from '../src/image/encode.js';
import { decodeNpy, encodeNpy } from '../src/image/npy.js';
import { createRgbImage, asNdarray, type RgbImage } from '../src/image/rgb.js';
import * as fx from './support/fixtures.js';

const OPTIONS = { maxPixels: 100_000_000 };
const pixel = (image: RgbImage, x: number, y: number): number[] => [...image.data.subarray((y * image.width + x) * 3, (y * image.width + x) * 3 + 3)];
const near = (actual: number[], expected: readonly number[], tolerance: number): boolean => actual.every((v, i) => Math.abs(v - expected[i]!) <= tolerance);

async function decodeFailure(bytes: Uint8Array): Promise<string> {
  try {
    await decodeImage(bytes, OPTIONS);
  } catch (error) {
    return describeDecodeError(error);
  }
  return assert.fail('decoded without error');
}

describe('image decoding to H×W×3 uint8 RGB', () => {
  it('grayscale PNG → three equal channels', async () => {
    const bytes = await fx.grayscalePng(8, 6, 100);
    assert.equal((await sharp(bytes).metadata()).channels, 1);
    const image = await decodeImage(bytes, OPTIONS);
    assert.deepEqual([image.width, image.height, image.data.length], [8, 6, 144]);
    assert.deepEqual(pixel(image, 3, 3), [100, 100, 100]);
  });

  it('RGBA PNG → alpha flattened onto white', async () => {
    const image = await decodeImage(await fx.rgbaPng(8, 6), OPTIONS);
    assert.deepEqual(pixel(image, 0, 0), [255, 0, 0]);
    assert.deepEqual(pixel(image, 7, 5), [255, 255, 255]);
  });

  it('palette PNG → RGB', async () => {
    const bytes = await fx.palettePng(8, 6, [10, 200, 30]);
    assert.equal((await sharp(bytes).metadata()).isPalette, true);
    assert.deepEqual(pixel(await decodeImage(bytes, OPTIONS), 4, 4), [10, 200, 30]);
  });

  it('16-bit PNG → 8-bit', async () => {
    const bytes = await fx.png16(8, 6, [200, 100, 50]);
    assert.equal((await sharp(bytes).metadata()).depth, 'ushort');
    const image = await decodeImage(bytes, OPTIONS);
    assert.ok(near(pixel(image, 1, 1), [200, 100, 50], 1), `got ${pixel(image, 1, 1).join(',')}`);
  });

  it('CMYK JPEG → sRGB (red stays red)', async () => {
    const bytes = await fx.cmykJpeg(8, 6, [200, 30, 30]);
    assert.equal((await sharp(bytes).metadata()).space, 'cmyk');
    const [r, g, b] = pixel(await decodeImage(bytes, OPTIONS), 2, 2) as [number, number, number];
    assert.ok(Math.abs(r - 200) <= 20 && r - g > 120 && r - b > 120, `got ${r},${g},${b}`);
  });

  it('EXIF orientation 6 is applied: 16×8 stored → 8×16 displayed, stored-left on top', async () => {
    const bytes = await fx.exifRotatedJpeg(16, 8, [255, 0, 0], [0, 0, 255]);
    assert.equal((await sharp(bytes).metadata()).orientation, 6);
    const image = await decodeImage(bytes, OPTIONS);
    assert.deepEqual([image.width, image.height], [8, 16]);
    assert.ok(near(pixel(image, 4, 1), [255, 0, 0], 8), `top ${pixel(image, 4, 1).join(',')}`);
    assert.ok(near(pixel(image, 4, 14), [0, 0, 255], 8), `bottom ${pixel(image, 4, 14).join(',')}`);
  });

  it('truncated JPEG, zero-byte file and text named .jpg fail with a clear message', async () => {
    assert.match(await decodeFailure(await fx.truncatedJpeg(64, 64)), /truncated or corrupt/);
    assert.match(await decodeFailure(new Uint8Array()), /empty \(0 bytes\)/);
    assert.match(await decodeFailure(Buffer.from('this is a text file')), /not a readable image/);
    // Under load libvips may throw only its generic failOn text (the warning went to a global handler).
    assert.match(describeDecodeError(new Error('Warning treated as error due to failOn setting')), /truncated or corrupt/);
  });

  it('refuses images over the pixel limit', async () => {
    const bytes = await fx.solidPng(100, 100, [1, 2, 3]);
    await assert.rejects(decodeImage(bytes, { maxPixels: 9_999 }), (e: unknown) => /pixel limit/.test(describeDecodeError(e)));
  });

  it('exposes the pixels as an ndarray [H, W, 3] without copying', async () => {
    const image = await decodeImage(await fx.exifRotatedJpeg(16, 8, [255, 0, 0], [0, 0, 255]), OPTIONS);
    const view = asNdarray(image);
    assert.deepEqual(view.shape, [16, 8, 3]);
    assert.equal(view.get(14, 4, 2), pixel(image, 4, 14)[2]);
    assert.equal(view.data, image.data);
  });
});

describe('image encoding to the payload types', () => {
  const width = 10;
  const height = 6;
  const image = createRgbImage(width, height, new Uint8Array(fx.splitPixels(width, height, [250, 10, 10], [10, 10, 250])));

  it('PNG is lossless and really PNG', async () => {
    const bytes = await encodeImage(image, 'image/png', { jpegQuality: 95 });
    assert.equal((await sharp(bytes).metadata()).format, 'png');
    const back = await decodeImage(bytes, OPTIONS);
    assert.deepEqual(back.data, image.data);
  });

  it('JPEG is JPEG and close to the source', async () => {
    const bytes = await encodeImage(image, 'image/jpeg', { jpegQuality: 95 });
    assert.equal((await sharp(bytes).metadata()).format, 'jpeg');
    const back = await decodeImage(bytes, OPTIONS);
    assert.ok(near(pixel(back, 1, 1), [250, 10, 10], 12));
    assert.ok(near(pixel(back, 8, 4), [10, 10, 250], 12));
  });

  it('NPY carries the exact pixels with shape (H, W, 3)', async () => {
    const bytes = await encodeImage(image, 'application/x-npy', { jpegQuality: 95 });
    const array = decodeNpy(bytes);
    assert.deepEqual(array.shape, [height, width, 3]);
    assert.deepEqual(array.data, image.data);
  });
});

describe('NPY format', () => {
  const fixtureDir = fileURLToPath(new URL('../../test/fixtures/npy/', import.meta.url));

  it('is byte-identical to numpy.save for every reference file', async () => {
    const files = (await readdir(fixtureDir)).filter((f) => f.endsWith('.npy'));
    assert.ok(files.length >= 4, 'reference files are missing');
    for (const file of files) {
      const shape = file.replace('.npy', '').split('x').map(Number);
      const size = shape.reduce((a, b) => a * b, 1);
      const data = Uint8Array.from({ length: size }, (_, i) => (i * 7) % 256);
      const expected = await readFile(`${fixtureDir}${file}`);
      const actual = encodeNpy(data, shape);
      assert.equal(Buffer.compare(Buffer.from(actual), expected), 0, `${file} differs from numpy's bytes`);
      assert.deepEqual(decodeNpy(expected).shape, shape);
    }
  });

  it('encodes a batch as (N, H, W, 3)', () => {
    const a = createRgbImage(2, 3, new Uint8Array(18).fill(1));
    const b = createRgbImage(2, 3, new Uint8Array(18).fill(2));
    const array = decodeNpy(encodeNpyBatch([a, b]));
    assert.deepEqual(array.shape, [2, 3, 2, 3]);
    assert.deepEqual([array.data[0], array.data[17], array.data[18], array.data[35]], [1, 1, 2, 2]);
    assert.throws(() => encodeNpyBatch([a, createRgbImage(3, 2)]), /differ in size/);
  });

  it('rejects what it cannot read', () => {
    assert.throws(() => decodeNpy(Buffer.from('hello world')), /bad magic/);
    const header = encodeNpy(new Uint8Array(6), [2, 3]);
    assert.throws(() => decodeNpy(header.subarray(0, header.length - 1)), /needs 6/);
  });
});
