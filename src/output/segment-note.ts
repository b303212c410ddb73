/**
 * Images whose superpixels came out far fewer than `num_segments` asks for: their explanations can
 * barely tell regions apart (1 segment: the whole image gets the whole change), and nothing else
 * would say so. SLIC merges what its colour term splits into fragments, so on a finely textured
 * image a low `segment_compactness` can leave one or two segments; a tiny image has few pixels to
 * share. The first few are said as they are written, and the summary counts them all.
 */
import { formatCountOf } from './format.js';

/** Fewer than this share of num_segments counts as few. */
export const FEW_SEGMENTS_SHARE = 0.25;
/** Images said one by one; the rest are counted. */
const SAID_IMAGES = 5;

export function fewSegments(found: number, asked: number): boolean {
  return found < asked * FEW_SEGMENTS_SHARE;
}

/** analysis.json's `explanations.few_segments`. */
export interface FewSegmentsSummary {
  readonly images: number;
  readonly num_segments: number;
  readonly first: { readonly image: string; readonly segments: number };
}

export class FewSegmentsNote {
  private count = 0;
  private first: FewSegmentsSummary['first'] | undefined;
  constructor(
    private readonly asked: number,
    private readonly log: (line: string) => void,
  ) {}

  /** Called for each explained image, in dataset order. */
  add(image: string, segments: number): void {
    if (!fewSegments(segments, this.asked)) return;
    this.count += 1;
    this.first ??= { image, segments };
    if (this.count <= SAID_IMAGES) {
      this.log(
        `${image}: SLIC found ${formatCountOf(segments, 'segment')} where num_segments asks for ${this.asked}, so its explanation can barely tell regions apart; ` +
          `a higher segment_compactness gives more, evener segments on a finely textured image${this.count === SAID_IMAGES ? ' (more such images are counted in analysis.json, not said)' : ''}`,
      );
    }
  }

  summary(): FewSegmentsSummary | undefined {
    return this.first ? { images: this.count, num_segments: this.asked, first: this.first } : undefined;
  }
}

/** The summary's note for the console, or undefined. */
export function fewSegmentsSaid(note: FewSegmentsSummary | undefined): string | undefined {
  if (!note) return undefined;
  return `${formatCountOf(note.images, 'image')} came out with fewer than a quarter of num_segments ${note.num_segments} (the first: ${note.first.image}, with ${formatCountOf(note.first.segments, 'segment')}); a higher segment_compactness gives more on a finely textured image`;
}
