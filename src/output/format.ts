/** How the report, the notebook and the command line write numbers. */

/** A count with thousands grouped, as people read it: 12,345 (integers only; no locale involved). */
export function formatCount(n: number): string {
  return Number.isInteger(n) ? String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',') : String(n);
}

/** A count and its noun, singular for 1: "1 image", "12,345 images". */
export function formatCountOf(n: number, singular: string, plural = `${singular}s`): string {
  return `${formatCount(n)} ${n === 1 ? singular : plural}`;
}

/** A SHAP value, score or probability: 4 decimals, or 3 significant digits below 0.001. */
export function formatValue(v: number): string {
  return Math.abs(v) >= 0.001 || v === 0 ? v.toFixed(4) : v.toExponential(2);
}

/** A standard error, or "unknown" where the samples could not estimate one (NaN, or null read back from a resumed image). */
export function formatStandardError(v: number | null): string {
  return v !== null && Number.isFinite(v) ? formatValue(v) : 'unknown';
}
