/**
 * A classifier with a known answer: three class scores, a softmax of a non-linear function of the
 * mean colours of a fixed 3×3 grid of image regions. Used by the test endpoint (on decoded pixels)
 * and, for the exact reference, evaluated directly on masked images.
 */
import { seededRandom } from '../../src/explain/random.js';

const GRID = 3;
const CLASSES = 3;
const random = seededRandom(20261125);
const WEIGHTS = Array.from({ length: CLASSES * GRID * GRID * 3 }, () => (random() * 2 - 1) * 3);

export const REGION_LABELS = ['alpha', 'beta', 'gamma'];

/** Mean colour (0..1) of each of the 9 regions. */
export function regionMeans(pixels: Uint8Array, width: number, height: number): Float64Array {
  const sums = new Float64Array(GRID * GRID * 3);
  const counts = new Float64Array(GRID * GRID);
  for (let y = 0; y < height; y++) {
    const ry = Math.min(GRID - 1, Math.floor((y * GRID) / height));
    for (let x = 0; x < width; x++) {
      const r = ry * GRID + Math.min(GRID - 1, Math.floor((x * GRID) / width));
      const o = (y * width + x) * 3;
      sums[r * 3]! += pixels[o]!;
      sums[r * 3 + 1]! += pixels[o + 1]!;
      sums[r * 3 + 2]! += pixels[o + 2]!;
      counts[r]! += 1;
    }
  }
  return sums.map((s, i) => s / (255 * counts[Math.floor(i / 3)]!));
}

export function regionScores(means: Float64Array): number[] {
  const z = Array.from({ length: CLASSES }, (_, k) => {
    let sum = 0;
    for (let i = 0; i < means.length; i++) sum += WEIGHTS[k * means.length + i]! * means[i]!;
    // Interactions: the model is not additive in the regions.
    return sum + 4 * means[0]! * means[25]! * (k === 0 ? 1 : -0.5) + 3 * Math.sin(3 * means[13]! * (k + 1));
  });
  const max = Math.max(...z);
  const e = z.map((v) => Math.exp(v - max));
  const total = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / total);
}

export function regionModel(pixels: Uint8Array, width: number, height: number): number[] {
  return regionScores(regionMeans(pixels, width, height));
}

const PALETTE: readonly (readonly [number, number, number])[] = [
  [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
  [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 190], [0, 128, 128], [170, 110, 40],
  [128, 0, 0], [170, 255, 195], [0, 0, 128], [128, 128, 0],
];

/** rows × cols flat blocks of distinct colours; SLIC with num_segments = rows·cols finds the blocks. */
export function blockImage(rows: number, cols: number, block = 32): { width: number; height: number; data: Uint8Array } {
  const width = cols * block;
  const height = rows * block;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const colour = PALETTE[(Math.floor(y / block) * cols + Math.floor(x / block)) % PALETTE.length]!;
      data.set(colour, (y * width + x) * 3);
    }
  }
  return { width, height, data };
}
