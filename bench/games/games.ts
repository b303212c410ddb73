/** The cached exact games (see make-games.ts): what each game is, and the value of every coalition. */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { GAME_SPECS } from './make-games.js';

export interface CachedGame {
  readonly name: string;
  readonly kind: 'classification' | 'detection';
  readonly players: number;
  readonly output: string;
  readonly image: string;
  readonly adjacency: number[][];
  /** Value of coalition S at index Σ_{j ∈ S} 2^j. */
  readonly values: Float32Array;
}

const file = (name: string): string => fileURLToPath(new URL(`../../../bench/games/${name}`, import.meta.url));

export function loadGame(name: string): CachedGame {
  const meta = JSON.parse(readFileSync(file(`${name}.json`), 'utf8')) as Omit<CachedGame, 'values' | 'players'> & { players: number };
  const bytes = gunzipSync(readFileSync(file(`${name}.f32.gz`)));
  const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  if (values.length !== 2 ** meta.players) throw new Error(`${name}: ${values.length} values for ${meta.players} players`);
  return { ...meta, values };
}

export const GAME_NAMES: readonly string[] = GAME_SPECS.map((s) => s.name);
