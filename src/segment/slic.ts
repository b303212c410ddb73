/**
 * SLIC superpixels (Achanta et al., TPAMI 2012), a line-by-line port of scikit-image 0.19's
 * `slic` for 2-D RGB images with its defaults (no smoothing, Lab colour, connectivity enforced),
 * labels from 0. Checked against scikit-image by test/slic.test.ts.
 */
import type { RgbImage } from '../image/rgb.js';
import { rgbToLabInPlace } from './lab.js';

export interface SlicOptions {
  /** Approximate number of segments (skimage `n_segments`). */
  readonly numSegments: number;
  /** Colour vs space balance (skimage `compactness`); higher gives squarer segments. */
  readonly compactness: number;
  readonly maxNumIter?: number;
  readonly enforceConnectivity?: boolean;
  readonly minSizeFactor?: number;
  readonly maxSizeFactor?: number;
}

export interface SegmentMap {
  readonly width: number;
  readonly height: number;
  /** Segment id per pixel, row-major, ids 0..count-1. */
  readonly labels: Int32Array;
  readonly count: number;
}

/** numpy's round: half to even. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

interface GridAxis {
  readonly start: number;
  readonly step: number;
}

/** skimage.util.regular_grid: starts and steps of about n evenly spaced points over a shape. */
export function regularGrid(shape: readonly number[], nPoints: number): GridAxis[] {
  const ndim = shape.length;
  let spaceSize = shape.reduce((a, b) => a * b, 1);
  if (spaceSize <= nPoints) return shape.map(() => ({ start: 0, step: 1 }));
  // argsort (stable) and its inverse
  const order = shape.map((_, i) => i).sort((a, b) => (shape[a]! - shape[b]!) || a - b);
  const sorted = order.map((i) => shape[i]!);
  const steps = new Array<number>(ndim).fill(Math.pow(spaceSize / nPoints, 1 / ndim));
  if (sorted.some((d, i) => d < steps[i]!)) {
    for (let dim = 0; dim < ndim; dim++) {
      steps[dim] = sorted[dim]!;
      spaceSize = sorted.slice(dim + 1).reduce((a, b) => a * b, 1);
      const rest = Math.pow(spaceSize / nPoints, 1 / (ndim - dim - 1));
      for (let j = dim + 1; j < ndim; j++) steps[j] = rest;
      if (sorted.every((d, i) => d >= steps[i]!)) break;
    }
  }
  const sortedAxes = steps.map((s) => ({ start: Math.floor(s / 2), step: roundHalfEven(s) }));
  const axes = new Array<GridAxis>(ndim);
  order.forEach((originalDim, sortedIndex) => {
    axes[originalDim] = sortedAxes[sortedIndex]!;
  });
  return axes;
}

/** The image as float Lab, rescaled as skimage does: [0, 1] over all channels, then Lab, then ÷ compactness. */
function labFeatures(image: RgbImage, compactness: number): Float64Array {
  const n = image.data.length;
  const values = new Float64Array(n);
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = image.data[i]! / 255;
    values[i] = v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const range = max - min;
  for (let i = 0; i < n; i++) {
    values[i] = values[i]! - min;
    if (range !== 0) values[i] = values[i]! / range;
  }
  rgbToLabInPlace(values);
  const ratio = 1 / compactness;
  for (let i = 0; i < n; i++) values[i] = values[i]! * ratio;
  return values;
}

/** k-means in (y, x, L, a, b) over a ±2·step window around each centre (skimage `_slic_cython`). */
function cluster(features: Float64Array, width: number, height: number, grid: GridAxis[], maxNumIter: number): { labels: Int32Array; count: number } {
  const [, seedY, seedX] = grid as [GridAxis, GridAxis, GridAxis];
  const centres: number[] = []; // per segment: y, x, L, a, b
  for (let y = seedY.start; y < height; y += seedY.step) {
    for (let x = seedX.start; x < width; x += seedX.step) centres.push(y, x, 0, 0, 0);
  }
  const count = centres.length / 5;
  const segments = Float64Array.from(centres);
  // The spatial weight uses the seed grid's step; the search window is the grid for the number
  // of seeds actually placed (skimage recomputes regular_grid with it), which can be coarser.
  const step = Math.max(...grid.map((a) => a.step));
  const spatialWeight = 1 / (step * step);
  const [, gy, gx] = regularGrid([1, height, width], count) as [GridAxis, GridAxis, GridAxis];
  const labels = new Int32Array(width * height).fill(-1);
  const distance = new Float64Array(width * height);
  const sizes = new Float64Array(count);

  for (let iter = 0; iter < maxNumIter; iter++) {
    let change = false;
    distance.fill(Number.MAX_VALUE);
    for (let k = 0; k < count; k++) {
      const cy = segments[k * 5]!;
      const cx = segments[k * 5 + 1]!;
      const cl = segments[k * 5 + 2]!;
      const ca = segments[k * 5 + 3]!;
      const cb = segments[k * 5 + 4]!;
      // C casts truncate toward zero; the bounds are non-negative here.
      const yMin = Math.trunc(Math.max(cy - 2 * gy.step, 0));
      const yMax = Math.trunc(Math.min(cy + 2 * gy.step + 1, height));
      const xMin = Math.trunc(Math.max(cx - 2 * gx.step, 0));
      const xMax = Math.trunc(Math.min(cx + 2 * gx.step + 1, width));
      const dz = 0; // 2-D image: depth 1, centre z stays 0
      for (let y = yMin; y < yMax; y++) {
        let dy = cy - y;
        dy *= dy;
        for (let x = xMin; x < xMax; x++) {
          let dx = cx - x;
          dx *= dx;
          let d = (dz + dy + dx) * spatialWeight;
          const p = (y * width + x) * 3;
          const t0 = features[p]! - cl;
          const t1 = features[p + 1]! - ca;
          const t2 = features[p + 2]! - cb;
          let colour = 0;
          colour += t0 * t0;
          colour += t1 * t1;
          colour += t2 * t2;
          d += colour;
          const i = y * width + x;
          if (distance[i]! > d) {
            labels[i] = k;
            distance[i] = d;
            change = true;
          }
        }
      }
    }
    if (!change) break;
    sizes.fill(0);
    segments.fill(0);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = y * width + x;
        // An unreached pixel (-1) lands in the last segment, as numpy's index -1 does in skimage.
        const k = labels[i]! < 0 ? count - 1 : labels[i]!;
        sizes[k] = sizes[k]! + 1;
        const s = k * 5;
        segments[s] = segments[s]! + y;
        segments[s + 1] = segments[s + 1]! + x;
        segments[s + 2] = segments[s + 2]! + features[i * 3]!;
        segments[s + 3] = segments[s + 3]! + features[i * 3 + 1]!;
        segments[s + 4] = segments[s + 4]! + features[i * 3 + 2]!;
      }
    }
    for (let k = 0; k < count; k++) {
      for (let c = 0; c < 5; c++) segments[k * 5 + c] = segments[k * 5 + c]! / sizes[k]!;
    }
  }
  return { labels, count };
}

/**
 * Relabel 4-connected components in scan order; components smaller than minSize join the last
 * labelled neighbour seen (skimage `_enforce_label_connectivity_cython`, including its max_size cap).
 */
function enforceConnectivity(segments: Int32Array, width: number, height: number, minSize: number, maxSize: number): { labels: Int32Array; count: number } {
  const connected = new Int32Array(width * height).fill(-1);
  const queue = new Int32Array(Math.max(1, maxSize));
  const ddx = [1, -1, 0, 0];
  const ddy = [0, 0, 1, -1];
  let currentNew = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const start = y * width + x;
      if (segments[start] === -1 || connected[start]! > -1) continue;
      let adjacent = currentNew;
      const label = segments[start]!;
      connected[start] = currentNew;
      let size = 1;
      let visited = 0;
      queue[0] = start;
      while (visited < size && size < maxSize) {
        const p = queue[visited]!;
        const py = Math.floor(p / width);
        const px = p - py * width;
        for (let i = 0; i < 4; i++) {
          const xx = px + ddx[i]!;
          const yy = py + ddy[i]!;
          if (xx < 0 || xx >= width || yy < 0 || yy >= height) continue;
          const q = yy * width + xx;
          if (segments[q] === label && connected[q] === -1) {
            connected[q] = currentNew;
            queue[size] = q;
            size += 1;
            if (size >= maxSize) break;
          } else if (connected[q]! > -1 && connected[q] !== currentNew) {
            adjacent = connected[q]!;
          }
        }
        visited += 1;
      }
      if (size < minSize) {
        for (let i = 0; i < size; i++) connected[queue[i]!] = adjacent;
      } else {
        currentNew += 1;
      }
    }
  }
  // When the very last component was small and merged into itself, currentNew was not bumped.
  let count = 0;
  for (let i = 0; i < connected.length; i++) if (connected[i]! + 1 > count) count = connected[i]! + 1;
  return { labels: connected, count };
}

export function slic(image: RgbImage, options: SlicOptions): SegmentMap {
  const { width, height } = image;
  const features = labFeatures(image, options.compactness);
  const grid = regularGrid([1, height, width], options.numSegments);
  const clustered = cluster(features, width, height, grid, options.maxNumIter ?? 10);
  if (options.enforceConnectivity === false) return { width, height, labels: clustered.labels, count: clustered.count };
  const segmentSize = (width * height) / clustered.count;
  const minSize = Math.trunc((options.minSizeFactor ?? 0.5) * segmentSize);
  const maxSize = Math.trunc((options.maxSizeFactor ?? 3) * segmentSize);
  const { labels, count } = enforceConnectivity(clustered.labels, width, height, minSize, maxSize);
  return { width, height, labels, count };
}
