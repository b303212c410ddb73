/**
 * A thread that holds one bundled model (a Piscina task runs one image through it), so that the
 * model's tens of milliseconds per image run beside the server's event loop, not on it.
 */
import { createRgbImage } from '../image/rgb.js';
import { loadModel, type ModelDetection, type ModelName, type ServedModel } from './face-models.js';

export interface ModelTask {
  readonly model: ModelName;
  /** Absent: only load the model (warms the thread up). */
  readonly image?: { readonly width: number; readonly height: number; readonly data: Uint8Array };
}

const loaded = new Map<ModelName, Promise<ServedModel>>();

export default async function run(task: ModelTask): Promise<number[] | ModelDetection[] | null> {
  let model = loaded.get(task.model);
  if (!model) {
    model = loadModel(task.model);
    loaded.set(task.model, model);
  }
  const served = await model;
  if (!task.image) return null;
  const image = createRgbImage(task.image.width, task.image.height, task.image.data);
  return served.kind === 'classification' ? served.classify(image) : served.detect(image);
}
