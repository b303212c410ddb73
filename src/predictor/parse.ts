/**
 * Reading a model's answer: the payload is parsed per `accept_type`, the `probability`
 * expression (JMESPath, or a CSV column index) picks the scores or detection rows, and the
 * result is checked against the model type. A bad answer names the expression, the accept
 * type and the start of the body.
 */
import jmespath from 'jmespath';
import type { AcceptType, DetectionFields, DetectionFormat, ModelType } from '../config/config.js';
import { recogniseAnswer } from './recognise.js';

export interface ClassScore {
  readonly label: string;
  readonly index: number;
  readonly score: number;
}

export interface Box {
  /** Normalised to [0, 1] of the image width / height. */
  readonly x0: number;
  readonly y0: number;
  readonly x1: number;
  readonly y1: number;
}

export interface Detection {
  /** Index into label_headers, or -1 when the model named a class label_headers does not list. */
  readonly classIndex: number;
  readonly label: string;
  readonly score: number;
  readonly box: Box;
}

export interface ResponseFormat {
  readonly acceptType: AcceptType;
  readonly probability?: string | number;
  readonly label?: string | number;
  /** With `label`: the score of a label_headers entry the answer does not list, or 'error'. Default 'error'. */
  readonly missingLabelScore?: number | 'error';
}

export class ResponseError extends Error {
  /** The config lines that would read the answer, as the message says them (precheck prints them on their own). */
  readonly hint: string;
  constructor(message: string, hint = '') {
    super(message);
    this.name = 'ResponseError';
    this.hint = hint;
  }
}

function describeExpression(value: string | number | undefined, what: string): string {
  if (value === undefined) return `no ${what} expression (whole payload)`;
  return typeof value === 'number' ? `${what} column ${value}` : `${what} expression "${value}"`;
}

function fail(format: ResponseFormat, body: Uint8Array, problem: string, what: 'probability' | 'label' = 'probability', hint = ''): never {
  const expression = describeExpression(what === 'probability' ? format.probability : format.label, what);
  const start = Buffer.from(body.subarray(0, 200)).toString('utf8');
  throw new ResponseError(`${problem}${hint} (${expression}, accept type ${format.acceptType}; body starts: ${JSON.stringify(start)})`, hint);
}

/**
 * Where the expression found nothing of the kind wanted, what reads the answer instead, when it has
 * a shape we know (`precheck` recognises the same): a mistyped key is the usual cause, and the
 * answer beside the expression shows it only to a reader who looks.
 */
function shapeHint(record: Record_, modelType: ModelType, format: ResponseFormat): string {
  if (record.kind !== 'json') return '';
  const shape = recogniseAnswer(record.value, modelType);
  if (!shape) return '';
  const current: Readonly<Record<string, unknown>> = { probability: format.probability, label: format.label };
  const lines = [
    ...Object.entries(shape.predictor).filter(([key, value]) => JSON.stringify(current[key]) !== JSON.stringify(value)).map(([key, value]) => `"predictor.${key}": ${JSON.stringify(value)}`),
    ...Object.entries(shape.clarifyImages).map(([key, value]) => `"clarify_images.${key}": ${JSON.stringify(value)}`),
  ];
  return lines.length > 0 ? `; the answer holds ${shape.name}, which ${lines.join(' and ')} would read` : '';
}

/** The first record of the payload as a JSON value, or CSV cells. */
type Record_ = { kind: 'json'; value: unknown } | { kind: 'csv'; cells: string[] };

function splitCsvLine(line: string): string[] {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  let depth = 0; // brackets: "[0.1,0.2]" unquoted stays one cell
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === '[') {
      depth++;
      cell += c;
    } else if (c === ']') {
      depth--;
      cell += c;
    } else if (c === ',' && depth === 0) {
      cells.push(cell.trim());
      cell = '';
    } else cell += c;
  }
  cells.push(cell.trim());
  return cells;
}

function readRecord(body: Uint8Array, format: ResponseFormat): Record_ {
  const text = Buffer.from(body).toString('utf8');
  if (text.trim() === '') fail(format, body, 'the response is empty');
  if (format.acceptType === 'text/csv') {
    const line = text.split(/\r?\n/).find((l) => l.trim() !== '') ?? '';
    return { kind: 'csv', cells: splitCsvLine(line) };
  }
  const source = format.acceptType === 'application/jsonlines' ? (text.split(/\r?\n/).find((l) => l.trim() !== '') ?? '') : text;
  try {
    return { kind: 'json', value: JSON.parse(source) as unknown };
  } catch (error) {
    if (onlyNonFiniteTokensInvalid(source)) {
      return fail(format, body, "the response holds NaN or Infinity, which JSON does not allow (Python's json.dumps writes them for non-finite floats): the model produced a score that is not a finite number");
    }
    return fail(format, body, `the response is not valid JSON: ${(error as Error).message}`);
  }
}

/** A bare NaN / Infinity / -Infinity where a JSON value stands (after [ , or :), not inside a string. */
const NON_FINITE_TOKEN = /([[,:]\s*)-?(?:NaN|Infinity)(?=\s*[,\]}])/g;

/** Whether the text would be valid JSON but for bare non-finite tokens: Python model servers' usual fault. */
function onlyNonFiniteTokensInvalid(text: string): boolean {
  const replaced = text.replace(NON_FINITE_TOKEN, '$1null');
  if (replaced === text) return false;
  try {
    JSON.parse(replaced);
    return true;
  } catch {
    return false;
  }
}

function select(record: Record_, expression: string | number | undefined, format: ResponseFormat, body: Uint8Array, what: 'probability' | 'label'): unknown {
  if (record.kind === 'csv') {
    if (expression === undefined) return record.cells;
    if (typeof expression !== 'number') return fail(format, body, 'a CSV answer needs a column index', what);
    const cell = record.cells[expression];
    if (cell === undefined) return fail(format, body, `the CSV row has ${record.cells.length} columns, no column ${expression}`, what);
    if (cell.startsWith('[')) {
      try {
        return JSON.parse(cell.replace(/'/g, '"')) as unknown;
      } catch {
        return fail(format, body, `column ${expression} is not a list`, what);
      }
    }
    return cell;
  }
  if (expression === undefined) return record.value;
  if (typeof expression !== 'string') return fail(format, body, 'a JSON answer needs a JMESPath expression', what);
  try {
    return jmespath.search(record.value as Parameters<typeof jmespath.search>[0], expression) as unknown;
  } catch (error) {
    return fail(format, body, `the JMESPath expression failed: ${(error as Error).message}`, what);
  }
}

/**
 * Servers that always answer a batch (the Clarify object-detection example's) wrap a single
 * image's answer in a list of one: [[0.1, 0.6, 0.3]] for scores, [[[0, 0.97, …], …]] for detection
 * rows. A list of one whose only element is itself a list of the inner kind is that wrapper; a
 * plain answer never looks like it, because a score is never a list and a row's first entry is
 * never a list.
 */
function unwrapBatchOfOne(selected: unknown, isInnerItem: (item: unknown) => boolean): unknown {
  if (!Array.isArray(selected) || selected.length !== 1 || !Array.isArray(selected[0])) return selected;
  const inner = selected[0] as unknown[];
  return inner.every((item) => isInnerItem(item)) ? inner : selected;
}

function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && value.trim() !== '') return Number(value);
  return Number.NaN;
}

/** Classification: one score per label_headers entry, reordered by `label` when the model names its labels. */
export function parseClassScores(body: Uint8Array, format: ResponseFormat, labelHeaders: readonly string[]): ClassScore[] {
  const record = readRecord(body, format);
  let selected = select(record, format.probability, format, body, 'probability');
  if (record.kind === 'csv' && format.probability === undefined && Array.isArray(selected) && selected.length === 1) {
    selected = selected[0];
  }
  selected = unwrapBatchOfOne(selected, (item) => !Array.isArray(item));
  if (!Array.isArray(selected)) {
    return fail(format, body, `expected a list of ${labelHeaders.length} scores, got ${selected === null || selected === undefined ? 'nothing' : typeof selected}`, 'probability', shapeHint(record, 'IMAGE_CLASSIFICATION', format));
  }
  const scores = selected.map(toNumber);
  if (scores.some((s) => !Number.isFinite(s))) return fail(format, body, 'the scores are not all finite numbers');
  if (format.label !== undefined) {
    const labels = select(record, format.label, format, body, 'label');
    if (!Array.isArray(labels) || labels.length !== scores.length || !labels.every((l) => typeof l === 'string' || typeof l === 'number')) {
      return fail(format, body, `expected ${scores.length} labels matching the scores`, 'label');
    }
    const missing = format.missingLabelScore ?? 'error';
    return labelHeaders.map((header, index) => {
      const at = labels.findIndex((l) => String(l) === header);
      if (at >= 0) return { label: header, index, score: scores[at] as number };
      if (missing === 'error') {
        return fail(format, body, `label_headers entry "${header}" is not among the model's labels (a model that answers only its top labels needs clarify_images.missing_label_score, e.g. 0)`, 'label');
      }
      return { label: header, index, score: missing };
    });
  }
  if (scores.length !== labelHeaders.length) {
    return fail(format, body, `got ${scores.length} scores but label_headers has ${labelHeaders.length} labels`);
  }
  return scores.map((score, index) => ({ label: labelHeaders[index] as string, index, score }));
}

export interface DetectionOptions {
  readonly detectionFormat: DetectionFormat;
  /** Separate arrays per field; takes the place of detectionFormat. */
  readonly detectionFields?: DetectionFields;
  readonly labelHeaders: readonly string[];
  /** Needed to normalise pixel boxes. */
  readonly width: number;
  readonly height: number;
}

function clarifyRows(answer: unknown, format: ResponseFormat, body: Uint8Array, options: DetectionOptions, hint: () => string): Detection[] {
  // [[rows…]] is a batch of one; [[0, 0.97, …]] is one row ([[]] a batch of one with no detections).
  const selected = unwrapBatchOfOne(answer, (row) => Array.isArray(row));
  if (!Array.isArray(selected)) return fail(format, body, 'expected a list of detection rows [class, score, x0, y0, x1, y1]', 'probability', hint());
  return selected.map((row, i): Detection => {
    if (!Array.isArray(row) || row.length < 6) return fail(format, body, `detection row ${i} is not [class, score, x0, y0, x1, y1]`);
    const [cls, score, x0, y0, x1, y1] = row.slice(0, 6).map(toNumber) as [number, number, number, number, number, number];
    if (![cls, score, x0, y0, x1, y1].every(Number.isFinite)) return fail(format, body, `detection row ${i} has a value that is not a number`);
    if (!Number.isInteger(cls) || cls < 0 || cls >= options.labelHeaders.length) {
      return fail(format, body, `detection row ${i} has class ${cls}, not an index into label_headers (0..${options.labelHeaders.length - 1})`);
    }
    checkBox(i, { x0, y0, x1, y1 }, format, body);
    return { classIndex: cls, label: options.labelHeaders[cls] as string, score, box: { x0, y0, x1, y1 } };
  });
}

/** A box must have x0 < x1 and y0 < y1: an inverted or empty box cannot be matched, so it is an error, not an object "explained" as 0. */
function checkBox(i: number, box: Box, format: ResponseFormat, body: Uint8Array): void {
  if (!(box.x1 > box.x0 && box.y1 > box.y0)) {
    fail(format, body, `detection ${i} has an ${box.x1 < box.x0 || box.y1 < box.y0 ? 'inverted' : 'empty'} box [${box.x0}, ${box.y0}, ${box.x1}, ${box.y1}] (x0 < x1 and y0 < y1 expected)`);
  }
}

/** The Mask R-CNN answer {"labels": ["horse 97%"], "boxes": [[x1, y1, x2, y2]]} is one mapping of fields. */
export const MASK_RCNN_FIELDS: DetectionFields = { boxes: 'boxes', labels: 'labels', coordinates: 'pixels' };

/** "horse 97%" → horse, 0.97: labels that carry their score. */
const LABEL_WITH_SCORE = /^(.*?)\s+(\d+(?:\.\d+)?)\s*%$/;

function fieldList(selected: unknown, name: string, expression: string, format: ResponseFormat, body: Uint8Array): unknown[] {
  let value: unknown;
  try {
    value = jmespath.search(selected as Parameters<typeof jmespath.search>[0], expression) as unknown;
  } catch (error) {
    return fail(format, body, `detection field ${name} "${expression}" failed: ${(error as Error).message}`);
  }
  if (!Array.isArray(value)) return fail(format, body, `detection field ${name} "${expression}" is not a list (got ${value === null || value === undefined ? 'nothing' : typeof value})`);
  return value;
}

/** Detections from separate arrays: boxes, scores, and classes or labels, matched by position. */
function fieldDetections(selected: unknown, fields: DetectionFields, format: ResponseFormat, body: Uint8Array, options: DetectionOptions): Detection[] {
  const boxes = fieldList(selected, 'boxes', fields.boxes, format, body);
  const scores = fields.scores === undefined ? undefined : fieldList(selected, 'scores', fields.scores, format, body);
  const classes = fields.classes === undefined ? undefined : fieldList(selected, 'classes', fields.classes, format, body);
  const labels = fields.labels === undefined ? undefined : fieldList(selected, 'labels', fields.labels, format, body);
  const classNames = fields.class_names === undefined ? undefined : fieldList(selected, 'class_names', fields.class_names, format, body);
  for (const [name, list] of [['scores', scores], ['classes', classes], ['labels', labels]] as const) {
    if (list && list.length !== boxes.length) return fail(format, body, `${boxes.length} boxes but ${list.length} ${name}`);
  }
  const [sx, sy] = fields.coordinates === 'pixels' ? [1 / options.width, 1 / options.height] : [1, 1];
  return boxes.map((box, i): Detection => {
    const coords = Array.isArray(box) ? box.map(toNumber) : [];
    if (coords.length < 4 || !coords.every(Number.isFinite)) return fail(format, body, `box ${i} is not [x0, y0, x1, y1]`);
    const [x0, y0, x1, y1] = coords as [number, number, number, number];
    let label: string;
    let score: number;
    let classIndex: number;
    if (classes) {
      const cls = toNumber(classes[i]);
      if (!Number.isInteger(cls) || cls < 0) return fail(format, body, `class ${i} ${JSON.stringify(classes[i])} is not a class index`);
      if (classNames) {
        if (cls >= classNames.length) return fail(format, body, `class ${i} is ${cls} but class_names has ${classNames.length} entries`);
        label = String(classNames[cls]);
        classIndex = options.labelHeaders.indexOf(label);
      } else {
        if (cls >= options.labelHeaders.length) return fail(format, body, `class ${i} is ${cls}, not an index into label_headers (0..${options.labelHeaders.length - 1})`);
        label = options.labelHeaders[cls] as string;
        classIndex = cls;
      }
    } else {
      const text = labels?.[i];
      if (typeof text !== 'string' && typeof text !== 'number') return fail(format, body, `label ${i} ${JSON.stringify(text)} is not a name`);
      label = String(text).trim();
      classIndex = -1;
    }
    if (scores) {
      score = toNumber(scores[i]);
      if (!Number.isFinite(score)) return fail(format, body, `score ${i} ${JSON.stringify(scores[i])} is not a number`);
    } else {
      const match = LABEL_WITH_SCORE.exec(label);
      if (!match) return fail(format, body, `label ${i} ${JSON.stringify(label)} is not "<class> <score>%" (give detection_fields.scores when scores are separate)`);
      label = match[1] as string;
      score = Number(match[2]) / 100;
    }
    if (!classes) classIndex = options.labelHeaders.indexOf(label);
    const scaled = { x0: x0 * sx, y0: y0 * sy, x1: x1 * sx, y1: y1 * sy };
    checkBox(i, scaled, format, body);
    return { classIndex, label, score, box: scaled };
  });
}

/** Object detection: every detection in the answer, as the model gave them. */
export function parseDetections(body: Uint8Array, format: ResponseFormat, options: DetectionOptions): Detection[] {
  const record = readRecord(body, format);
  if (record.kind === 'csv') return fail(format, body, 'object detection answers must be JSON');
  const selected = select(record, format.probability, format, body, 'probability');
  const fields = options.detectionFields ?? (options.detectionFormat === 'mask_rcnn' ? MASK_RCNN_FIELDS : undefined);
  return fields ? fieldDetections(selected, fields, format, body, options) : clarifyRows(selected, format, body, options, () => shapeHint(record, 'OBJECT_DETECTION', format));
}

/** Keep detections scoring at least `threshold`, best first, at most `maxObjects`. */
export function selectDetections(detections: readonly Detection[], threshold: number, maxObjects: number): Detection[] {
  return detections
    .filter((d) => d.score >= threshold)
    .sort((a, b) => b.score - a.score)
    .slice(0, maxObjects);
}
