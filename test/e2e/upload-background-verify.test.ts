/**
 * Completing a large upload costs O(1) in its size (issue 17): past STRATUS_INLINE_VERIFY_BYTES the
 * complete assembles the parts, checks the size and the first bytes (one ranged read), and answers
 * 202; the background verifier (the local change feed here, the stream in AWS) reads the object,
 * commits the version and ends the session `committed`, or `failed` with the reason. Until then the
 * file's current version stays what it was. Runs on the default layout (3 nodes, factor 2).
 */
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlobStore } from '../../shared/ports/blob-store.ts';
import { Client, type Json, type Runtime, sha256, startRuntime } from '../support/local-runtime.ts';

const MiB = 1024 * 1024;
const INLINE = 1 * MiB;

let rt: Runtime;
let user: Client;
/** Bytes read through the BlobStore port (`read`) of every node, per object key. */
const bytesRead = new Map<string, number>();
/** While set, the background verifier waits for it before it runs. */
let gate: Promise<void> | undefined;

beforeAll(async () => {
  rt = await startRuntime({
    STRATUS_INLINE_VERIFY_BYTES: String(INLINE),
    STRATUS_PART_SIZE_BYTES: String(5 * MiB),
  });
  for (const n of rt.container.nodes.all()) {
    const store = n.store as BlobStore;
    const read = store.read.bind(store);
    store.read = async (key, range) => {
      const stream = (await read(key, range)) as Readable;
      stream.on('data', (chunk: Buffer) => {
        bytesRead.set(key, (bytesRead.get(key) ?? 0) + chunk.length);
      });
      return stream;
    };
  }
  const verifier = rt.container.backgroundVerifier;
  const verify = verifier.verifyInBackground.bind(verifier);
  verifier.verifyInBackground = async (uploadId) => {
    if (gate) await gate;
    return verify(uploadId);
  };
  user = new Client(rt.url);
  await user.signUp('big-uploads@example.com');
});
afterAll(async () => {
  await rt?.stop();
});

const data = (size: number, seed: number) => {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4) b.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
  // text, so that no type rule could refuse it
  return Buffer.from(b.toString('base64').slice(0, size));
};

async function until(uploadId: string, done: (s: Json) => boolean, timeoutMs = 60_000): Promise<Json> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = await user.call('GET', `/v1/uploads/${uploadId}`);
    expect(s.status).toBe(200);
    if (done(s.json)) return s.json;
    if (Date.now() > end) throw new Error(`upload ${uploadId} still ${String(s.json.state)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('background verification (202)', () => {
  it('answers 202 after reading only the first bytes, keeps the current version, then commits', async () => {
    const v1 = data(200 * 1024, 1);
    const first = await user.upload('root', 'big.txt', v1, 'text/plain');
    expect(first.complete?.status).toBe(201);
    const fileId = first.complete?.json.fileId as string;

    const v2 = data(12 * MiB, 2);
    let release: () => void = () => undefined;
    gate = new Promise((r) => {
      release = r;
    });
    const second = await user.upload('root', 'big.txt', v2, 'text/plain');
    try {
      const session = await rt.container.state.get<{ blobKey: string }>(`upload#${second.uploadId}`, 's');
      const blobKey = session?.data.blobKey ?? '';
      expect(blobKey).not.toBe('');
      expect(second.complete?.status).toBe(202);
      expect(second.complete?.headers.get('location')).toBe(`/v1/uploads/${second.uploadId}`);
      expect(second.complete?.json).toMatchObject({ uploadId: second.uploadId, state: 'verifying' });
      // the complete read the first bytes of the new object for the type check, nothing more
      expect(bytesRead.get(blobKey) ?? 0).toBeLessThanOrEqual(4096);
      expect(bytesRead.get(blobKey) ?? 0).toBeGreaterThan(0);

      // not yet committed: the file is still version 1, for its owner and for downloads
      const meanwhile = await user.call('GET', `/v1/files/${fileId}`);
      expect(meanwhile.json.size).toBe(v1.length);
      expect((await user.download(fileId)).body?.equals(v1)).toBe(true);
      expect((await user.call('GET', `/v1/files/${fileId}/versions`)).json.items).toHaveLength(1);
      // a complete asked again answers 202 again
      const again = await user.call('POST', `/v1/uploads/${second.uploadId}/complete`, { parts: [] });
      expect(again.status).toBe(202);
    } finally {
      gate = undefined;
      release();
    }
    const done = await until(second.uploadId as string, (s) => s.state !== 'verifying');
    expect(done).toMatchObject({
      state: 'committed',
      result: { fileId, size: v2.length, sha256: sha256(v2) },
    });
    // the verifier read the whole object
    const key = (await rt.container.state.get<{ blobKey: string }>(`upload#${second.uploadId}`, 's'))?.data
      .blobKey;
    expect(bytesRead.get(key ?? '') ?? 0).toBeGreaterThanOrEqual(v2.length);
    expect((await user.download(fileId)).body?.equals(v2)).toBe(true);
    expect((await user.call('GET', `/v1/files/${fileId}/versions`)).json.items).toHaveLength(2);
    // and a complete asked once more replays the commit
    const replay = await user.call('POST', `/v1/uploads/${second.uploadId}/complete`, { parts: [] });
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.json.versionId).toBe(done.versionId);
  });

  it('fails an upload whose bytes do not match its declared SHA-256, and says why', async () => {
    const usageBefore = (await user.call('GET', '/v1/usage')).json;
    const bytes = data(8 * MiB, 3);
    const declared = sha256(Buffer.from('something else'));
    const sent = await user.upload('root', 'wrong.txt', bytes, 'text/plain', { sha256: declared });
    expect(sent.created.status).toBe(201);
    expect(sent.complete?.status).toBe(202);
    const uploadId = sent.uploadId as string;
    const etags = sent.etags;
    const failed = await until(uploadId, (s) => s.state !== 'verifying');
    expect(failed).toMatchObject({
      state: 'failed',
      error: { type: 'urn:stratus:problem:checksum-mismatch', detail: expect.stringContaining('SHA-256') },
    });
    expect(failed).not.toHaveProperty('result');
    // nothing was committed, the quota reservation is released, and a complete says it failed
    const names = (
      (await user.call('GET', '/v1/folders/root/children')).json.items as { name: string }[]
    ).map((i) => i.name);
    expect(names).not.toContain('wrong.txt');
    const usageAfter = (await user.call('GET', '/v1/usage')).json;
    expect(usageAfter.reservedBytes).toBe(usageBefore.reservedBytes);
    expect(usageAfter.usedBytes).toBe(usageBefore.usedBytes);
    const again = await user.call('POST', `/v1/uploads/${uploadId}/complete`, { parts: etags });
    expect(again.status).toBe(409);
  });

  it('refuses a disguised executable inside the complete, from its first bytes', async () => {
    const pe = Buffer.concat([Buffer.from('MZ'), data(3 * MiB, 4)]);
    const res = await user.upload('root', 'invoice.pdf', pe, 'application/pdf');
    expect(res.complete?.status).toBe(415);
    const s = await user.call('GET', `/v1/uploads/${res.uploadId}`);
    expect(s.json.state).toBe('aborted');
  });

  it('an upload within the inline limit still commits in the request (201)', async () => {
    const small = data(INLINE, 5);
    const res = await user.upload('root', 'small.txt', small, 'text/plain');
    expect(res.complete?.status).toBe(201);
    expect(res.complete?.json.sha256).toBe(sha256(small));
  });
});
