/**
 * A detector with a known answer: it finds solid pure red, green and blue pixels, reports each
 * colour's bounding box, and scores it by how much of a nominal square is visible. Masking part of
 * a square shrinks its box (so IoU matters) and lowers its score.
 */
export const SQUARE_CLASSES = ['red', 'green', 'blue'];
export const NOMINAL_SIDE = 40;

export interface SquareDetection {
  readonly classIndex: number;
  readonly score: number;
  /** Normalised [x0, y0, x1, y1]. */
  readonly box: readonly [number, number, number, number];
}

export function detectSquares(pixels: Uint8Array, width: number, height: number): SquareDetection[] {
  const found: SquareDetection[] = [];
  for (let c = 0; c < 3; c++) {
    let count = 0;
    let x0 = width;
    let y0 = height;
    let x1 = -1;
    let y1 = -1;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const o = (y * width + x) * 3;
        const pure = pixels[o + c]! >= 200 && [0, 1, 2].every((d) => d === c || pixels[o + d]! <= 60);
        if (!pure) continue;
        count += 1;
        x0 = Math.min(x0, x);
        y0 = Math.min(y0, y);
        x1 = Math.max(x1, x);
        y1 = Math.max(y1, y);
      }
    }
    if (count === 0) continue;
    found.push({ classIndex: c, score: Math.min(1, count / NOMINAL_SIDE ** 2), box: [x0 / width, y0 / height, (x1 + 1) / width, (y1 + 1) / height] });
  }
  return found;
}

/** The answer in SageMaker Clarify's detection format. */
export function clarifyRows(detections: readonly SquareDetection[]): { prediction: number[][] } {
  return { prediction: detections.map((d) => [d.classIndex, d.score, ...d.box]) };
}

/** The same answer in the Mask R-CNN style: "<class> <score>%" labels and pixel boxes. */
export function maskRcnnAnswer(detections: readonly SquareDetection[], width: number, height: number): { labels: string[]; boxes: number[][] } {
  return {
    labels: detections.map((d) => `${SQUARE_CLASSES[d.classIndex]} ${(d.score * 100).toFixed(4)}%`),
    boxes: detections.map((d) => [d.box[0] * width, d.box[1] * height, d.box[2] * width, d.box[3] * height]),
  };
}

/** Muted background cells (never pure red, green or blue) with solid squares painted on. */
export function squaresImage(
  width: number,
  height: number,
  squares: readonly { colour: 0 | 1 | 2; x: number; y: number; w: number; h: number }[],
): { width: number; height: number; data: Uint8Array } {
  const data = new Uint8Array(width * height * 3);
  const muted = [[150, 140, 120], [120, 135, 150], [140, 150, 125], [135, 120, 140]];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set(muted[(Math.floor(y / 32) * 5 + Math.floor(x / 32)) % muted.length]!, (y * width + x) * 3);
  }
  for (const s of squares) {
    const colour = [0, 0, 0];
    colour[s.colour] = 255;
    for (let y = s.y; y < s.y + s.h; y++) for (let x = s.x; x < s.x + s.w; x++) data.set(colour, (y * width + x) * 3);
  }
  return { width, height, data };
}
