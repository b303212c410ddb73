/**
 * Resume: after an image's artifacts are written, a marker `state/<name>.json` records its
 * results, the fingerprint of everything that shapes them (config fields, endpoint identity,
 * dataset URI, the baseline image's content) and the image's content (ETag or SHA-256). A later
 * run over the same output reuses an image only when all of these match exactly and every
 * artifact it names is there; otherwise (or with --force) the image is explained again. Failed
 * images are never reused.
 *
 * The same endpoint name or URL may serve another model by now (an endpoint updated in place, a
 * redeployed container), which no fingerprint can see: so before the first result is reused, its
 * image is predicted again, and the stored results are reused only if the endpoint still gives
 * the stored answer. That call is the one the image's explanation would make first anyway.
 */
import { resultFingerprint, type AnalysisConfig } from '../config/config.js';
import type { Storage } from '../storage/storage.js';
import type { PredictionRecord } from './records.js';
import { deserializeResult, type ImageResult, serializeResult } from './run-writer.js';

/** What to do with an image: reuse its stored result, explain it, or predict it to check the endpoint first. */
export type ReuseDecision =
  | { readonly kind: 'reuse'; readonly result: ImageResult }
  | { readonly kind: 'explain' }
  | {
      readonly kind: 'check';
      /**
       * The image's prediction in this run: the stored result when it is the stored answer (then
       * every stored result may be reused), else undefined (explain it; nothing stored is reused).
       * Undefined also ends a check that could not predict; the next stored image checks instead.
       */
      settle(fresh: PredictionRecord | undefined): ImageResult | undefined;
    };

/** Scores and box corners that differ by more than this (relative to 1 or their size) are another answer. */
export const ANSWER_TOLERANCE = 1e-4;

const differs = (a: number, b: number): boolean => Math.abs(a - b) > ANSWER_TOLERANCE * Math.max(1, Math.abs(a), Math.abs(b));
const said = (x: number): string => x.toPrecision(4);

/** How a fresh prediction differs from the stored one, in words; undefined when it is the same answer. */
export function answerDifference(stored: PredictionRecord, fresh: PredictionRecord): string | undefined {
  if (stored.predictions || fresh.predictions) {
    const before = stored.predictions ?? [];
    const now = new Map((fresh.predictions ?? []).map((p) => [p.index, p]));
    if (before.length !== now.size) return `${before.length} scores, now ${now.size}`;
    for (const p of before) {
      const q = now.get(p.index);
      if (!q) return `no score for ${p.label} now`;
      if (differs(p.score, q.score)) return `${p.label} ${said(p.score)}, now ${said(q.score)}`;
    }
    return undefined;
  }
  const before = stored.objects ?? [];
  const now = fresh.objects ?? [];
  if (before.length !== now.length || stored.detections_total !== fresh.detections_total) return `${before.length} objects of ${stored.detections_total ?? 0} detections, now ${now.length} of ${fresh.detections_total ?? 0}`;
  for (const [k, o] of before.entries()) {
    const q = now[k]!;
    if (o.class_index !== q.class_index || o.label !== q.label) return `object ${k + 1} ${o.label}, now ${q.label}`;
    if (differs(o.score, q.score)) return `object ${k + 1} (${o.label}) ${said(o.score)}, now ${said(q.score)}`;
    const corners = ['x0', 'y0', 'x1', 'y1'] as const;
    if (corners.some((c) => differs(o.box[c], q.box[c]))) return `object ${k + 1} (${o.label}) has another box`;
  }
  return undefined;
}

/** A value as a difference names it: JSON, cut short; "unset" for what was not set. */
function shown(value: unknown): string {
  if (value === null || value === undefined) return 'unset';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

/**
 * How the fingerprint stored with a result differs from this run's, in words (the fields that
 * differ, before → now), so that a run that reuses nothing says why: another num_samples, another
 * endpoint, an earlier revision of the explanation code.
 */
export function fingerprintDifference(stored: string, current: string): string {
  let before: Map<string, unknown>;
  let now: Map<string, unknown>;
  try {
    before = new Map(JSON.parse(stored) as [string, unknown][]);
    now = new Map(JSON.parse(current) as [string, unknown][]);
  } catch {
    return 'a config this run cannot read back';
  }
  const differences: string[] = [];
  for (const key of new Set([...before.keys(), ...now.keys()])) {
    const [a, b] = [before.get(key), now.get(key)];
    if (JSON.stringify(a) === JSON.stringify(b)) continue;
    if (key === 'explanation_revision') differences.push(`an earlier revision of the explanation code (${shown(a)} → ${shown(b)})`);
    else if (key === 'baseline_content') differences.push('another baseline image (its content differs)');
    else if (key === 'endpoint' && a && b && typeof a === 'object' && typeof b === 'object') {
      const [x, y] = [a as Record<string, unknown>, b as Record<string, unknown>];
      for (const field of new Set([...Object.keys(x), ...Object.keys(y)])) {
        if (JSON.stringify(x[field]) === JSON.stringify(y[field])) continue;
        differences.push(field === 'custom_attributes_sha256' ? 'other custom_attributes' : `the endpoint's ${field} ${shown(x[field])} → ${shown(y[field])}`);
      }
    } else differences.push(`${key} ${shown(a)} → ${shown(b)}`);
  }
  return differences.length > 0 ? differences.join('; ') : 'another config';
}

interface Marker {
  readonly fingerprint: string;
  readonly key: string;
  /** The image's content (S3 ETag or SHA-256): an image replaced in place is explained again. */
  readonly content: string;
  readonly artifacts: readonly string[];
  readonly result: string;
}

function artifactsOf(result: ImageResult): string[] {
  const e = result.explanation;
  if (!e) return [];
  if ('objects' in e) return [e.segments_path, e.objects_path, ...e.objects.map((o) => o.heatmap_path)];
  return [e.segments_path, e.heatmap_path];
}

export class ResumeStore {
  private readonly fingerprint: string;
  /** A guard, not in the fingerprint: a stored image over a lowered limit is not reused (the run would refuse it). */
  private readonly maxPixels: number;
  reused = 0;
  /** Stored results made with another fingerprint are said once (the first found), not per image. */
  private saidOtherFingerprint = false;
  /** Whether the endpoint still gives the stored answers: unknown until one stored image is predicted again. */
  private endpoint: 'unknown' | 'same' | 'changed' = 'unknown';
  /** A check under way: settles when its image has been predicted, or could not be. */
  private checking: Promise<void> | undefined;
  constructor(
    private readonly output: Storage,
    config: AnalysisConfig,
    private readonly enabled: boolean,
    /** methods.shap.baseline's content, as resultFingerprint takes it. */
    baselineContent?: string,
    private readonly log: (line: string) => void = () => undefined,
  ) {
    this.fingerprint = resultFingerprint(config, baselineContent);
    this.maxPixels = config.clarify_images.max_image_pixels;
  }

  /**
   * Reuse, explain or check: an image with a valid stored result is reused once the endpoint is
   * known to give the stored answers; the first such image checks it (other images wait for that).
   */
  async decide(name: string, key: string, index: number, content: string): Promise<ReuseDecision> {
    const stored = await this.lookup(name, key, index, content);
    for (;;) {
      if (!stored || this.endpoint === 'changed') return { kind: 'explain' };
      if (this.endpoint === 'same') {
        this.reused += 1;
        return { kind: 'reuse', result: stored };
      }
      if (!this.checking) break;
      await this.checking;
    }
    let finish!: () => void;
    this.checking = new Promise<void>((resolve) => (finish = resolve));
    let settled = false;
    return {
      kind: 'check',
      settle: (fresh) => {
        if (settled) return undefined;
        settled = true;
        this.checking = undefined;
        finish();
        if (!fresh) return undefined;
        const difference = answerDifference(stored.record, fresh);
        if (difference !== undefined) {
          this.endpoint = 'changed';
          this.log(`resume: the endpoint answers ${stored.uri} differently from the stored result (${difference}): the model behind it has changed, so no stored result is reused in this run`);
          return undefined;
        }
        this.endpoint = 'same';
        this.reused += 1;
        return stored;
      },
    };
  }

  private keyOf(name: string): string {
    return `state/${name}.json`;
  }

  /** The stored result of a complete image, verified, with its index in this run's listing. */
  private async lookup(name: string, key: string, index: number, content: string): Promise<ImageResult | undefined> {
    if (!this.enabled) return undefined;
    let marker: Marker;
    try {
      marker = JSON.parse((await this.output.read(this.keyOf(name))).toString('utf8')) as Marker;
    } catch {
      return undefined; // no marker (or unreadable): explain it
    }
    if (marker.fingerprint !== this.fingerprint) {
      if (!this.saidOtherFingerprint) {
        this.saidOtherFingerprint = true;
        this.log(`resume: results an earlier run stored in this output were made with ${fingerprintDifference(marker.fingerprint, this.fingerprint)}, so they are not reused: their images are explained again`);
      }
      return undefined;
    }
    if (marker.key !== key || marker.content !== content) return undefined;
    for (const artifact of marker.artifacts) if (!(await this.output.exists(artifact))) return undefined;
    const result = deserializeResult(marker.result);
    const { width = 0, height = 0, original_width: originalWidth, original_height: originalHeight } = result.record;
    if ((originalWidth ?? width) * (originalHeight ?? height) > this.maxPixels) return undefined;
    return { ...result, index };
  }

  /** Written last, after the artifacts, so a marker always means a complete image. */
  async save(name: string, result: ImageResult, content: string): Promise<void> {
    if (result.failure) return;
    const marker: Marker = { fingerprint: this.fingerprint, key: result.key, content, artifacts: artifactsOf(result), result: serializeResult(result) };
    await this.output.write(this.keyOf(name), JSON.stringify(marker), 'application/json');
  }
}
