/**
 * Uploads over real HTTP on the local runtime: big parallel uploads, resuming from another client,
 * integrity failures, expiry and abort (nothing committed, nothing left in storage), quarantine,
 * type refusal and delta re-uploads.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EICAR } from '../../shared/adapters/scanners/eicar-scanner.ts';
import { contentHash } from '../../shared/domain/content-hash.ts';
import { Client, type Runtime, sha256, startRuntime } from '../support/local-runtime.ts';

const MiB = 1024 * 1024;
let rt: Runtime;
beforeAll(async () => {
  rt = await startRuntime();
});
afterAll(async () => {
  await rt?.stop();
});

const kind = (json: Record<string, unknown>) => String(json.type).replace('urn:stratus:problem:', '');

/**
 * Everything the storage nodes hold, over all three: assembled objects and in-flight multipart
 * uploads, each key once (a replica landing on a second node adds nothing new).
 */
async function storage(r: Runtime) {
  const root = path.join(r.dataDir, 'nodes');
  const nodes = await fs.readdir(root);
  expect(nodes.length).toBe(3);
  const list = async (d: string) => {
    const keys = new Set<string>();
    for (const n of nodes)
      for (const k of await fs.readdir(path.join(root, n, d)).catch(() => [] as string[])) keys.add(k);
    return [...keys].sort();
  };
  return { objects: await list('objects/v'), multipart: await list('multipart') };
}

describe('big uploads', () => {
  it('uploads 200 MiB in parallel parts, downloads it, and the hashes match', async () => {
    const c = new Client(rt.url);
    await c.signUp('big@example.com');
    const data = randomBytes(200 * MiB);
    const upload = await c.upload('root', 'big.bin', data);
    const { created } = upload;
    expect(created.json.partCount).toBe(13);
    // past STRATUS_INLINE_VERIFY_BYTES (64 MiB): 202, then committed by the background verifier
    expect(upload.complete?.status).toBe(202);
    const complete = await c.committed(upload.complete, upload.uploadId as string);
    expect(complete.status).toBe(201);
    expect(complete?.json.contentHash).toBe(contentHash(data));
    const meta = await c.call('GET', `/v1/files/${complete?.json.fileId}`);
    expect(meta.json).toMatchObject({
      sha256: sha256(data),
      contentHash: contentHash(data),
      scanState: 'clean',
    });
    const dl = await c.download(complete?.json.fileId as string);
    expect(dl.body?.length).toBe(data.length);
    expect(sha256(dl.body ?? Buffer.alloc(0))).toBe(sha256(data));
  });

  it('resumes an upload interrupted halfway from a fresh client that knows only the upload id', async () => {
    const first = new Client(rt.url);
    await first.signUp('resume@example.com');
    const data = randomBytes(70 * MiB);
    const created = await first.call('POST', '/v1/uploads', {
      parentId: 'root',
      name: 'resumed.bin',
      size: data.length,
      sha256: sha256(data),
    });
    const { partSize, partCount, uploadId } = created.json as {
      partSize: number;
      partCount: number;
      uploadId: string;
    };
    const parts = created.json.parts as { partNumber: number; url: string }[];
    for (const p of parts.slice(0, 2)) {
      await fetch(p.url, {
        method: 'PUT',
        body: data.subarray((p.partNumber - 1) * partSize, p.partNumber * partSize),
      });
    }
    // Another device, another login: it knows the upload id and the file, nothing else.
    const second = new Client(rt.url);
    await second.login('resume@example.com');
    const state = await second.call('GET', `/v1/uploads/${uploadId}`);
    expect(state.json).toMatchObject({ uploadId, state: 'uploading', partSize, partCount });
    const received = state.json.receivedParts as { partNumber: number; etag: string; sha256: string }[];
    expect(received.map((r) => r.partNumber)).toEqual([1, 2]);
    expect(received[0]?.sha256).toBe(sha256(data.subarray(0, partSize)));
    const missing = Array.from({ length: partCount }, (_, i) => i + 1).filter(
      (n) => !received.some((r) => r.partNumber === n),
    );
    const fresh = await second.call('POST', `/v1/uploads/${uploadId}/parts`, {
      parts: missing.map((n) => ({
        partNumber: n,
        sha256: sha256(data.subarray((n - 1) * partSize, n * partSize)),
      })),
    });
    expect(fresh.status).toBe(200);
    const etags = [...received.map((r) => ({ partNumber: r.partNumber, etag: r.etag }))];
    await Promise.all(
      (fresh.json.parts as { partNumber: number; url: string; expiresAt: string }[]).map(async (p) => {
        expect(Date.parse(p.expiresAt)).toBeGreaterThan(Date.now());
        const res = await fetch(p.url, {
          method: 'PUT',
          body: data.subarray((p.partNumber - 1) * partSize, p.partNumber * partSize),
        });
        etags.push({ partNumber: p.partNumber, etag: res.headers.get('etag') ?? '' });
      }),
    );
    const done = await second.committed(
      await second.call('POST', `/v1/uploads/${uploadId}/complete`, { parts: etags }),
      uploadId,
    );
    expect(done.status).toBe(201);
    expect((await second.call('GET', `/v1/uploads/${uploadId}`)).json).toMatchObject({
      state: 'committed',
      fileId: done.json.fileId,
    });
    const dl = await second.download(done.json.fileId as string);
    expect(sha256(dl.body ?? Buffer.alloc(0))).toBe(sha256(data));
  });
});

describe('nothing committed, nothing left behind', () => {
  it('a corrupted part', async () => {
    const c = new Client(rt.url);
    await c.signUp('corrupt@example.com');
    const before = await storage(rt);
    const data = randomBytes(20 * MiB);
    const partSize = 16 * MiB;
    const created = await c.call('POST', '/v1/uploads', {
      parentId: 'root',
      name: 'c.bin',
      size: data.length,
      sha256: sha256(data),
      parts: [1, 2].map((n) => ({
        partNumber: n,
        sha256: sha256(data.subarray((n - 1) * partSize, n * partSize)),
      })),
    });
    const [u1, u2] = created.json.parts as { url: string }[];
    const corrupted = Buffer.from(data.subarray(partSize));
    corrupted[1000] = (corrupted[1000] ?? 0) ^ 0xff;
    expect((await fetch(u1?.url ?? '', { method: 'PUT', body: data.subarray(0, partSize) })).status).toBe(
      200,
    );
    // The URL is bound to the declared hash: storage refuses the corrupted bytes and keeps none.
    const refused = await fetch(u2?.url ?? '', { method: 'PUT', body: corrupted });
    expect(refused.status).toBe(422);
    const state = await c.call('GET', `/v1/uploads/${created.json.uploadId}`);
    expect((state.json.receivedParts as { partNumber: number }[]).map((p) => p.partNumber)).toEqual([1]);
    const done = await c.call('POST', `/v1/uploads/${created.json.uploadId}/complete`, {
      parts: [{ partNumber: 1, etag: 'x' }],
    });
    expect(done.status).toBe(422);
    expect(kind(done.json)).toBe('upload-incomplete');
    expect((await c.call('GET', '/v1/folders/root/children')).json.items).toEqual([]);
    expect((await c.call('DELETE', `/v1/uploads/${created.json.uploadId}`)).status).toBe(204);
    expect(await storage(rt)).toEqual(before);
  });

  it('a wrong whole-file hash', async () => {
    const c = new Client(rt.url);
    await c.signUp('wrong@example.com');
    const before = await storage(rt);
    const data = randomBytes(18 * MiB);
    const created = await c.call('POST', '/v1/uploads', {
      parentId: 'root',
      name: 'w.bin',
      size: data.length,
      sha256: sha256(Buffer.from('not it')),
    });
    const { partSize, uploadId } = created.json as { partSize: number; uploadId: string };
    const etags = [];
    for (const p of created.json.parts as { partNumber: number; url: string }[]) {
      const res = await fetch(p.url, {
        method: 'PUT',
        body: data.subarray((p.partNumber - 1) * partSize, p.partNumber * partSize),
      });
      etags.push({ partNumber: p.partNumber, etag: res.headers.get('etag') });
    }
    const done = await c.call('POST', `/v1/uploads/${uploadId}/complete`, { parts: etags });
    expect(done.status).toBe(422);
    expect(kind(done.json)).toBe('checksum-mismatch');
    expect((await c.call('GET', `/v1/uploads/${uploadId}`)).json.state).toBe('aborted');
    expect((await c.call('GET', '/v1/folders/root/children')).json.items).toEqual([]);
    expect(await storage(rt)).toEqual(before);
  });

  it('an aborted session', async () => {
    const c = new Client(rt.url);
    await c.signUp('abort@example.com');
    const before = await storage(rt);
    const data = randomBytes(20 * MiB);
    const created = await c.call('POST', '/v1/uploads', {
      parentId: 'root',
      name: 'a.bin',
      size: data.length,
      sha256: sha256(data),
    });
    const part = (created.json.parts as { url: string }[])[0];
    await fetch(part?.url ?? '', { method: 'PUT', body: data.subarray(0, 16 * MiB) });
    expect((await storage(rt)).multipart.length).toBe(before.multipart.length + 1);
    expect((await c.call('DELETE', `/v1/uploads/${created.json.uploadId}`)).status).toBe(204);
    expect((await c.call('DELETE', `/v1/uploads/${created.json.uploadId}`)).status).toBe(204);
    expect((await c.call('GET', `/v1/uploads/${created.json.uploadId}`)).json.state).toBe('aborted');
    expect(
      (await c.call('POST', `/v1/uploads/${created.json.uploadId}/complete`, { parts: [] })).status,
    ).toBe(409);
    expect(
      (await c.call('POST', `/v1/uploads/${created.json.uploadId}/parts`, { parts: [{ partNumber: 2 }] }))
        .status,
    ).toBe(409);
    expect(await storage(rt)).toEqual(before);
  });

  it('an expired session, cleaned up through the change feed', async () => {
    const short = await startRuntime({ STRATUS_UPLOAD_TTL_SECONDS: '1' });
    try {
      const c = new Client(short.url);
      await c.signUp('expire@example.com');
      const data = randomBytes(20 * MiB);
      const created = await c.call('POST', '/v1/uploads', {
        parentId: 'root',
        name: 'e.bin',
        size: data.length,
        sha256: sha256(data),
      });
      const part = (created.json.parts as { url: string }[])[0];
      await fetch(part?.url ?? '', { method: 'PUT', body: data.subarray(0, 16 * MiB) });
      expect((await storage(short)).multipart).toHaveLength(1);
      await new Promise((r) => setTimeout(r, 2100));
      // What the runtime's reaper timer does (DynamoDB TTL's stand-in).
      expect(await short.container.reapExpiredState?.()).toBeGreaterThanOrEqual(1);
      await new Promise((r) => setTimeout(r, 200));
      expect((await c.call('GET', `/v1/uploads/${created.json.uploadId}`)).json.state).toBe('expired');
      expect(await storage(short)).toEqual({ objects: [], multipart: [] });
      expect(
        (await c.call('POST', `/v1/uploads/${created.json.uploadId}/complete`, { parts: [] })).status,
      ).toBe(409);
      expect((await c.call('GET', '/v1/folders/root/children')).json.items).toEqual([]);
    } finally {
      await short.stop();
    }
  });
});

describe('content checks', () => {
  it('keeps an EICAR upload quarantined: listed as infected, never downloadable', async () => {
    const c = new Client(rt.url);
    await c.signUp('eicar@example.com');
    const { complete } = await c.upload('root', 'eicar.com.txt', Buffer.from(EICAR), 'text/plain');
    expect(complete?.status).toBe(201);
    expect(complete?.json.scanState).toBe('infected');
    const dl = await c.call('GET', `/v1/files/${complete?.json.fileId}/download`);
    expect(dl.status).toBe(409);
    expect(kind(dl.json)).toBe('quarantined');
    expect((await c.call('GET', '/v1/folders/root/children')).json.items).toEqual([
      expect.objectContaining({ name: 'eicar.com.txt', scanState: 'infected' }),
    ]);
    const copy = await c.call('POST', `/v1/files/${complete?.json.fileId}/copy`, {
      parentId: 'root',
      name: 'again.txt',
    });
    expect((await c.call('GET', `/v1/files/${copy.json.id}/download`)).status).toBe(409);
  });

  it('refuses an executable disguised as an image with 415, committing nothing', async () => {
    const c = new Client(rt.url);
    await c.signUp('disguise@example.com');
    const before = await storage(rt);
    const elf = Buffer.concat([Buffer.from('7f454c46020101000000000000000000', 'hex'), randomBytes(4000)]);
    const { complete } = await c.upload('root', 'holiday.png', elf, 'image/png');
    expect(complete?.status).toBe(415);
    expect(kind(complete?.json ?? {})).toBe('unsupported-media-type');
    expect((await c.call('GET', '/v1/folders/root/children')).json.items).toEqual([]);
    expect(await storage(rt)).toEqual(before);
    const png = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), randomBytes(100)]);
    expect((await c.upload('root', 'real.png', png, 'image/png')).complete?.status).toBe(201);
  });
});

describe('delta re-upload', () => {
  it('re-uploads a 64 MiB file with one changed MiB by sending at most two parts', async () => {
    const c = new Client(rt.url);
    await c.signUp('delta@example.com');
    const v1 = randomBytes(64 * MiB);
    const first = await c.upload('root', 'disk.img', v1, 'application/octet-stream', { declareParts: true });
    expect(first.complete?.status).toBe(201);
    expect(first.sentBytes).toBe(64 * MiB);
    // Parts are copied inside a node holding the current version. Until its replica lands, that is
    // one node of three, and the new version's placement (two of three) can miss it: the re-upload
    // then sends every part. Once replicated, any placement of two includes a holder.
    const firstVersion = first.complete?.json.versionId as string;
    for (let i = 0; i < 100; i++) {
      const replicas = await rt.container.ledger.forVersion(firstVersion);
      if (replicas.filter((r) => r.data.state === 'verified').length >= 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const v2 = Buffer.from(v1);
    randomBytes(MiB).copy(v2, 40 * MiB + 123);
    const second = await c.upload('root', 'disk.img', v2, 'application/octet-stream', { declareParts: true });
    expect(second.complete?.status).toBe(201);
    expect((second.created.json.parts as unknown[]).length).toBeLessThanOrEqual(2);
    expect(second.sentBytes).toBeLessThanOrEqual(2 * 16 * MiB);
    expect(second.created.json.bytesSkipped).toBe(64 * MiB - second.sentBytes);
    expect(second.created.json.reusedParts).toEqual(expect.arrayContaining([1, 2]));
    const dl = await c.download(second.complete?.json.fileId as string);
    expect(sha256(dl.body ?? Buffer.alloc(0))).toBe(sha256(v2));
    const versions = await c.call('GET', `/v1/files/${second.complete?.json.fileId}/versions`);
    expect((versions.json.items as unknown[]).length).toBe(2);
    const old = await c.call(
      'GET',
      `/v1/files/${second.complete?.json.fileId}/download?format=json&versionId=${first.complete?.json.versionId}`,
    );
    expect(sha256(Buffer.from(await (await fetch(String(old.json.url))).arrayBuffer()))).toBe(sha256(v1));
  });
});
