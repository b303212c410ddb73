/**
 * Resume: after an image's artifacts are written, a marker `state/<name>.json` records its
 * results, the fingerprint of everything that shapes them (config fields, endpoint identity,
 * dataset URI, the baseline image's content) and the image's content (ETag or SHA-256). A later run over the same output reuses
 * an image only when all of these match exactly and every artifact it names is there;
 * otherwise (or with --force) the image is explained again. Failed images are never reused.
 */
import { resultFingerprint, type AnalysisConfig } from '../config/config.js';
import type { Storage } from '../storage/storage.js';
import { deserializeResult, type ImageResult, serializeResult } from './run-writer.js';

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
  reused = 0;
  constructor(
    private readonly output: Storage,
    config: AnalysisConfig,
    private readonly enabled: boolean,
    /** methods.shap.baseline's content, as resultFingerprint takes it. */
    baselineContent?: string,
  ) {
    this.fingerprint = resultFingerprint(config, baselineContent);
  }

  private keyOf(name: string): string {
    return `state/${name}.json`;
  }

  /** The stored result of a complete image, verified, with its index in this run's listing. */
  async lookup(name: string, key: string, index: number, content: string): Promise<ImageResult | undefined> {
    if (!this.enabled) return undefined;
    let marker: Marker;
    try {
      marker = JSON.parse((await this.output.read(this.keyOf(name))).toString('utf8')) as Marker;
    } catch {
      return undefined; // no marker (or unreadable): explain it
    }
    if (marker.fingerprint !== this.fingerprint || marker.key !== key || marker.content !== content) return undefined;
    for (const artifact of marker.artifacts) if (!(await this.output.exists(artifact))) return undefined;
    this.reused += 1;
    return { ...deserializeResult(marker.result), index };
  }

  /** Written last, after the artifacts, so a marker always means a complete image. */
  async save(name: string, result: ImageResult, content: string): Promise<void> {
    if (result.failure) return;
    const marker: Marker = { fingerprint: this.fingerprint, key: result.key, content, artifacts: artifactsOf(result), result: serializeResult(result) };
    await this.output.write(this.keyOf(name), JSON.stringify(marker), 'application/json');
  }
}
