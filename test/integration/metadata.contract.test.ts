/**
 * The metadata model on PGlite and PostgreSQL 15, through the real services: folders, listing,
 * paths, rename and move, copy, versions, retention, trash and purge, quotas, sharing and audit.
 */

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryDatabase, memoryMetadataOver } from '../../shared/adapters/memory/memory-metadata.ts';
import { DomainError } from '../../shared/domain/errors.ts';
import type { Item } from '../../shared/domain/model.ts';
import { statusOf as httpStatus } from '../../shared/http/problem.ts';
import type { Database } from '../../shared/ports/database.ts';
import { sqlBackends } from '../support/fixtures.ts';
import { buildHarness, type Harness } from '../support/service-harness.ts';

const statusOf = async (p: Promise<unknown>) => {
  try {
    await p;
    return 200;
  } catch (e) {
    if (e instanceof DomainError) return httpStatus(e);
    throw e;
  }
};

/** The same contract on the in-memory metadata adapters: the services need no database. */
const backends = [
  {
    name: 'memory',
    open: async () => ({ db: new MemoryDatabase() as Database, dispose: async () => undefined }),
  },
  ...sqlBackends,
];

describe.each(backends)('metadata contract: $name', (backend) => {
  let db: Database;
  let dispose: () => Promise<void>;
  let h: Harness;
  beforeEach(async () => {
    ({ db, dispose } = await backend.open());
    h = buildHarness(db);
  });
  afterEach(async () => {
    await dispose();
  });

  it('lists children sorted by name, size or modified time, paging without gaps', async () => {
    const u = await h.user('sort@x.io');
    const sizes = [5, 1, 9, 3, 7, 2, 8];
    for (const [i, size] of sizes.entries()) await h.put(u, 'root', `f${i}.bin`, 'x'.repeat(size));
    const all = async (by: 'name' | 'size' | 'modified', dir: 'asc' | 'desc') => {
      const out: Item[] = [];
      let cursor: string | undefined;
      for (;;) {
        const page = await h.c.folders.listChildren(u, 'root', {
          sort: { by, dir },
          limit: 3,
          ...(cursor ? { cursor } : {}),
        });
        out.push(...page.items);
        if (!page.nextCursor) return out;
        cursor = page.nextCursor;
      }
    };
    expect((await all('size', 'asc')).map((i) => i.size)).toEqual([...sizes].sort((a, b) => a - b));
    expect((await all('size', 'desc')).map((i) => i.size)).toEqual([...sizes].sort((a, b) => b - a));
    expect((await all('name', 'asc')).map((i) => i.name)).toEqual(sizes.map((_, i) => `f${i}.bin`));
    const byTime = await all('modified', 'asc');
    expect(byTime.map((i) => i.name)).toEqual(sizes.map((_, i) => `f${i}.bin`));
    const first = await h.c.folders.listChildren(u, 'root', { sort: { by: 'size', dir: 'asc' }, limit: 3 });
    expect(
      await statusOf(
        h.c.folders.listChildren(u, 'root', {
          sort: { by: 'name', dir: 'asc' },
          limit: 3,
          cursor: first.nextCursor ?? '',
        }),
      ),
    ).toBe(400);
  });

  it('resolves paths, case-insensitively, in the caller\u2019s own tree', async () => {
    const u = await h.user('paths@x.io');
    const a = await h.c.folders.createFolder(u, 'root', 'Docs');
    const b = await h.c.folders.createFolder(u, a.id, '2026');
    const f = await h.put(u, b.id, 'Report.pdf', 'pdf');
    expect((await h.c.folders.resolvePath(u, '/Docs/2026/Report.pdf')).id).toBe(f.fileId);
    expect((await h.c.folders.resolvePath(u, '/docs/2026/report.PDF')).id).toBe(f.fileId);
    expect((await h.c.folders.resolvePath(u, '/')).id).toBe(u.rootFolderId);
    expect(await statusOf(h.c.folders.resolvePath(u, '/Docs/nope'))).toBe(404);
    const other = await h.user('paths2@x.io');
    expect(await statusOf(h.c.folders.resolvePath(other, '/Docs'))).toBe(404);
  });

  it('renames and moves with If-Match, refusing stale bases, clashes and cycles', async () => {
    const u = await h.user('move@x.io');
    const a = await h.c.folders.createFolder(u, 'root', 'A');
    const b = await h.c.folders.createFolder(u, a.id, 'B');
    const c = await h.c.folders.createFolder(u, b.id, 'C');
    expect(await statusOf(h.c.folders.relocate(u, a.id, 'folder', { name: 'A2' }, undefined))).toBe(428);
    const renamed = await h.c.folders.relocate(u, a.id, 'folder', { name: 'A2' }, a.revision);
    expect(renamed.name).toBe('A2');
    expect(await statusOf(h.c.folders.relocate(u, a.id, 'folder', { name: 'A3' }, a.revision))).toBe(409);
    expect(
      await statusOf(h.c.folders.relocate(u, renamed.id, 'folder', { parentId: c.id }, renamed.revision)),
    ).toBe(409);
    expect(
      await statusOf(
        h.c.folders.relocate(u, renamed.id, 'folder', { parentId: renamed.id }, renamed.revision),
      ),
    ).toBe(409);
    await h.c.folders.createFolder(u, 'root', 'Taken');
    expect(
      await statusOf(
        h.c.folders.relocate(u, c.id, 'folder', { parentId: 'root', name: 'TAKEN' }, c.revision),
      ),
    ).toBe(409);
    const moved = await h.c.folders.relocate(u, c.id, 'folder', { parentId: 'root' }, c.revision);
    expect(moved.parentId).toBe(u.rootFolderId);
    expect(await statusOf(h.c.folders.relocate(u, u.rootFolderId, 'folder', { name: 'x' }, 1))).toBe(403);
  });

  it('keeps versions, restores an old one as a new version, and copies sharing the blob', async () => {
    const u = await h.user('ver@x.io');
    const v1 = await h.put(u, 'root', 'doc.txt', 'one');
    await h.put(u, 'root', 'doc.txt', 'two!');
    await h.put(u, 'root', 'doc.txt', 'three');
    const { versions } = await h.c.versions.versions(u, v1.fileId);
    expect(versions.map((v) => v.size)).toEqual([5, 4, 3]);
    const restored = await h.c.versions.restoreVersion(u, v1.fileId, v1.versionId, undefined);
    expect(restored.file.size).toBe(3);
    expect((await h.c.versions.versions(u, v1.fileId)).versions).toHaveLength(4);
    const copy = await h.c.folders.copyFile(u, v1.fileId, {
      parentId: 'root',
      name: 'copy.txt',
      autorename: false,
    });
    const blobsBefore = h.blobs.objects.size;
    expect(copy.size).toBe(3);
    expect(blobsBefore).toBe(3); // restore and copy reuse stored bytes
    expect(
      await statusOf(
        h.c.folders.copyFile(u, v1.fileId, { parentId: 'root', name: 'copy.txt', autorename: false }),
      ),
    ).toBe(409);
    const auto = await h.c.folders.copyFile(u, v1.fileId, {
      parentId: 'root',
      name: 'copy.txt',
      autorename: true,
    });
    expect(auto.name).toBe('copy (1).txt');
    expect((await h.c.account.usage(u)).usedBytes).toBe(3 + 4 + 5 + 3 + 3 + 3);
  });

  it('applies a keep-N retention policy, reclaiming only unreferenced blobs', async () => {
    const u = await h.user('ret@x.io');
    const first = await h.put(u, 'root', 'r.txt', 'aaaa');
    await h.c.folders.copyFile(u, first.fileId, { parentId: 'root', name: 'keep.txt', autorename: false });
    await h.c.versions.setRetention(u, { keepVersions: 2, keepDays: null, trashDays: 30 });
    await h.put(u, 'root', 'r.txt', 'bbbbb');
    await h.put(u, 'root', 'r.txt', 'cccccc');
    const { versions } = await h.c.versions.versions(u, first.fileId);
    expect(versions.map((v) => v.size)).toEqual([6, 5]);
    // The first blob is still used by the copy, so it stays.
    expect(h.blobs.objects.size).toBe(3);
    expect((await h.c.account.usage(u)).usedBytes).toBe(6 + 5 + 4);
  });

  it('trashes a tree with one row, restores it whole under a free name, and purges it for good', async () => {
    const u = await h.user('trash@x.io');
    const top = await h.c.folders.createFolder(u, 'root', 'Project');
    const sub = await h.c.folders.createFolder(u, top.id, 'src');
    const f = await h.put(u, sub.id, 'main.ts', 'code');
    await h.c.folders.trash(u, top.id, 'folder', undefined);
    expect(await statusOf(h.c.folders.item(u, f.fileId))).toBe(404);
    expect(
      await statusOf(h.c.folders.listChildren(u, sub.id, { sort: { by: 'name', dir: 'asc' }, limit: 10 })),
    ).toBe(404);
    expect((await h.c.folders.listTrash(u, 10)).map((i) => i.id)).toEqual([top.id]);
    await h.c.folders.createFolder(u, 'root', 'project');
    const back = await h.c.folders.restoreFromTrash(u, top.id);
    expect(back.name).toBe('Project (1)');
    expect((await h.c.folders.item(u, f.fileId)).item.name).toBe('main.ts');
    await h.c.folders.trash(u, back.id, 'folder', undefined);
    const purged = await h.c.purges.purge(u, top.id);
    expect(purged).toMatchObject({
      status: 'done',
      report: { items: 3, versions: 1, bytes: 4, blobsReclaimed: 1 },
    });
    expect(h.blobs.objects.size).toBe(0);
    expect((await h.c.account.usage(u)).usedBytes).toBe(0);
    expect(await statusOf(h.c.folders.restoreFromTrash(u, top.id))).toBe(404);
  });

  it('restores into the root when the original folder is gone', async () => {
    const u = await h.user('orphan@x.io');
    const dir = await h.c.folders.createFolder(u, 'root', 'Dir');
    const f = await h.put(u, dir.id, 'a.txt', 'a');
    await h.c.folders.trash(u, f.fileId, 'file', undefined);
    await h.c.folders.trash(u, dir.id, 'folder', undefined);
    const back = await h.c.folders.restoreFromTrash(u, f.fileId);
    expect(back.parentId).toBe(u.rootFolderId);
  });

  it('sweeps trash past its retention', async () => {
    const u = await h.user('sweep@x.io');
    const f = await h.put(u, 'root', 'old.txt', 'old');
    await h.c.folders.trash(u, f.fileId, 'file', undefined);
    expect((await h.c.versions.sweep()).trashRoots).toBe(0);
    const later = new Date(Date.now() + 31 * 86_400_000);
    const report = await h.c.versions.sweep(later);
    expect(report).toMatchObject({ trashRoots: 1, versions: 1, blobsReclaimed: 1 });
    expect(await h.c.folders.listTrash(u, 10)).toEqual([]);
  });

  it('enforces the quota when an upload is created, counting the sizes of open uploads', async () => {
    h = buildHarness(db, { quotaBytes: 10 });
    const u = await h.user('quota@x.io');
    expect(await statusOf(h.put(u, 'root', 'big.bin', 'x'.repeat(11)))).toBe(507);
    // Two uploads that each fit, but not together: the second is refused while the first is open.
    const a = await h.c.uploads.createUpload(u, {
      parentId: 'root',
      name: 'a',
      size: 6,
      sha256: '0'.repeat(64),
      contentType: 'text/plain',
    });
    expect(await h.c.account.usage(u)).toMatchObject({ usedBytes: 0, reservedBytes: 6 });
    expect(await statusOf(h.put(u, 'root', 'b', 'x'.repeat(6)))).toBe(507);
    await h.c.uploads.abortUpload(u, a.uploadId);
    await h.put(u, 'root', 'b', 'x'.repeat(6));
    expect(await statusOf(h.put(u, 'root', 'c', 'x'.repeat(6)))).toBe(507);
    expect(await h.c.account.usage(u)).toMatchObject({ usedBytes: 6, reservedBytes: 0 });
  });

  it('accounts usage of files of 2 GiB and more (bigint deltas, found by the 2 GiB benchmark)', async () => {
    const { ItemRepository } = await import('../../shared/adapters/postgres/item-repository.ts');
    h = buildHarness(db, { quotaBytes: 10 * 1024 ** 3 });
    const u = await h.user('big-usage@x.io');
    const items = db instanceof MemoryDatabase ? memoryMetadataOver(db).items : new ItemRepository(db);
    const threeGiB = 3 * 1024 ** 3;
    expect(await items.chargeUsage(u.userId, threeGiB)).toBe(true);
    expect((await h.c.account.usage(u)).usedBytes).toBe(threeGiB);
    expect(await items.chargeUsage(u.userId, 8 * 1024 ** 3)).toBe(false); // over the 10 GiB quota
    await items.addUsage(u.userId, -threeGiB);
    expect((await h.c.account.usage(u)).usedBytes).toBe(0);
  });

  it('lets a stale upload fail with 409 or land as a conflicted copy', async () => {
    const u = await h.user('conflict@x.io');
    const v1 = await h.put(u, 'root', 'plan.md', 'v1');
    await h.put(u, 'root', 'plan.md', 'v2 from laptop', { baseVersionId: v1.versionId });
    expect(
      await statusOf(h.put(u, 'root', 'plan.md', 'v2 from phone', { baseVersionId: v1.versionId })),
    ).toBe(409);
    const copy = await h.put(u, 'root', 'plan.md', 'v2 from phone', {
      baseVersionId: v1.versionId,
      onConflict: 'copy',
    });
    expect(copy.name).toMatch(/^plan \(conflicted copy conflict \d{4}-\d{2}-\d{2}\)\.md$/);
    expect(await statusOf(h.put(u, 'root', 'new.md', 'x', { baseVersionId: v1.versionId }))).toBe(409);
  });

  it('shares down the tree: viewers read, editors write, strangers see nothing, admins see all', async () => {
    const owner = await h.user('own@x.io');
    const editor = await h.user('ed@x.io');
    const viewer = await h.user('vi@x.io');
    const stranger = await h.user('st@x.io');
    const admin = await h.user('ad@x.io', 'admin');
    const shared = await h.c.folders.createFolder(owner, 'root', 'Shared');
    const inner = await h.c.folders.createFolder(owner, shared.id, 'Inner');
    const f = await h.put(owner, inner.id, 'f.txt', 'data');
    await h.c.permissions.grant(owner, shared.id, 'ed@x.io', 'editor');
    await h.c.permissions.grant(owner, shared.id, 'vi@x.io', 'viewer');
    expect((await h.c.folders.item(viewer, f.fileId)).role).toBe('viewer');
    expect((await h.c.folders.item(editor, f.fileId)).role).toBe('editor');
    expect((await h.c.folders.item(admin, f.fileId)).role).toBe('admin');
    expect(await statusOf(h.c.folders.item(stranger, f.fileId))).toBe(404);
    expect(await statusOf(h.put(viewer, inner.id, 'v.txt', 'no'))).toBe(403);
    const byEditor = await h.put(editor, inner.id, 'e.txt', 'yes');
    expect((await h.c.folders.item(owner, byEditor.fileId)).item.ownerId).toBe(owner.userId);
    expect(await statusOf(h.c.permissions.grant(editor, shared.id, 'st@x.io', 'viewer'))).toBe(403);
    expect((await h.c.permissions.sharedWithMe(viewer)).map((s) => s.item.id)).toEqual([shared.id]);
    const grants = await h.c.permissions.listGrants(owner, shared.id);
    const viewerGrant = grants.find((g) => g.email === 'vi@x.io');
    await h.c.permissions.revoke(owner, viewerGrant?.id ?? '');
    expect(await statusOf(h.c.folders.item(viewer, f.fileId))).toBe(404);
  });

  it('records an audit trail the owner and admins can read, and nobody else', async () => {
    const owner = await h.user('aud@x.io');
    const admin = await h.user('aud-admin@x.io', 'admin');
    const other = await h.user('aud-other@x.io');
    const f = await h.put(owner, 'root', 'a.txt', 'a');
    await h.c.folders.relocate(
      owner,
      f.fileId,
      'file',
      { name: 'b.txt' },
      (await h.c.folders.item(owner, f.fileId)).item.revision,
    );
    await h.c.folders.trash(owner, f.fileId, 'file', undefined);
    const mine = await h.c.account.auditTrail(owner, { limit: 50 });
    expect(mine.items.map((e) => e.action)).toEqual(['item.trash', 'item.rename', 'file.commit']);
    const forAdmin = await h.c.account.auditTrail(admin, { limit: 50 });
    expect(forAdmin.items.some((e) => e.ownerId === owner.userId)).toBe(true);
    expect((await h.c.account.auditTrail(other, { limit: 50 })).items).toEqual([]);
    const paged = await h.c.account.auditTrail(owner, { limit: 2 });
    const rest = await h.c.account.auditTrail(owner, { limit: 2, cursor: paged.nextCursor ?? '' });
    expect([...paged.items, ...rest.items].map((e) => e.action)).toEqual(mine.items.map((e) => e.action));
  });
});
