/**
 * Real pretrained models for the local model server, from weights that ship inside the
 * @vladmandic/face-api npm package (MIT), run on TensorFlow.js's WebAssembly backend (its .wasm
 * ships in @tensorflow/tfjs-backend-wasm). Nothing is downloaded at run time.
 *
 * - face-detector: the tiny face detector (YOLOv2-style, 416×416 input). Measured on one core
 *   (2026-12-02): 70–74 ms per 512×512 image, a seventh of SSD-MobileNet-v1's time at the same
 *   face score (0.975 vs 0.973), so the tiny one serves the demo.
 * - face-expression: the face-expression classifier (7 classes) on a face crop, 11–14 ms per call.
 *
 * Both with the faster Concat kernel of wasm-concat.ts, put in when the runtime loads.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as Tf from '@tensorflow/tfjs';
import type { RgbImage } from '../image/rgb.js';
import { useFastWasmConcat } from './wasm-concat.js';

type FaceApi = typeof import('@vladmandic/face-api/dist/face-api.node-wasm.js');
type TfModule = typeof Tf;

const require = createRequire(import.meta.url);

/**
 * The model runtime is an optional peer dependency: the job never needs it, so neither the
 * Processing container nor `npm install clarify-images` carries its ~300 MB.
 */
export const MODEL_PACKAGES = ['@tensorflow/tfjs@^4.22.0', '@tensorflow/tfjs-backend-wasm@^4.22.0', '@vladmandic/face-api@^1.7.15'] as const;

/** The bundled models' packages are not installed. */
export class ModelsNotInstalledError extends Error {
  constructor(missing: string) {
    super(
      `the bundled models need packages that are not installed (${missing} is missing).\n` +
        `They are optional: the job itself does not use them. To use serve-model or demo, run\n` +
        `  npm install ${MODEL_PACKAGES.join(' ')}\n` +
        `next to clarify-images (a clone of the repository has them after \`npm ci\`).`,
    );
    this.name = 'ModelsNotInstalledError';
  }
}

function isModuleNotFound(error: unknown): error is Error & { code: string } {
  const code = (error as { code?: unknown }).code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}

/** Throws ModelsNotInstalledError unless every model package resolves from here (before threads load them). */
export function assertModelPackages(): void {
  for (const name of ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', '@vladmandic/face-api/dist/face-api.node-wasm.js']) {
    try {
      require.resolve(name);
    } catch (error) {
      if (isModuleNotFound(error)) throw new ModelsNotInstalledError(name.split('/').slice(0, 2).join('/'));
      throw error;
    }
  }
}

/** Loads a model package, turning "not installed" into an error that says what to install. */
async function loadPackage<T>(name: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if (isModuleNotFound(error) && String((error as Error).message).includes(name)) throw new ModelsNotInstalledError(name);
    throw error;
  }
}

export const EXPRESSION_LABELS = ['neutral', 'happy', 'sad', 'angry', 'fearful', 'disgusted', 'surprised'] as const;
export const DETECTOR_LABELS = ['face'] as const;

export interface ModelDetection {
  readonly classIndex: number;
  readonly label: string;
  readonly score: number;
  /** Normalised to the image. */
  readonly box: { x0: number; y0: number; x1: number; y1: number };
}

interface ServedModelBase {
  readonly name: string;
  readonly labels: readonly string[];
  /** Images it runs at once: one per thread that holds the model. */
  readonly concurrency: number;
  /** Ends the threads that hold it (nothing for a model on the calling thread). */
  close(): Promise<void>;
}

export type ServedModel =
  | (ServedModelBase & { readonly kind: 'classification'; classify(image: RgbImage): Promise<number[]> })
  | (ServedModelBase & { readonly kind: 'detection'; detect(image: RgbImage): Promise<ModelDetection[]> });

export const MODEL_NAMES = ['face-detector', 'face-expression'] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

interface Runtime {
  readonly tf: TfModule;
  readonly api: FaceApi;
}

let runtime: Promise<Runtime> | undefined;

/** tfjs on WebAssembly, once per process, loaded only when a model is asked for. */
function loadRuntime(): Promise<Runtime> {
  runtime ??= (async () => {
    const tf = await loadPackage('@tensorflow/tfjs', () => import('@tensorflow/tfjs'));
    await loadPackage('@tensorflow/tfjs-backend-wasm', () => import('@tensorflow/tfjs-backend-wasm'));
    await tf.setBackend('wasm');
    await tf.ready();
    useFastWasmConcat(tf);
    const api = await loadPackage('@vladmandic/face-api', async () => require('@vladmandic/face-api/dist/face-api.node-wasm.js') as FaceApi);
    return { tf, api };
  })();
  runtime.catch(() => (runtime = undefined));
  return runtime;
}

function modelDirectory(): string {
  return path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');
}

function toTensor(tf: TfModule, image: RgbImage): Tf.Tensor3D {
  return tf.tensor3d(Int32Array.from(image.data), [image.height, image.width, 3], 'int32');
}

/** Low enough that weak, partly masked faces still answer (the matching rule needs them). */
const DETECTOR_MIN_SCORE = 0.05;

/**
 * The model on the calling thread: each image blocks it while the model runs (tens of ms). The
 * servers use loadModelThreads (model-threads.ts), which keeps their event loop free.
 */
export async function loadModel(name: ModelName): Promise<ServedModel> {
  const { tf, api } = await loadRuntime();
  const dir = modelDirectory();
  const onThisThread = { concurrency: 1, close: async () => {} };
  if (name === 'face-detector') {
    await api.nets.tinyFaceDetector.loadFromDisk(dir);
    const options = new api.TinyFaceDetectorOptions({ inputSize: 416, scoreThreshold: DETECTOR_MIN_SCORE });
    return {
      name,
      kind: 'detection',
      labels: DETECTOR_LABELS,
      ...onThisThread,
      async detect(image) {
        const input = toTensor(tf, image);
        try {
          const faces = await api.detectAllFaces(input as unknown as Parameters<FaceApi['detectAllFaces']>[0], options);
          return faces.map((f) => ({
            classIndex: 0,
            label: 'face',
            score: f.score,
            box: {
              x0: Math.max(0, f.box.x / image.width),
              y0: Math.max(0, f.box.y / image.height),
              x1: Math.min(1, (f.box.x + f.box.width) / image.width),
              y1: Math.min(1, (f.box.y + f.box.height) / image.height),
            },
          }));
        } finally {
          input.dispose();
        }
      },
    };
  }
  await api.nets.faceExpressionNet.loadFromDisk(dir);
  return {
    name,
    kind: 'classification',
    labels: EXPRESSION_LABELS,
    ...onThisThread,
    async classify(image) {
      const input = toTensor(tf, image);
      try {
        const result = await api.nets.faceExpressionNet.predictExpressions(input as unknown as Parameters<FaceApi['nets']['faceExpressionNet']['predictExpressions']>[0]);
        const expressions = (Array.isArray(result) ? result[0] : result) as unknown as Record<string, number>;
        return EXPRESSION_LABELS.map((label) => expressions[label] ?? 0);
      } finally {
        input.dispose();
      }
    },
  };
}
