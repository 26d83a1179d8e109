/**
 * The local runtime over real HTTP: the foundation's whole vertical slice, as a client sees it.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminEnv, Client, type Runtime, sha256, startRuntime } from '../support/local-runtime.ts';

const MiB = 1024 * 1024;
let rt: Runtime;

beforeAll(async () => {
  rt = await startRuntime(adminEnv('boss@example.com'));
});
afterAll(async () => {
  await rt?.stop();
});

const problemType = (json: Record<string, unknown>) => String(json.type).replace('urn:stratus:problem:', '');

describe('files: the first vertical slice', () => {
  it('registers, logs in, creates a folder, uploads 20 MiB in parts, lists and downloads it intact', async () => {
    const alice = new Client(rt.url);
    const me = await alice.signUp('alice@example.com');
    const folder = await alice.call('POST', '/v1/folders', { parentId: 'root', name: 'Photos' });
    expect(folder.status).toBe(201);
    const folderId = folder.json.id as string;

    const data = randomBytes(20 * MiB);
    const { created, complete } = await alice.upload(folderId, 'big.bin', data);
    expect(created.status).toBe(201);
    expect((created.json.parts as unknown[]).length).toBeGreaterThan(1);
    expect(complete?.status).toBe(201);
    const fileId = complete?.json.fileId as string;
    expect(complete?.json).toMatchObject({ name: 'big.bin', size: data.length, sha256: sha256(data) });

    const listing = await alice.call('GET', `/v1/folders/${folderId}/children`);
    expect(listing.json.items).toEqual([
      expect.objectContaining({ id: fileId, name: 'big.bin', type: 'file', size: data.length }),
    ]);
    expect(listing.json.nextCursor).toBeNull();
    const rootListing = await alice.call('GET', '/v1/folders/root/children');
    expect(rootListing.json.items).toEqual([
      expect.objectContaining({ id: folderId, type: 'folder', parentId: me.rootFolderId }),
    ]);

    const meta = await alice.call('GET', `/v1/files/${fileId}`);
    expect(meta.status).toBe(200);
    expect(meta.headers.get('etag')).toMatch(/^".+"$/);
    expect(meta.json.sha256).toBe(sha256(data));

    const dl = await alice.download(fileId);
    expect(dl.status).toBe(200);
    expect(sha256(dl.body ?? Buffer.alloc(0))).toBe(sha256(data));

    const asJson = await alice.call('GET', `/v1/files/${fileId}/download?format=json`);
    expect(asJson.status).toBe(200);
    expect(String(asJson.json.url)).toContain('/storage/');
  });

  it('uploads an empty file and a small one with a single PUT', async () => {
    const c = new Client(rt.url);
    await c.signUp('small@example.com');
    for (const data of [Buffer.alloc(0), Buffer.from('hello')]) {
      const name = `f${data.length}.txt`;
      const { created, complete } = await c.upload('root', name, data, 'text/plain');
      expect((created.json.parts as unknown[]).length).toBe(1);
      expect(complete?.status).toBe(201);
      const dl = await c.download(complete?.json.fileId as string);
      expect(dl.body).toEqual(data);
    }
  });

  it('makes a second upload of the same name a new version of the same file, and completes idempotently', async () => {
    const c = new Client(rt.url);
    await c.signUp('versions@example.com');
    const one = await c.upload('root', 'notes.txt', Buffer.from('one'));
    const two = await c.upload('root', 'NOTES.txt', Buffer.from('two'));
    expect(two.complete?.json.fileId).toBe(one.complete?.json.fileId);
    expect(two.complete?.json.versionId).not.toBe(one.complete?.json.versionId);
    const dl = await c.download(two.complete?.json.fileId as string);
    expect(dl.body?.toString()).toBe('two');
    const replay = await c.call('POST', `/v1/uploads/${two.uploadId}/complete`, { parts: [] });
    expect(replay.status).toBe(201);
    expect(replay.json.versionId).toBe(two.complete?.json.versionId);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
  });

  it('refuses a wrong whole-file hash with 422, commits nothing and leaves no blob behind', async () => {
    const c = new Client(rt.url);
    await c.signUp('liar@example.com');
    const data = randomBytes(6 * MiB);
    const created = await c.call('POST', '/v1/uploads', {
      parentId: 'root',
      name: 'x.bin',
      size: data.length,
      sha256: sha256(Buffer.from('other')),
    });
    const part = (created.json.parts as { url: string; headers: Record<string, string> }[])[0];
    // The single-PUT URL binds the declared hash, so storage refuses the body outright.
    const put = await fetch(part?.url ?? '', { method: 'PUT', body: data });
    expect(put.status).toBe(422);
    const complete = await c.call('POST', `/v1/uploads/${created.json.uploadId}/complete`, {
      parts: [{ partNumber: 1, etag: 'x' }],
    });
    expect(complete.status).toBe(422);
    const listing = await c.call('GET', '/v1/folders/root/children');
    expect(listing.json.items).toEqual([]);
  });

  it('catches a multipart upload whose bytes do not match the declared hash', async () => {
    const c = new Client(rt.url);
    await c.signUp('mp-liar@example.com');
    const objectsDir = path.join(rt.dataDir, 'nodes', 'local-1', 'objects', 'v');
    const listObjects = () => fs.readdir(objectsDir).catch(() => [] as string[]);
    const before = await listObjects();
    const data = randomBytes(17 * MiB);
    const created = await c.call('POST', '/v1/uploads', {
      parentId: 'root',
      name: 'y.bin',
      size: data.length,
      sha256: sha256(randomBytes(8)),
    });
    const { partSize, parts, uploadId } = created.json as {
      partSize: number;
      uploadId: string;
      parts: { partNumber: number; url: string }[];
    };
    const etags = [];
    for (const p of parts) {
      const res = await fetch(p.url, {
        method: 'PUT',
        body: data.subarray((p.partNumber - 1) * partSize, p.partNumber * partSize),
      });
      expect(res.status).toBe(200);
      etags.push({ partNumber: p.partNumber, etag: res.headers.get('etag') ?? '' });
    }
    const complete = await c.call('POST', `/v1/uploads/${uploadId}/complete`, { parts: etags });
    expect(complete.status).toBe(422);
    expect(problemType(complete.json)).toBe('checksum-mismatch');
    expect((await c.call('GET', '/v1/folders/root/children')).json.items).toEqual([]);
    expect((await listObjects()).sort()).toEqual(before.sort());
    const again = await c.call('POST', `/v1/uploads/${uploadId}/complete`, { parts: etags });
    expect(again.status).toBe(409);
  });
});

describe('auth', () => {
  it('rotates refresh tokens and, on reuse, revokes the family and its access tokens', async () => {
    const c = new Client(rt.url);
    await c.signUp('rotate@example.com');
    const first = c.refreshToken;
    const r1 = await c.call('POST', '/v1/auth/refresh', { refreshToken: first });
    expect(r1.status).toBe(200);
    expect(r1.json.refreshToken).not.toBe(first);
    const second = r1.json.refreshToken as string;
    c.accessToken = r1.json.accessToken as string;
    expect((await c.call('GET', '/v1/me')).status).toBe(200);

    const reuse = await c.call('POST', '/v1/auth/refresh', { refreshToken: first });
    expect(reuse.status).toBe(401);
    expect(reuse.headers.get('content-type')).toBe('application/problem+json');
    expect((await c.call('POST', '/v1/auth/refresh', { refreshToken: second })).status).toBe(401);
    expect((await c.call('GET', '/v1/me')).status).toBe(401);
  });

  it('logout makes the access token and the refresh token fail', async () => {
    const c = new Client(rt.url);
    await c.signUp('bye@example.com');
    expect((await c.call('GET', '/v1/me')).status).toBe(200);
    const out = await c.call('POST', '/v1/auth/logout', { refreshToken: c.refreshToken });
    expect(out.status).toBe(204);
    const after = await c.call('GET', '/v1/me');
    expect(after.status).toBe(401);
    expect(after.json.detail).toContain('revoked');
    expect((await c.call('POST', '/v1/auth/refresh', { refreshToken: c.refreshToken })).status).toBe(401);
  });

  it('answers 401 problem+json for missing, malformed and forged tokens', async () => {
    const c = new Client(rt.url);
    expect((await c.call('GET', '/v1/me')).status).toBe(401);
    c.accessToken = 'not-a-jwt-at-all';
    expect((await c.call('GET', '/v1/me')).status).toBe(401);
    await c.signUp('forger@example.com');
    const [h, p] = (c.accessToken ?? '').split('.');
    c.accessToken = `${h}.${p}.${Buffer.from('forged').toString('base64url')}`;
    const res = await c.call('GET', '/v1/me');
    expect(res.status).toBe(401);
    expect(problemType(res.json)).toBe('unauthorized');
  });

  it('throttles repeated failed logins with 429 and Retry-After', async () => {
    const c = new Client(rt.url);
    await c.signUp('target@example.com');
    for (let i = 0; i < 5; i++) {
      expect(
        (await c.call('POST', '/v1/auth/login', { email: 'target@example.com', password: 'wrong password' }))
          .status,
      ).toBe(401);
    }
    const locked = await c.call('POST', '/v1/auth/login', {
      email: 'target@example.com',
      password: 'correct horse battery',
    });
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(problemType(locked.json)).toBe('too-many-attempts');
  });

  it('starts with the configured admin, who can see other users\u2019 files', async () => {
    const boss = new Client(rt.url);
    const user = new Client(rt.url);
    expect((await boss.signInAdmin('boss@example.com')).role).toBe('admin');
    expect((await user.signUp('worker@example.com')).role).toBe('user');
    const { complete } = await user.upload('root', 'report.txt', Buffer.from('numbers'));
    const seen = await boss.call('GET', `/v1/files/${complete?.json.fileId}`);
    expect(seen.status).toBe(200);
  });

  it('refuses a duplicate email with 409 and a weak password with 400', async () => {
    const c = new Client(rt.url);
    await c.signUp('dupe@example.com');
    const dupe = await c.call('POST', '/v1/auth/register', {
      email: 'DUPE@example.com',
      password: 'whatever123',
    });
    expect(dupe.status).toBe(409);
    expect(problemType(dupe.json)).toBe('email-taken');
    const weak = await c.call('POST', '/v1/auth/register', { email: 'weak@example.com', password: 'short' });
    expect(weak.status).toBe(400);
    expect((weak.json.errors as { path: string }[])[0]?.path).toBe('body.password');
  });
});

describe('signed URLs and isolation', () => {
  it('refuses tampered and expired storage URLs with 403', async () => {
    const c = new Client(rt.url);
    await c.signUp('urls@example.com');
    const data = Buffer.from('signed content');
    const { complete } = await c.upload('root', 's.txt', data);
    const dl = await c.download(complete?.json.fileId as string);
    expect(dl.status).toBe(200);
    const tampered = new URL(dl.location ?? '');
    tampered.searchParams.set('key', 'v/00000000-0000-0000-0000-000000000000');
    expect((await fetch(tampered)).status).toBe(403);
    const stretched = new URL(dl.location ?? '');
    stretched.searchParams.set('exp', String(Number(stretched.searchParams.get('exp')) + 3600));
    expect((await fetch(stretched)).status).toBe(403);
    // A correctly signed URL whose time is up.
    const node = rt.container.localNodes[0];
    const key = new URL(dl.location ?? '').searchParams.get('key') ?? '';
    const expired = `${rt.url}/storage/local-1/get?${node?.signer.query({ op: 'get', node: 'local-1', key, exp: Math.floor(Date.now() / 1000) - 1 })}`;
    const res = await fetch(expired);
    expect(res.status).toBe(403);
    expect(((await res.json()) as { type: string }).type).toBe('urn:stratus:problem:signature-invalid');
  });

  it('never shows or serves one user\u2019s items to another (404, no existence leak)', async () => {
    const owner = new Client(rt.url);
    const other = new Client(rt.url);
    await owner.signUp('owner@example.com');
    await other.signUp('other@example.com');
    const folder = await owner.call('POST', '/v1/folders', { parentId: 'root', name: 'Private' });
    const { complete, created } = await owner.upload(
      folder.json.id as string,
      'secret.txt',
      Buffer.from('secret'),
    );
    const fileId = complete?.json.fileId as string;
    const missing = '00000000-0000-4000-8000-000000000000';
    for (const [method, p, body] of [
      ['GET', `/v1/files/${fileId}`],
      ['GET', `/v1/files/${fileId}/download`],
      ['GET', `/v1/folders/${folder.json.id}/children`],
      ['POST', '/v1/folders', { parentId: folder.json.id, name: 'intrude' }],
      [
        'POST',
        '/v1/uploads',
        { parentId: folder.json.id, name: 'x', size: 1, sha256: sha256(Buffer.from('x')) },
      ],
      ['POST', `/v1/uploads/${created.json.uploadId}/complete`, { parts: [] }],
    ] as [string, string, unknown?][]) {
      const res = await other.call(method, p, body);
      expect(res.status, `${method} ${p}`).toBe(404);
      const twin = await other.call(
        method,
        p.replace(String(folder.json.id), missing).replace(fileId, missing),
        body,
      );
      expect(twin.json.detail, `${method} ${p}`).toBe(res.json.detail);
    }
  });
});

describe('errors are problem+json with stable types', () => {
  it('maps bad input to the right status', async () => {
    const c = new Client(rt.url);
    await c.signUp('errors@example.com');
    const cases: [string, string, unknown, number, string][] = [
      ['POST', '/v1/folders', '{"parentId": "root", "name":', 400, 'malformed-body'],
      ['POST', '/v1/folders', { parentId: 'root', name: '..' }, 400, 'validation-error'],
      ['POST', '/v1/folders', { parentId: 'root', name: 'a/b' }, 400, 'validation-error'],
      ['POST', '/v1/folders', { parentId: 'root', name: 'x'.repeat(300) }, 400, 'validation-error'],
      ['POST', '/v1/folders', { parentId: 'not-a-uuid', name: 'ok' }, 400, 'validation-error'],
      ['POST', '/v1/folders', { parentId: 'root', name: 'x'.repeat(400_000) }, 413, 'payload-too-large'],
      ['GET', '/v1/folders/root/children?limit=100000', undefined, 400, 'validation-error'],
      ['GET', '/v1/folders/root/children?cursor=bogus', undefined, 400, 'validation-error'],
      [
        'POST',
        '/v1/uploads',
        { parentId: 'root', name: 'a', size: -1, sha256: 'zz' },
        400,
        'validation-error',
      ],
      ['GET', '/v1/nowhere', undefined, 404, 'route-not-found'],
      ['DELETE', '/v1/folders', undefined, 405, 'method-not-allowed'],
    ];
    for (const [method, p, body, status, type] of cases) {
      const res = await c.call(method, p, body);
      expect(res.status, `${method} ${p}`).toBe(status);
      expect(res.headers.get('content-type'), `${method} ${p}`).toBe('application/problem+json');
      expect(problemType(res.json), `${method} ${p}`).toBe(type);
    }
    await c.call('POST', '/v1/folders', { parentId: 'root', name: 'Same' });
    const clash = await c.call('POST', '/v1/folders', { parentId: 'root', name: 'same' });
    expect(clash.status).toBe(409);
    expect(problemType(clash.json)).toBe('name-conflict');
  });

  it('serves health and a generated OpenAPI 3.1 document covering every route', async () => {
    const c = new Client(rt.url);
    expect((await c.call('GET', '/health')).json).toMatchObject({ status: 'ok' });
    const doc = (await c.call('GET', '/openapi.json')).json as {
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
    };
    expect(doc.openapi).toBe('3.1.0');
    for (const p of [
      '/v1/auth/register',
      '/v1/auth/login',
      '/v1/auth/refresh',
      '/v1/auth/logout',
      '/v1/folders',
      '/v1/folders/{id}/children',
      '/v1/uploads',
      '/v1/uploads/{id}/complete',
      '/v1/files/{id}',
      '/v1/files/{id}/download',
      '/health',
    ]) {
      expect(doc.paths[p], p).toBeDefined();
    }
    const jwks = await c.call('GET', '/.well-known/jwks.json');
    expect((jwks.json.keys as { alg: string }[])[0]?.alg).toBe('RS256');
  });
});

describe('state survives a restart', () => {
  it('keeps users, tokens and files in the data directory', async () => {
    const first = await startRuntime();
    const c = new Client(first.url);
    await c.signUp('durable@example.com');
    const { complete } = await c.upload('root', 'keep.txt', Buffer.from('still here'));
    await first.stop();
    // Same address: the local issuer is the public URL, as Cognito's is its pool URL.
    const second = await startRuntime({ PORT: new URL(first.url).port }, first.dataDir);
    try {
      const again = new Client(second.url);
      again.accessToken = c.accessToken; // issued before the restart, same signing key
      expect((await again.call('GET', '/v1/me')).status).toBe(200);
      const dl = await again.download(complete?.json.fileId as string);
      expect(dl.body?.toString()).toBe('still here');
      await again.login('durable@example.com');
    } finally {
      await second.stop();
    }
  });
});
