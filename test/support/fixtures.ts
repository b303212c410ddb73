/** Test images made with sharp, each exercising one decoding path. */
import sharp, { type Sharp } from 'sharp';

export type Rgb = readonly [number, number, number];

export function solidPixels(width: number, height: number, colour: Rgb): Buffer {
  const data = Buffer.alloc(width * height * 3);
  for (let i = 0; i < data.length; i += 3) {
    data[i] = colour[0];
    data[i + 1] = colour[1];
    data[i + 2] = colour[2];
  }
  return data;
}

function raw(width: number, height: number, data: Buffer): Sharp {
  return sharp(data, { raw: { width, height, channels: 3 } });
}

export function solidPng(width: number, height: number, colour: Rgb): Promise<Buffer> {
  return raw(width, height, solidPixels(width, height, colour)).png().toBuffer();
}

export function solidJpeg(width: number, height: number, colour: Rgb): Promise<Buffer> {
  return raw(width, height, solidPixels(width, height, colour)).jpeg({ quality: 95 }).toBuffer();
}

/** Left half `left`, right half `right`. */
export function splitPixels(width: number, height: number, left: Rgb, right: Rgb): Buffer {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const c = x < width / 2 ? left : right;
      data.set(c, (y * width + x) * 3);
    }
  }
  return data;
}

/** Four quadrants, top-left, top-right, bottom-left, bottom-right. */
export function quadrantsPng(width: number, height: number, colours: readonly [Rgb, Rgb, Rgb, Rgb]): Promise<Buffer> {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set(colours[(y < height / 2 ? 0 : 2) + (x < width / 2 ? 0 : 1)]!, (y * width + x) * 3);
  }
  return raw(width, height, data).png().toBuffer();
}

export function grayscalePng(width: number, height: number, level: number): Promise<Buffer> {
  return sharp(Buffer.alloc(width * height, level), { raw: { width, height, channels: 1 } }).toColourspace('b-w').png().toBuffer();
}

/** Opaque red left half, fully transparent right half. */
export function rgbaPng(width: number, height: number): Promise<Buffer> {
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      data.set(x < width / 2 ? [255, 0, 0, 255] : [0, 0, 0, 0], i);
    }
  }
  return sharp(data, { raw: { width, height, channels: 4 } }).png().toBuffer();
}

export function palettePng(width: number, height: number, colour: Rgb): Promise<Buffer> {
  return raw(width, height, solidPixels(width, height, colour)).png({ palette: true, colours: 4 }).toBuffer();
}

export function png16(width: number, height: number, colour: Rgb): Promise<Buffer> {
  return raw(width, height, solidPixels(width, height, colour)).toColourspace('rgb16').png().toBuffer();
}

export function cmykJpeg(width: number, height: number, colour: Rgb): Promise<Buffer> {
  return raw(width, height, solidPixels(width, height, colour)).toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer();
}

/**
 * Stored landscape (width×height) with EXIF orientation 6 ("rotate 90° clockwise to display"):
 * displayed, it is height×width with the stored left half on top.
 */
export function exifRotatedJpeg(width: number, height: number, left: Rgb, right: Rgb): Promise<Buffer> {
  return raw(width, height, splitPixels(width, height, left, right)).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
}

export async function truncatedJpeg(width: number, height: number): Promise<Buffer> {
  const data = Buffer.alloc(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37) % 251; // texture, so the scan data is long
  const full = await raw(width, height, data).jpeg({ quality: 95 }).toBuffer();
  return full.subarray(0, Math.floor(full.length / 2));
}
