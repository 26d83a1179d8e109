/**
 * Bytes in open upload sessions are inside the quota. Before, four 27 MiB sessions on a 30 MiB
 * quota could all be created and fully uploaded, holding 108 MiB for a day; the number of open
 * sessions was unlimited. Now creating an upload reserves its size, the commit turns the
 * reservation into usage, an abort releases it, and each user may hold a bounded number open.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, type Runtime, sha256, startRuntime } from '../support/local-runtime.ts';

const MiB = 1024 * 1024;
let rt: Runtime;

beforeAll(async () => {
  rt = await startRuntime({ STRATUS_DEFAULT_QUOTA_BYTES: String(30 * MiB), STRATUS_MAX_OPEN_UPLOADS: '5' });
});
afterAll(async () => {
  await rt?.stop();
});

const kind = (json: Record<string, unknown>) => String(json.type).replace('urn:stratus:problem:', '');
const create = (c: Client, name: string, size: number) =>
  c.call('POST', '/v1/uploads', { parentId: 'root', name, size, sha256: sha256(Buffer.from(name)) });

describe('quota reservations', () => {
  it('refuse a second open upload that, with the first, would pass the quota; concurrent ones too', async () => {
    const c = new Client(rt.url);
    await c.signUp('reserve@example.com');
    const first = await create(c, 'one.bin', 27 * MiB);
    expect(first.status).toBe(201);
    expect((await c.call('GET', '/v1/usage')).json).toMatchObject({ usedBytes: 0, reservedBytes: 27 * MiB });
    const second = await create(c, 'two.bin', 27 * MiB);
    expect(second.status).toBe(507);
    expect(kind(second.json)).toBe('quota-exceeded');
    // Aborting releases the reservation.
    expect((await c.call('DELETE', `/v1/uploads/${first.json.uploadId}`)).status).toBe(204);
    expect((await c.call('GET', '/v1/usage')).json).toMatchObject({ reservedBytes: 0 });
    // Four at once against 30 MiB: exactly one fits.
    const racing = await Promise.all([1, 2, 3, 4].map((i) => create(c, `race${i}.bin`, 27 * MiB)));
    expect(racing.map((r) => r.status).sort()).toEqual([201, 507, 507, 507]);
  });

  it('turn into usage at the commit, and count against the quota the moment the upload opens', async () => {
    const c = new Client(rt.url);
    await c.signUp('convert@example.com');
    const data = randomBytes(10 * MiB);
    const { complete } = await c.upload('root', 'kept.bin', data);
    expect(complete?.status).toBe(201);
    expect((await c.call('GET', '/v1/usage')).json).toMatchObject({ usedBytes: 10 * MiB, reservedBytes: 0 });
    expect((await create(c, 'open.bin', 15 * MiB)).status).toBe(201);
    expect((await create(c, 'over.bin', 6 * MiB)).status).toBe(507);
    expect((await create(c, 'fits.bin', 5 * MiB)).status).toBe(201);
  });

  it('limit how many uploads one user holds open', async () => {
    const c = new Client(rt.url);
    await c.signUp('many-open@example.com');
    for (let i = 0; i < 5; i++) expect((await create(c, `o${i}.bin`, 10)).status).toBe(201);
    const sixth = await create(c, 'o5.bin', 10);
    expect(sixth.status).toBe(409);
    expect(kind(sixth.json)).toBe('too-many-open-uploads');
  });
});

describe('the orphan sweep and open uploads', () => {
  it('keeps the bytes of an upload that is still open, however old, and completes it afterwards', async () => {
    const c = new Client(rt.url);
    await c.signUp('slow-complete@example.com');
    const data = randomBytes(4000);
    const created = await c.call('POST', '/v1/uploads', {
      parentId: 'root',
      name: 'later.bin',
      size: data.length,
      sha256: sha256(data),
    });
    const part = (created.json.parts as { url: string; headers: Record<string, string> }[])[0];
    const put = await fetch(String(part?.url), { method: 'PUT', headers: part?.headers, body: data });
    expect(put.status).toBe(200);
    // A sweep with no grace at all: the object has no version yet, but its session is open.
    await rt.container.reconciler.sweep({ orphanGraceSeconds: 0 });
    const done = await c.call('POST', `/v1/uploads/${created.json.uploadId}/complete`, {
      parts: [{ partNumber: 1, etag: put.headers.get('etag') ?? '' }],
    });
    expect(done.status, JSON.stringify(done.json)).toBe(201);
    expect(sha256((await c.download(String(done.json.fileId))).body ?? Buffer.alloc(0))).toBe(sha256(data));
  });
});
