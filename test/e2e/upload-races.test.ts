/**
 * Requests that race on one upload, on the default profile (three nodes, replication factor 2).
 * Before the state machine was enforced: concurrent completes answered 500/422 and stranded the
 * bytes (the upload could never be committed), and an abort sent just after a complete deleted the
 * bytes of a version being committed, after which the replicator's read of the vanished parts
 * crashed the server. Now exactly one complete wins; the others get 409 upload-in-progress (and the
 * winner's result once it has committed); an abort of a completing upload is refused.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalFsBlobStore } from '../../shared/adapters/localfs/localfs-blob-store.ts';
import { Client, type Runtime, sha256, startRuntime } from '../support/local-runtime.ts';

const MiB = 1024 * 1024;
let rt: Runtime;
let c: Client;

beforeAll(async () => {
  rt = await startRuntime();
  c = new Client(rt.url);
  await c.signUp('racer@example.com');
});
afterAll(async () => {
  await rt?.stop();
});

/** Creates an upload and sends every part, but does not complete it. */
async function staged(name: string, size: number) {
  const data = randomBytes(size);
  const created = await c.call('POST', '/v1/uploads', {
    parentId: 'root',
    name,
    size: data.length,
    sha256: sha256(data),
  });
  expect(created.status).toBe(201);
  const { partSize, parts, uploadId } = created.json as {
    partSize: number;
    uploadId: string;
    parts: { partNumber: number; url: string; headers: Record<string, string> }[];
  };
  const etags = await Promise.all(
    parts.map(async (p) => {
      const res = await fetch(p.url, {
        method: 'PUT',
        headers: p.headers,
        body: data.subarray(
          (p.partNumber - 1) * partSize,
          p.partNumber * partSize,
        ) as Uint8Array<ArrayBuffer>,
      });
      expect(res.status).toBe(200);
      return { partNumber: p.partNumber, etag: res.headers.get('etag') ?? '' };
    }),
  );
  return { uploadId, etags, data };
}

const complete = (u: { uploadId: string; etags: unknown }) =>
  c.call('POST', `/v1/uploads/${u.uploadId}/complete`, { parts: u.etags });
const kind = (json: Record<string, unknown>) => String(json.type).replace('urn:stratus:problem:', '');

/** Every key under a directory name across all nodes, with `.old-*` and temp leftovers. */
async function nodeEntries(dir: string) {
  const root = path.join(rt.dataDir, 'nodes');
  const out: string[] = [];
  for (const n of await fs.readdir(root))
    for (const e of await fs.readdir(path.join(root, n, dir)).catch(() => [] as string[])) out.push(e);
  return out;
}

describe('concurrent completes of one upload', () => {
  it('commit exactly one version; the others are told to wait, then replay its result', async () => {
    for (let round = 0; round < 3; round++) {
      const u = await staged(`many-${round}.bin`, 20 * MiB);
      const answers = await Promise.all(Array.from({ length: 6 }, () => complete(u)));
      const statuses = answers.map((a) => a.status);
      for (const a of answers) {
        if (a.status === 409) {
          expect(kind(a.json)).toBe('upload-in-progress');
          expect(Number(a.headers.get('retry-after'))).toBeGreaterThan(0);
        } else expect(a.status, JSON.stringify(a.json)).toBe(201);
      }
      const winners = answers.filter(
        (a) => a.status === 201 && a.headers.get('idempotent-replayed') !== 'true',
      );
      expect(winners, statuses.join(',')).toHaveLength(1);
      const versionId = winners[0]?.json.versionId;
      // A retry now replays the winner's result.
      const again = await complete(u);
      expect(again.status).toBe(201);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(again.json.versionId).toBe(versionId);
      const dl = await c.download(String(again.json.fileId));
      expect(sha256(dl.body ?? Buffer.alloc(0))).toBe(sha256(u.data));
    }
    // No object was pushed aside and stranded by a second assembly.
    expect((await nodeEntries('objects/v')).filter((e) => e.includes('.old-'))).toEqual([]);
    const versions = (await c.call('GET', '/v1/folders/root/children')).json.items as { name: string }[];
    expect(versions.filter((i) => i.name.startsWith('many-'))).toHaveLength(3);
  });
});

describe('abort racing complete', () => {
  it('refuses to abort an upload being completed, so no version is committed without its bytes', async () => {
    for (let round = 0; round < 4; round++) {
      const u = await staged(`raced-${round}.bin`, 12 * MiB);
      const completing = complete(u);
      await new Promise((r) => setTimeout(r, 5 + round * 5));
      const abort = await c.call('DELETE', `/v1/uploads/${u.uploadId}`);
      const done = await completing;
      if (done.status === 201) {
        // The complete won: the abort was refused, and the bytes are all there.
        expect([409]).toContain(abort.status);
        const dl = await c.download(String(done.json.fileId));
        expect(dl.status).toBe(200);
        expect(sha256(dl.body ?? Buffer.alloc(0))).toBe(sha256(u.data));
      } else {
        // The abort won before the complete began: nothing is committed, nothing is charged.
        expect(abort.status).toBe(204);
        expect(done.status).toBe(409);
      }
    }
    // The server is still up and every committed file is served.
    const listing = (await c.call('GET', '/v1/folders/root/children')).json.items as {
      id: string;
      name: string;
      size: number;
    }[];
    for (const f of listing.filter((i) => i.name.startsWith('raced-'))) {
      const dl = await c.download(f.id);
      expect(dl.status).toBe(200);
      expect(dl.body?.length).toBe(f.size);
    }
    const me = await c.call('GET', '/v1/usage');
    expect(me.status).toBe(200);
  });

  it('answers an abort of a committed upload with 409 and keeps the file', async () => {
    const u = await staged('kept.bin', 1000);
    expect((await complete(u)).status).toBe(201);
    const abort = await c.call('DELETE', `/v1/uploads/${u.uploadId}`);
    expect(abort.status).toBe(409);
  });
});

describe('bytes that vanish under a replication', () => {
  it('fail that copy, and the server keeps answering', async () => {
    const u = await staged('vanishing.bin', 12 * MiB);
    const done = await complete(u);
    expect(done.status).toBe(201);
    // Pull the parts out from under the replicator, on whichever node took the upload.
    const versionId = String(done.json.versionId);
    const root = path.join(rt.dataDir, 'nodes');
    for (const n of await fs.readdir(root)) {
      const dir = path.join(root, n, 'objects', 'v', versionId);
      for (const f of await fs.readdir(dir).catch(() => [] as string[]))
        if (/^part\.\d+$/.test(f)) await fs.rm(path.join(dir, f), { force: true });
    }
    await rt.container.reconciler.sweep({ orphanGraceSeconds: 3600 });
    await new Promise((r) => setTimeout(r, 200));
    expect((await fetch(`${rt.url}/health`)).status).toBe(200);
    expect((await c.call('GET', '/v1/folders/root/children')).status).toBe(200);
  });
});

describe('the sweep of what nodes leave beside their objects', () => {
  it('removes abandoned multipart uploads, temp files and pushed-aside objects, not open uploads', async () => {
    const open = await staged('still-open.bin', 20 * MiB); // two 16 MiB parts: a multipart upload
    // What a crash or a lost session leaves on a node: a multipart upload no session holds, a
    // temp file, an object pushed aside by a replacing write.
    const node = rt.container.nodes.all()[0]?.store as LocalFsBlobStore;
    const abandoned = await node.createMultipartUpload(`v/${crypto.randomUUID()}`, { partChecksums: false });
    const tmp = node.tmpPath();
    await fs.writeFile(tmp, 'half a write');
    const old = `${node.objectDir(`v/${crypto.randomUUID()}`)}.old-${crypto.randomUUID()}`;
    await fs.mkdir(old, { recursive: true });
    const before = await nodeEntries('multipart');
    expect(before).toContain(abandoned);
    expect(before.length).toBeGreaterThanOrEqual(2); // and the open upload's

    // Leftovers are listed at the end of a full pass (an incremental one reads no listings).
    const report = await rt.container.reconciler.sweep({ orphanGraceSeconds: 0, full: true });
    expect(report.leftoversRemoved).toBeGreaterThanOrEqual(3);
    const after = await nodeEntries('multipart');
    expect(after).not.toContain(abandoned);
    for (const p of [tmp, old]) await expect(fs.access(p)).rejects.toThrow();
    // The open upload kept its parts: it completes, and its bytes come back whole.
    expect(before.filter((e) => !after.includes(e))).toEqual([abandoned]);
    expect(after.length).toBe(before.length - 1);
    const done = await complete(open);
    expect(done.status, JSON.stringify(done.json)).toBe(201);
    const got = await c.download(String(done.json.fileId));
    expect(sha256(got.body ?? Buffer.alloc(0))).toBe(sha256(open.data));
  });
});
