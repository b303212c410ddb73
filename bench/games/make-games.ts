/**
 * Makes the exact image games of the estimator benchmark: each bundled model on its example images,
 * our SLIC segments (M = 14–16), gray masking, and every one of the 2^M coalitions evaluated once.
 * The model is the same code the demo endpoint serves (src/serve/face-models.ts), run in-process so
 * 65,536 calls fit in minutes. Writes bench/games/<name>.json (what the game is) and <name>.f32.gz
 * (the value of every coalition, index = bit mask of the segments shown).
 *
 *   node dist/bench/games/make-games.js [classification|detection] [name …]
 */
import { readFile, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { decodeImage } from '../../src/image/decode.js';
import { createRgbImage, type RgbImage } from '../../src/image/rgb.js';
import { indexSegments, maskImage } from '../../src/explain/masking.js';
import { matchScore } from '../../src/explain/detection.js';
import { slic, type SegmentMap } from '../../src/segment/slic.js';
import { EXPRESSION_LABELS, loadModel } from '../../src/serve/face-models.js';
import type { Detection } from '../../src/predictor/parse.js';

export interface GameSpec {
  readonly name: string;
  readonly kind: 'classification' | 'detection';
  readonly image: string;
  /** Segments wanted (the SLIC n_segments is searched to give exactly this many). */
  readonly players: number;
  readonly compactness: number;
}

export const GAME_SPECS: readonly GameSpec[] = [
  { name: 'expression-astronaut', kind: 'classification', image: 'classification/astronaut-face.jpg', players: 15, compactness: 20 },
  { name: 'expression-sofa', kind: 'classification', image: 'classification/sofa-face.jpg', players: 15, compactness: 20 },
  { name: 'expression-window', kind: 'classification', image: 'classification/window-face.jpg', players: 15, compactness: 20 },
  { name: 'detector-astronaut', kind: 'detection', image: 'detection/astronaut.jpg', players: 14, compactness: 10 },
  { name: 'detector-sofa', kind: 'detection', image: 'detection/friends-sofa.jpg', players: 14, compactness: 20 },
];

const root = (p: string): string => fileURLToPath(new URL(`../../../${p}`, import.meta.url));

/** SLIC with the smallest n_segments ≥ `players` that gives exactly `players` segments. */
function segmentsWith(image: RgbImage, players: number, compactness: number): { segments: SegmentMap; numSegments: number } {
  for (let n = players; n <= 3 * players; n++) {
    const segments = slic(image, { numSegments: n, compactness });
    if (segments.count === players) return { segments, numSegments: n };
  }
  throw new Error(`no n_segments gives ${players} segments`);
}

/** Which segments touch (some pixel has a 4-neighbour in the other): kept with each game for analysis. */
export function segmentAdjacency(segments: SegmentMap): number[][] {
  const { width, height, labels, count } = segments;
  const seen = new Set<number>();
  const link = (a: number, b: number): void => {
    if (a === b) return;
    seen.add(a < b ? a * count + b : b * count + a);
  };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      if (x + 1 < width) link(labels[p]!, labels[p + 1]!);
      if (y + 1 < height) link(labels[p]!, labels[p + width]!);
    }
  }
  const neighbours = Array.from({ length: count }, (): number[] => []);
  for (const key of seen) {
    const a = Math.floor(key / count);
    const b = key % count;
    neighbours[a]!.push(b);
    neighbours[b]!.push(a);
  }
  return neighbours.map((list) => list.sort((a, b) => a - b));
}

async function makeGame(spec: GameSpec): Promise<void> {
  const image = await decodeImage(new Uint8Array(await readFile(root(`examples/images/${spec.image}`))), { maxPixels: 1e8 });
  const { segments, numSegments } = segmentsWith(image, spec.players, spec.compactness);
  const index = indexSegments(segments);
  const gray = createRgbImage(image.width, image.height, new Uint8Array(image.data.length).fill(128));
  const m = segments.count;
  const model = await loadModel(spec.kind === 'classification' ? 'face-expression' : 'face-detector');
  let evaluate: (masked: RgbImage) => Promise<number>;
  let output: string;
  if (model.kind === 'classification') {
    const probabilities = await model.classify(image);
    const top = probabilities.indexOf(Math.max(...probabilities));
    output = `probability of "${EXPRESSION_LABELS[top]}" (the top class, ${probabilities[top]!.toFixed(4)})`;
    evaluate = async (masked) => (await model.classify(masked))[top]!;
  } else {
    const detections = await model.detect(image);
    const best = detections.reduce((a, b) => (b.score > a.score ? b : a));
    const object: Detection = { classIndex: 0, label: 'face', score: best.score, box: best.box };
    output = `matching-rule score of the top face (score ${best.score.toFixed(4)}, IoU ≥ 0.5), context 1`;
    evaluate = async (masked) => matchScore(object, (await model.detect(masked)).map((d) => ({ classIndex: 0, label: 'face', score: d.score, box: d.box })), 0.5);
  }
  const values = new Float32Array(2 ** m);
  const mask = new Uint8Array(m);
  const started = Date.now();
  for (let s = 0; s < values.length; s++) {
    for (let j = 0; j < m; j++) mask[j] = (s >> j) & 1;
    values[s] = await evaluate(maskImage(image, gray, index, mask));
    if (s % 4096 === 4095) process.stderr.write(`${spec.name}: ${s + 1}/${values.length} (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
  }
  const meta = {
    name: spec.name,
    kind: spec.kind,
    image: `examples/images/${spec.image}`,
    size: [image.width, image.height],
    players: m,
    slic: { n_segments: numSegments, compactness: spec.compactness },
    baseline: 'gray (128, 128, 128)',
    output,
    adjacency: segmentAdjacency(segments),
    seconds: Math.round((Date.now() - started) / 1000),
  };
  await writeFile(root(`bench/games/${spec.name}.json`), `${JSON.stringify(meta, null, 1)}\n`);
  await writeFile(root(`bench/games/${spec.name}.f32.gz`), gzipSync(Buffer.from(values.buffer), { level: 9 }));
  process.stderr.write(`${spec.name}: done in ${meta.seconds} s\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [kind, ...names] = process.argv.slice(2);
  for (const spec of GAME_SPECS) {
    if (kind !== undefined && spec.kind !== kind) continue;
    if (names.length > 0 && !names.includes(spec.name)) continue;
    await makeGame(spec);
  }
}
