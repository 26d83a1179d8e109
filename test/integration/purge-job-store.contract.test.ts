/**
 * The PurgeJobStore port (shared/ports/purge-job-store.ts) exercised directly, one suite on three
 * backends: the in-memory adapter, and the PostgreSQL repository on PGlite and on PostgreSQL 15.
 * The SQL is the contract; the memory adapter must be indistinguishable from it.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMemoryMetadata } from '../../shared/adapters/memory/memory-metadata.ts';
import type { PurgeAdvance } from '../../shared/ports/purge-job-store.ts';
import { sqlBackends } from '../support/fixtures.ts';
import { buildTree, makeUser, rowsOf, sqlTreePorts, type TreePorts } from '../support/purge-trees.ts';

const backends: { name: string; open(): Promise<{ ports: TreePorts; dispose(): Promise<void> }> }[] = [
  { name: 'memory', open: async () => ({ ports: createMemoryMetadata(), dispose: async () => undefined }) },
  ...sqlBackends.map((b) => ({
    name: b.name,
    async open() {
      const { db, dispose } = await b.open();
      return { ports: sqlTreePorts(db), dispose };
    },
  })),
];

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));
const noWork: PurgeAdvance = {
  phase: 'walk',
  cursor: null,
  total: null,
  done: 0,
  purged: { items: 0, versions: 0, bytes: 0, blobsReclaimed: 0 },
  state: 'running',
};

describe.each(backends)('purge job store: $name', (backend) => {
  let p: TreePorts;
  let dispose: () => Promise<void>;
  beforeEach(async () => {
    ({ ports: p, dispose } = await backend.open());
  });
  afterEach(async () => {
    await dispose();
  });

  const job = (ownerId: string, over: { operation?: 'purge' | 'empty-trash'; rootId?: string | null } = {}) =>
    p.purgeJobs.insert({
      id: randomUUID(),
      operation: over.operation ?? 'purge',
      ownerId,
      requestedBy: ownerId,
      rootId: over.rootId ?? null,
      reason: 'explicit',
      phase: 'claim',
    });

  it('claims a trash root once; a claimed root leaves the listing unless its job failed', async () => {
    const u = await makeUser(p, `${randomUUID()}@x.io`);
    const t = await buildTree(p, u.userId, u.rootFolderId, 'T', { fanout: [1], files: 2 });
    const j = await job(u.userId, { rootId: t.rootId });
    expect(j).toMatchObject({
      state: 'queued',
      phase: 'claim',
      done: 0,
      total: null,
      failures: 0,
      cursor: null,
    });
    expect(await p.purgeJobs.claimRoot(j.id, t.rootId)).toBeUndefined(); // not in the trash
    await p.items.trash(t.rootId, u.userId);
    expect(await p.purgeJobs.unclaimedTrash(u.userId, 10)).toEqual([t.rootId]);
    expect((await p.purgeJobs.claimRoot(j.id, t.rootId))?.id).toBe(t.rootId);
    const other = await job(u.userId, { rootId: t.rootId });
    expect(await p.purgeJobs.claimRoot(other.id, t.rootId)).toBeUndefined();
    expect(await p.purgeJobs.claimOf(t.rootId)).toBe(j.id);
    expect(await p.purgeJobs.claimOf(t.items[1] as string)).toBeUndefined();
    expect(await p.purgeJobs.claimedRoot(j.id)).toBe(t.rootId);
    expect(await p.purgeJobs.claimedRoot(other.id)).toBeUndefined();
    expect(await p.purgeJobs.anyClaimed([t.items[1] as string, t.rootId])).toBe(true);
    expect(await p.purgeJobs.anyClaimed([t.items[1] as string])).toBe(false);
    expect(await p.purgeJobs.anyClaimed([])).toBe(false);
    expect(await p.purgeJobs.unclaimedTrash(u.userId, 10)).toEqual([]);
    expect(await p.items.listTrash(u.userId, 10)).toEqual([]);
    // Claimed means no restore either (untrash refuses a root a purge started on).
    expect(
      await p.items.untrash(t.rootId, { parentId: u.rootFolderId, name: 'T', nameKey: 't' }),
    ).toBeUndefined();
    // Its job failed: back in the listing, still claimed.
    const owner = randomUUID();
    await p.purgeJobs.lease(j.id, owner, 60_000);
    expect((await p.purgeJobs.recordFailure(j.id, owner, 'x', 1))?.state).toBe('failed');
    expect((await p.items.listTrash(u.userId, 10)).map((i) => i.id)).toEqual([t.rootId]);
    expect(await p.purgeJobs.claimOf(t.rootId)).toBe(j.id);
  });

  it("claims the owner's trash up to the job's cutoff, and the trash roots inside claimed trees", async () => {
    const u = await makeUser(p, `${randomUUID()}@x.io`);
    const v = await makeUser(p, `${randomUUID()}@x.io`);
    const a = await buildTree(p, u.userId, u.rootFolderId, 'A', { fanout: [], files: 1 });
    const b = await buildTree(p, u.userId, u.rootFolderId, 'B', { fanout: [], files: 1 });
    const outer = await buildTree(p, u.userId, u.rootFolderId, 'Outer', { fanout: [2], files: 1 });
    const theirs = await buildTree(p, v.userId, v.rootFolderId, 'Theirs', { fanout: [], files: 1 });
    const innerId = outer.items[2] as string; // its first subfolder (after the folder and its file)
    for (const id of [a.rootId, b.rootId, innerId, outer.rootId]) await p.items.trash(id, u.userId);
    await p.items.trash(theirs.rootId, v.userId);
    await tick();
    const empty = await job(u.userId, { operation: 'empty-trash' });
    await tick();
    const late = await buildTree(p, u.userId, u.rootFolderId, 'Late', { fanout: [], files: 1 });
    await p.items.trash(late.rootId, u.userId);
    expect(await p.purgeJobs.claimTrash(empty.id, u.userId, 2)).toBe(2);
    expect(await p.purgeJobs.claimTrash(empty.id, u.userId, 10)).toBe(2);
    expect(await p.purgeJobs.claimTrash(empty.id, u.userId, 10)).toBe(0);
    expect(await p.purgeJobs.unclaimedTrash(u.userId, 10)).toEqual([late.rootId]);
    expect(await p.purgeJobs.unclaimedTrash(v.userId, 10)).toEqual([theirs.rootId]);
    // A purge of Outer alone claims its inner trash root with it, and nothing outside.
    const u2 = await makeUser(p, `${randomUUID()}@x.io`);
    const o2 = await buildTree(p, u2.userId, u2.rootFolderId, 'O2', { fanout: [3], files: 1 });
    const inner2 = [o2.items[2], o2.items[4]] as string[]; // two of its three subfolders
    const apart = await buildTree(p, u2.userId, u2.rootFolderId, 'Apart', { fanout: [], files: 1 });
    for (const id of [...inner2, o2.rootId, apart.rootId]) await p.items.trash(id, u2.userId);
    const purge = await job(u2.userId, { rootId: o2.rootId });
    await p.purgeJobs.claimRoot(purge.id, o2.rootId);
    expect(await p.purgeJobs.claimInner(purge.id, 1)).toBe(1);
    expect(await p.purgeJobs.claimInner(purge.id, 10)).toBe(1);
    expect(await p.purgeJobs.claimInner(purge.id, 10)).toBe(0);
    for (const id of inner2) expect(await p.purgeJobs.claimOf(id)).toBe(purge.id);
    expect(await p.purgeJobs.unclaimedTrash(u2.userId, 10)).toEqual([apart.rootId]);
  });

  it('counts items and versions of trees once each, up to a cap', async () => {
    const u = await makeUser(p, `${randomUUID()}@x.io`);
    const t = await buildTree(p, u.userId, u.rootFolderId, 'T', {
      fanout: [2, 2],
      files: 3,
      extraVersionsEvery: 2,
    });
    const sub = t.items[2] as string; // the first folder of level 1
    const subRows = await p.purgeJobs.countRows([sub]);
    expect(await p.purgeJobs.countRows([t.rootId])).toBe(rowsOf(t));
    expect(await p.purgeJobs.countRows([t.rootId, sub])).toBe(rowsOf(t));
    expect(subRows).toBeGreaterThan(0);
    expect(subRows).toBeLessThan(rowsOf(t));
    expect(await p.purgeJobs.countRows([t.rootId], 7)).toBe(7);
    expect(await p.purgeJobs.countRows([t.rootId], 10_000)).toBe(rowsOf(t));
    expect(await p.purgeJobs.countRows([])).toBe(0);
    expect(await p.purgeJobs.countRows([randomUUID()])).toBe(0);
    await p.items.trash(t.rootId, u.userId);
    const j = await job(u.userId, { rootId: t.rootId });
    expect(await p.purgeJobs.countRows({ jobId: j.id })).toBe(0);
    await p.purgeJobs.claimRoot(j.id, t.rootId);
    expect(await p.purgeJobs.countRows({ jobId: j.id })).toBe(rowsOf(t));
  });

  it('walks: child folders, the versions and grants of a folder and its files, files then the folder', async () => {
    const u = await makeUser(p, `${randomUUID()}@x.io`);
    const g = await makeUser(p, `${randomUUID()}@x.io`);
    const t = await buildTree(p, u.userId, u.rootFolderId, 'T', {
      fanout: [1],
      files: 3,
      extraVersionsEvery: 1,
      grantEvery: 1,
      grantee: g.userId,
    });
    // T holds one file and folder d0-0, which holds three files, each with three versions.
    const [root, rootFile, sub] = t.items as [string, string, string];
    expect(await p.purgeJobs.childFolder(root)).toBe(sub);
    expect(await p.purgeJobs.childFolder(sub)).toBeUndefined();
    expect(await p.purgeJobs.node(sub)).toMatchObject({
      id: sub,
      parentId: root,
      kind: 'folder',
      claimedBy: null,
    });
    expect(await p.purgeJobs.node(randomUUID())).toBeUndefined();
    // Versions of the files directly in it (not deeper), and of a file itself.
    const rootVersions = await p.purgeJobs.versionsUnder(root, 100);
    expect(rootVersions.map((v) => v.fileId)).toEqual([rootFile, rootFile, rootFile]);
    expect(rootVersions[0]).toMatchObject({ ownerId: u.userId, nodeId: 'n1', size: expect.any(Number) });
    expect(rootVersions[0]?.weight).toBeGreaterThan(256);
    expect((await p.purgeJobs.versionsUnder(rootFile, 100)).length).toBe(3);
    expect((await p.purgeJobs.versionsUnder(sub, 100)).length).toBe(9);
    expect((await p.purgeJobs.versionsUnder(sub, 4)).length).toBe(4);
    expect(await p.purgeJobs.versionsUnder(sub, 0)).toEqual([]);
    // Nothing goes while it still has versions; the folder not while it has files.
    expect(await p.purgeJobs.deleteFilesUnder(sub, 10)).toEqual([]);
    expect(await p.purgeJobs.deleteIfEmpty(sub)).toBe(false);
    const subVersions = await p.purgeJobs.versionsUnder(sub, 100);
    expect((await p.items.deleteVersions(subVersions.map((v) => v.id))).size).toBe(9);
    // Grants on the folder and on its files: 4 of them, a limited number at a time.
    expect(await p.purgeJobs.deleteGrantsUnder(sub, 3)).toBe(3);
    expect(await p.purgeJobs.deleteGrantsUnder(sub, 10)).toBe(1);
    expect(await p.purgeJobs.deleteGrantsUnder(sub, 10)).toBe(0);
    expect((await p.permissions.forGrantee(g.userId, 10)).length).toBe(2); // the root's and its file's
    expect((await p.purgeJobs.deleteFilesUnder(sub, 2)).length).toBe(2);
    expect((await p.purgeJobs.deleteFilesUnder(sub, 2)).length).toBe(1);
    expect(await p.purgeJobs.deleteIfEmpty(root)).toBe(false); // sub and its file are in it
    expect(await p.purgeJobs.deleteIfEmpty(sub)).toBe(true);
    expect(await p.items.get(sub)).toBeUndefined();
    // A file goes by itself once its versions are gone; a user's root folder never.
    await p.items.deleteVersions(rootVersions.map((v) => v.id));
    expect(await p.purgeJobs.deleteIfEmpty(rootFile)).toBe(true);
    await p.purgeJobs.deleteGrantsUnder(root, 10);
    expect(await p.purgeJobs.deleteIfEmpty(root)).toBe(true);
    const empty = await makeUser(p, `${randomUUID()}@x.io`);
    expect(await p.purgeJobs.deleteIfEmpty(empty.rootFolderId)).toBe(false);
  });

  it('leases: one holder, fenced batches, failures, requeue, stalled and finished jobs', async () => {
    const u = await makeUser(p, `${randomUUID()}@x.io`);
    const j = await job(u.userId);
    const [a, b] = [randomUUID(), randomUUID()];
    expect(await p.purgeJobs.lockLeased(j.id, a)).toBeUndefined();
    expect(await p.purgeJobs.advance(j.id, a, noWork, 60_000)).toBe(false);
    expect(await p.purgeJobs.lease(j.id, a, 60_000)).toMatchObject({ state: 'running' });
    expect(await p.purgeJobs.lease(j.id, b, 60_000)).toBeUndefined();
    expect((await p.purgeJobs.lockLeased(j.id, a))?.id).toBe(j.id);
    expect(await p.purgeJobs.lockLeased(j.id, b)).toBeUndefined();
    expect(await p.purgeJobs.advance(j.id, b, noWork, 60_000)).toBe(false);
    const step: PurgeAdvance = {
      phase: 'walk',
      cursor: u.rootFolderId,
      total: 10,
      done: 4,
      purged: { items: 1, versions: 3, bytes: 30, blobsReclaimed: 0 },
      state: 'running',
    };
    expect(await p.purgeJobs.advance(j.id, a, step, 60_000)).toBe(true);
    expect(await p.purgeJobs.advance(j.id, a, { ...step, total: null, cursor: null }, 60_000)).toBe(true);
    await p.purgeJobs.addReclaimed(j.id, 2);
    expect(await p.purgeJobs.get(j.id)).toMatchObject({
      phase: 'walk',
      cursor: null,
      total: 10,
      done: 8,
      purged: { items: 2, versions: 6, bytes: 60, blobsReclaimed: 2 },
    });
    // Not stalled while leased; released and idle, it is.
    await tick();
    expect(await p.purgeJobs.stalled(0, 10)).toEqual([]);
    await p.purgeJobs.release(j.id, a);
    await tick();
    expect(await p.purgeJobs.stalled(0, 10)).toEqual([j.id]);
    expect(await p.purgeJobs.stalled(60_000, 10)).toEqual([]);
    // A lease lapses: another worker takes over, and the first one's batches are refused.
    expect(await p.purgeJobs.lease(j.id, a, 1)).toBeDefined();
    await tick(20);
    expect(await p.purgeJobs.lease(j.id, b, 60_000)).toBeDefined();
    expect(await p.purgeJobs.advance(j.id, a, noWork, 60_000)).toBe(false);
    // Failures in a row: failed at the limit; a successful batch in between resets the count.
    expect((await p.purgeJobs.recordFailure(j.id, b, 'oops', 2))?.state).toBe('running');
    await p.purgeJobs.lease(j.id, b, 60_000);
    expect(await p.purgeJobs.advance(j.id, b, noWork, 60_000)).toBe(true);
    expect((await p.purgeJobs.get(j.id))?.failures).toBe(0);
    expect((await p.purgeJobs.recordFailure(j.id, b, 'oops', 2))?.failures).toBe(1);
    await p.purgeJobs.lease(j.id, b, 60_000);
    expect(await p.purgeJobs.recordFailure(j.id, a, 'not the holder', 2)).toBeUndefined();
    const failed = await p.purgeJobs.recordFailure(j.id, b, 'oops', 2);
    expect(failed).toMatchObject({
      state: 'failed',
      failures: 2,
      error: 'oops',
      finishedAt: expect.any(Date),
    });
    expect(await p.purgeJobs.lease(j.id, a, 60_000)).toBeUndefined();
    await tick();
    expect(await p.purgeJobs.stalled(0, 10)).toEqual([]);
    expect(await p.purgeJobs.forgetFinished(0, 10)).toBe(0); // a failed job is kept
    expect(await p.purgeJobs.requeue(j.id)).toMatchObject({ state: 'queued', failures: 0, error: null });
    expect(await p.purgeJobs.requeue(j.id)).toBeUndefined();
    // Done: the lease goes, the total is what was done, and it is forgotten in time.
    await p.purgeJobs.lease(j.id, a, 60_000);
    expect(await p.purgeJobs.advance(j.id, a, { ...step, state: 'done' }, 60_000)).toBe(true);
    expect(await p.purgeJobs.get(j.id)).toMatchObject({ state: 'done', done: 12, total: 12 });
    expect(await p.purgeJobs.lease(j.id, b, 60_000)).toBeUndefined();
    expect(await p.purgeJobs.forgetFinished(60_000, 10)).toBe(0);
    await tick();
    expect(await p.purgeJobs.forgetFinished(0, 10)).toBe(1);
    expect(await p.purgeJobs.get(j.id)).toBeUndefined();
  });
});
