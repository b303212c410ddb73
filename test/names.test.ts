import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { imageStem, OutputNamer } from '../src/output/names.js';

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

  it('unsafe characters are replaced; a single-file dataset is named from its URI', () => {
    assert.equal(imageStem('dir/we:ird*name?.jpg', ''), 'we_ird_name_');
    assert.equal(imageStem('', '/data/photos/solo.png'), 'solo');
    assert.equal(imageStem('.hidden.jpg', ''), 'hidden');
  });
});
