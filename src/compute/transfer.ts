/**
 * What crosses to a worker thread: images and segment indices in shared memory (read there
 * without a copy), coalition designs and model outputs as flat typed arrays.
 */
import type { RgbImage } from '../image/rgb.js';
import type { CoalitionDesign } from '../explain/kernel-shap.js';
import { coalitionRows } from '../explain/regression-tree.js';

/** The image with its pixels in shared memory (itself when they already are). */
export function inSharedMemory(image: RgbImage): RgbImage {
  if (image.data.buffer instanceof SharedArrayBuffer) return image;
  const data = new Uint8Array(new SharedArrayBuffer(image.data.length));
  data.set(image.data);
  return { width: image.width, height: image.height, data };
}

/** A coalition design as flat arrays: masks row by row, sampled weights as (group, weight) runs. */
export interface FlatDesign {
  readonly features: number;
  readonly count: number;
  readonly masks: Uint8Array;
  readonly enumeratedCount: number;
  readonly enumeratedWeights: Float64Array;
  /** Sampled mask i's entries are groups/weights[sampledOffsets[i] .. sampledOffsets[i + 1]). */
  readonly sampledOffsets: Int32Array;
  readonly sampledGroups: Int32Array;
  readonly sampledWeights: Float64Array;
  readonly units: Float64Array;
}

export function flattenDesign(design: CoalitionDesign): FlatDesign {
  const m = design.features;
  const count = design.masks.length;
  const masks = coalitionRows(design.masks, m);
  const sampled = design.sampledWeights();
  const sampledOffsets = new Int32Array(sampled.length + 1);
  sampled.forEach((entries, i) => (sampledOffsets[i + 1] = sampledOffsets[i]! + entries.size));
  const sampledGroups = new Int32Array(sampledOffsets[sampled.length]!);
  const sampledWeights = new Float64Array(sampledGroups.length);
  sampled.forEach((entries, i) => {
    let k = sampledOffsets[i]!;
    for (const [group, weight] of entries) {
      sampledGroups[k] = group;
      sampledWeights[k] = weight;
      k += 1;
    }
  });
  return {
    features: m,
    count,
    masks,
    enumeratedCount: design.enumeratedCount,
    enumeratedWeights: Float64Array.from(design.enumeratedWeights()),
    sampledOffsets,
    sampledGroups,
    sampledWeights,
    units: Float64Array.from(design.unitsPerGroup()),
  };
}

export function unflattenDesign(flat: FlatDesign): CoalitionDesign {
  const m = flat.features;
  const masks = unflattenMasks(flat.masks, m);
  const sampled = Array.from({ length: flat.sampledOffsets.length - 1 }, (_, i) => {
    const entries = new Map<number, number>();
    for (let k = flat.sampledOffsets[i]!; k < flat.sampledOffsets[i + 1]!; k++) entries.set(flat.sampledGroups[k]!, flat.sampledWeights[k]!);
    return entries;
  });
  const enumerated = [...flat.enumeratedWeights];
  const units = [...flat.units];
  return {
    features: m,
    masks,
    enumeratedCount: flat.enumeratedCount,
    enumeratedWeights: () => enumerated,
    sampledWeights: () => sampled,
    unitsPerGroup: () => units,
  };
}

/** `coalitionRows`' rows back as masks (views, not copies). */
export function unflattenMasks(flat: Uint8Array, m: number): Uint8Array[] {
  return Array.from({ length: m === 0 ? 0 : flat.length / m }, (_, c) => flat.subarray(c * m, (c + 1) * m));
}

/** Per-coalition model outputs, concatenated. */
export function flattenValues(values: readonly Float64Array[], outputs: number): Float64Array {
  const flat = new Float64Array(values.length * outputs);
  values.forEach((v, c) => flat.set(v, c * outputs));
  return flat;
}

export function unflattenValues(flat: Float64Array, outputs: number): Float64Array[] {
  return Array.from({ length: flat.length / outputs }, (_, c) => flat.subarray(c * outputs, (c + 1) * outputs));
}
