import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { decodeImage } from '../src/image/decode.js';
import { loadModel } from '../src/serve/face-models.js';
import { concatRows, useFastWasmConcat } from '../src/serve/wasm-concat.js';

const examples = fileURLToPath(new URL('../../examples/images/', import.meta.url));

/** Concatenation by output position (outer index, place along the axis, inner index): independent of concatRows' row copies. */
function referenceConcat(values: readonly number[][], shapes: readonly number[][], axis: number): number[] {
  const size = (s: readonly number[]): number => s.reduce((n, d) => n * d, 1);
  const outer = size(shapes[0]!.slice(0, axis));
  const inner = size(shapes[0]!.slice(axis + 1));
  const along = shapes.map((s) => s[axis]!);
  const out: number[] = [];
  for (let o = 0; o < outer; o++) {
    values.forEach((v, i) => {
      for (let a = 0; a < along[i]!; a++) for (let k = 0; k < inner; k++) out.push(v[(o * along[i]! + a) * inner + k]!);
    });
  }
  return out;
}

interface ConcatCase {
  readonly what: string;
  readonly shapes: number[][];
  readonly axis: number;
  readonly dtype: 'float32' | 'int32';
}

const CASES: readonly ConcatCase[] = [
  { what: "face-api's normalisation: planes of one channel", shapes: [[1, 9, 11, 1], [1, 9, 11, 1], [1, 9, 11, 1]], axis: 3, dtype: 'float32' },
  { what: 'narrow rows of different widths', shapes: [[5, 2, 3], [5, 1, 3], [5, 4, 3]], axis: 1, dtype: 'int32' },
  { what: 'an empty input among them', shapes: [[4, 3], [4, 0], [4, 2]], axis: 1, dtype: 'int32' },
  { what: 'a wide row (the stock kernel)', shapes: [[2, 3, 70], [2, 3, 1]], axis: 2, dtype: 'float32' },
  { what: 'the first axis (one row each)', shapes: [[3, 2, 2], [1, 2, 2]], axis: 0, dtype: 'float32' },
];

function valuesOf(shape: readonly number[], seed: number, dtype: ConcatCase['dtype']): number[] {
  const n = shape.reduce((p, d) => p * d, 1);
  return Array.from({ length: n }, (_, k) => ((k * 7919 + seed * 104729) % 2003) - 1001 + (dtype === 'float32' ? 1 / 3 : 0));
}

async function concatWithKernel(c: ConcatCase): Promise<Float32Array | Int32Array> {
  const tensors = c.shapes.map((s, i) => tf.tensor(valuesOf(s, i, c.dtype), s, c.dtype));
  const out = tf.concat(tensors, c.axis);
  const data = (await out.data()) as Float32Array | Int32Array;
  tf.dispose([...tensors, out]);
  return data;
}

describe('a faster Concat for the bundled models (TensorFlow.js WebAssembly backend)', () => {
  let stock: tf.KernelConfig;

  before(async () => {
    await tf.setBackend('wasm');
    await tf.ready();
    stock = tf.getKernel('Concat', 'wasm');
  });

  it('concatRows lays rows side by side as concatenation by position does', () => {
    const a = [1, 2, 3, 4, 5, 6];
    const b = [7, 8, 9];
    const out = new Float64Array(9);
    concatRows([a, b], [2, 1], 3, out);
    assert.deepEqual(Array.from(out), referenceConcat([a, b], [[3, 2], [3, 1]], 1));
    assert.deepEqual(Array.from(out), [1, 2, 7, 3, 4, 8, 5, 6, 9]);
  });

  it('copies what the stock kernel copies, to the bit, on every shape; a second call does not wrap it twice; it can be put back', async () => {
    const restore = useFastWasmConcat(tf);
    const fast = tf.getKernel('Concat', 'wasm').kernelFunc;
    assert.notEqual(fast, stock.kernelFunc, 'the fast kernel is registered');
    for (const c of CASES) {
      const got = await concatWithKernel(c);
      const expected = referenceConcat(c.shapes.map((s, i) => valuesOf(s, i, c.dtype)), c.shapes, c.axis);
      assert.deepEqual(Array.from(got), Array.from(c.dtype === 'float32' ? Float32Array.from(expected) : Int32Array.from(expected)), c.what);
    }
    useFastWasmConcat(tf)();
    assert.equal(tf.getKernel('Concat', 'wasm').kernelFunc, fast, 'a second call leaves the first in place');
    const withFast = await Promise.all(CASES.map(concatWithKernel));
    restore();
    assert.equal(tf.getKernel('Concat', 'wasm').kernelFunc, stock.kernelFunc, 'the stock kernel is back');
    const withStock = await Promise.all(CASES.map(concatWithKernel));
    CASES.forEach((c, i) => assert.deepEqual(withFast[i], withStock[i], c.what));
  });

  it('the bundled detector and classifier answer the same to the bit with either kernel', async () => {
    const [detector, classifier] = await Promise.all([loadModel('face-detector'), loadModel('face-expression')]);
    assert.notEqual(tf.getKernel('Concat', 'wasm').kernelFunc, stock.kernelFunc, 'loading a model puts the fast kernel in');
    if (detector.kind !== 'detection' || classifier.kind !== 'classification') throw new Error('model kinds');
    const photo = await decodeImage(await readFile(`${examples}detection/astronaut.jpg`), { maxPixels: 1e8 });
    const face = await decodeImage(await readFile(`${examples}classification/astronaut-face.jpg`), { maxPixels: 1e8 });
    const answers = async (): Promise<unknown[]> => [await detector.detect(photo), await classifier.classify(face)];
    const withFast = await answers();
    tf.unregisterKernel('Concat', 'wasm');
    tf.registerKernel(stock);
    const withStock = await answers();
    assert.deepEqual(withFast, withStock);
    assert.ok((withFast[0] as unknown[]).length > 0, 'the detector found the face');
  });
});
