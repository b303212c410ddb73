/**
 * Recognising the answer shapes of common model families, so `precheck` can print the config
 * lines that read them. Pure: a parsed answer in, a named shape and config fragments out.
 */
import type { ModelType } from '../config/config.js';

export interface RecognisedShape {
  /** What the answer looks like, e.g. "JumpStart verbose classification". */
  readonly name: string;
  /** Config fragments that read it, by where they go. */
  readonly predictor: Readonly<Record<string, unknown>>;
  readonly clarifyImages: Readonly<Record<string, unknown>>;
  /** The model's own labels, when the answer lists them (a label_headers candidate). */
  readonly labels?: readonly string[];
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNumberList = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => typeof x === 'number');
const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
const isRow = (v: unknown): v is number[] => isNumberList(v) && v.length === 6;
const isClassIndex = (v: number): boolean => Number.isInteger(v) && v >= 0;
const isUnit = (v: number): boolean => v >= 0 && v <= 1;
/** Clarify's rows: [class, score, x0, y0, x1, y1], the box in [0, 1]. */
const isClarifyRow = (v: unknown): boolean => isRow(v) && isClassIndex(v[0]!) && isUnit(v[1]!) && v.slice(2).every(isUnit) && v[4]! >= v[2]! && v[5]! >= v[3]!;
/** Ultralytics YOLO's boxes.data rows: [x0, y0, x1, y1, confidence, class], the box in pixels. */
const isUltralyticsRow = (v: unknown): boolean => isRow(v) && isUnit(v[4]!) && isClassIndex(v[5]!) && v[2]! > v[0]! && v[3]! > v[1]! && v.slice(0, 4).some((c) => c > 1);
/** Every row of a non-empty list is of one kind. */
const rowsOf = (v: unknown, kind: (row: unknown) => boolean): boolean => Array.isArray(v) && v.length > 0 && v.every(kind);

/**
 * TorchServe's object_detector handler: map_class_to_label's {"<class>": box} with "score" added,
 * one record per detection. The class is the record's other key, which comes first: Python writes
 * it first, and JSON.parse puts an index-like key ("1", without index_to_name.json) first anyway.
 */
const isTorchServeDetection = (v: unknown): boolean => {
  if (!isObject(v) || typeof v['score'] !== 'number') return false;
  const others = Object.entries(v).filter(([key]) => key !== 'score');
  const box = others[0]?.[1];
  return others.length === 1 && isNumberList(box) && box.length === 4;
};
export const TORCHSERVE_DETECTION_FIELDS = { boxes: '[*].values(@)[0]', scores: '[*].score', labels: '[*].keys(@)[0]', coordinates: 'pixels' } as const;

/** A key as a JMESPath field: bare where it is an identifier, quoted otherwise. */
const jmespathField = (key: string): string => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? key : JSON.stringify(key));

/** detection_fields for Ultralytics rows under `key` (undefined: the whole answer). */
function ultralyticsFields(key: string | undefined): Readonly<Record<string, unknown>> {
  const rows = `${key === undefined ? '' : jmespathField(key)}[*]`;
  return { detection_fields: { boxes: `${rows}[0:4]`, scores: `${rows}[4]`, classes: `${rows}[5]`, coordinates: 'pixels' } };
}

function classification(answer: unknown): RecognisedShape | undefined {
  if (isObject(answer) && isNumberList(answer['probabilities'])) {
    if (isStringList(answer['labels']) && answer['labels'].length === answer['probabilities'].length) {
      return { name: 'JumpStart verbose classification', predictor: { probability: 'probabilities', label: 'labels' }, clarifyImages: {}, labels: answer['labels'] };
    }
    return { name: 'JumpStart classification', predictor: { probability: 'probabilities' }, clarifyImages: {} };
  }
  if (Array.isArray(answer) && answer.length > 0 && answer.every((r) => isObject(r) && typeof r['label'] === 'string' && typeof r['score'] === 'number')) {
    return {
      name: 'Hugging Face classification (label/score records, often only the top k)',
      predictor: { probability: '[*].score', label: '[*].label' },
      clarifyImages: { missing_label_score: 0 },
      labels: (answer as Json[]).map((r) => r['label'] as string),
    };
  }
  if (isNumberList(answer)) return { name: 'a list of scores', predictor: {}, clarifyImages: {} };
  if (Array.isArray(answer) && answer.length === 1 && isNumberList(answer[0])) return { name: 'a batch of one list of scores', predictor: { probability: '[0]' }, clarifyImages: {} };
  if (isObject(answer)) {
    for (const [key, value] of Object.entries(answer)) {
      if (isNumberList(value)) return { name: `scores under "${key}"`, predictor: { probability: key }, clarifyImages: {} };
      // TensorFlow Serving's REST answer: {"predictions": [[...]]}, a batch of one (read as one).
      if (Array.isArray(value) && value.length === 1 && isNumberList(value[0])) {
        return { name: `a batch of one list of scores under "${key}"${key === 'predictions' ? ' (TensorFlow Serving)' : ''}`, predictor: { probability: key }, clarifyImages: {} };
      }
    }
    // TorchServe's image_classifier handler: {"tabby": 0.41, "tiger_cat": 0.35, ...}, its top 5 classes.
    const entries = Object.entries(answer);
    if (entries.length >= 2 && entries.every(([, value]) => typeof value === 'number')) {
      return {
        name: 'TorchServe image classification (a label → score object, its top 5 classes by default)',
        predictor: { probability: 'values(@)', label: 'keys(@)' },
        clarifyImages: { missing_label_score: 0 },
        labels: entries.map(([label]) => label),
      };
    }
  }
  return undefined;
}

function detection(answer: unknown): RecognisedShape | undefined {
  if (isObject(answer) && Array.isArray(answer['normalized_boxes']) && Array.isArray(answer['classes']) && Array.isArray(answer['scores'])) {
    const verbose = isStringList(answer['labels']);
    return {
      name: verbose ? 'JumpStart verbose detection' : 'JumpStart detection',
      predictor: {},
      clarifyImages: {
        detection_fields: { boxes: 'normalized_boxes', scores: 'scores', classes: 'classes', ...(verbose ? { class_names: 'labels' } : {}), coordinates: 'normalized' },
      },
      ...(verbose ? { labels: answer['labels'] as string[] } : {}),
    };
  }
  if (Array.isArray(answer) && answer.length > 0 && answer.every((r) => isObject(r) && typeof r['score'] === 'number' && typeof r['label'] === 'string' && isObject(r['box']))) {
    return {
      name: 'Hugging Face detection (score/label/box records, pixel boxes)',
      predictor: {},
      clarifyImages: {
        detection_fields: { boxes: '[*].[box.xmin, box.ymin, box.xmax, box.ymax]', scores: '[*].score', labels: '[*].label', coordinates: 'pixels' },
      },
    };
  }
  if (rowsOf(answer, isTorchServeDetection)) {
    return { name: 'TorchServe object detection ({"<class>": [x0, y0, x1, y1], "score": s} records, pixel boxes)', predictor: {}, clarifyImages: { detection_fields: TORCHSERVE_DETECTION_FIELDS } };
  }
  if (isObject(answer) && isStringList(answer['labels']) && Array.isArray(answer['boxes']) && !Array.isArray(answer['scores'])) {
    return { name: 'Mask R-CNN style ("<class> <score>%" labels, pixel boxes)', predictor: {}, clarifyImages: { detection_format: 'mask_rcnn' } };
  }
  // Six numbers a row may be Clarify's or Ultralytics YOLO's (AWS's host-yolov8-on-sagemaker-endpoint sample): told apart by where the class and the pixels are.
  if (Array.isArray(answer) && answer.every(isRow) && !rowsOf(answer, isUltralyticsRow)) return { name: 'Clarify detection rows', predictor: {}, clarifyImages: {} };
  if (rowsOf(answer, isUltralyticsRow)) return { name: 'Ultralytics YOLO rows [x0, y0, x1, y1, confidence, class] in pixels', predictor: {}, clarifyImages: ultralyticsFields(undefined) };
  if (isObject(answer)) {
    for (const [key, value] of Object.entries(answer)) {
      if (rowsOf(value, isClarifyRow) || (rowsOf(value, isRow) && !rowsOf(value, isUltralyticsRow))) return { name: `Clarify detection rows under "${key}"`, predictor: { probability: key }, clarifyImages: {} };
      if (rowsOf(value, isUltralyticsRow)) return { name: `Ultralytics YOLO rows [x0, y0, x1, y1, confidence, class] in pixels under "${key}"`, predictor: {}, clarifyImages: ultralyticsFields(key) };
    }
  }
  return undefined;
}

/** The shape of a parsed answer for a model type, or undefined when it is none we know. */
export function recogniseAnswer(answer: unknown, modelType: ModelType): RecognisedShape | undefined {
  return modelType === 'IMAGE_CLASSIFICATION' ? classification(answer) : detection(answer);
}

/** The first JSON value of an answer body (a JSON document or the first JSON line). */
export function firstJsonValue(body: Uint8Array): unknown {
  const text = Buffer.from(body).toString('utf8').trim();
  try {
    return JSON.parse(text) as unknown;
  } catch {
    const line = text.split(/\r?\n/).find((l) => l.trim() !== '');
    if (line === undefined) return undefined;
    try {
      return JSON.parse(line) as unknown;
    } catch {
      return undefined;
    }
  }
}
