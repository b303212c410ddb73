/** sRGB → CIELAB (D65, 2° observer), as scikit-image's rgb2lab computes it. */

// scikit-image's xyz_from_rgb and D65 white point.
const M = [
  [0.412453, 0.35758, 0.180423],
  [0.212671, 0.71516, 0.072169],
  [0.019334, 0.119193, 0.950227],
] as const;
const WHITE = [0.95047, 1.0, 1.08883] as const;

function linearise(v: number): number {
  return v > 0.04045 ? Math.pow((v + 0.055) / 1.055, 2.4) : v / 12.92;
}

function f(t: number): number {
  return t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116;
}

/** In place: rgb holds r, g, b in [0, 1] per pixel; becomes L, a, b. */
export function rgbToLabInPlace(rgb: Float64Array): void {
  for (let i = 0; i < rgb.length; i += 3) {
    const r = linearise(rgb[i]!);
    const g = linearise(rgb[i + 1]!);
    const b = linearise(rgb[i + 2]!);
    const x = f((r * M[0][0] + g * M[0][1] + b * M[0][2]) / WHITE[0]);
    const y = f((r * M[1][0] + g * M[1][1] + b * M[1][2]) / WHITE[1]);
    const z = f((r * M[2][0] + g * M[2][1] + b * M[2][2]) / WHITE[2]);
    rgb[i] = 116 * y - 16;
    rgb[i + 1] = 500 * (x - y);
    rgb[i + 2] = 200 * (y - z);
  }
}
