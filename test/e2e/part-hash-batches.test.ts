/**
 * Sizes users have, over real HTTP on the local runtime: a 10,000-part upload declares its part
 * hashes in batches of 1,000 (the create, then `POST /v1/uploads/{id}/parts`), each body under the
 * body limit, and every part URL the local nodes sign is bound to its own hash; a bound hash never
 * changes. A file of exactly S3's largest object (10,000 parts of 5 GiB) opens, and one byte more
 * does not.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MAX_OBJECT,
  MAX_PART,
  MAX_PARTS,
  MiB,
  PARTS_PER_REQUEST,
} from '../../shared/domain/upload-session.ts';
import { Client, type Runtime, sha256, startRuntime } from '../support/local-runtime.ts';

let rt: Runtime;
let c: Client;
beforeAll(async () => {
  rt = await startRuntime({ STRATUS_DEFAULT_QUOTA_BYTES: String(2 * MAX_OBJECT) });
  c = new Client(rt.url);
  await c.signUp('big-files@example.com');
});
afterAll(async () => {
  await rt?.stop();
});

const kind = (json: Record<string, unknown>) => String(json.type).replace('urn:stratus:problem:', '');
type PartUrl = { partNumber: number; url: string; headers: Record<string, string> };

/** What a local node's part URL signs. */
function signed(u: PartUrl) {
  const q = new URL(u.url).searchParams;
  return { part: Number(q.get('part')), len: Number(q.get('len')), sha: q.get('sha') };
}

describe('part hashes declared in batches', () => {
  it('binds every URL of a 10,000-part upload to its hash, and refuses to change a bound one', async () => {
    const partSize = 5 * MiB;
    const size = (MAX_PARTS - 1) * partSize + 10;
    // One real part to send; every other hash is only declared.
    const part5000 = randomBytes(partSize);
    const hashes = Array.from({ length: MAX_PARTS }, (_, i) =>
      i + 1 === 5000 ? sha256(part5000) : randomBytes(32).toString('hex'),
    );
    const batch = (from: number) =>
      hashes
        .slice(from - 1, from - 1 + PARTS_PER_REQUEST)
        .map((h, i) => ({ partNumber: from + i, sha256: h }));

    const body = {
      parentId: 'root',
      name: 'huge.bin',
      size,
      sha256: 'a'.repeat(64),
      partSize,
      parts: batch(1),
    };
    expect(Buffer.byteLength(JSON.stringify(body))).toBeLessThan(rt.container.config.STRATUS_MAX_BODY_BYTES);
    const tooMany = await c.call('POST', '/v1/uploads', {
      ...body,
      parts: [...batch(1), { partNumber: 1001, sha256: hashes[1000] }],
    });
    expect(tooMany.status).toBe(400);
    const created = await c.call('POST', '/v1/uploads', body);
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ partCount: MAX_PARTS, partSize });
    const id = String(created.json.uploadId);
    const urls = new Map((created.json.parts as PartUrl[]).map((u) => [u.partNumber, u]));
    for (let from = PARTS_PER_REQUEST + 1; from <= MAX_PARTS; from += PARTS_PER_REQUEST) {
      const renewed = await c.call('POST', `/v1/uploads/${id}/parts`, { parts: batch(from) });
      expect(renewed.status).toBe(200);
      for (const u of renewed.json.parts as PartUrl[]) urls.set(u.partNumber, u);
    }
    expect(urls.size).toBe(MAX_PARTS);
    for (const [n, u] of urls)
      expect(signed(u)).toEqual({ part: n, len: n < MAX_PARTS ? partSize : 10, sha: hashes[n - 1] });

    // Storage keeps only the declared bytes: a wrong part is refused, the right one taken.
    const u5000 = urls.get(5000) as PartUrl;
    const wrong = Buffer.from(part5000);
    wrong[12345] = (wrong[12345] ?? 0) ^ 1;
    expect((await fetch(u5000.url, { method: 'PUT', headers: u5000.headers, body: wrong })).status).toBe(422);
    expect((await fetch(u5000.url, { method: 'PUT', headers: u5000.headers, body: part5000 })).status).toBe(
      200,
    );

    // A renewal without the hash stays bound; the same hash again is fine; another one is not.
    const again = await c.call('POST', `/v1/uploads/${id}/parts`, {
      parts: [{ partNumber: 9_999 }, { partNumber: 7, sha256: hashes[6] }],
    });
    expect(again.status).toBe(200);
    expect((again.json.parts as PartUrl[]).map((u) => signed(u).sha)).toEqual([hashes[9_998], hashes[6]]);
    const changed = await c.call('POST', `/v1/uploads/${id}/parts`, {
      parts: [{ partNumber: 5000, sha256: 'b'.repeat(64) }],
    });
    expect(changed.status).toBe(409);
    expect(kind(changed.json)).toBe('conflict');
    expect(changed.json).toMatchObject({ partNumber: 5000, sha256: hashes[4_999] });
    expect(String(changed.json.detail)).toContain('part 5000 is already bound to SHA-256');
    const state = await c.call('GET', `/v1/uploads/${id}`);
    expect(state.json.receivedParts).toMatchObject([{ partNumber: 5000, sha256: hashes[4_999] }]);
    expect((await c.call('DELETE', `/v1/uploads/${id}`)).status).toBe(204);
  });

  it('needs a hash for every part once some were declared; without, binds those declared later', async () => {
    const data = randomBytes(11 * MiB);
    const partSha = [0, 1, 2].map((i) => sha256(data.subarray(i * 5 * MiB, (i + 1) * 5 * MiB)));
    const open = (parts?: { partNumber: number; sha256: string }[]) =>
      c.call('POST', '/v1/uploads', {
        parentId: 'root',
        name: `three-${crypto.randomUUID()}.bin`,
        size: data.length,
        sha256: sha256(data),
        partSize: 5 * MiB,
        ...(parts ? { parts } : {}),
      });
    const bound = await open([{ partNumber: 1, sha256: partSha[0] as string }]);
    const unbound = await c.call('POST', `/v1/uploads/${bound.json.uploadId}/parts`, {
      parts: [{ partNumber: 2 }, { partNumber: 3 }],
    });
    expect(unbound.status).toBe(400);
    expect(String(unbound.json.detail)).toContain('parts without a declared SHA-256: 2, 3');
    // Created without hashes: parts may go unbound, and a hash declared later binds its part (the
    // local nodes sign it; on S3 only an upload that declared hashes at create can).
    const plain = await open();
    const late = await c.call('POST', `/v1/uploads/${plain.json.uploadId}/parts`, {
      parts: [{ partNumber: 2, sha256: partSha[1] }, { partNumber: 3 }],
    });
    expect(late.status).toBe(200);
    expect((late.json.parts as PartUrl[]).map(signed)).toEqual([
      { part: 2, len: 5 * MiB, sha: partSha[1] },
      { part: 3, len: MiB, sha: null },
    ]);
    const changed = await c.call('POST', `/v1/uploads/${plain.json.uploadId}/parts`, {
      parts: [{ partNumber: 2, sha256: partSha[2] }],
    });
    expect(changed.status).toBe(409);
    for (const u of [bound, plain])
      expect((await c.call('DELETE', `/v1/uploads/${u.json.uploadId}`)).status).toBe(204);
  });
});

describe('the largest file', () => {
  it('opens exactly 10,000 parts of 5 GiB on the local nodes, and refuses one byte more', async () => {
    const open = (size: number) =>
      c.call('POST', '/v1/uploads', {
        parentId: 'root',
        name: `max-${size}.bin`,
        size,
        sha256: 'c'.repeat(64),
      });
    const over = await open(MAX_OBJECT + 1);
    expect(over.status).toBe(400);
    expect(over.json.errors).toEqual([expect.objectContaining({ path: 'body.size' })]);
    const at = await open(MAX_OBJECT);
    expect(at.status).toBe(201);
    expect(at.json).toMatchObject({ partSize: MAX_PART, partCount: MAX_PARTS });
    const id = String(at.json.uploadId);
    const last = await c.call('POST', `/v1/uploads/${id}/parts`, { parts: [{ partNumber: MAX_PARTS }] });
    const [u] = last.json.parts as PartUrl[];
    expect(signed(u as PartUrl)).toMatchObject({ part: MAX_PARTS, len: MAX_PART });
    // The node takes the URL (its signature, part number and length) and waits for 5 GiB of body.
    const short = await fetch(u?.url ?? '', { method: 'PUT', body: Buffer.from('too short') });
    expect(short.status).toBe(400);
    expect(await short.text()).toContain(`Content-Length must be ${MAX_PART}`);
    expect((await c.call('DELETE', `/v1/uploads/${id}`)).status).toBe(204);
  });
});
