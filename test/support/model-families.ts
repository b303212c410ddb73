/**
 * Test models that answer exactly as the common SageMaker image containers do, from the pixels.
 *
 * - JumpStart image classification (sagemaker-jumpstart inference scripts; the documented
 *   contract is Content-Type application/x-image; Accept application/json answers
 *   {"probabilities": [...]}, and application/json;verbose adds "labels" (every class name) and
 *   "predicted_label"). Any other Content-Type fails in the model, which SageMaker reports as a
 *   ModelError (424) with the container's 500 inside.
 * - JumpStart object detection: {"normalized_boxes": [[x0, y0, x1, y1], ...], "classes": [float
 *   class index, ...], "scores": [...]}, and with ;verbose "labels" (every class name), which the
 *   class indices point into.
 * - Hugging Face Inference Toolkit, image-classification pipeline: [{"label": ..., "score": ...}]
 *   sorted by score, top_k (5 by default) entries only; object-detection pipeline:
 *   [{"score": ..., "label": ..., "box": {"xmin", "ymin", "xmax", "ymax"}}] in whole pixels.
 * - Ultralytics YOLO behind the SageMaker PyTorch container, as AWS's host-yolov8-on-sagemaker-endpoint
 *   sample serves it (sm-notebook/code/inference.py, output_fn): {"boxes": boxes.data}, one row
 *   [x0, y0, x1, y1, confidence, class] per detection, the box in pixels of the image sent, the
 *   class a float index into the model's names.
 * - TorchServe's image_classifier handler (ts/torch_handler/image_classifier.py, as in AWS's
 *   TorchServe-on-SageMaker examples): any Content-Type carrying the image bytes; the answer is
 *   map_class_to_label's {"<class name>": probability, ...} for the topk (5) classes, best first.
 * - TorchServe's object_detector handler (ts/torch_handler/object_detector.py, as it answers
 *   today; early versions gave no scores): one record per detection scoring at least its
 *   threshold (0.5), map_class_to_label's {"<class name>": [x0, y0, x1, y1]} with "score" added,
 *   the box in pixels of the image sent (torchvision's detectors answer in the input's pixels;
 *   the handler does not resize).
 */
import { colourShareModel, type DecodedRequest, type Fault, type TestModel } from './endpoint-server.js';
import { detectSquares } from './square-detector.js';

/** Class names of the test models, in the order of the colour channels (red, green, blue). */
export const CLASSIFIER_LABELS = ['tabby cat', 'golden retriever', 'blue jay'];
/** The detector's full class list (JumpStart's verbose "labels"); red → person, green → dog, blue → car. */
export const DETECTOR_CLASS_NAMES = ['person', 'bicycle', 'dog', 'car', 'horse'];
const SQUARE_TO_CLASS = [0, 2, 3];

const verbose = (request: DecodedRequest): boolean => /;\s*verbose/.test(request.accept);

export const jumpStartClassifier: TestModel = (request) => {
  const probabilities = colourShareModel(request) as number[];
  if (!verbose(request)) return { probabilities };
  const best = probabilities.indexOf(Math.max(...probabilities));
  return { probabilities, labels: CLASSIFIER_LABELS, predicted_label: CLASSIFIER_LABELS[best] };
};

export const jumpStartDetector: TestModel = (request) => {
  const found = detectSquares(request.pixels, request.width, request.height);
  const answer: Record<string, unknown> = {
    normalized_boxes: found.map((d) => [...d.box]),
    classes: found.map((d) => SQUARE_TO_CLASS[d.classIndex]! + 0.0),
    scores: found.map((d) => d.score),
  };
  if (verbose(request)) answer['labels'] = DETECTOR_CLASS_NAMES;
  return answer;
};

/** JumpStart containers accept only application/x-image. */
export function jumpStartContentType(request: DecodedRequest): Fault | undefined {
  if (request.contentType === 'application/x-image') return undefined;
  return { status: 424, message: `Content type ${request.contentType} is not supported by this model. Supported content types: application/x-image` };
}

/** The pipeline's default top_k is 5; with 3 classes, top 2 makes the missing-label case real. */
export function huggingFaceClassifier(topK = 2): TestModel {
  return (request) => {
    const scores = colourShareModel(request) as number[];
    return scores
      .map((score, i) => ({ label: CLASSIFIER_LABELS[i]!, score }))
      .sort((a, b) => b.score - a.score)
      .slice(0, topK);
  };
}

export const huggingFaceDetector: TestModel = (request) =>
  detectSquares(request.pixels, request.width, request.height).map((d) => ({
    score: d.score,
    label: DETECTOR_CLASS_NAMES[SQUARE_TO_CLASS[d.classIndex]!]!,
    box: {
      xmin: Math.round(d.box[0] * request.width),
      ymin: Math.round(d.box[1] * request.height),
      xmax: Math.round(d.box[2] * request.width),
      ymax: Math.round(d.box[3] * request.height),
    },
  }));

/** TorchServe's default topk is 5; with 3 classes, top 2 makes the missing-label case real. */
export function torchServeClassifier(topK = 2): TestModel {
  return (request) => {
    const scores = colourShareModel(request) as number[];
    const top = scores.map((score, i) => [CLASSIFIER_LABELS[i]!, score] as const).sort((a, b) => b[1] - a[1]).slice(0, topK);
    return Object.fromEntries(top);
  };
}

/** Ultralytics YOLO rows under "boxes", as the AWS sample's output_fn writes them; its names are person, dog, car (red, green, blue). */
export const ultralyticsDetector: TestModel = (request) => ({
  boxes: detectSquares(request.pixels, request.width, request.height).map((d) => [
    d.box[0] * request.width,
    d.box[1] * request.height,
    d.box[2] * request.width,
    d.box[3] * request.height,
    d.score,
    d.classIndex + 0.0,
  ]),
});

/** TorchServe's object_detector answer: records above its 0.5 threshold, names from index_to_name.json. */
export const torchServeDetector: TestModel = (request) =>
  detectSquares(request.pixels, request.width, request.height)
    .filter((d) => d.score >= 0.5)
    .map((d) => ({
      [DETECTOR_CLASS_NAMES[SQUARE_TO_CLASS[d.classIndex]!]!]: [d.box[0] * request.width, d.box[1] * request.height, d.box[2] * request.width, d.box[3] * request.height],
      score: d.score,
    }));
