/**
 * Comparing two runs image by image: predictions (label flips, score changes; objects appearing,
 * disappearing or changing score) and explanations (rank correlation and top-5 overlap of the
 * top class's or object's SHAP values, and significant sign flips). SLIC is deterministic for
 * the same image and parameters, so segment ids line up between runs.
 */
import { iou } from '../explain/detection.js';
import type { DetectionExplanationRecord, ExplanationLine, ExplanationRecord } from '../output/explanations.js';
import type { PredictionRecord } from '../output/records.js';
import type { RunOutput } from './runs.js';
import { significantSignFlips, spearman, topOverlap } from './stats.js';
import type { Thresholds } from './thresholds.js';

export interface ImageComparison {
  readonly key: string;
  /** Why this image is a regression (empty: within tolerance). */
  readonly problems: string[];
  /** Notes that are not regressions (measured values). */
  readonly notes: string[];
  /** For ordering: larger is worse. */
  readonly severity: number;
  readonly heatmaps: { baseline?: string; candidate?: string };
}

export interface Comparison {
  readonly images: ImageComparison[];
  readonly regressions: number;
}

interface Drift {
  readonly correlation: number;
  readonly overlap: number;
  readonly flips: number[];
}

function drift(a: { shap_values: number[]; std_errors: (number | null)[] }, b: { shap_values: number[]; std_errors: (number | null)[] }): Drift | undefined {
  if (a.shap_values.length !== b.shap_values.length) return undefined;
  return {
    correlation: spearman(a.shap_values, b.shap_values),
    overlap: topOverlap(a.shap_values, b.shap_values, 5),
    flips: significantSignFlips(a.shap_values, a.std_errors, b.shap_values, b.std_errors),
  };
}

function checkDrift(what: string, d: Drift | undefined, t: Thresholds, problems: string[], notes: string[]): number {
  if (!d) {
    problems.push(`${what}: the segmentations differ (different number of segments), so explanations cannot be compared; did the image change?`);
    return 1;
  }
  let severity = 0;
  notes.push(`${what}: rank correlation ${d.correlation.toFixed(3)}, top-5 overlap ${(d.overlap * 100).toFixed(0)} %, significant sign flips ${d.flips.length}`);
  if (d.correlation < t.min_rank_correlation) {
    problems.push(`${what}: explanation rank correlation ${d.correlation.toFixed(3)} < ${t.min_rank_correlation}`);
    severity += t.min_rank_correlation - d.correlation;
  }
  if (d.overlap < t.min_top5_overlap) {
    problems.push(`${what}: only ${(d.overlap * 100).toFixed(0)} % of the top-5 segments kept (< ${(t.min_top5_overlap * 100).toFixed(0)} %)`);
    severity += t.min_top5_overlap - d.overlap;
  }
  if (d.flips.length > t.max_significant_sign_flips) {
    problems.push(`${what}: segments ${d.flips.join(', ')} changed sign beyond their standard errors`);
    severity += 0.1 * d.flips.length;
  }
  return severity;
}

function compareClassification(a: PredictionRecord, b: PredictionRecord, ea: ExplanationRecord | undefined, eb: ExplanationRecord | undefined, t: Thresholds, problems: string[], notes: string[]): number {
  let severity = 0;
  if (a.predicted_label !== b.predicted_label) {
    if (t.fail_on_label_flip) problems.push(`top-1 label changed: ${a.predicted_label} → ${b.predicted_label}`);
    else notes.push(`top-1 label changed: ${a.predicted_label} → ${b.predicted_label}`);
    severity += 10;
  }
  const scoresB = new Map((b.predictions ?? []).map((p) => [p.label, p.score]));
  let worst = { label: '', change: 0 };
  for (const p of a.predictions ?? []) {
    const change = Math.abs((scoresB.get(p.label) ?? 0) - p.score);
    if (change > worst.change) worst = { label: p.label, change };
  }
  notes.push(`largest score change ${worst.change.toFixed(4)}${worst.label ? ` (${worst.label})` : ''}`);
  if (worst.change > t.max_score_change) {
    problems.push(`score of "${worst.label}" changed by ${worst.change.toFixed(4)} (> ${t.max_score_change})`);
    severity += worst.change;
  }
  if (ea && eb) {
    const top = ea.predicted_label;
    const x = ea.explanations.find((e) => e.label === top);
    const y = eb.explanations.find((e) => e.label === top);
    if (x && y) severity += checkDrift(`explanation of "${top}"`, drift(x, y), t, problems, notes);
  } else if (ea || eb) {
    problems.push(`explanation present in the ${ea ? 'baseline' : 'candidate'} only`);
    severity += 1;
  }
  return severity;
}

function compareDetection(ea: DetectionExplanationRecord | undefined, eb: DetectionExplanationRecord | undefined, a: PredictionRecord, b: PredictionRecord, t: Thresholds, problems: string[], notes: string[]): number {
  let severity = 0;
  const objectsA = ea?.objects ?? (a.objects ?? []).map((o, i) => ({ ...o, index: i + 1, shap_values: [], std_errors: [] }));
  const objectsB = eb?.objects ?? (b.objects ?? []).map((o, i) => ({ ...o, index: i + 1, shap_values: [], std_errors: [] }));
  const used = new Set<number>();
  for (const o of objectsA) {
    let best = -1;
    let bestIou = t.object_iou;
    objectsB.forEach((c, j) => {
      if (used.has(j) || c.label !== o.label) return;
      const overlap = iou(o.box, c.box);
      if (overlap >= bestIou) {
        bestIou = overlap;
        best = j;
      }
    });
    if (best < 0) {
      (t.fail_on_object_change ? problems : notes).push(`object ${o.index} (${o.label} ${o.score.toFixed(3)}) disappeared`);
      severity += 5;
      continue;
    }
    used.add(best);
    const c = objectsB[best]!;
    const change = Math.abs(c.score - o.score);
    notes.push(`object ${o.index} (${o.label}): score ${o.score.toFixed(3)} → ${c.score.toFixed(3)}, IoU ${bestIou.toFixed(2)}`);
    if (change > t.max_score_change) {
      problems.push(`object ${o.index} (${o.label}) score changed by ${change.toFixed(4)} (> ${t.max_score_change})`);
      severity += change;
    }
    if (o.shap_values.length > 0 && c.shap_values.length > 0) severity += checkDrift(`explanation of object ${o.index}`, drift(o, c), t, problems, notes);
  }
  objectsB.forEach((c, j) => {
    if (used.has(j)) return;
    (t.fail_on_object_change ? problems : notes).push(`new object ${c.label} ${c.score.toFixed(3)} at [${c.box.x0.toFixed(2)}, ${c.box.y0.toFixed(2)}, ${c.box.x1.toFixed(2)}, ${c.box.y1.toFixed(2)}]`);
    severity += 5;
  });
  return severity;
}

function heatmapOf(record: ExplanationLine | undefined): string | undefined {
  if (!record) return undefined;
  return 'objects' in record ? record.objects[0]?.heatmap_path : record.heatmap_path;
}

export function compareRuns(baseline: RunOutput, candidate: RunOutput, t: Thresholds): Comparison {
  const keys = [...new Set([...baseline.predictions.keys(), ...candidate.predictions.keys()])].sort();
  const images = keys.map((key): ImageComparison => {
    const a = baseline.predictions.get(key);
    const b = candidate.predictions.get(key);
    const ea = baseline.explanations.get(key);
    const eb = candidate.explanations.get(key);
    const problems: string[] = [];
    const notes: string[] = [];
    const heatmaps = { baseline: heatmapOf(ea) && baseline.storage.uri(heatmapOf(ea)!), candidate: heatmapOf(eb) && candidate.storage.uri(heatmapOf(eb)!) };
    if (!a || !b) {
      (t.fail_on_missing_images ? problems : notes).push(`present in the ${a ? 'baseline' : 'candidate'} run only`);
      return { key, problems, notes, severity: 20, heatmaps };
    }
    if (a.error || b.error) {
      if (a.error && b.error) notes.push(`failed in both runs: ${b.error.message}`);
      else problems.push(b.error ? `fails in the candidate: [${b.error.stage}] ${b.error.message}` : `failed in the baseline only: [${a.error!.stage}] ${a.error!.message}`);
      return { key, problems, notes, severity: b.error && !a.error ? 15 : 1, heatmaps };
    }
    const severity =
      a.objects !== undefined || b.objects !== undefined
        ? compareDetection(ea as DetectionExplanationRecord | undefined, eb as DetectionExplanationRecord | undefined, a, b, t, problems, notes)
        : compareClassification(a, b, ea as ExplanationRecord | undefined, eb as ExplanationRecord | undefined, t, problems, notes);
    return { key, problems, notes, severity, heatmaps };
  });
  images.sort((x, y) => (y.problems.length > 0 ? 1 : 0) - (x.problems.length > 0 ? 1 : 0) || y.severity - x.severity || (x.key < y.key ? -1 : 1));
  return { images, regressions: images.filter((i) => i.problems.length > 0).length };
}
