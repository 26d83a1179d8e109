/**
 * A background verification that takes longer than one run (issue 17: a file too big for one
 * 15-minute verifier Lambda) stops at a checkpoint, triggers the next run, and goes on from there:
 * every byte is read once in all, not again from the start, and the result is what one pass gives.
 * STRATUS_VERIFY_RUN_SECONDS is tiny here, so each run stops at its first checkpoint (every 20 MiB
 * with 5 MiB parts). Runs on the default layout (3 nodes, factor 2).
 */
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EICAR } from '../../shared/adapters/scanners/eicar-scanner.ts';
import { contentHash } from '../../shared/domain/content-hash.ts';
import type { BlobStore } from '../../shared/ports/blob-store.ts';
import type { BackgroundOutcome } from '../../shared/services/upload-outcomes.ts';
import { Client, type Json, type Runtime, sha256, startRuntime } from '../support/local-runtime.ts';

const MiB = 1024 * 1024;

let rt: Runtime;
let user: Client;
/** Bytes read through the BlobStore port of every node, per object key. */
const bytesRead = new Map<string, number>();
/** What each run of the background verifier answered, per upload. */
const outcomes = new Map<string, BackgroundOutcome[]>();

beforeAll(async () => {
  rt = await startRuntime({
    STRATUS_INLINE_VERIFY_BYTES: String(MiB),
    STRATUS_PART_SIZE_BYTES: String(5 * MiB),
    STRATUS_VERIFY_RUN_SECONDS: '0.001',
  });
  for (const n of rt.container.nodes.all()) {
    const store = n.store as BlobStore;
    const read = store.read.bind(store);
    store.read = async (key, range) => {
      const stream = (await read(key, range)) as Readable;
      stream.on('data', (chunk: Buffer) => bytesRead.set(key, (bytesRead.get(key) ?? 0) + chunk.length));
      return stream;
    };
  }
  const verifier = rt.container.backgroundVerifier;
  const verify = verifier.verifyInBackground.bind(verifier);
  verifier.verifyInBackground = async (uploadId) => {
    const outcome = await verify(uploadId);
    outcomes.set(uploadId, [...(outcomes.get(uploadId) ?? []), outcome]);
    return outcome;
  };
  user = new Client(rt.url);
  await user.signUp('long-verify@example.com');
});
afterAll(async () => {
  await rt?.stop();
});

/** Text (so no type rule refuses it), different for each seed. */
const data = (size: number, seed: number) => {
  const b = Buffer.alloc(size);
  for (let i = 0; i + 4 <= size; i += 4) b.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
  return Buffer.from(b.toString('base64').slice(0, size));
};

async function settled(uploadId: string): Promise<Json> {
  const end = Date.now() + 60_000;
  for (;;) {
    const s = await user.call('GET', `/v1/uploads/${uploadId}`);
    expect(s.status).toBe(200);
    if (s.json.state !== 'verifying') return s.json;
    if (Date.now() > end) throw new Error(`upload ${uploadId} still verifying`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const blobKeyOf = async (uploadId: string) =>
  (await rt.container.state.get<{ blobKey: string }>(`upload#${uploadId}`, 's'))?.data.blobKey ?? '';

describe('verification across runs', () => {
  it('continues from its checkpoint in each run, reads every byte once, and commits', async () => {
    const bytes = data(50 * MiB + 777, 1);
    const sent = await user.upload('root', 'long.txt', bytes, 'text/plain');
    expect(sent.complete?.status).toBe(202);
    const uploadId = sent.uploadId as string;
    const done = await settled(uploadId);
    expect(done).toMatchObject({ state: 'committed', result: { size: bytes.length, sha256: sha256(bytes) } });
    // three runs: stopped at 20 MiB and 40 MiB, then the rest
    expect(outcomes.get(uploadId)).toEqual(['continued', 'continued', 'committed']);
    // each run read from where the last stopped: the object once, plus the complete's 4 KiB
    const read = bytesRead.get(await blobKeyOf(uploadId)) ?? 0;
    expect(read).toBeGreaterThanOrEqual(bytes.length);
    expect(read).toBeLessThanOrEqual(bytes.length + 4096);
    const file = await user.call('GET', `/v1/files/${(done.result as Json).fileId}`);
    expect(file.json.contentHash).toBe(contentHash(bytes));
    expect((await user.download((done.result as Json).fileId as string)).body?.equals(bytes)).toBe(true);
    // nothing of the runs is left behind in the state store
    expect(await rt.container.state.query(`verifiedparts#${uploadId}`)).toEqual([]);
    expect(await rt.container.state.get(`verify#${uploadId}`, 'v')).toBeUndefined();
  });

  it('fails after the last run when the whole-file SHA-256 is not the declared one', async () => {
    const bytes = data(45 * MiB, 2);
    const sent = await user.upload('root', 'wrong.txt', bytes, 'text/plain', {
      sha256: sha256(Buffer.from('x')),
    });
    expect(sent.complete?.status).toBe(202);
    const uploadId = sent.uploadId as string;
    const failed = await settled(uploadId);
    expect(failed).toMatchObject({
      state: 'failed',
      error: { type: 'urn:stratus:problem:checksum-mismatch', detail: expect.stringContaining('SHA-256') },
    });
    expect(outcomes.get(uploadId)).toEqual(['continued', 'continued', 'failed']);
    expect(await rt.container.state.query(`verifiedparts#${uploadId}`)).toEqual([]);
  });

  it('finds malware that straddles a stop, and quarantines the version', async () => {
    const bytes = data(30 * MiB, 3);
    Buffer.from(EICAR, 'latin1').copy(bytes, 20 * MiB - 20);
    const sent = await user.upload('root', 'eicar.txt', bytes, 'text/plain');
    expect(sent.complete?.status).toBe(202);
    const uploadId = sent.uploadId as string;
    const done = await settled(uploadId);
    expect(done).toMatchObject({ state: 'committed', result: { scanState: 'infected' } });
    expect(outcomes.get(uploadId)).toEqual(['continued', 'committed']);
    const dl = await user.call('GET', `/v1/files/${(done.result as Json).fileId}/download`);
    expect(dl.status).toBe(409);
  });
});
