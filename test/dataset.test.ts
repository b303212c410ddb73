import assert from 'node:assert/strict';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DatasetCounts, listImages } from '../src/dataset/dataset.js';
import { openStorage } from '../src/storage/storage.js';
import { startS3Server, type TestS3Server } from './support/s3-server.js';

async function collect(uri: string, s3?: TestS3Server): Promise<{ keys: string[]; uris: string[]; counts: DatasetCounts }> {
  const counts: DatasetCounts = { imagesFound: 0, filesSkipped: 0 };
  const keys: string[] = [];
  const uris: string[] = [];
  for await (const image of listImages(openStorage(uri, { s3Client: s3?.client }), counts)) {
    keys.push(image.key);
    uris.push(image.uri);
    assert.equal(image.index, keys.length - 1);
  }
  return { keys, uris, counts };
}

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

describe('dataset listing', () => {
  let s3: TestS3Server;
  const special = ['nested/deeper/a cat.JPG', 'nested/ünïcödé 猫.png', 'nested/with space/x.jpeg', 'nested-sibling.PNG'];
  const skipped = ['notes.txt', 'nested/labels.csv', 'nested/deeper/image.jpg.bak', 'readme'];

  before(async () => {
    s3 = await startS3Server();
    await s3.createBucket('images');
    const many = Array.from({ length: 1234 }, (_, i) => ({ key: `many/img-${String(i).padStart(5, '0')}.jpg`, body: 'x' }));
    await s3.putMany('images', [...many, ...[...special, ...skipped].map((key) => ({ key: `many/${key}`, body: 'y' }))]);
    await s3.put('images', 'many-other/outside.jpg', 'z'); // shares the prefix string, not the folder
  });
  after(async () => s3.stop());

  it('lists an S3 prefix past one page of 1,000 keys, skipping and counting non-images', async () => {
    const { keys, uris, counts } = await collect('s3://images/many', s3);
    assert.equal(counts.imagesFound, 1234 + special.length);
    assert.equal(counts.filesSkipped, skipped.length);
    assert.equal(keys.length, counts.imagesFound);
    for (const key of special) assert.ok(keys.includes(key), `missing ${key}`);
    assert.ok(!keys.some((k) => k.includes('outside')), 'listed a key from a sibling prefix');
    // The order is the store's (real S3: UTF-8 byte order; s3rver: its own), and it repeats.
    assert.deepEqual((await collect('s3://images/many', s3)).keys, keys);
    assert.equal(uris[keys.indexOf('nested/ünïcödé 猫.png')], 's3://images/many/nested/ünïcödé 猫.png');
  });

  it('reads objects with spaces and unicode in their keys', async () => {
    const storage = openStorage('s3://images/many/', { s3Client: s3.client });
    assert.equal((await storage.read('nested/ünïcödé 猫.png')).toString(), 'y');
    assert.equal((await storage.read('nested/with space/x.jpeg')).toString(), 'y');
  });

  it('lists a local folder in the same order S3 would', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'clarify-ds-'));
    const files = [...special, ...skipped, 'a/b.jpg', 'a-b.jpg', 'a.jpg'];
    for (const file of files) {
      await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
      await writeFile(path.join(dir, file), 'x');
    }
    const { keys, counts } = await collect(dir);
    const expected = files.filter((f) => /\.(jpe?g|png)$/i.test(f)).sort(byteOrder);
    assert.deepEqual(keys, expected);
    assert.equal(counts.filesSkipped, skipped.length);
  });
});
