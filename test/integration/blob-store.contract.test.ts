/**
 * One contract for BlobStore: S3 on the emulator, and the local-filesystem node served over real
 * HTTP. Bytes travel through the presigned URLs exactly as a client sends them.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { LocalFsBlobStore } from '../../shared/adapters/localfs/localfs-blob-store.ts';
import { MemoryBlobStore } from '../../shared/adapters/memory/memory-blob-store.ts';
import { S3BlobStore } from '../../shared/adapters/s3/s3-blob-store.ts';
import type { BlobStore, PresignedRequest } from '../../shared/ports/blob-store.ts';
import { createBucket, s3Client } from '../support/fixtures.ts';
import { openLocalNode } from '../support/local-node.ts';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function send(req: PresignedRequest, body: Buffer) {
  return fetch(req.url, { method: req.method, headers: req.headers, body });
}

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c);
  return Buffer.concat(chunks);
}

interface Backend {
  name: string;
  open(): Promise<{ store: BlobStore; dispose(): Promise<void> }>;
}

const s3 = s3Client();
afterAll(() => s3.destroy());

const backends: Backend[] = [
  {
    name: 's3 (emulator)',
    async open() {
      const bucket = await createBucket(s3);
      // Small multipart parts, so the streamed-write contract exercises multipart on S3 too.
      return {
        store: new S3BlobStore('s3-test', s3, bucket, { multipartPartSize: 5 * MiB }),
        dispose: async () => undefined,
      };
    },
  },
  {
    name: 'localfs',
    async open() {
      const { node, dispose } = await openLocalNode();
      return { store: node, dispose };
    },
  },
];

describe.each(backends)('BlobStore contract: $name', (backend) => {
  let store: BlobStore;
  let dispose: () => Promise<void>;
  beforeEach(async () => {
    ({ store, dispose } = await backend.open());
  });
  afterEach(async () => {
    await dispose();
  });

  it('takes a single presigned PUT and serves the object back', async () => {
    const body = randomBytes(300 * 1024);
    const put = await store.presignPut({
      key: 'v/one',
      contentLength: body.length,
      sha256: sha(body),
      expiresInSeconds: 60,
    });
    const res = await send(put, body);
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBeTruthy();
    expect(await store.stat('v/one')).toEqual({ size: body.length });
    expect(sha(await readAll(await store.read('v/one')))).toBe(sha(body));
  });

  it('assembles a multipart upload from parts sent out of order', async () => {
    const p1 = randomBytes(5 * MiB);
    const p2 = randomBytes(123_457);
    const id = await store.createMultipartUpload('v/multi', { partChecksums: false });
    const u2 = await store.presignUploadPart({
      key: 'v/multi',
      storageUploadId: id,
      partNumber: 2,
      contentLength: p2.length,
      expiresInSeconds: 60,
    });
    const u1 = await store.presignUploadPart({
      key: 'v/multi',
      storageUploadId: id,
      partNumber: 1,
      contentLength: p1.length,
      expiresInSeconds: 60,
    });
    const r2 = await send(u2, p2);
    const r1 = await send(u1, p1);
    expect([r1.status, r2.status]).toEqual([200, 200]);
    const listed = await store.listParts('v/multi', id);
    expect(listed.map((p) => [p.partNumber, p.size])).toEqual([
      [1, p1.length],
      [2, p2.length],
    ]);
    await store.completeMultipartUpload('v/multi', id, [
      { partNumber: 1, etag: r1.headers.get('etag') ?? '' },
      { partNumber: 2, etag: r2.headers.get('etag') ?? '' },
    ]);
    expect(await store.stat('v/multi')).toEqual({ size: p1.length + p2.length });
    expect(sha(await readAll(await store.read('v/multi')))).toBe(sha(Buffer.concat([p1, p2])));
  });

  it('aborts a multipart upload and forgets its parts', async () => {
    const id = await store.createMultipartUpload('v/aborted', { partChecksums: false });
    const part = randomBytes(1024);
    await send(
      await store.presignUploadPart({
        key: 'v/aborted',
        storageUploadId: id,
        partNumber: 1,
        contentLength: part.length,
        expiresInSeconds: 60,
      }),
      part,
    );
    await store.abortMultipartUpload('v/aborted', id);
    await expect(store.listParts('v/aborted', id)).rejects.toMatchObject({ name: 'NotFoundError' });
    expect(await store.stat('v/aborted')).toBeUndefined();
    await store.abortMultipartUpload('v/aborted', id); // idempotent
  });

  it('signs downloads that carry the file name', async () => {
    const body = Buffer.from('hello, stratus');
    await store.write('v/dl', body);
    const get = await store.presignGet({
      key: 'v/dl',
      expiresInSeconds: 60,
      fileName: 'résumé 1.txt',
      contentType: 'text/plain',
    });
    const res = await fetch(get.url);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(body);
    expect(res.headers.get('content-disposition')).toContain("filename*=UTF-8''r%C3%A9sum%C3%A9%201.txt");
  });

  it('reads byte ranges, across part boundaries', async () => {
    const p1 = randomBytes(5 * MiB);
    const p2 = randomBytes(1000);
    const id = await store.createMultipartUpload('v/ranged', { partChecksums: false });
    const r1 = await send(
      await store.presignUploadPart({
        key: 'v/ranged',
        storageUploadId: id,
        partNumber: 1,
        contentLength: p1.length,
        expiresInSeconds: 60,
      }),
      p1,
    );
    const r2 = await send(
      await store.presignUploadPart({
        key: 'v/ranged',
        storageUploadId: id,
        partNumber: 2,
        contentLength: p2.length,
        expiresInSeconds: 60,
      }),
      p2,
    );
    await store.completeMultipartUpload('v/ranged', id, [
      { partNumber: 1, etag: r1.headers.get('etag') ?? '' },
      { partNumber: 2, etag: r2.headers.get('etag') ?? '' },
    ]);
    const all = Buffer.concat([p1, p2]);
    const start = 5 * MiB - 10;
    const got = await readAll(await store.read('v/ranged', { start, end: start + 19 }));
    expect(got).toEqual(all.subarray(start, start + 20));
    expect(await readAll(await store.read('v/ranged', { start: 0, end: 0 }))).toEqual(all.subarray(0, 1));
  });

  it('fills parts of a new upload server-side from a range of an existing object', async () => {
    const old = randomBytes(5 * MiB + 4096);
    await store.write('v/old', old);
    const changed = randomBytes(4096);
    const id = await store.createMultipartUpload('v/new', { partChecksums: false });
    const copied = await store.copyPart({
      key: 'v/new',
      storageUploadId: id,
      partNumber: 1,
      sourceKey: 'v/old',
      start: 0,
      end: 5 * MiB - 1,
    });
    expect(copied.partNumber).toBe(1);
    const r2 = await send(
      await store.presignUploadPart({
        key: 'v/new',
        storageUploadId: id,
        partNumber: 2,
        contentLength: changed.length,
        expiresInSeconds: 60,
      }),
      changed,
    );
    await store.completeMultipartUpload('v/new', id, [
      { partNumber: 1, etag: copied.etag },
      { partNumber: 2, etag: r2.headers.get('etag') ?? '' },
    ]);
    const expected = Buffer.concat([old.subarray(0, 5 * MiB), changed]);
    expect(sha(await readAll(await store.read('v/new')))).toBe(sha(expected));
  });

  it('takes a streamed write and reports the SHA-256 of what it stored', async () => {
    const data = randomBytes(12 * MiB + 17);
    const { Readable } = await import('node:stream');
    const res = await store.writeStream(
      'v/streamed',
      Readable.from([data.subarray(0, MiB), data.subarray(MiB)]),
      data.length,
    );
    expect(res.sha256).toBe(sha(data));
    expect(sha(await readAll(await store.read('v/streamed')))).toBe(sha(data));
  });

  it('lists an unfinished multipart upload as a leftover once it is old enough, and removes it', async () => {
    const id = await store.createMultipartUpload('v/abandoned', { partChecksums: false });
    const part = randomBytes(64 * 1024);
    await send(
      await store.presignUploadPart({
        key: 'v/abandoned',
        storageUploadId: id,
        partNumber: 1,
        contentLength: part.length,
        expiresInSeconds: 60,
      }),
      part,
    );
    const found = await store.leftovers(new Date(Date.now() + 60_000));
    expect(found).toEqual([expect.objectContaining({ kind: 'multipart', key: 'v/abandoned' })]);
    const [leftover] = found;
    if (!leftover) throw new Error('no leftover');
    // Not older than the cut-off: not a leftover yet. (The cut-off is the upload's own time, since
    // the emulator reports every upload as started in 2010.)
    expect(await store.leftovers(leftover.modifiedAt)).toEqual([]);
    await store.removeLeftover(leftover);
    await store.removeLeftover(leftover); // idempotent
    expect(await store.leftovers(new Date(Date.now() + 60_000))).toEqual([]);
    await expect(store.listParts('v/abandoned', id)).rejects.toMatchObject({ name: 'NotFoundError' });
  });

  it('deletes, and reports missing objects as absent', async () => {
    await store.write('v/gone', Buffer.from('x'));
    await store.delete('v/gone');
    expect(await store.stat('v/gone')).toBeUndefined();
    await expect(store.read('v/gone')).rejects.toMatchObject({ name: 'NotFoundError' });
    await store.ping();
  });
});

/**
 * Listings, on every adapter of the port (the in-memory one too): one key order everywhere, pages
 * that cover every key, a cursor that is a key. The names are chosen where a directory walk goes
 * wrong: `a-b` and `a.b` sort before the keys under `a/`, yet after an object `c`.
 */
const listingBackends: Backend[] = [
  ...backends,
  {
    name: 'memory',
    async open() {
      return { store: new MemoryBlobStore('mem-list'), dispose: async () => undefined };
    },
  },
];

/** Under `v/`, in the order every node must list them (UTF-8 byte order, hard-coded). */
const ORDERED = [
  'v/0',
  'v/B',
  'v/a-b',
  'v/a.b',
  'v/a/x',
  'v/a/y',
  'v/a_b',
  'v/aa',
  'v/b',
  'v/c',
  'v/c-d',
  'v/c.e',
  'v/c_f',
];
const OUTSIDE = ['u/before', 'x/after'];

describe.each(listingBackends)('BlobStore listings: $name', (backend) => {
  let store: BlobStore;
  let dispose: () => Promise<void>;
  const keysOf = (page: { items: { key: string }[] }) => page.items.map((o) => o.key);
  /** Every page from `startAfter` on, as the caller sees them. */
  const walk = async (prefix: string, limit: number, startAfter?: string) => {
    const pages: { keys: string[]; next?: string }[] = [];
    let after = startAfter;
    for (let n = 0; n < 100; n++) {
      const page = await store.listPage(prefix, {
        limit,
        ...(after !== undefined ? { startAfter: after } : {}),
      });
      pages.push({ keys: keysOf(page), ...(page.next !== undefined ? { next: page.next } : {}) });
      if (page.next === undefined) return pages;
      after = page.next;
    }
    throw new Error('the listing never ended');
  };

  beforeAll(async () => {
    ({ store, dispose } = await backend.open());
    // Written out of order, each with its own size.
    const all = [...ORDERED, ...OUTSIDE].reverse();
    await Promise.all(all.map((key, i) => store.write(key, Buffer.alloc(i + 1, 7))));
  });
  afterAll(async () => {
    await dispose();
  });

  it('lists every key under a prefix in byte order, with its size and write time', async () => {
    const page = await store.listPage('v/');
    expect(keysOf(page)).toEqual(ORDERED);
    expect(page.next).toBeUndefined();
    const all = [...ORDERED, ...OUTSIDE].reverse();
    for (const o of page.items) {
      expect(o.size).toBe(all.indexOf(o.key) + 1);
      expect(o.modifiedAt).toBeInstanceOf(Date);
      expect(o.modifiedAt.getTime()).toBeLessThanOrEqual(Date.now());
    }
    expect(keysOf(await store.listPage(''))).toEqual(['u/before', ...ORDERED, 'x/after']);
  });

  it('pages with a limit; next is the last key, there exactly when more keys follow', async () => {
    expect(await walk('v/', 4)).toEqual([
      { keys: ORDERED.slice(0, 4), next: 'v/a.b' },
      { keys: ORDERED.slice(4, 8), next: 'v/aa' },
      { keys: ORDERED.slice(8, 12), next: 'v/c.e' },
      { keys: ['v/c_f'] },
    ]);
    // A last page that is exactly full says so: no empty page after it.
    expect(await walk('v/', ORDERED.length)).toEqual([{ keys: ORDERED }]);
    expect(await walk('v/', ORDERED.length - 1)).toEqual([
      { keys: ORDERED.slice(0, -1), next: 'v/c.e' },
      { keys: ['v/c_f'] },
    ]);
    expect((await walk('v/', 1)).flatMap((p) => p.keys)).toEqual(ORDERED);
  });

  it('starts after any string, a key or not', async () => {
    const from = async (startAfter: string) => keysOf(await store.listPage('v/', { startAfter }));
    expect(await from('v/a')).toEqual(ORDERED.slice(2)); // a directory on local nodes, no key
    expect(await from('v/a/')).toEqual(ORDERED.slice(4));
    expect(await from('v/a/x')).toEqual(ORDERED.slice(5));
    expect(await from('v/a0')).toEqual(ORDERED.slice(6)); // '0' sorts after '/' and before '_'
    expect(await from('v/c')).toEqual(ORDERED.slice(10));
    expect(await from('a')).toEqual(ORDERED); // before the prefix
    expect(await from('v/zzz')).toEqual([]);
    expect(await store.listPage('v/', { startAfter: 'v/zzz' })).toEqual({ items: [] });
    expect(await store.listPage('v/', { startAfter: 'v/b', limit: 1 })).toMatchObject({
      items: [{ key: 'v/c' }],
      next: 'v/c',
    });
  });

  it('narrows by any prefix, not only at a slash', async () => {
    const under = async (prefix: string) => keysOf(await store.listPage(prefix));
    expect(await under('v/a')).toEqual(['v/a-b', 'v/a.b', 'v/a/x', 'v/a/y', 'v/a_b', 'v/aa']);
    expect(await under('v/a/')).toEqual(['v/a/x', 'v/a/y']);
    expect(await under('v/c')).toEqual(['v/c', 'v/c-d', 'v/c.e', 'v/c_f']);
    expect(await under('v/c-')).toEqual(['v/c-d']);
    expect(await under('nothing/')).toEqual([]);
    expect(keysOf(await store.listPage('v/a', { startAfter: 'v/a/x', limit: 2 }))).toEqual([
      'v/a/y',
      'v/a_b',
    ]);
  });

  it('seeks to a version id, and goes on past keys deleted between pages', async () => {
    const ids = Array.from({ length: 5 }, () => crypto.randomUUID()).sort();
    await Promise.all(ids.map((id) => store.write(`w/${id}`, Buffer.from(id))));
    const [first, second, third] = ids as [string, string, string];
    expect(keysOf(await store.listPage('w/', { startAfter: `w/${first}` }))).toEqual(
      ids.slice(1).map((id) => `w/${id}`),
    );
    const page = await store.listPage('w/', { limit: 2 });
    expect(page).toMatchObject({
      items: [{ key: `w/${first}` }, { key: `w/${second}` }],
      next: `w/${second}`,
    });
    // The caller deletes what it listed, and the next key too, before asking for the next page.
    await Promise.all([first, second, third].map((id) => store.delete(`w/${id}`)));
    expect(keysOf(await store.listPage('w/', { startAfter: page.next as string }))).toEqual(
      ids.slice(3).map((id) => `w/${id}`),
    );
  });

  it('refuses a page size that is not a positive integer', async () => {
    for (const limit of [0, -1, 1.5])
      await expect(store.listPage('v/', { limit })).rejects.toThrow(RangeError);
  });
});

describe('local node: its own signature checks', () => {
  let node: LocalFsBlobStore;
  let dispose: () => Promise<void>;
  beforeEach(async () => {
    ({ node, dispose } = await openLocalNode());
  });
  afterEach(async () => {
    await dispose();
  });

  const body = Buffer.from('0123456789');

  it('refuses a URL with any signed field changed', async () => {
    const put = await node.presignPut({
      key: 'v/k',
      contentLength: body.length,
      sha256: sha(body),
      expiresInSeconds: 60,
    });
    for (const [field, value] of [
      ['key', 'v/other'],
      ['len', '11'],
      ['sha', sha(Buffer.from('evil'))],
      ['exp', String(Math.floor(Date.now() / 1000) + 9999)],
      ['sig', 'AAAA'],
    ] as const) {
      const u = new URL(put.url);
      u.searchParams.set(field, value);
      const res = await fetch(u, { method: 'PUT', body });
      expect(res.status, field).toBe(403);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
    }
    expect(await node.stat('v/k')).toBeUndefined();
  });

  it('refuses an expired URL even with a valid signature', async () => {
    const exp = Math.floor(Date.now() / 1000) - 1;
    const q = node.signer.query({ op: 'get', node: 'n1', key: 'v/k', exp });
    await node.write('v/k', body);
    const res = await fetch(
      `${(await node.presignGet({ key: 'v/k', expiresInSeconds: 5, fileName: 'a', contentType: 'text/plain' })).url.split('/get?')[0]}/get?${q}`,
    );
    expect(res.status).toBe(403);
  });

  it('refuses a body that does not match the signed length or hash, keeping nothing', async () => {
    const put = await node.presignPut({
      key: 'v/k',
      contentLength: body.length,
      sha256: sha(body),
      expiresInSeconds: 60,
    });
    const wrongHash = await fetch(put.url, { method: 'PUT', body: Buffer.from('9876543210') });
    expect(wrongHash.status).toBe(422);
    const tooShort = await fetch(put.url, { method: 'PUT', body: Buffer.from('0123') });
    expect(tooShort.status).toBe(400);
    expect(await node.stat('v/k')).toBeUndefined();
    const tmp = await fs.readdir(path.join(node.root, 'tmp'));
    expect(tmp).toEqual([]);
  });

  it('records each part\u2019s SHA-256 (S3 does too; the emulator does not report it)', async () => {
    const part = randomBytes(5 * MiB);
    const id = await node.createMultipartUpload('v/summed', { partChecksums: true });
    const url = await node.presignUploadPart({
      key: 'v/summed',
      storageUploadId: id,
      partNumber: 1,
      contentLength: part.length,
      sha256: sha(part),
      expiresInSeconds: 60,
    });
    expect((await send(url, part)).status).toBe(200);
    const listed = await node.listParts('v/summed', id);
    expect(listed).toEqual([
      expect.objectContaining({ partNumber: 1, size: part.length, sha256: sha(part) }),
    ]);
  });

  it('refuses a part whose bytes do not match the SHA-256 its URL was signed for', async () => {
    const id = await node.createMultipartUpload('v/p', { partChecksums: true });
    const good = randomBytes(1000);
    const url = await node.presignUploadPart({
      key: 'v/p',
      storageUploadId: id,
      partNumber: 1,
      contentLength: 1000,
      sha256: sha(good),
      expiresInSeconds: 60,
    });
    const bad = Buffer.from(good);
    bad[500] = (bad[500] ?? 0) ^ 0xff;
    expect((await fetch(url.url, { method: 'PUT', body: bad })).status).toBe(422);
    expect(await node.listParts('v/p', id)).toEqual([]);
    expect((await fetch(url.url, { method: 'PUT', body: good })).status).toBe(200);
  });

  it('refuses a GET URL used to PUT', async () => {
    await node.write('v/k', body);
    const get = await node.presignGet({
      key: 'v/k',
      expiresInSeconds: 60,
      fileName: 'a',
      contentType: 'text/plain',
    });
    const res = await fetch(get.url, { method: 'PUT', body });
    expect(res.status).toBe(403);
  });
});

describe('local node: crash consistency of multipart completion', () => {
  it('can be completed again, or is already whole, wherever a crash interrupts it', async () => {
    const { node, dispose } = await openLocalNode();
    try {
      const part = randomBytes(5 * MiB);
      const id = await node.createMultipartUpload('v/crash', { partChecksums: false });
      const res = await send(
        await node.presignUploadPart({
          key: 'v/crash',
          storageUploadId: id,
          partNumber: 1,
          contentLength: part.length,
          expiresInSeconds: 60,
        }),
        part,
      );
      const parts = [{ partNumber: 1, etag: res.headers.get('etag') ?? '' }];
      // A crash after the manifest was written but before the rename: the upload is still there.
      const dir = node.uploadDir(id);
      await fs.writeFile(
        path.join(dir, 'manifest.json'),
        JSON.stringify({ size: part.length, parts: [{ partNumber: 1, size: part.length }] }),
      );
      await node.completeMultipartUpload('v/crash', id, parts);
      expect(sha(await readAll(await node.read('v/crash')))).toBe(sha(part));
      // Completing again (a retry after a crash past the rename) finds no upload, and the object whole.
      await expect(node.completeMultipartUpload('v/crash', id, parts)).rejects.toMatchObject({
        name: 'NotFoundError',
      });
      expect(await node.stat('v/crash')).toEqual({ size: part.length });
    } finally {
      await dispose();
    }
  });
});

describe('local node: bytes that vanish under a read', () => {
  it('fail the consumer of the read, never the process, however late it starts reading', async () => {
    const { node, dispose } = await openLocalNode();
    const unhandled: unknown[] = [];
    const onError = (err: unknown) => unhandled.push(err);
    process.on('uncaughtException', onError);
    try {
      await node.write('v/vanishing', randomBytes(3 * MiB));
      // An abort or purge deletes the parts while the manifest still names them...
      const dir = node.objectDir('v/vanishing');
      for (const f of await fs.readdir(dir)) if (/^part\.\d+$/.test(f)) await fs.rm(path.join(dir, f));
      const stream = await node.read('v/vanishing');
      // ...and the consumer (a replication copying it) attaches its listeners only later.
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
      await expect(readAll(stream)).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      process.off('uncaughtException', onError);
      await dispose();
    }
  });
});

describe('local node: two completions of one multipart upload at once', () => {
  it('publish the object once and strand nothing', async () => {
    const { node, dispose } = await openLocalNode();
    try {
      for (let round = 0; round < 5; round++) {
        const key = `v/twice-${round}`;
        const part = randomBytes(5 * MiB);
        const id = await node.createMultipartUpload(key, { partChecksums: false });
        const res = await send(
          await node.presignUploadPart({
            key,
            storageUploadId: id,
            partNumber: 1,
            contentLength: part.length,
            expiresInSeconds: 60,
          }),
          part,
        );
        const parts = [{ partNumber: 1, etag: res.headers.get('etag') ?? '' }];
        const results = await Promise.allSettled([
          node.completeMultipartUpload(key, id, parts),
          node.completeMultipartUpload(key, id, parts),
        ]);
        expect(results.filter((r) => r.status === 'fulfilled').length).toBeGreaterThanOrEqual(1);
        expect(sha(await readAll(await node.read(key)))).toBe(sha(part));
      }
      const dir = path.dirname(node.objectDir('v/twice-0'));
      expect((await fs.readdir(dir)).filter((e) => e.includes('.old-'))).toEqual([]);
    } finally {
      await dispose();
    }
  });
});

describe('local node: what it leaves beside its objects', () => {
  it('lists temp files, pushed-aside objects and marker-less uploads, and removes only those', async () => {
    const { node, dispose } = await openLocalNode();
    try {
      await node.write('v/kept', Buffer.from('published'));
      // What a killed process leaves: a temp write, an object pushed aside by a replacing write
      // (between its two renames), a multipart directory whose marker was never written.
      const tmp = node.tmpPath();
      await fs.writeFile(tmp, 'half a write');
      const old = `${node.objectDir('v/replaced')}.old-${crypto.randomUUID()}`;
      await fs.mkdir(old, { recursive: true });
      await fs.writeFile(path.join(old, 'manifest.json'), '{"size":0,"parts":[]}');
      const bare = node.uploadDir(crypto.randomUUID());
      await fs.mkdir(bare, { recursive: true });
      const later = new Date(Date.now() + 60_000);
      expect(await node.leftovers(new Date(Date.now() - 60_000))).toEqual([]); // all still fresh
      const found = await node.leftovers(later);
      expect(found.map((l) => l.kind).sort()).toEqual(['multipart', 'replaced', 'temp']);
      expect(found.find((l) => l.kind === 'multipart')?.key).toBeUndefined();
      for (const l of found) await node.removeLeftover(l);
      expect(await node.leftovers(later)).toEqual([]);
      for (const p of [tmp, old, bare]) await expect(fs.access(p)).rejects.toThrow();
      expect((await readAll(await node.read('v/kept'))).toString()).toBe('published');
      expect((await node.listPage('v/')).items.map((o) => o.key)).toEqual(['v/kept']);
    } finally {
      await dispose();
    }
  });

  it('refuses to remove anything that is not one of its leftovers', async () => {
    const { node, dispose } = await openLocalNode();
    try {
      await node.write('v/kept', Buffer.from('published'));
      for (const id of [
        'objects/v/kept',
        '../../etc',
        'tmp/../objects/v/kept',
        `objects/v/../../x.old-${crypto.randomUUID()}`,
      ])
        await expect(
          node.removeLeftover({ id, kind: 'temp', modifiedAt: new Date(0) }),
        ).rejects.toMatchObject({
          name: 'InvalidInputError',
        });
      expect(await node.stat('v/kept')).toEqual({ size: 9 });
    } finally {
      await dispose();
    }
  });
});
