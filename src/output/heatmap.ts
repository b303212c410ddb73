/**
 * The pictures people look at. The SHAP heatmap is drawn the way Clarify's are (the image in muted
 * gray, each segment tinted blue where it raises the score and red where it lowers it, opacity
 * proportional to |value|, segment boundaries light), with what a reader needs to read it:
 *
 * - a white header band with the title and the unit of the values, legible on any image;
 * - a colour bar whose labels always fit (its margin is sized from the labels);
 * - small images enlarged (nearest neighbour, so segments stay crisp) to at least 480 px;
 * - optionally the numbers of the top segments where they are, and, with `context` < 1, the area
 *   that was always masked, hatched and outlined.
 */
import sharp from 'sharp';
import { createRgbImage, type RgbImage } from '../image/rgb.js';
import type { SegmentMap } from '../segment/slic.js';

const BLUE = [30, 60, 255] as const;
const RED = [255, 40, 30] as const;
const WHITE = [255, 255, 255] as const;
const BOUNDARY = [225, 225, 225] as const;
const MAX_OPACITY = 0.8;
const BAR_WIDTH = 18;
/** Pictures are enlarged until their longer side reaches this (whole multiples only). */
const MIN_DISPLAY_SIDE = 480;
/** A conservative width of one character of DejaVu Sans / sans-serif, in em (digits are 0.64). */
const EM_PER_CHAR = 0.68;

export interface PixelBox {
  readonly x0: number;
  readonly y0: number;
  readonly x1: number;
  readonly y1: number;
}
/** Pixel box to outline (object detection). */
export type HeatmapBox = PixelBox;

/** Where the image sits in a rendered picture: scaled by `scale`, below a header of `top` px. */
export interface PictureLayout {
  readonly scale: number;
  readonly top: number;
  readonly imageWidth: number;
  readonly imageHeight: number;
  readonly fontSize: number;
}

export function pictureLayout(width: number, height: number): PictureLayout {
  const scale = Math.max(1, Math.ceil(MIN_DISPLAY_SIDE / Math.max(width, height)));
  const imageWidth = width * scale;
  const imageHeight = height * scale;
  const fontSize = Math.max(13, Math.min(28, Math.round(Math.max(imageWidth, imageHeight) / 34)));
  return { scale, top: Math.round(fontSize * 3.1), imageWidth, imageHeight, fontSize };
}

function blend(base: number, colour: number, alpha: number): number {
  return Math.round(base * (1 - alpha) + colour * alpha);
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function formatValue(v: number): string {
  return Math.abs(v) >= 0.01 || v === 0 ? v.toFixed(3) : v.toExponential(1);
}

/** Text that fits `width` px at `fontSize`, cut with an ellipsis where it would not. */
function fitText(text: string, width: number, fontSize: number): string {
  const max = Math.max(1, Math.floor(width / (fontSize * EM_PER_CHAR)));
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

const textWidth = (text: string, fontSize: number): number => text.length * fontSize * EM_PER_CHAR;

/** The overlay at the image's own size, before enlarging and decorations. */
export function renderOverlay(image: RgbImage, segments: SegmentMap, values: ArrayLike<number>, context?: PixelBox): Uint8Array {
  const { width, height } = image;
  let maxAbs = 0;
  for (let j = 0; j < segments.count; j++) maxAbs = Math.max(maxAbs, Math.abs(values[j]!));
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      const label = segments.labels[p]!;
      const o = p * 3;
      const luma = 0.299 * image.data[o]! + 0.587 * image.data[o + 1]! + 0.114 * image.data[o + 2]!;
      if (context && (x < context.x0 || x >= context.x1 || y < context.y0 || y >= context.y1)) {
        // Always masked (outside the context region): dark gray with light hatching.
        const stripe = (x + y) % 10 < 2;
        out.fill(stripe ? 150 : Math.round(40 + luma * 0.15), o, o + 3);
        continue;
      }
      const boundary = (x + 1 < width && segments.labels[p + 1] !== label) || (y + 1 < height && segments.labels[p + width] !== label);
      if (boundary) {
        out.set(BOUNDARY, o);
        continue;
      }
      const gray = 80 + luma * 0.55; // muted, so the tint reads clearly
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

/** Nearest-neighbour enlargement by a whole factor (libvips, off the JavaScript thread). */
async function enlarge(data: Uint8Array, width: number, height: number, scale: number): Promise<Uint8Array> {
  if (scale === 1) return data;
  const out = await sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { raw: { width, height, channels: 3 } })
    .resize(width * scale, height * scale, { kernel: 'nearest' })
    .raw()
    .toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

function drawBox(target: Uint8Array, width: number, height: number, box: PixelBox, colour: readonly number[], thickness: number): void {
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

/**
 * A point well inside each segment, for its number: the pixel farthest from the segment's edge
 * (a two-pass chamfer distance), so the number sits on the segment even when it is not convex.
 */
export function segmentAnchors(segments: SegmentMap): { x: number; y: number }[] {
  const { width, height, labels } = segments;
  const far = 1e9;
  const dist = new Float64Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      const edge = x === 0 || y === 0 || x === width - 1 || y === height - 1 || labels[p - 1] !== labels[p] || labels[p - width] !== labels[p];
      dist[p] = edge ? 0 : far;
      if (!edge) dist[p] = Math.min(dist[p]!, dist[p - 1]! + 1, dist[p - width]! + 1, dist[p - width - 1]! + 1.414, dist[p - width + 1]! + 1.414);
    }
  }
  for (let y = height - 1; y >= 0; y--) {
    for (let x = width - 1; x >= 0; x--) {
      const p = y * width + x;
      if (x + 1 < width && labels[p + 1] !== labels[p]) dist[p] = 0;
      if (y + 1 < height && labels[p + width] !== labels[p]) dist[p] = 0;
      if (x + 1 < width) dist[p] = Math.min(dist[p]!, dist[p + 1]! + 1);
      if (y + 1 < height) {
        dist[p] = Math.min(dist[p]!, dist[p + width]! + 1);
        if (x + 1 < width) dist[p] = Math.min(dist[p]!, dist[p + width + 1]! + 1.414);
        if (x > 0) dist[p] = Math.min(dist[p]!, dist[p + width - 1]! + 1.414);
      }
    }
  }
  const best = Array.from({ length: segments.count }, () => ({ x: 0, y: 0, d: -1 }));
  for (let p = 0; p < labels.length; p++) {
    const b = best[labels[p]!];
    if (b && dist[p]! > b.d) {
      b.d = dist[p]!;
      b.x = p % width;
      b.y = Math.floor(p / width);
    }
  }
  // A segment with no pixel here (possible in a shrunk view) has no anchor: NaN, never drawn.
  return best.map(({ x, y, d }) => (d < 0 ? { x: Number.NaN, y: Number.NaN } : { x, y }));
}

/** The numbers of some segments at their anchors: white on a dark outline, legible anywhere. */
function segmentNumbersSvg(segments: SegmentMap, ids: readonly number[], layout: PictureLayout, left: number): string {
  const anchors = segmentAnchors(segments);
  const size = Math.max(12, Math.round(layout.fontSize * 0.9));
  return ids
    .filter((id) => id >= 0 && id < anchors.length && Number.isFinite(anchors[id]!.x))
    .map((id) => {
      const a = anchors[id]!;
      const x = left + (a.x + 0.5) * layout.scale;
      const y = layout.top + (a.y + 0.5) * layout.scale + size * 0.35;
      return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" text-anchor="middle" class="num">${id}</text>`;
    })
    .join('\n  ');
}

/** The longer side of the pictures the report shows: big images are drawn from a shrunk view. */
export const REPORT_VIEW_SIDE = 1200;

/** An image and its segment map shrunk for pictures that are shown small; `scale` is view ÷ original. */
export interface PictureView {
  readonly rgb: RgbImage;
  readonly segments: SegmentMap;
  readonly scale: number;
}

/**
 * The image as the report shows it: itself when small, else shrunk to REPORT_VIEW_SIDE (area
 * average for the pixels, nearest for the segment labels), so report pictures of a 36 MP photo
 * cost a few MB, not hundreds.
 */
export async function pictureView(rgb: RgbImage, segments: SegmentMap, maxSide = REPORT_VIEW_SIDE): Promise<PictureView> {
  const longer = Math.max(rgb.width, rgb.height);
  if (longer <= maxSide) return { rgb, segments, scale: 1 };
  const scale = maxSide / longer;
  const width = Math.max(1, Math.round(rgb.width * scale));
  const height = Math.max(1, Math.round(rgb.height * scale));
  const data = await sharp(Buffer.from(rgb.data.buffer, rgb.data.byteOffset, rgb.data.byteLength), { raw: { width: rgb.width, height: rgb.height, channels: 3 } })
    .resize(width, height, { fit: 'fill' })
    .raw()
    .toBuffer();
  const labels = new Int32Array(width * height);
  for (let y = 0; y < height; y++) {
    const sy = Math.min(rgb.height - 1, Math.floor(((y + 0.5) * rgb.height) / height));
    for (let x = 0; x < width; x++) {
      const sx = Math.min(rgb.width - 1, Math.floor(((x + 0.5) * rgb.width) / width));
      labels[y * width + x] = segments.labels[sy * rgb.width + sx]!;
    }
  }
  return { rgb: createRgbImage(width, height, new Uint8Array(data.buffer, data.byteOffset, data.byteLength)), segments: { width, height, labels, count: segments.count }, scale: width / rgb.width };
}

/** A box in original pixels, in a view's pixels. */
export function boxInView(box: PixelBox, scale: number): PixelBox {
  return { x0: box.x0 * scale, y0: box.y0 * scale, x1: box.x1 * scale, y1: box.y1 * scale };
}

export interface HeatmapOptions {
  /** First header line, e.g. "happy 0.974" or "face 0.97". */
  readonly title?: string;
  /** What the values are in: "probability" (default) or "log-odds". */
  readonly unit?: string;
  readonly box?: PixelBox;
  /** With context < 1: the region outside it was always masked; it is hatched and outlined. */
  readonly contextRegion?: PixelBox;
  /** Segment ids whose numbers are drawn where they are (the report's top segments). */
  readonly numbered?: readonly number[];
  readonly quality?: number;
}

/** The SVG of every text and the header band: tested for staying inside the picture. */
export function heatmapTextLayer(layout: PictureLayout, canvasWidth: number, canvasHeight: number, maxAbs: number, options: HeatmapOptions, extra = ''): string {
  const { fontSize, top, imageWidth, imageHeight } = layout;
  const barTop = top + Math.round(imageHeight * 0.06);
  const barBottom = top + Math.round(imageHeight * 0.94);
  const labelX = imageWidth + 10 + BAR_WIDTH + 6;
  const unit = options.unit ?? 'probability';
  const line2 = `SHAP values (${unit}): blue raises the score, red lowers it${options.contextRegion ? '; hatched: always masked' : ''}`;
  const headerWidth = canvasWidth - 12;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${canvasWidth}" height="${canvasHeight}">
  <style>text { font-family: 'DejaVu Sans', sans-serif; font-size: ${fontSize}px; fill: #111; } .small { font-size: ${Math.round(fontSize * 0.72)}px; fill: #444; } .num { font-size: ${Math.max(12, Math.round(fontSize * 0.9))}px; font-weight: bold; fill: #fff; stroke: #000; stroke-width: 3px; paint-order: stroke; }</style>
  <text x="6" y="${Math.round(fontSize * 1.25)}" style="font-weight:bold">${escapeXml(fitText(options.title ?? '', headerWidth, fontSize))}</text>
  <text x="6" y="${Math.round(fontSize * 2.45)}" class="small">${escapeXml(fitText(line2, headerWidth, Math.round(fontSize * 0.72)))}</text>
  <text x="${labelX}" y="${barTop + fontSize * 0.8}">+${escapeXml(formatValue(maxAbs))}</text>
  <text x="${labelX}" y="${(barTop + barBottom) / 2 + fontSize * 0.35}">0</text>
  <text x="${labelX}" y="${barBottom}">−${escapeXml(formatValue(maxAbs))}</text>
  ${extra}
</svg>`;
}


/** Width of the colour bar and its labels, from the longest label. */
function barMargin(maxAbs: number, fontSize: number): number {
  return 10 + BAR_WIDTH + 6 + Math.ceil(textWidth(`−${formatValue(maxAbs)}`, fontSize)) + 10;
}

/** JPEG: header band, the enlarged overlay, and a colour bar (blue = +max at the top, red = −max at the bottom). */
export async function renderHeatmap(image: RgbImage, segments: SegmentMap, values: ArrayLike<number>, options: HeatmapOptions = {}): Promise<Buffer> {
  const { width, height } = image;
  const layout = pictureLayout(width, height);
  const overlay = renderOverlay(image, segments, values, options.contextRegion);
  if (options.box) drawBox(overlay, width, height, options.box, [255, 200, 0], Math.max(1, Math.round(Math.min(width, height) / 150)));
  if (options.contextRegion) drawBox(overlay, width, height, options.contextRegion, [255, 255, 255], 1);
  const big = await enlarge(overlay, width, height, layout.scale);
  let maxAbs = 0;
  for (let j = 0; j < segments.count; j++) maxAbs = Math.max(maxAbs, Math.abs(values[j]!));
  const { imageWidth, imageHeight, top } = layout;
  const canvasWidth = imageWidth + barMargin(maxAbs, layout.fontSize);
  const canvasHeight = top + imageHeight;
  const canvas = new Uint8Array(canvasWidth * canvasHeight * 3).fill(255);
  for (let y = 0; y < imageHeight; y++) canvas.set(big.subarray(y * imageWidth * 3, (y + 1) * imageWidth * 3), ((top + y) * canvasWidth) * 3);
  const barTop = top + Math.round(imageHeight * 0.06);
  const barBottom = top + Math.round(imageHeight * 0.94);
  const barX = imageWidth + 10;
  for (let y = barTop; y <= barBottom; y++) {
    const v = 1 - (2 * (y - barTop)) / Math.max(1, barBottom - barTop); // +1 top … −1 bottom
    const colour = v >= 0 ? BLUE : RED;
    const alpha = MAX_OPACITY * Math.abs(v);
    for (let x = barX; x < barX + BAR_WIDTH; x++) {
      const o = (y * canvasWidth + x) * 3;
      canvas[o] = blend(WHITE[0], colour[0], alpha);
      canvas[o + 1] = blend(WHITE[1], colour[1], alpha);
      canvas[o + 2] = blend(WHITE[2], colour[2], alpha);
    }
  }
  const numbers = options.numbered ? segmentNumbersSvg(segments, options.numbered, layout, 0) : '';
  const svg = heatmapTextLayer(layout, canvasWidth, canvasHeight, maxAbs, options, numbers);
  return sharp(canvas, { raw: { width: canvasWidth, height: canvasHeight, channels: 3 } })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .jpeg({ quality: options.quality ?? 90, chromaSubsampling: '4:4:4' })
    .toBuffer();
}

/**
 * The original beside its heatmap, the same size: the picture people look at first. The original
 * gets the same header band and enlargement, so both halves line up.
 */
export async function renderSideBySide(image: RgbImage, heatmap: Buffer, caption: string): Promise<Buffer> {
  const layout = pictureLayout(image.width, image.height);
  const big = await enlarge(image.data, image.width, image.height, layout.scale);
  const meta = await sharp(heatmap).metadata();
  const heatmapWidth = meta.width ?? layout.imageWidth;
  const canvasHeight = layout.top + layout.imageHeight;
  const gap = 12;
  const canvasWidth = layout.imageWidth + gap + heatmapWidth;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${canvasWidth}" height="${canvasHeight}">
  <style>text { font-family: 'DejaVu Sans', sans-serif; font-size: ${layout.fontSize}px; fill: #111; font-weight: bold; }</style>
  <text x="6" y="${Math.round(layout.fontSize * 1.25)}">${escapeXml(fitText(caption, layout.imageWidth - 12, layout.fontSize))}</text>
</svg>`;
  return sharp({ create: { width: canvasWidth, height: canvasHeight, channels: 3, background: { r: 255, g: 255, b: 255 } } })
    .composite([
      { input: Buffer.from(big.buffer, big.byteOffset, big.byteLength), raw: { width: layout.imageWidth, height: layout.imageHeight, channels: 3 }, top: layout.top, left: 0 },
      { input: heatmap, top: 0, left: layout.imageWidth + gap },
      { input: Buffer.from(svg), top: 0, left: 0 },
    ])
    .jpeg({ quality: 88, chromaSubsampling: '4:4:4' })
    .toBuffer();
}

/** The image with each detection's box and caption drawn (the `<name>_objects.jpeg` overview). */
export async function renderDetections(image: RgbImage, detections: readonly { box: PixelBox; caption: string }[], quality = 90): Promise<Buffer> {
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
      const caption = fitText(d.caption, width - 4, fontSize);
      // Keep the caption inside the image.
      const labelX = Math.max(2, Math.min(d.box.x0 + 2, width - textWidth(caption, fontSize) - 2));
      return `<rect x="${d.box.x0}" y="${d.box.y0}" width="${w}" height="${h}" fill="none" stroke="${colour}" stroke-width="${stroke}"/>
  <text x="${labelX.toFixed(1)}" y="${labelY}" fill="${colour}" stroke="#000" stroke-width="0.6" paint-order="stroke">${escapeXml(caption)}</text>`;
    })
    .join('\n  ');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
  <style>text { font-family: 'DejaVu Sans', sans-serif; font-size: ${fontSize}px; font-weight: bold; }</style>
  ${shapes}
</svg>`;
  return sharp(image.data, { raw: { width, height, channels: 3 } })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .jpeg({ quality, chromaSubsampling: '4:4:4' })
    .toBuffer();
}

/**
 * The image in its own colours with the segment boundaries drawn and every segment's number where
 * it is (up to 99 segments; beyond that only `numbered`), enlarged like the heatmap: the picture
 * that tells which region "segment 19" is.
 */
export async function renderSegmentBoundaries(image: RgbImage, segments: SegmentMap, numbered?: readonly number[]): Promise<Buffer> {
  const { width, height } = image;
  const out = Uint8Array.from(image.data);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      const label = segments.labels[p]!;
      if ((x + 1 < width && segments.labels[p + 1] !== label) || (y + 1 < height && segments.labels[p + width] !== label)) out.set([255, 230, 0], p * 3);
    }
  }
  const layout = pictureLayout(width, height);
  const big = await enlarge(out, width, height, layout.scale);
  const ids = segments.count <= 99 ? Array.from({ length: segments.count }, (_, i) => i) : (numbered ?? []);
  const flat: PictureLayout = { ...layout, top: 0 };
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${layout.imageWidth}" height="${layout.imageHeight}">
  <style>.num { font-family: 'DejaVu Sans', sans-serif; font-size: ${Math.max(12, Math.round(layout.fontSize * 0.9))}px; font-weight: bold; fill: #fff; stroke: #000; stroke-width: 3px; paint-order: stroke; }</style>
  ${segmentNumbersSvg(segments, ids, flat, 0)}
</svg>`;
  return sharp(big, { raw: { width: layout.imageWidth, height: layout.imageHeight, channels: 3 } })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .jpeg({ quality: 85 })
    .toBuffer();
}
