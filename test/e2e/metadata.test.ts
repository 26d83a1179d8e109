/** Versions, trash, conflicts and sharing over real HTTP on the local runtime. */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminEnv, Client, type Runtime, sha256, startRuntime } from '../support/local-runtime.ts';

let rt: Runtime;
beforeAll(async () => {
  rt = await startRuntime(adminEnv('root@example.com'));
});
afterAll(async () => {
  await rt?.stop();
});

const kind = (json: Record<string, unknown>) => String(json.type).replace('urn:stratus:problem:', '');

describe('versions', () => {
  it('uploads one name three times, restores v1 and downloads exactly v1', async () => {
    const c = new Client(rt.url);
    await c.signUp('versions3@example.com');
    const contents = [randomBytes(1000), randomBytes(2000), randomBytes(3000)];
    const commits = [];
    for (const data of contents) commits.push((await c.upload('root', 'report.bin', data)).complete?.json);
    const fileId = commits[0]?.fileId as string;
    expect(new Set(commits.map((x) => x?.fileId))).toEqual(new Set([fileId]));
    const versions = await c.call('GET', `/v1/files/${fileId}/versions`);
    const items = versions.json.items as {
      versionId: string;
      size: number;
      sha256: string;
      current: boolean;
    }[];
    expect(items.map((v) => v.size)).toEqual([3000, 2000, 1000]);
    expect(items.map((v) => v.current)).toEqual([true, false, false]);
    const v1 = items[2];
    const restored = await c.call('POST', `/v1/files/${fileId}/versions/${v1?.versionId}/restore`);
    expect(restored.status).toBe(201);
    const dl = await c.download(fileId);
    expect(sha256(dl.body ?? Buffer.alloc(0))).toBe(sha256(contents[0] ?? Buffer.alloc(0)));
    expect(((await c.call('GET', `/v1/files/${fileId}/versions`)).json.items as unknown[]).length).toBe(4);
    const old = await c.call(
      'GET',
      `/v1/files/${fileId}/download?format=json&versionId=${items[1]?.versionId}`,
    );
    const body = Buffer.from(await (await fetch(String(old.json.url))).arrayBuffer());
    expect(sha256(body)).toBe(sha256(contents[1] ?? Buffer.alloc(0)));
  });
});

describe('trash', () => {
  it('deletes a folder tree, restores it from the trash, and finds everything back', async () => {
    const c = new Client(rt.url);
    await c.signUp('trash@example.com');
    const top = (await c.call('POST', '/v1/folders', { parentId: 'root', name: 'Album' })).json.id as string;
    const sub = (await c.call('POST', '/v1/folders', { parentId: top, name: '2026' })).json.id as string;
    const a = (await c.upload(top, 'cover.txt', Buffer.from('cover'))).complete?.json.fileId as string;
    const b = (await c.upload(sub, 'pic.txt', Buffer.from('pic'))).complete?.json.fileId as string;
    expect((await c.call('DELETE', `/v1/folders/${top}`)).status).toBe(204);
    expect((await c.call('GET', `/v1/files/${b}`)).status).toBe(404);
    expect((await c.call('GET', '/v1/folders/root/children')).json.items).toEqual([]);
    const trash = await c.call('GET', '/v1/trash');
    expect(trash.json.items).toEqual([expect.objectContaining({ id: top, name: 'Album', type: 'folder' })]);
    const back = await c.call('POST', `/v1/trash/${top}/restore`);
    expect(back.status).toBe(200);
    expect(back.json).toMatchObject({ id: top, name: 'Album' });
    const names = async (id: string) =>
      ((await c.call('GET', `/v1/folders/${id}/children`)).json.items as { name: string }[]).map(
        (i) => i.name,
      );
    expect(await names(top)).toEqual(['2026', 'cover.txt']);
    expect(await names(sub)).toEqual(['pic.txt']);
    expect((await c.download(a)).body?.toString()).toBe('cover');
    expect((await c.download(b)).body?.toString()).toBe('pic');
    expect((await c.call('GET', '/v1/trash')).json.items).toEqual([]);
    expect((await c.call('GET', '/v1/usage')).json).toMatchObject({ usedBytes: 8 });
    await c.call('DELETE', `/v1/folders/${top}`);
    const purge = await c.call('DELETE', '/v1/trash');
    expect(purge.json).toMatchObject({ items: 4, versions: 2, bytes: 8, blobsReclaimed: 2 });
    expect((await c.call('GET', '/v1/usage')).json).toMatchObject({ usedBytes: 0 });
  });
});

describe('conflicts', () => {
  it('gives the second of two clients editing from the same base a 409 with the current state', async () => {
    const first = new Client(rt.url);
    await first.signUp('editor-a@example.com');
    const second = new Client(rt.url);
    second.accessToken = first.accessToken;
    const folder = await first.call('POST', '/v1/folders', { parentId: 'root', name: 'Draft' });
    const etag = folder.headers.get('etag') ?? '';
    const a = await first.call(
      'PATCH',
      `/v1/folders/${folder.json.id}`,
      { name: 'Draft A' },
      { 'if-match': etag },
    );
    expect(a.status).toBe(200);
    const b = await second.call(
      'PATCH',
      `/v1/folders/${folder.json.id}`,
      { name: 'Draft B' },
      { 'if-match': etag },
    );
    expect(b.status).toBe(409);
    expect(b.json.current).toMatchObject({ name: 'Draft A', etag: a.headers.get('etag') });
    const noBase = await second.call('PATCH', `/v1/folders/${folder.json.id}`, { name: 'Draft B' });
    expect(noBase.status).toBe(428);
    const retry = await second.call(
      'PATCH',
      `/v1/folders/${folder.json.id}`,
      { name: 'Draft B' },
      { 'if-match': String(b.json.current && (b.json.current as { etag: string }).etag) },
    );
    expect(retry.status).toBe(200);
  });

  it('answers a well-formed If-Match that matches nothing with 409 and the current state, never 400', async () => {
    const c = new Client(rt.url);
    await c.signUp('ifmatch@example.com');
    const folder = await c.call('POST', '/v1/folders', { parentId: 'root', name: 'Tags' });
    const id = String(folder.json.id);
    const etag = folder.headers.get('etag') ?? '';
    for (const header of ['"never-issued-by-this-api"', `W/${etag}`, '"", "x"']) {
      const r = await c.call('PATCH', `/v1/folders/${id}`, { name: 'Nope' }, { 'if-match': header });
      expect(r.status, header).toBe(409);
      expect(r.json.current).toMatchObject({ name: 'Tags', etag });
    }
    const deleteStale = await c.call('DELETE', `/v1/folders/${id}`, undefined, { 'if-match': '"nope"' });
    expect(deleteStale.status).toBe(409);
    // A list holding the current tag matches; "*" matches whatever is current.
    const listed = await c.call(
      'PATCH',
      `/v1/folders/${id}`,
      { name: 'Tags 2' },
      { 'if-match': `"x", ${etag}` },
    );
    expect(listed.status).toBe(200);
    const any = await c.call('PATCH', `/v1/folders/${id}`, { name: 'Tags 3' }, { 'if-match': '*' });
    expect(any.status).toBe(200);
    expect(any.json.name).toBe('Tags 3');
    // Not entity-tag syntax at all: a malformed request.
    const garbage = await c.call('PATCH', `/v1/folders/${id}`, { name: 'Tags 4' }, { 'if-match': 'garbage' });
    expect(garbage.status).toBe(400);
  });

  it('turns a stale upload into a conflicted copy when asked', async () => {
    const c = new Client(rt.url);
    await c.signUp('copy@example.com');
    const v1 = (await c.upload('root', 'notes.txt', Buffer.from('v1'))).complete?.json;
    await c.call('POST', '/v1/uploads', {
      parentId: 'root',
      name: 'notes.txt',
      size: 2,
      sha256: sha256(Buffer.from('v2')),
      baseVersionId: v1?.versionId,
    });
    const other = (await c.upload('root', 'notes.txt', Buffer.from('laptop'))).complete?.json;
    expect(other?.fileId).toBe(v1?.fileId);
    const stale = await c.call('POST', '/v1/uploads', {
      parentId: 'root',
      name: 'notes.txt',
      size: 5,
      sha256: sha256(Buffer.from('phone')),
      baseVersionId: v1?.versionId,
      onConflict: 'copy',
    });
    const part = (stale.json.parts as { url: string }[])[0];
    const put = await fetch(part?.url ?? '', { method: 'PUT', body: Buffer.from('phone') });
    const done = await c.call('POST', `/v1/uploads/${stale.json.uploadId}/complete`, {
      parts: [{ partNumber: 1, etag: put.headers.get('etag') }],
    });
    expect(done.status).toBe(201);
    expect(done.json.name).toMatch(/^notes \(conflicted copy copy \d{4}-\d{2}-\d{2}\)\.txt$/);
  });
});

describe('permissions for owner, editor, viewer, stranger and admin', () => {
  const roles = ['owner', 'editor', 'viewer', 'stranger', 'admin'] as const;
  type RoleName = (typeof roles)[number];
  const clients = {} as Record<RoleName, Client>;
  let shared = '';
  let counter = 0;

  beforeAll(async () => {
    for (const r of roles) {
      clients[r] = new Client(rt.url);
      if (r === 'admin') await clients[r].signInAdmin('root@example.com');
      else await clients[r].signUp(`perm-${r}@example.com`);
    }
    shared = (await clients.owner.call('POST', '/v1/folders', { parentId: 'root', name: 'Team' })).json
      .id as string;
    for (const r of ['editor', 'viewer'] as const) {
      const g = await clients.owner.call('POST', '/v1/permissions', {
        itemId: shared,
        email: `perm-${r}@example.com`,
        role: r,
      });
      expect(g.status).toBe(201);
    }
  });

  const fresh = async () => {
    counter++;
    const up = await clients.owner.upload(shared, `doc-${counter}.txt`, Buffer.from(`content ${counter}`));
    const fileId = up.complete?.json.fileId as string;
    const meta = await clients.owner.call('GET', `/v1/files/${fileId}`);
    const versions = await clients.owner.call('GET', `/v1/files/${fileId}/versions`);
    return {
      fileId,
      etag: meta.headers.get('etag') ?? '',
      versionId: (versions.json.items as { versionId: string }[])[0]?.versionId,
    };
  };

  type Case = [
    string,
    (c: Client, f: Awaited<ReturnType<typeof fresh>>) => Promise<{ status: number }>,
    Record<RoleName, number>,
  ];
  const read = { owner: 200, editor: 200, viewer: 200, stranger: 404, admin: 200 };
  const cases: Case[] = [
    ['list the shared folder', (c) => c.call('GET', `/v1/folders/${shared}/children`), read],
    ['get file metadata', (c, f) => c.call('GET', `/v1/files/${f.fileId}`), read],
    [
      'download',
      (c, f) => c.call('GET', `/v1/files/${f.fileId}/download`),
      { owner: 302, editor: 302, viewer: 302, stranger: 404, admin: 302 },
    ],
    ['list versions', (c, f) => c.call('GET', `/v1/files/${f.fileId}/versions`), read],
    [
      'upload into the folder',
      (c) =>
        c.call('POST', '/v1/uploads', {
          parentId: shared,
          name: `new-${++counter}`,
          size: 1,
          sha256: sha256(Buffer.from('x')),
        }),
      { owner: 201, editor: 201, viewer: 403, stranger: 404, admin: 201 },
    ],
    [
      'create a subfolder',
      (c) => c.call('POST', '/v1/folders', { parentId: shared, name: `sub-${++counter}` }),
      { owner: 201, editor: 201, viewer: 403, stranger: 404, admin: 201 },
    ],
    [
      'rename',
      (c, f) =>
        c.call(
          'PATCH',
          `/v1/files/${f.fileId}`,
          { name: `renamed-${++counter}.txt` },
          { 'if-match': f.etag },
        ),
      { owner: 200, editor: 200, viewer: 403, stranger: 404, admin: 200 },
    ],
    [
      'copy into the folder',
      (c, f) => c.call('POST', `/v1/files/${f.fileId}/copy`, { parentId: shared, autorename: true }),
      { owner: 201, editor: 201, viewer: 403, stranger: 404, admin: 201 },
    ],
    [
      'restore a version',
      (c, f) => c.call('POST', `/v1/files/${f.fileId}/versions/${f.versionId}/restore`),
      { owner: 201, editor: 201, viewer: 403, stranger: 404, admin: 201 },
    ],
    [
      'delete',
      (c, f) => c.call('DELETE', `/v1/files/${f.fileId}`),
      { owner: 204, editor: 204, viewer: 403, stranger: 404, admin: 204 },
    ],
    [
      'share',
      (c, f) =>
        c.call('POST', '/v1/permissions', {
          itemId: f.fileId,
          email: 'perm-stranger@example.com',
          role: 'viewer',
        }),
      { owner: 201, editor: 403, viewer: 403, stranger: 404, admin: 201 },
    ],
    [
      'list grants',
      (c, f) => c.call('GET', `/v1/permissions?itemId=${f.fileId}`),
      { owner: 200, editor: 403, viewer: 403, stranger: 404, admin: 200 },
    ],
    [
      'read the item\u2019s audit trail',
      (c, f) => c.call('GET', `/v1/audit?itemId=${f.fileId}`),
      { owner: 200, editor: 403, viewer: 403, stranger: 404, admin: 200 },
    ],
    [
      'restore from the owner\u2019s trash',
      async (c, f) => {
        await clients.owner.call('DELETE', `/v1/files/${f.fileId}`);
        return c.call('POST', `/v1/trash/${f.fileId}/restore`);
      },
      { owner: 200, editor: 404, viewer: 404, stranger: 404, admin: 200 },
    ],
  ];

  it.each(cases)('%s', async (_name, run, expected) => {
    for (const r of roles) {
      const f = await fresh();
      const res = await run(clients[r], f);
      expect(res.status, r).toBe(expected[r]);
    }
  });

  it('lets a viewer download but not write', async () => {
    const f = await fresh();
    const v = clients.viewer;
    const dl = await v.download(f.fileId);
    expect(dl.body?.toString()).toBe(`content ${counter}`);
    const write = await v.call(
      'PATCH',
      `/v1/files/${f.fileId}`,
      { name: 'mine.txt' },
      { 'if-match': f.etag },
    );
    expect(write.status).toBe(403);
    expect(kind(write.json)).toBe('forbidden');
    expect((await v.call('GET', '/v1/shared')).json.items).toEqual([
      expect.objectContaining({ id: shared, role: 'viewer' }),
    ]);
  });

  it('keeps the sweep and admin routes for admins', async () => {
    expect((await clients.owner.call('POST', '/v1/admin/sweep')).status).toBe(403);
    const sweep = await clients.admin.call('POST', '/v1/admin/sweep');
    expect(sweep.status).toBe(200);
    expect(sweep.json).toHaveProperty('trashRoots');
  });
});

describe('account', () => {
  it('reports usage, keeps a retention policy, and shows the owner an audit trail', async () => {
    const c = new Client(rt.url);
    await c.signUp('account@example.com');
    await c.upload('root', 'a.bin', randomBytes(100));
    expect((await c.call('GET', '/v1/usage')).json).toMatchObject({
      usedBytes: 100,
      quotaBytes: expect.any(Number),
    });
    const set = await c.call('PUT', '/v1/settings/retention', {
      keepVersions: 1,
      keepDays: null,
      trashDays: 7,
    });
    expect(set.json).toEqual({ keepVersions: 1, keepDays: null, trashDays: 7 });
    const second = await c.upload('root', 'a.bin', randomBytes(50));
    const versions = await c.call('GET', `/v1/files/${second.complete?.json.fileId}/versions`);
    expect((versions.json.items as unknown[]).length).toBe(1);
    expect((await c.call('GET', '/v1/usage')).json).toMatchObject({ usedBytes: 50 });
    const audit = await c.call('GET', '/v1/audit');
    expect((audit.json.items as { action: string }[]).map((e) => e.action)).toEqual(
      expect.arrayContaining(['file.commit', 'purge.versions', 'retention.set']),
    );
    const bad = await c.call('PUT', '/v1/settings/retention', { keepVersions: 0, keepDays: null });
    expect(bad.status).toBe(400);
  });

  it('resolves paths and refuses the quota-busting upload up front', async () => {
    const small = await startRuntime({ STRATUS_DEFAULT_QUOTA_BYTES: '1000' });
    try {
      const c = new Client(small.url);
      await c.signUp('tiny@example.com');
      const folder = await c.call('POST', '/v1/folders', { parentId: 'root', name: 'Docs' });
      await c.upload(folder.json.id as string, 'a.txt', Buffer.from('a'));
      expect((await c.call('GET', `/v1/paths?path=${encodeURIComponent('/docs/A.TXT')}`)).json).toMatchObject(
        { name: 'a.txt' },
      );
      const big = await c.call('POST', '/v1/uploads', {
        parentId: 'root',
        name: 'big',
        size: 5000,
        sha256: sha256(Buffer.from('x')),
      });
      expect(big.status).toBe(507);
      expect(kind(big.json)).toBe('quota-exceeded');
    } finally {
      await small.stop();
    }
  });
});
