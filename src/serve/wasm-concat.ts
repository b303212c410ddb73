/**
 * A Concat kernel for TensorFlow.js's WebAssembly backend that copies narrow rows value by value.
 *
 * The stock kernel (tfjs-backend-wasm 4.22) copies each row with `subarray` + `set`, two calls
 * per row and input. face-api's input normalisation concatenates three H×W×1 planes along the
 * channel axis: 416·416 rows of one value each, 70 ms of the tiny face detector's 140 ms per
 * image on one core (5 of the expression classifier's 18 ms), measured with tf.profile on
 * 2026-12-02. Copying such rows in a plain loop takes well under a millisecond. The values are
 * copied, never computed, so every answer is the same to the bit.
 */
import type * as Tf from '@tensorflow/tfjs';

type TfModule = typeof Tf;
type TensorInfo = Tf.TensorInfo;

/** The part of the WebAssembly backend this kernel uses. */
interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: Tf.DataType): TensorInfo;
  typedArrayFromHeap(tensor: TensorInfo): Tf.backend_util.TypedArray;
}

/** Rows at least this long are copied by the stock kernel's block copies, which are fast for them. */
const NARROW_ROW = 64;

/** Kernels this module made, so that a second call does not wrap the first. */
const fastKernels = new WeakSet<Tf.KernelFunc>();

const sizeOf = (shape: readonly number[]): number => shape.reduce((n, d) => n * d, 1);

/**
 * Copies `inputs` (rows × widths[i] each, row-major) into `out` side by side: row r of the
 * result is row r of every input in turn.
 */
export function concatRows(inputs: readonly ArrayLike<number>[], widths: readonly number[], rows: number, out: { [index: number]: number }): void {
  const total = widths.reduce((sum, w) => sum + w, 0);
  let offset = 0;
  inputs.forEach((values, i) => {
    const width = widths[i]!;
    if (width === 1) {
      // face-api's planes; without the inner loop this is twice as fast.
      for (let r = 0, to = offset; r < rows; r++, to += total) out[to] = values[r]!;
    } else {
      for (let r = 0; r < rows; r++) {
        const from = r * width;
        const to = r * total + offset;
        for (let k = 0; k < width; k++) out[to + k] = values[from + k]!;
      }
    }
    offset += width;
  });
}

/**
 * Replaces the WebAssembly backend's Concat with one that is fast for narrow rows; other cases go
 * to the stock kernel. Returns what puts the stock kernel back.
 */
export function useFastWasmConcat(tf: TfModule): () => void {
  const stock = tf.getKernel('Concat', 'wasm');
  if (stock === undefined || fastKernels.has(stock.kernelFunc)) return () => undefined;
  const stockConcat = stock.kernelFunc;
  const kernelFunc: Tf.KernelFunc = (args) => {
    const inputs = Object.values(args.inputs).filter((t): t is TensorInfo => t !== undefined);
    const nonEmpty = inputs.filter((t) => sizeOf(t.shape) > 0);
    const first = nonEmpty[0];
    if (first === undefined || nonEmpty.length < 2 || first.dtype === 'string') return stockConcat(args);
    const axis = tf.util.parseAxisParam(args.attrs?.['axis'] as number | number[], first.shape)[0]!;
    const widths = nonEmpty.map((t) => sizeOf(t.shape.slice(axis)));
    if (Math.max(...widths) >= NARROW_ROW) return stockConcat(args);
    tf.backend_util.assertParamsConsistent(inputs.map((t) => t.shape), axis);
    const backend = args.backend as WasmHeapBackend;
    const out = backend.makeOutput(tf.backend_util.computeOutShape(inputs.map((t) => t.shape), axis), first.dtype);
    const rows = sizeOf(first.shape.slice(0, axis));
    // Views of the heap are taken after makeOutput, which may grow (and so move) it.
    concatRows(nonEmpty.map((t) => backend.typedArrayFromHeap(t)), widths, rows, backend.typedArrayFromHeap(out));
    return out;
  };
  fastKernels.add(kernelFunc);
  tf.unregisterKernel('Concat', 'wasm');
  tf.registerKernel({ ...stock, kernelFunc });
  return () => {
    tf.unregisterKernel('Concat', 'wasm');
    tf.registerKernel(stock);
  };
}
