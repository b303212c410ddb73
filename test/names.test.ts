import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { imageStem, ListingTooLargeError, OutputNamer } from '../src/output/names.js';
import { seededRandom } from '../src/explain/random.js';

const sha1 = (key: string): string => createHash('sha1').update(key).digest('hex');

function namesFor(keys: readonly string[]): string[] {
  const namer = new OutputNamer();
  for (const key of keys) namer.add(key, `s3://bucket/images/${key}`);
  return keys.map((key) => namer.name(key, `s3://bucket/images/${key}`));
}

describe("output names (Clarify's stems; never two images on one name)", () => {
  it('a unique stem is the name, as Clarify writes it', () => {
    assert.deepEqual(namesFor(['064.elephant-101_064_0003.jpg', 'caltech/bear_0001.JPEG', 'ünïcode façade.png']), [
      '064.elephant-101_064_0003',
      'bear_0001',
      'ünïcode façade',
    ]);
  });

  it('stems shared by several images (folders, extensions, case) get a hash of the key, in any order', () => {
    const keys = ['a/cat.jpg', 'b/cat.jpg', 'cat.png', 'Cat.jpeg', 'dog.jpg'];
    const expected = ['cat-' + sha1('a/cat.jpg').slice(0, 8), 'cat-' + sha1('b/cat.jpg').slice(0, 8), 'cat-' + sha1('cat.png').slice(0, 8), 'Cat-' + sha1('Cat.jpeg').slice(0, 8), 'dog'];
    assert.deepEqual(namesFor(keys), expected);
    const reversed = [...keys].reverse();
    assert.deepEqual(namesFor(reversed), [...expected].reverse(), 'the same names whatever the order');
  });

  it('a hashed name that is another image\'s stem takes the full hash', () => {
    const clash = `cat-${sha1('a/cat.jpg').slice(0, 8)}`;
    const names = namesFor(['a/cat.jpg', 'b/cat.jpg', `${clash}.png`]);
    assert.deepEqual(names, [`cat-${sha1('a/cat.jpg')}`, `cat-${sha1('b/cat.jpg').slice(0, 8)}`, clash]);
    assert.equal(new Set(names.map((n) => n.toLowerCase())).size, 3);
  });

  it('names 30,000 images exactly as a map of every stem would, in 8–16 bytes an image', () => {
    // The reference keeps every lower-cased stem as a string, as the namer did before it kept fingerprints.
    const referenceNames = (keys: readonly string[]): string[] => {
      const counts = new Map<string, number>();
      for (const key of keys) counts.set(imageStem(key, '').toLowerCase(), (counts.get(imageStem(key, '').toLowerCase()) ?? 0) + 1);
      return keys.map((key) => {
        const stem = imageStem(key, '');
        if ((counts.get(stem.toLowerCase()) ?? 0) <= 1) return stem;
        const short = `${stem}-${sha1(key).slice(0, 8)}`;
        return counts.has(short.toLowerCase()) ? `${stem}-${sha1(key)}` : short;
      });
    };
    const random = seededRandom(7);
    const keys: string[] = [];
    for (let i = 0; i < 30_000; i++) {
      const stem = `img_${Math.floor(random() * 20_000)}`;
      const folder = random() < 0.5 ? 'train' : 'val';
      keys.push(`${folder}/${random() < 0.1 ? stem.toUpperCase() : stem}.${random() < 0.5 ? 'jpg' : 'png'}`);
    }
    // An image whose stem is another's hashed name, as in the test above.
    const clashing = keys.find((key) => keys.filter((other) => imageStem(other, '').toLowerCase() === imageStem(key, '').toLowerCase()).length > 1)!;
    keys.push(`${imageStem(clashing, '')}-${sha1(clashing).slice(0, 8)}.jpg`);
    const unique = [...new Set(keys)];
    const namer = new OutputNamer();
    for (const key of unique) namer.add(key, '');
    const names = unique.map((key) => namer.name(key, ''));
    const expected = referenceNames(unique);
    assert.ok(expected.some((name, i) => name === imageStem(unique[i]!, '')) && expected.some((name) => /-[0-9a-f]{40}$/.test(name)), 'the dataset has unique stems, shared ones and a full hash');
    assert.deepEqual(names, expected);
    assert.equal(new Set(names.map((n) => n.toLowerCase())).size, unique.length, 'never two images on one name');
    assert.ok(namer.bytes <= 16 * unique.length, `${namer.bytes} bytes for ${unique.length} images`);
  });

  it('a listing past its share of max_memory_mb is refused while it is listed, saying how to go on', async () => {
    async function* listing(): AsyncGenerator<{ index: number; key: string; uri: string; size: number }> {
      for (let i = 0; ; i++) yield { index: i, key: `img_${i}.jpg`, uri: `s3://bucket/img_${i}.jpg`, size: 100 };
    }
    await assert.rejects(
      OutputNamer.fromListing(listing(), 4 * 1024 * 1024),
      (error: unknown) =>
        error instanceof ListingTooLargeError &&
        error.images === 4 * 65_536 &&
        /lists more than 262,144 images, and naming them needs more than 4 MB \(a quarter of clarify_images.max_memory_mb, 16 bytes an image\): raise max_memory_mb, or split the dataset into prefixes/.test(error.message),
    );
  });

  it('unsafe characters are replaced; a single-file dataset is named from its URI', () => {
    assert.equal(imageStem('dir/we:ird*name?.jpg', ''), 'we_ird_name_');
    assert.equal(imageStem('', '/data/photos/solo.png'), 'solo');
    assert.equal(imageStem('.hidden.jpg', ''), 'hidden');
  });
});
