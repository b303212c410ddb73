/**
 * The SHAP heatmap, drawn the way Clarify's are: the image in muted gray, each segment tinted blue
 * where it raises the score and red where it lowers it, with opacity proportional to |value|,
 * segment boundaries in light gray, and a colour bar with the value range.
 */
import sharp from 'sharp';
import type { RgbImage } from '../image/rgb.js';
import type { SegmentMap } from '../segment/slic.js';

const BLUE = [30, 60, 255] as const;
const RED = [255, 40, 30] as const;
const WHITE = [255, 255, 255] as const;
const BOUNDARY = [225, 225, 225] as const;
const MAX_OPACITY = 0.8;
const BAR_WIDTH = 18;
const BAR_MARGIN = 70;

export interface HeatmapBox {
  /** Pixel box to outline (object detection). */
  readonly x0: number;
  readonly y0: number;
  readonly x1: number;
  readonly y1: number;
}

function blend(base: number, colour: number, alpha: number): number {
  return Math.round(base * (1 - alpha) + colour * alpha);
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function formatValue(v: number): string {
  return Math.abs(v) >= 0.01 || v === 0 ? v.toFixed(3) : v.toExponential(1);
}

/** The overlay image itself (same size as the input), before the colour bar is added. */
export function renderOverlay(image: RgbImage, segments: SegmentMap, values: ArrayLike<number>): Uint8Array {
  const { width, height } = image;
  let maxAbs = 0;
  for (let j = 0; j < segments.count; j++) maxAbs = Math.max(maxAbs, Math.abs(values[j]!));
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      const label = segments.labels[p]!;
      const o = p * 3;
      const boundary =
        (x + 1 < width && segments.labels[p + 1] !== label) || (y + 1 < height && segments.labels[p + width] !== label);
      if (boundary) {
        out.set(BOUNDARY, o);
        continue;
      }
      // Muted gray base so the tint reads clearly.
      const luma = 0.299 * image.data[o]! + 0.587 * image.data[o + 1]! + 0.114 * image.data[o + 2]!;
      const gray = 80 + luma * 0.55;
      const v = maxAbs > 0 ? values[label]! / maxAbs : 0;
      const colour = v >= 0 ? BLUE : RED;
      const alpha = MAX_OPACITY * Math.abs(v);
      out[o] = blend(gray, colour[0], alpha);
      out[o + 1] = blend(gray, colour[1], alpha);
      out[o + 2] = blend(gray, colour[2], alpha);
    }
  }
  return out;
}

function drawBox(target: Uint8Array, width: number, height: number, box: HeatmapBox, colour: readonly number[], thickness: number): void {
  const x0 = Math.max(0, Math.min(width - 1, Math.round(box.x0)));
  const x1 = Math.max(0, Math.min(width - 1, Math.round(box.x1)));
  const y0 = Math.max(0, Math.min(height - 1, Math.round(box.y0)));
  const y1 = Math.max(0, Math.min(height - 1, Math.round(box.y1)));
  for (let t = 0; t < thickness; t++) {
    for (let x = x0; x <= x1; x++) {
      for (const y of [Math.min(height - 1, y0 + t), Math.max(0, y1 - t)]) target.set(colour, (y * width + x) * 3);
    }
    for (let y = y0; y <= y1; y++) {
      for (const x of [Math.min(width - 1, x0 + t), Math.max(0, x1 - t)]) target.set(colour, (y * width + x) * 3);
    }
  }
}

export interface HeatmapOptions {
  readonly title?: string;
  readonly box?: HeatmapBox;
  readonly quality?: number;
}

/** JPEG: the overlay, then a colour bar (blue = +max at the top, red = −max at the bottom). */
export async function renderHeatmap(image: RgbImage, segments: SegmentMap, values: ArrayLike<number>, options: HeatmapOptions = {}): Promise<Buffer> {
  const { width, height } = image;
  const overlay = renderOverlay(image, segments, values);
  if (options.box) drawBox(overlay, width, height, options.box, [255, 200, 0], Math.max(2, Math.round(Math.min(width, height) / 150)));
  let maxAbs = 0;
  for (let j = 0; j < segments.count; j++) maxAbs = Math.max(maxAbs, Math.abs(values[j]!));

  const canvasWidth = width + BAR_MARGIN;
  const canvas = new Uint8Array(canvasWidth * height * 3).fill(255);
  for (let y = 0; y < height; y++) canvas.set(overlay.subarray(y * width * 3, (y + 1) * width * 3), y * canvasWidth * 3);
  const barTop = Math.round(height * 0.08);
  const barBottom = Math.round(height * 0.92);
  const barX = width + 8;
  for (let y = barTop; y <= barBottom; y++) {
    const v = 1 - (2 * (y - barTop)) / Math.max(1, barBottom - barTop); // +1 top … −1 bottom
    const colour = v >= 0 ? BLUE : RED;
    const alpha = MAX_OPACITY * Math.abs(v);
    for (let x = barX; x < barX + BAR_WIDTH && x < canvasWidth; x++) {
      const o = (y * canvasWidth + x) * 3;
      canvas[o] = blend(WHITE[0], colour[0], alpha);
      canvas[o + 1] = blend(WHITE[1], colour[1], alpha);
      canvas[o + 2] = blend(WHITE[2], colour[2], alpha);
    }
  }
  const fontSize = Math.max(9, Math.min(14, Math.round(height / 22)));
  const labelX = barX + BAR_WIDTH + 3;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${canvasWidth}" height="${height}">
  <style>text { font-family: sans-serif; font-size: ${fontSize}px; fill: #222; }</style>
  <text x="${labelX}" y="${barTop + fontSize * 0.4}">+${escapeXml(formatValue(maxAbs))}</text>
  <text x="${labelX}" y="${(barTop + barBottom) / 2 + fontSize * 0.4}">0</text>
  <text x="${labelX}" y="${barBottom + fontSize * 0.4}">−${escapeXml(formatValue(maxAbs))}</text>
  ${options.title ? `<text x="4" y="${fontSize + 2}" style="fill:#fff">${escapeXml(options.title)}</text>` : ''}
</svg>`;
  return sharp(canvas, { raw: { width: canvasWidth, height, channels: 3 } })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .jpeg({ quality: options.quality ?? 90, chromaSubsampling: '4:4:4' })
    .toBuffer();
}

/** The image with each detection's box and caption drawn (the `<name>_objects.jpeg` overview). */
export async function renderDetections(image: RgbImage, detections: readonly { box: HeatmapBox; caption: string }[], quality = 90): Promise<Buffer> {
  const { width, height } = image;
  const fontSize = Math.max(10, Math.min(18, Math.round(Math.min(width, height) / 25)));
  const stroke = Math.max(2, Math.round(Math.min(width, height) / 150));
  const colours = ['#ffc800', '#00d0ff', '#ff4fd8', '#7cff4f', '#ff8c00'];
  const shapes = detections
    .map((d, i) => {
      const colour = colours[i % colours.length]!;
      const w = Math.max(1, d.box.x1 - d.box.x0);
      const h = Math.max(1, d.box.y1 - d.box.y0);
      const labelY = d.box.y0 > fontSize + 4 ? d.box.y0 - 4 : d.box.y0 + fontSize + 2;
      // Keep the caption inside the image (bold sans-serif is about 0.62 em per character).
      const labelX = Math.max(2, Math.min(d.box.x0 + 2, width - d.caption.length * fontSize * 0.62 - 2));
      return `<rect x="${d.box.x0}" y="${d.box.y0}" width="${w}" height="${h}" fill="none" stroke="${colour}" stroke-width="${stroke}"/>
  <text x="${labelX.toFixed(1)}" y="${labelY}" fill="${colour}" stroke="#000" stroke-width="0.6" paint-order="stroke">${escapeXml(d.caption)}</text>`;
    })
    .join('\n  ');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
  <style>text { font-family: sans-serif; font-size: ${fontSize}px; font-weight: bold; }</style>
  ${shapes}
</svg>`;
  return sharp(image.data, { raw: { width, height, channels: 3 } })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .jpeg({ quality, chromaSubsampling: '4:4:4' })
    .toBuffer();
}

/** The image in its own colours with the segment boundaries drawn (for the report). */
export function renderSegmentBoundaries(image: RgbImage, segments: SegmentMap): Promise<Buffer> {
  const { width, height } = image;
  const out = Uint8Array.from(image.data);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      const label = segments.labels[p]!;
      if ((x + 1 < width && segments.labels[p + 1] !== label) || (y + 1 < height && segments.labels[p + width] !== label)) out.set([255, 230, 0], p * 3);
    }
  }
  return sharp(out, { raw: { width, height, channels: 3 } }).jpeg({ quality: 85 }).toBuffer();
}
