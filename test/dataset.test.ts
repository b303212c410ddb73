import assert from 'node:assert/strict';
import { mkdir, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { after, before, describe, it } from 'node:test';
import { type DatasetCounts, type DatasetSource, listImages, ManifestDataset, manifestEntryBytes, openDataset } from '../src/dataset/dataset.js';
import { ConfigError, StoppedBeforeStartError } from '../src/errors.js';
import { validateConfig } from '../src/config/config.js';
import { runJob } from '../src/job.js';
import { isOutputUnwritable, LINE_READ_CHUNK_BYTES, LineTooLongError, linesOf, ListingLoopError, LocalStorage, openStorage } from '../src/storage/storage.js';
import { compareCodePoints, sortedFolderEntries } from '../src/storage/sorted-folder.js';
import { seededRandom } from '../src/explain/random.js';
import { startS3Server, TEST_CREDENTIALS, type TestS3Server } from './support/s3-server.js';
import { scratchDir } from './support/scratch-dir.js';
import { runProcess } from './support/process.js';

async function collect(uri: string, s3?: TestS3Server, source: DatasetSource = openStorage(uri, { s3Client: s3?.client })): Promise<{ keys: string[]; uris: string[]; counts: DatasetCounts }> {
  const counts: DatasetCounts = { imagesFound: 0, filesSkipped: 0 };
  const keys: string[] = [];
  const uris: string[] = [];
  for await (const image of listImages(source, counts)) {
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

  it('a stop signal during the listing is honoured there: the job ends before its first image, having called and written nothing', async () => {
    // The endpoint answers its /ping and counts everything else; the stop comes with the second list page.
    const calls: string[] = [];
    const endpoint = createServer((req, res) => {
      if (req.url !== '/ping') calls.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"prediction": [1, 0]}');
    });
    await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
    const stop = new AbortController();
    const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: TEST_CREDENTIALS });
    let listRequests = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'ListObjectsV2Command' && ++listRequests === 2) stop.abort('SIGTERM');
        return next(args);
      },
      { step: 'initialize' },
    );
    const out = path.join(await scratchDir('clarify-listing-stop-'), 'out');
    try {
      const config = validateConfig({
        dataset_type: 'application/x-image',
        methods: { shap: { num_samples: 40, image_config: { model_type: 'IMAGE_CLASSIFICATION', num_segments: 8 } } },
        predictor: { content_type: 'image/png', probability: 'prediction', label_headers: ['a', 'b'] },
        clarify_images: { endpoint_url: `http://127.0.0.1:${(endpoint.address() as { port: number }).port}` },
      });
      await assert.rejects(runJob(config, { datasetUri: 's3://images/many/', outputUri: out, s3Client: client, stop: stop.signal }), (error: unknown) => {
        assert.ok(error instanceof StoppedBeforeStartError, String(error));
        assert.equal(error.signal, 'SIGTERM');
        // The stop came as the second page was asked for: that request is aborted (it would be cut short in flight too).
        const listed = Number(/^stopped by SIGTERM before the first image, while the dataset was listed \(([\d,]+) images so far; a list request was cut short\); this run explained and wrote nothing$/.exec(error.message)?.[1]?.replace(/,/g, ''));
        assert.ok(listed >= 1 && listed < 1234, error.message);
        return true;
      });
      assert.equal(listRequests, 2, 'the listing went no further than the page the stop came with');
      assert.deepEqual(calls, [], 'no endpoint call');
      await assert.rejects(stat(out), { code: 'ENOENT' }, 'nothing written');
    } finally {
      client.destroy();
      endpoint.close();
    }
  });

  it('a stop signal cuts short an S3 list page\'s retries through an outage (writes are never cut short)', async () => {
    // Every list request is a 503 SlowDown, which the job would retry for s3_max_attempts; the stop comes as the first retry is said (before its wait).
    const stop = new AbortController();
    let listRequests = 0;
    const outage = createServer((req, res) => {
      listRequests += 1;
      res.writeHead(503, { 'content-type': 'application/xml' }).end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
    });
    const endpoint = createServer((req, res) => res.writeHead(200).end('{"prediction": [1, 0]}'));
    await Promise.all([outage, endpoint].map((server) => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))));
    const port = (server: typeof outage): number => (server.address() as { port: number }).port;
    const client = new S3Client({ endpoint: `http://127.0.0.1:${port(outage)}`, region: 'us-east-1', forcePathStyle: true, credentials: TEST_CREDENTIALS, maxAttempts: 1 });
    try {
      const config = validateConfig({
        dataset_type: 'application/x-image',
        methods: { shap: { num_samples: 40, image_config: { model_type: 'IMAGE_CLASSIFICATION', num_segments: 8 } } },
        predictor: { content_type: 'image/png', probability: 'prediction', label_headers: ['a', 'b'] },
        clarify_images: { endpoint_url: `http://127.0.0.1:${port(endpoint)}`, s3_max_attempts: 20, s3_retry_base_delay_ms: 50 },
      });
      const out = path.join(await scratchDir('clarify-listing-outage-'), 'out');
      const log = (line: string): void => {
        if (line.startsWith('S3:')) stop.abort('SIGINT');
      };
      await assert.rejects(runJob(config, { datasetUri: 's3://outage/images/', outputUri: out, s3Client: client, stop: stop.signal, log }), (error: unknown) => {
        assert.ok(error instanceof StoppedBeforeStartError, String(error));
        assert.equal(error.signal, 'SIGINT');
        assert.match(error.message, /^stopped by SIGINT before the first image, while the dataset was listed \(0 images so far; a list request was being retried: .*reduce your request rate.*\); this run explained and wrote nothing$/);
        return true;
      });
      assert.equal(listRequests, 1, 'no retry after the stop');
    } finally {
      client.destroy();
      outage.close();
      endpoint.close();
    }
  });

  // The guard only ends the test where the stop is not honoured (the held request would wait out s3_idle_timeout_ms, 10 minutes here).
  it('a stop signal aborts an S3 list request in flight, without waiting for its answer', { timeout: 60_000 }, async () => {
    const stop = new AbortController();
    let listRequests = 0;
    const held = new Set<import('node:http').ServerResponse>();
    const silent = createServer((req, res) => {
      listRequests += 1;
      held.add(res); // never answered
      stop.abort('SIGTERM');
    });
    const endpoint = createServer((req, res) => res.writeHead(200).end('{"prediction": [1, 0]}'));
    await Promise.all([silent, endpoint].map((server) => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))));
    const port = (server: typeof silent): number => (server.address() as { port: number }).port;
    const client = new S3Client({ endpoint: `http://127.0.0.1:${port(silent)}`, region: 'us-east-1', forcePathStyle: true, credentials: TEST_CREDENTIALS, maxAttempts: 1 });
    try {
      const config = validateConfig({
        dataset_type: 'application/x-image',
        methods: { shap: { num_samples: 40, image_config: { model_type: 'IMAGE_CLASSIFICATION', num_segments: 8 } } },
        predictor: { content_type: 'image/png', probability: 'prediction', label_headers: ['a', 'b'] },
        clarify_images: { endpoint_url: `http://127.0.0.1:${port(endpoint)}`, s3_idle_timeout_ms: 600_000 },
      });
      const out = path.join(await scratchDir('clarify-listing-held-'), 'out');
      await assert.rejects(runJob(config, { datasetUri: 's3://held/images/', outputUri: out, s3Client: client, stop: stop.signal }), (error: unknown) => {
        assert.ok(error instanceof StoppedBeforeStartError, String(error));
        assert.equal(error.signal, 'SIGTERM');
        assert.match(error.message, /^stopped by SIGTERM before the first image, while the dataset was listed \(0 images so far; a list request was cut short\); this run explained and wrote nothing$/);
        return true;
      });
      assert.equal(listRequests, 1);
      await assert.rejects(stat(out), { code: 'ENOENT' }, 'nothing written');
    } finally {
      client.destroy();
      for (const res of held) res.destroy();
      silent.close();
      endpoint.close();
    }
  });

  it('reads objects with spaces and unicode in their keys', async () => {
    const storage = openStorage('s3://images/many/', { s3Client: s3.client });
    assert.equal((await storage.read('nested/ünïcödé 猫.png')).toString(), 'y');
    assert.equal((await storage.read('nested/with space/x.jpeg')).toString(), 'y');
  });

  it('reads a text object line by line, locally and from S3 in ranged chunks: lines and characters split across chunks arrive whole', async () => {
    // Long enough for three ranges of LINE_READ_CHUNK_BYTES; a 3-byte character straddles a range's end.
    const line = (i: number): string => `{"i":${i},"text":"${'猫'.repeat(1000 + (i % 7))}"}`;
    const lines: string[] = [];
    for (let i = 0, bytes = 0; bytes < 2.2 * LINE_READ_CHUNK_BYTES; i++) {
      lines.push(i % 500 === 7 ? '' : line(i));
      bytes += Buffer.byteLength(lines[lines.length - 1]!) + 1;
    }
    const text = lines.join('\n'); // no newline after the last line
    const encoded = Buffer.from(text);
    // A UTF-8 continuation byte (10xxxxxx) first in a range: that range splits a character.
    assert.ok([1, 2].some((k) => (encoded[k * LINE_READ_CHUNK_BYTES]! & 0xc0) === 0x80), 'a character is split by a range boundary');
    await s3.put('images', 'text/lines.jsonl', text);
    const local = await scratchDir('clarify-lines-');
    await writeFile(path.join(local, 'lines.jsonl'), text);
    for (const storage of [openStorage('s3://images/text/', { s3Client: s3.client }), openStorage(local)]) {
      const read: string[] = [];
      for await (const l of storage.readLines('lines.jsonl')) read.push(l);
      assert.equal(read.length, lines.length, storage.uri(''));
      assert.ok(read.every((l, i) => l === lines[i]), storage.uri(''));
    }
    // Chunks of one byte: every multi-byte character is split.
    const bytes = Buffer.from('a猫\n\nb\n');
    const oneByte = async function* (): AsyncIterable<Uint8Array> {
      for (const b of bytes) yield Uint8Array.of(b);
    };
    const split: string[] = [];
    for await (const l of linesOf(oneByte())) split.push(l);
    assert.deepEqual(split, ['a猫', '', 'b']);
    // A line over the bound is refused once the bound is passed, not after it has all arrived.
    let chunksRead = 0;
    const long = async function* (): AsyncIterable<Uint8Array> {
      yield Buffer.from('short\n');
      // 1 MiB in all: were the bound not kept, the line would end and no error be thrown.
      for (let i = 0; i < 1024; i++) {
        chunksRead += 1;
        yield Buffer.alloc(1024, 120);
      }
    };
    const bounded: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const l of linesOf(long(), 4096)) bounded.push(l);
      })(),
      (e: unknown) => e instanceof LineTooLongError && e.lineNumber === 2 && /line 2 is longer than 4096 bytes/.test(e.message),
    );
    assert.deepEqual(bounded, ['short']);
    assert.equal(chunksRead, 5);
  });

  it('an S3-compatible server whose listing goes back (a token it gave before, or the same page again) is not listed forever', async () => {
    // Plays a faulty S3-compatible server: ListObjectsV2 answers as S3 does, but never moves on.
    // After 50 pages it ends, so that without the guard this test fails instead of hanging.
    let requests = 0;
    const page = (keys: string[], token: string): string =>
      `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>imgs/</Prefix><KeyCount>${keys.length}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>${requests < 50}</IsTruncated><NextContinuationToken>${token}</NextContinuationToken>${keys.map((k) => `<Contents><Key>imgs/${k}</Key><Size>3</Size><ETag>"e"</ETag></Contents>`).join('')}</ListBucketResult>`;
    for (const fault of ['same token', 'same page'] as const) {
      requests = 0;
      const server = createServer((req, res) => {
        requests += 1;
        const continued = new URL(req.url ?? '/', 'http://x').searchParams.has('continuation-token');
        const body = fault === 'same token' ? page(continued ? ['c.jpg'] : ['a.jpg', 'b.jpg'], 'T1') : page(['a.jpg', 'b.jpg'], `T${requests}`);
        res.writeHead(200, { 'content-type': 'application/xml' }).end(body);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as { port: number };
      const client = new S3Client({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', forcePathStyle: true, credentials: TEST_CREDENTIALS });
      try {
        const keys: string[] = [];
        await assert.rejects(
          (async () => {
            for await (const object of openStorage('s3://b/imgs/', { s3Client: client }).list()) keys.push(object.key);
          })(),
          (e: unknown) => e instanceof ListingLoopError && /S3 list of s3:\/\/b\/imgs\/: the server returned (a continuation token it had given before|the same page, from "imgs\/a\.jpg"); the listing is stopped/.test(e.message),
        );
        assert.deepEqual(keys, fault === 'same token' ? ['a.jpg', 'b.jpg', 'c.jpg'] : ['a.jpg', 'b.jpg'], fault);
        assert.equal(requests, 2, fault);
      } finally {
        client.destroy();
        server.close();
      }
    }
  });

  it('tells a write the output as a whole refuses (a full or read-only disk, a denied or missing bucket) from one that failed for its object', () => {
    const errno = (code: string): Error => Object.assign(new Error(code), { code });
    const s3Error = (name: string): Error => Object.assign(new Error(name), { name });
    for (const e of [errno('ENOSPC'), errno('EDQUOT'), errno('EROFS'), errno('EACCES'), s3Error('AccessDenied'), s3Error('NoSuchBucket'), s3Error('ExpiredToken')]) {
      assert.equal(isOutputUnwritable(e), true, e.message);
      assert.equal(isOutputUnwritable(new Error('writing shap_x.jpeg', { cause: e })), true, `${e.message} as a cause`);
    }
    for (const e of [errno('ENOENT'), s3Error('SlowDown'), new Error('Input buffer contains unsupported image format'), undefined, 'ENOSPC']) assert.equal(isOutputUnwritable(e), false, String(e));
  });

  it('lists a local folder in the same order S3 would', async () => {
    const dir = await scratchDir('clarify-ds-');
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

  it('sorts a big folder in blocks on disk, in the same order as in memory (S3\'s), and leaves no temporary file however the listing ends', async () => {
    const root = await scratchDir('clarify-big-folder-');
    const dir = path.join(root, 'data');
    await mkdir(dir);
    // Names whose UTF-16 order differs from UTF-8's (astral emoji against U+FF21), a newline, and
    // folders beside files of the same prefix (a folder sorts as its name and a "/").
    const names = ['a.jpg', 'a-b.jpg', 'line\nbreak.png', 'x\u{1F600}.png', 'x\uFF21.png', 'x\u00e9.png', 'Z.png'];
    for (let i = 0; i < 300; i++) names.push(`img_${String((i * 7919) % 1000).padStart(4, '0')}.jpg`);
    for (const name of names) await writeFile(path.join(dir, name), 'x');
    for (const folder of ['a', 'img_0500', 'x']) {
      await mkdir(path.join(dir, folder));
      await writeFile(path.join(dir, folder, 'inside.png'), 'y');
    }
    await symlink(path.join(dir, 'a'), path.join(dir, 'a-link'));
    await symlink(path.join(root, 'missing.png'), path.join(dir, 'broken.png'));
    const entries = async (blockEntries: number, tempDir: string): Promise<string[]> => {
      const listed: string[] = [];
      for await (const entry of sortedFolderEntries(dir, { blockEntries, tempDir })) listed.push(`${entry.kind}:${entry.name}`);
      return listed;
    };
    const temp = path.join(root, 'temp');
    await mkdir(temp);
    const inMemory = await entries(100_000, temp);
    const kindOf = (name: string): string => (['a', 'img_0500', 'x', 'a-link'].includes(name) ? 'folder' : name === 'broken.png' ? 'broken-link' : 'file');
    const sortKey = (name: string): string => (kindOf(name) === 'folder' ? `${name}/` : name);
    const all = [...names, 'a', 'img_0500', 'x', 'a-link', 'broken.png'];
    assert.deepEqual(inMemory, [...all].sort((p, q) => byteOrder(sortKey(p), sortKey(q))).map((name) => `${kindOf(name)}:${name}`));
    for (const blockEntries of [1, 7, 64]) assert.deepEqual(await entries(blockEntries, temp), inMemory, `blocks of ${blockEntries}`);
    assert.deepEqual(await readdir(temp), [], 'the block files are gone');
    // A listing stopped part-way (a job that stops) removes its block files too.
    for await (const entry of sortedFolderEntries(dir, { blockEntries: 10, tempDir: temp })) {
      assert.equal((await readdir(temp)).length, 1, 'the blocks are on disk while the listing runs');
      if (entry.name === 'img_0100.jpg') break;
    }
    assert.deepEqual(await readdir(temp), []);
    // A process that exits mid-listing (a second stop signal calls process.exit) removes them on its way out.
    const moduleUrl = new URL('../src/storage/sorted-folder.js', import.meta.url).href;
    const script = `const { sortedFolderEntries } = await import(${JSON.stringify(moduleUrl)});
      for await (const entry of sortedFolderEntries(${JSON.stringify(dir)}, { blockEntries: 10, tempDir: ${JSON.stringify(temp)} })) {
        const { readdirSync } = await import('node:fs');
        console.log(readdirSync(${JSON.stringify(temp)}).length);
        process.exit(0);
      }`;
    const exited = await runProcess(process.execPath, ['--input-type=module', '-e', script]);
    assert.equal(exited.code, 0, exited.stderr);
    assert.equal(exited.stdout.trim(), '1', 'the blocks were on disk when it exited');
    assert.deepEqual(await readdir(temp), [], 'and are gone after');
    // Nowhere to put the blocks: the listing says so and what to do.
    await assert.rejects(
      (async () => {
        for await (const _ of sortedFolderEntries(dir, { blockEntries: 10, tempDir: path.join(root, 'no-such-folder') })) void _;
      })(),
      /a folder of more than 10 entries is sorted in blocks on disk, and no temporary folder can be made in .*no-such-folder \(ENOENT.*\): set TMPDIR to a writable folder/,
    );
    // The storage lists the nested keys alike with small blocks.
    const small = new LocalStorage({ kind: 'local', dir }, { blockEntries: 5, tempDir: temp });
    const listed = async (storage: DatasetSource): Promise<string[]> => (await collect(dir, undefined, storage)).keys;
    assert.deepEqual(await listed(small), await listed(openStorage(dir)));
    assert.ok((await listed(small)).includes('a-link/inside.png'));
  });

  it('compares strings in code-point order, as UTF-8 bytes do', () => {
    const random = seededRandom(11);
    const alphabet = ['a', 'B', '\u00e9', '\uFF21', '\uE000', '\uD7FF', '\u{1F600}', '\u{10FFFF}', '/', ' '];
    const word = (): string => Array.from({ length: 1 + Math.floor(random() * 4) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
    for (let i = 0; i < 5_000; i++) {
      const a = word();
      const b = random() < 0.2 ? a : word();
      assert.equal(Math.sign(compareCodePoints(a, b)), Math.sign(byteOrder(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    }
  });

  it('writes started together to a fresh local output never share a staging file: each key gets its own bytes', async () => {
    const out = path.join(await scratchDir('clarify-writes-'), 'out');
    const storage = openStorage(out);
    const keys = Array.from({ length: 50 }, (_, i) => `dir${i % 3}/file-${i}.txt`);
    await Promise.all(keys.map((key) => storage.write(key, `content of ${key}`)));
    for (const key of keys) assert.equal((await storage.read(key)).toString(), `content of ${key}`);
  });

  it('leaves no staging folder beside a local output once its writes are done, though writers sharing it remove it under each other', async () => {
    const parent = await scratchDir('clarify-staging-');
    const out = path.join(parent, 'out');
    const staging = path.join(parent, '.out.staging');
    const first = openStorage(out);
    const second = openStorage(out);
    // Writers to one output share its staging folder: while the first has a file in it (an open
    // sink), the second's remove fails and leaves the folder standing, and its path remembered.
    const sink = await first.openTextSink('log.jsonl');
    await sink.write('{"a":1}\n');
    await second.write('b.txt', 'b');
    assert.deepEqual(await readdir(staging).then((names) => names.length), 1, 'the sink\'s file alone is left in it');
    // The first's last file moves in and it removes the folder: the second's next write finds its
    // remembered folder gone and makes it again.
    await sink.close();
    await assert.rejects(stat(staging), { code: 'ENOENT' });
    await second.write('c.txt', 'c');
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? first : second).write(`many/${i}.txt`, `${i}`)));
    const aborted = await second.openTextSink('gone.txt');
    await aborted.write('x');
    await aborted.abort();
    assert.equal((await first.read('log.jsonl')).toString(), '{"a":1}\n');
    assert.equal((await first.read('b.txt')).toString(), 'b');
    assert.equal((await first.read('c.txt')).toString(), 'c');
    for (let i = 0; i < 20; i++) assert.equal((await second.read(`many/${i}.txt`)).toString(), `${i}`);
    assert.equal(await first.exists('gone.txt'), false);
    assert.deepEqual(await readdir(parent), ['out'], 'nothing beside the output');
  });

  it('follows symbolic links to files and folders, ends a loop, and lists a broken link so that reading it says so', async () => {
    const root = await scratchDir('clarify-links-');
    const dir = path.join(root, 'data');
    await mkdir(path.join(root, 'outside', 'more'), { recursive: true });
    await mkdir(dir);
    await writeFile(path.join(dir, 'a.png'), 'x');
    await writeFile(path.join(root, 'outside', 'b.png'), 'y');
    await writeFile(path.join(root, 'outside', 'more', 'c.jpg'), 'z');
    await symlink(path.join(root, 'outside', 'b.png'), path.join(dir, 'link-b.png'));
    await symlink(path.join(root, 'outside', 'more'), path.join(dir, 'linked-folder'));
    await symlink(dir, path.join(dir, 'loop')); // a folder linking back to the dataset itself
    await symlink(path.join(root, 'missing.png'), path.join(dir, 'broken.png'));
    const { keys } = await collect(dir);
    assert.deepEqual(keys, ['a.png', 'broken.png', 'link-b.png', 'linked-folder/c.jpg']);
    const storage = openStorage(dir);
    assert.equal((await storage.read('link-b.png')).toString(), 'y');
    await assert.rejects(storage.read('broken.png'), /broken\.png is a broken symbolic link/);
  });

  describe('as SageMaker reads a dataset URI', () => {
    const dataset = async (uri: string): Promise<{ keys: string[]; uris: string[]; counts: DatasetCounts }> =>
      collect(uri, s3, await openDataset(uri, { s3Client: s3.client }));

    it('an s3:// URI is a key prefix (S3Prefix): one object, a partial name, or a folder with or without its slash', async () => {
      await s3.createBucket('prefixes');
      await s3.putMany('prefixes', ['photos/cat.jpg', 'photos/car.png', 'photos/dog.jpg', 'photos/sub/cow.jpg', 'photos-2024/x.jpg'].map((key) => ({ key, body: key })));
      const single = await dataset('s3://prefixes/photos/cat.jpg');
      assert.deepEqual(single.keys, ['cat.jpg']);
      assert.deepEqual(single.uris, ['s3://prefixes/photos/cat.jpg']);
      assert.deepEqual((await dataset('s3://prefixes/photos/ca')).keys.sort(), ['car.png', 'cat.jpg']);
      assert.deepEqual((await dataset('s3://prefixes/photos/')).keys.sort(), ['car.png', 'cat.jpg', 'dog.jpg', 'sub/cow.jpg']);
      // Without the slash, "photos" also matches "photos-2024/", as SageMaker's S3Prefix does; keys are relative to the last "/".
      const bare = await dataset('s3://prefixes/photos');
      assert.deepEqual([...bare.keys].sort(), ['photos-2024/x.jpg', 'photos/car.png', 'photos/cat.jpg', 'photos/dog.jpg', 'photos/sub/cow.jpg']);
      assert.equal(bare.uris[bare.keys.indexOf('photos/cat.jpg')], 's3://prefixes/photos/cat.jpg');
    });

    it('reads a manifest file and an augmented manifest, in their order, each entry once', async () => {
      await s3.put('images', 'manifests/set.manifest', JSON.stringify([{ prefix: 's3://images/many/' }, 'img-00003.jpg', 'nested/with space/x.jpeg', 'img-00001.jpg', 'img-00003.jpg', 'notes.txt']));
      const manifest = await dataset('s3://images/manifests/set.manifest');
      assert.deepEqual(manifest.keys, ['img-00003.jpg', 'nested/with space/x.jpeg', 'img-00001.jpg']);
      assert.deepEqual(manifest.uris, ['s3://images/many/img-00003.jpg', 's3://images/many/nested/with space/x.jpeg', 's3://images/many/img-00001.jpg']);
      assert.equal(manifest.counts.filesSkipped, 1);
      const lines = ['s3://images/many/img-00009.jpg', 's3://images/many-other/outside.jpg'].map((ref, i) => JSON.stringify({ 'source-ref': ref, 'class': i, 'class-metadata': { 'class-name': 'x' } }));
      await s3.put('images', 'manifests/labelled.jsonl', `${lines.join('\n')}\n`);
      const augmented = await dataset('s3://images/manifests/labelled.jsonl');
      assert.deepEqual(augmented.uris, ['s3://images/many/img-00009.jpg', 's3://images/many-other/outside.jpg']);
      const source = await openDataset('s3://images/manifests/labelled.jsonl', { s3Client: s3.client });
      assert.equal((await source.read(augmented.keys[1]!)).toString(), 'z');
    });

    it('an augmented manifest is read a line at a time, keeping only its keys; a JSON-array manifest and a line are bounded', async () => {
      const dir = await scratchDir('ci-manifests-');
      const keysOf = async (manifest: ManifestDataset): Promise<string[]> => {
        const keys: string[] = [];
        for await (const object of manifest.list()) keys.push(object.key);
        return keys;
      };
      // As Windows editors save them: a byte-order mark, CRLF line ends, a blank line; the array across lines.
      const pretty = path.join(dir, 'pretty.manifest');
      await writeFile(pretty, `\uFEFF${JSON.stringify([{ prefix: 's3://images/many/' }, 'b.jpg', 'a.jpg'], null, 2).replace(/\n/g, '\r\n')}\r\n`);
      assert.deepEqual(await keysOf(await ManifestDataset.load(pretty)), ['b.jpg', 'a.jpg']);
      const crlf = path.join(dir, 'crlf.jsonl');
      await writeFile(crlf, `\uFEFF{"source-ref": "s3://images/x.jpg"}\r\n\r\n{"source-ref": "s3://images/y.jpg"}\r\n`);
      assert.deepEqual(await keysOf(await ManifestDataset.load(crlf)), ['images/x.jpg', 'images/y.jpg']);

      // With a 4 KiB bound: 50 lines of 1 KiB labels (50 KiB) are read; the same entries as a JSON array are not.
      const bound = 4096;
      const label = 'x'.repeat(1000);
      const refs = Array.from({ length: 50 }, (_, i) => `s3://images/many/img-${i}.jpg`);
      await s3.put('images', 'manifests/large.jsonl', refs.map((ref) => JSON.stringify({ 'source-ref': ref, label })).join('\n'));
      const large = await ManifestDataset.load('s3://images/manifests/large.jsonl', { s3Client: s3.client }, bound);
      assert.equal((await keysOf(large)).length, 50);
      // Its entries are held all run: they count against the memory budget, and past their share the manifest is refused as it is read.
      const held = refs.reduce((sum, ref) => sum + manifestEntryBytes(ref.slice(5), ref), 0);
      assert.equal(large.heldBytes, held);
      const manifestUri = 's3://images/manifests/large.jsonl';
      assert.equal((await openDataset(manifestUri, { s3Client: s3.client }, held)).heldBytes, held, 'exactly its share is enough');
      await assert.rejects(
        openDataset(manifestUri, { s3Client: s3.client }, held - 1),
        (e: unknown) => e instanceof ConfigError && /dataset_uri: s3:\/\/images\/manifests\/large\.jsonl lists more than 49 images, and holding them needs more than 0\.00\d+ MiB \(a quarter of clarify_images\.max_memory_mb, about 1\d\d bytes an entry\): raise max_memory_mb, or split the manifest/.test(e.message),
      );
      const array = path.join(dir, 'large.manifest');
      await writeFile(array, ['[{"prefix": "s3://images/many/"}', ...refs.map((ref) => `, ${JSON.stringify(`${ref}?${label}`)}`), ']'].join('\n'));
      await assert.rejects(ManifestDataset.load(array, {}, bound), (e: unknown) => e instanceof ConfigError && /dataset_uri: .*large\.manifest is a JSON-array manifest larger than 0\.00391 MiB \(read whole to be parsed\); write it as an augmented manifest/.test(e.message));
      const long = path.join(dir, 'long.jsonl');
      await writeFile(long, [JSON.stringify({ 'source-ref': refs[0] }), JSON.stringify({ 'source-ref': refs[1] }), JSON.stringify({ 'source-ref': refs[2], label: label.repeat(10) })].join('\n'));
      await assert.rejects(ManifestDataset.load(long, {}, bound), (e: unknown) => e instanceof ConfigError && /dataset_uri: .*long\.jsonl has a line longer than a manifest's lines may be: line 3 is longer than 4096 bytes/.test(e.message));
    });

    it('a manifest that is missing or malformed is a config error naming dataset_uri', async () => {
      await assert.rejects(openDataset('s3://images/manifests/absent.manifest', { s3Client: s3.client }), (e: unknown) => e instanceof ConfigError && /dataset_uri: cannot read the manifest/.test(e.message));
      await s3.put('images', 'manifests/bad.manifest', '[{"no-prefix": 1}, "a.jpg"]');
      await assert.rejects(openDataset('s3://images/manifests/bad.manifest', { s3Client: s3.client }), /the first entry must be \{"prefix"/);
      await s3.put('images', 'manifests/bad.jsonl', '{"source-ref": "s3://images/a.jpg"}\n{"other": 1}\n');
      await assert.rejects(openDataset('s3://images/manifests/bad.jsonl', { s3Client: s3.client }), /line 2 has no "source-ref"/);
    });
  });
});
