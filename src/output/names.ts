/**
 * Output names for an image: readable (its path below the dataset prefix, made safe) and unique
 * (a short hash of the exact key, so `a/cat.jpg`, `b/cat.jpg` and `a_cat.jpg` never collide,
 * whatever order or shard they are processed in).
 */
import { createHash } from 'node:crypto';
import path from 'node:path';

export function outputName(key: string, uri: string): string {
  const source = key === '' ? path.basename(uri) : key;
  const stem = source.replace(/\.[^./]*$/, '');
  const readable = stem
    .replace(/[\/\\]+/g, '_')
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^[._]+/, '')
    .slice(0, 80);
  const hash = createHash('sha1').update(source).digest('hex').slice(0, 8);
  return `${readable || 'image'}-${hash}`;
}
