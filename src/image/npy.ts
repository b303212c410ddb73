/**
 * NumPy .npy format, version 1.0, for uint8 arrays
 * (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html).
 * The header is laid out exactly as numpy writes it, padded so the data starts on a 64-byte boundary.
 */
const MAGIC = Uint8Array.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
const ALIGNMENT = 64;

export function npyHeader(shape: readonly number[]): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '|u1', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const preamble = MAGIC.length + 2 + 2;
  const unpadded = preamble + dict.length + 1; // + '\n'
  const padding = (ALIGNMENT - (unpadded % ALIGNMENT)) % ALIGNMENT;
  const headerText = `${dict}${' '.repeat(padding)}\n`;
  const header = new Uint8Array(preamble + headerText.length);
  header.set(MAGIC, 0);
  header[6] = 1; // major
  header[7] = 0; // minor
  new DataView(header.buffer).setUint16(8, headerText.length, true);
  header.set(Buffer.from(headerText, 'latin1'), preamble);
  return header;
}

/** Encode a C-order uint8 array of the given shape. */
export function encodeNpy(data: Uint8Array, shape: readonly number[]): Uint8Array {
  const expected = shape.reduce((a, b) => a * b, 1);
  if (data.length !== expected) throw new RangeError(`data has ${data.length} bytes, shape (${shape.join(', ')}) needs ${expected}`);
  const header = npyHeader(shape);
  const out = new Uint8Array(header.length + data.length);
  out.set(header, 0);
  out.set(data, header.length);
  return out;
}

export interface NpyArray {
  readonly shape: number[];
  readonly descr: string;
  readonly data: Uint8Array;
}

/** Decode a .npy (v1–v3) holding a C-order uint8 (`|u1` / `<u1`) array. */
export function decodeNpy(bytes: Uint8Array): NpyArray {
  if (bytes.length < 10 || !MAGIC.every((b, i) => bytes[i] === b)) throw new Error('not a .npy file (bad magic)');
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLength: number;
  let start: number;
  if (major === 1) {
    headerLength = view.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    headerLength = view.getUint32(8, true);
    start = 12;
  } else {
    throw new Error(`unsupported .npy version ${String(major)}`);
  }
  const header = Buffer.from(bytes.subarray(start, start + headerLength)).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new Error(`malformed .npy header: ${header.trim()}`);
  if (descr !== '|u1' && descr !== '<u1' && descr !== 'u1') throw new Error(`.npy dtype ${descr} is not uint8`);
  if (fortran === 'True') throw new Error('Fortran-ordered .npy arrays are not supported');
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => Number.parseInt(s, 10));
  const size = shape.reduce((a, b) => a * b, 1);
  const dataStart = start + headerLength;
  if (bytes.length - dataStart !== size) {
    throw new Error(`.npy data has ${bytes.length - dataStart} bytes, shape (${shape.join(', ')}) needs ${size}`);
  }
  return { shape, descr, data: bytes.subarray(dataStart) };
}
