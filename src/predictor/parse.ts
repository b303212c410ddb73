/**
 * Reading a model's answer: the payload is parsed per `accept_type`, the `probability`
 * expression (JMESPath, or a CSV column index) picks the scores or detection rows, and the
 * result is checked against the model type. A bad answer names the expression, the accept
 * type and the start of the body.
 */
import jmespath from 'jmespath';
import type { AcceptType, DetectionFormat } from '../config/config.js';

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
}

export class ResponseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ResponseError';
  }
}

function describeExpression(value: string | number | undefined, what: string): string {
  if (value === undefined) return `no ${what} expression (whole payload)`;
  return typeof value === 'number' ? `${what} column ${value}` : `${what} expression "${value}"`;
}

function fail(format: ResponseFormat, body: Uint8Array, problem: string, what: 'probability' | 'label' = 'probability'): never {
  const expression = describeExpression(what === 'probability' ? format.probability : format.label, what);
  const start = Buffer.from(body.subarray(0, 200)).toString('utf8');
  throw new ResponseError(`${problem} (${expression}, accept type ${format.acceptType}; body starts: ${JSON.stringify(start)})`);
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
    return fail(format, body, `the response is not valid JSON: ${(error as Error).message}`);
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
  if (!Array.isArray(selected)) {
    return fail(format, body, `expected a list of ${labelHeaders.length} scores, got ${selected === null || selected === undefined ? 'nothing' : typeof selected}`);
  }
  const scores = selected.map(toNumber);
  if (scores.some((s) => !Number.isFinite(s))) return fail(format, body, 'the scores are not all finite numbers');
  if (format.label !== undefined) {
    const labels = select(record, format.label, format, body, 'label');
    if (!Array.isArray(labels) || labels.length !== scores.length || !labels.every((l) => typeof l === 'string' || typeof l === 'number')) {
      return fail(format, body, `expected ${scores.length} labels matching the scores`, 'label');
    }
    return labelHeaders.map((header, index) => {
      const at = labels.findIndex((l) => String(l) === header);
      if (at < 0) return fail(format, body, `label_headers entry "${header}" is not among the model's labels`, 'label');
      return { label: header, index, score: scores[at] as number };
    });
  }
  if (scores.length !== labelHeaders.length) {
    return fail(format, body, `got ${scores.length} scores but label_headers has ${labelHeaders.length} labels`);
  }
  return scores.map((score, index) => ({ label: labelHeaders[index] as string, index, score }));
}

export interface DetectionOptions {
  readonly detectionFormat: DetectionFormat;
  readonly labelHeaders: readonly string[];
  /** Needed to normalise the Mask R-CNN style's pixel boxes. */
  readonly width: number;
  readonly height: number;
}

function clarifyRows(selected: unknown, format: ResponseFormat, body: Uint8Array, options: DetectionOptions): Detection[] {
  if (!Array.isArray(selected)) return fail(format, body, 'expected a list of detection rows [class, score, x0, y0, x1, y1]');
  return selected.map((row, i): Detection => {
    if (!Array.isArray(row) || row.length < 6) return fail(format, body, `detection row ${i} is not [class, score, x0, y0, x1, y1]`);
    const [cls, score, x0, y0, x1, y1] = row.slice(0, 6).map(toNumber) as [number, number, number, number, number, number];
    if (![cls, score, x0, y0, x1, y1].every(Number.isFinite)) return fail(format, body, `detection row ${i} has a value that is not a number`);
    if (!Number.isInteger(cls) || cls < 0 || cls >= options.labelHeaders.length) {
      return fail(format, body, `detection row ${i} has class ${cls}, not an index into label_headers (0..${options.labelHeaders.length - 1})`);
    }
    return { classIndex: cls, label: options.labelHeaders[cls] as string, score, box: { x0, y0, x1, y1 } };
  });
}

const MASK_RCNN_LABEL = /^(.*?)\s+(\d+(?:\.\d+)?)\s*%$/;

function maskRcnnObjects(selected: unknown, format: ResponseFormat, body: Uint8Array, options: DetectionOptions): Detection[] {
  const answer = selected as { labels?: unknown; boxes?: unknown } | null;
  if (typeof answer !== 'object' || answer === null || !Array.isArray(answer.labels) || !Array.isArray(answer.boxes)) {
    return fail(format, body, 'expected {"labels": [...], "boxes": [[x1, y1, x2, y2], ...]} (Mask R-CNN style)');
  }
  const boxes = answer.boxes;
  if (answer.labels.length !== boxes.length) return fail(format, body, `${answer.labels.length} labels but ${boxes.length} boxes`);
  return answer.labels.map((text, i): Detection => {
    const match = typeof text === 'string' ? MASK_RCNN_LABEL.exec(text.trim()) : null;
    if (!match) return fail(format, body, `label ${i} ${JSON.stringify(text)} is not "<class> <score>%"`);
    const box = boxes[i];
    const coords = Array.isArray(box) ? box.map(toNumber) : [];
    if (coords.length < 4 || !coords.every(Number.isFinite)) return fail(format, body, `box ${i} is not [x1, y1, x2, y2]`);
    const [x1, y1, x2, y2] = coords as [number, number, number, number];
    const label = match[1] as string;
    return {
      classIndex: options.labelHeaders.indexOf(label),
      label,
      score: Number(match[2]) / 100,
      box: { x0: x1 / options.width, y0: y1 / options.height, x1: x2 / options.width, y1: y2 / options.height },
    };
  });
}

/** Object detection: every detection in the answer, as the model gave them. */
export function parseDetections(body: Uint8Array, format: ResponseFormat, options: DetectionOptions): Detection[] {
  const record = readRecord(body, format);
  if (record.kind === 'csv') return fail(format, body, 'object detection answers must be JSON');
  const selected = select(record, format.probability, format, body, 'probability');
  return options.detectionFormat === 'mask_rcnn'
    ? maskRcnnObjects(selected, format, body, options)
    : clarifyRows(selected, format, body, options);
}

/** Keep detections scoring at least `threshold`, best first, at most `maxObjects`. */
export function selectDetections(detections: readonly Detection[], threshold: number, maxObjects: number): Detection[] {
  return detections
    .filter((d) => d.score >= threshold)
    .sort((a, b) => b.score - a.score)
    .slice(0, maxObjects);
}
