/**
 * A 16-bit grayscale PNG writer for segment maps (value = segment id). sharp cannot take 16-bit
 * raw input, and the format is small enough to write directly (PNG spec, ISO/IEC 15948).
 */
import { crc32, deflateSync } from 'node:zlib';

const SIGNATURE = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

export function encodeGray16Png(width: number, height: number, values: ArrayLike<number>): Buffer {
  if (values.length !== width * height) throw new RangeError(`${values.length} values for ${width}×${height}`);
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 16; // bit depth
  header[9] = 0; // colour type: grayscale
  // compression 0, filter 0, interlace 0
  const rowBytes = 1 + width * 2;
  const raw = Buffer.alloc(rowBytes * height);
  for (let y = 0; y < height; y++) {
    raw[y * rowBytes] = 0; // filter: none
    for (let x = 0; x < width; x++) {
      const v = values[y * width + x]!;
      if (!Number.isInteger(v) || v < 0 || v > 65535) throw new RangeError(`value ${v} does not fit 16 bits`);
      raw.writeUInt16BE(v, y * rowBytes + 1 + x * 2);
    }
  }
  return Buffer.concat([SIGNATURE, chunk('IHDR', header), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array())]);
}
