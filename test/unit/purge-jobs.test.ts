/**
 * The batching of purge jobs on the in-memory metadata adapters: what fits in a batch, a tree
 * deleted leaves first in bounded batches, a failed batch rolled back and run again, leases
 * between workers, a cursor another purge made stale, restores refused under a claimed root,
 * emptying the trash up to the request, and a job that keeps failing. The same port runs on
 * PostgreSQL in test/integration/purge-jobs.test.ts, where rows per transaction are counted by
 * the server.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MemoryCache } from '../../shared/adapters/memory/memory-cache.ts';
import { MemoryDatabase, memoryMetadataOver } from '../../shared/adapters/memory/memory-metadata.ts';
import { MemoryStateStore } from '../../shared/adapters/memory/memory-state-store.ts';
import { NotFoundError } from '../../shared/domain/errors.ts';
import type { Principal } from '../../shared/domain/model.ts';
import { fitting, MAX_FAILURES, ROWS_PER_VERSION } from '../../shared/domain/purge-job.ts';
import { createLogger } from '../../shared/observability/logger.ts';
import type { Database } from '../../shared/ports/database.ts';
import { AccessControl } from '../../shared/services/access-control.ts';
import { FolderService } from '../../shared/services/folder-service.ts';
import { MetadataCache } from '../../shared/services/metadata-cache.ts';
import { LeaseLostError, purgeBatch } from '../../shared/services/purge-batch.ts';
import { PURGE_TRIGGER_PREFIX, PurgeJobs, type PurgeJobsOptions } from '../../shared/services/purge-jobs.ts';
import { type BuiltTree, buildTree, makeUser, rowsOf, type TreePorts } from '../support/purge-trees.ts';

const log = createLogger('silent');

/** A database whose transactions can be made to fail after their work ran (a crash before COMMIT). */
function breakable(db: MemoryDatabase) {
  const control = { failing: 0 };
  const wrapped: Database = {
    dialect: 'memory',
    query: (sql, params) => db.query(sql, params),
    exec: (sql) => db.exec(sql),
    ping: () => db.ping(),
    close: () => db.close(),
    transaction: (work) =>
      db.transaction(async (tx) => {
        const result = await work(tx);
        if (control.failing > 0) {
          control.failing--;
          throw new Error('killed inside the batch');
        }
        return result;
      }),
  };
  return { db: wrapped, control };
}

function world(opts: Partial<PurgeJobsOptions> = {}) {
  let now = Date.parse('2026-03-01T10:00:00Z');
  const clock = { advance: (ms: number) => (now += ms), now: () => now };
  const memory = new MemoryDatabase({ now: () => now });
  const m = memoryMetadataOver(memory);
  const { db, control } = breakable(memory);
  const ports: TreePorts = { ...m, db };
  const cache = new MetadataCache(new MemoryCache(), m.items, log);
  const access = new AccessControl(cache, m.permissions);
  const state = new MemoryStateStore(() => now);
  const reclaimed: string[] = [];
  const purges = new PurgeJobs({
    db,
    jobs: m.purgeJobs,
    items: m.items,
    audit: m.audit,
    access,
    purger: {
      reclaim: async (vs) => {
        reclaimed.push(...vs.map((v) => v.id));
        return vs.length;
      },
    },
    cache,
    state,
    log,
    opts: { inlineRows: 0, limits: { rows: 25, bytes: 1024 ** 2 }, ...opts },
  });
  const folders = new FolderService({
    db,
    items: m.items,
    users: m.users,
    audit: m.audit,
    access,
    cache,
    claims: m.purgeJobs,
  });
  /** One batch under `owner`'s lease, as `PurgeJobs.run` runs it. */
  const batch = (jobId: string, owner: string, rows = 25) =>
    db.transaction((tx) =>
      purgeBatch(
        { jobs: m.purgeJobs.with(tx), items: m.items.with(tx), audit: m.audit.with(tx) },
        jobId,
        owner,
        { limits: { rows, bytes: 1024 ** 2 }, leaseMs: 60_000, blobsReclaimed: 0 },
      ),
    );
  return { m, ports, db, control, clock, state, purges, folders, reclaimed, batch };
}

type World = ReturnType<typeof world>;

async function trashed(
  w: World,
  u: Principal & { rootFolderId: string },
  shape: Parameters<typeof buildTree>[4],
) {
  const tree = await buildTree(w.ports, u.userId, u.rootFolderId, `t-${randomUUID().slice(0, 8)}`, shape);
  await w.m.items.trash(tree.rootId, u.userId);
  return tree;
}

/** Ids of the tree's items still stored. */
async function left(w: World, tree: BuiltTree) {
  const out: string[] = [];
  for (const id of tree.items) if (await w.m.items.get(id)) out.push(id);
  return out;
}

async function usage(w: World, userId: string) {
  return { used: (await w.m.users.get(userId))?.usedBytes, kept: await w.m.items.sumVersionSizes(userId) };
}

/** The job the purge answered 202 with. */
async function accepted(p: ReturnType<PurgeJobs['purge']>) {
  const o = await p;
  if (o.status !== 'accepted') throw new Error(`expected a job, the purge ran inline: ${JSON.stringify(o)}`);
  return o.job;
}

describe('what fits in a batch', () => {
  const c = (ownerId: string, weight = 10) => ({ ownerId, weight });

  it('counts two rows per version (its own, its counter) and one usage row per owner not yet charged', () => {
    const five = [c('a'), c('a'), c('a'), c('a'), c('a')];
    expect(ROWS_PER_VERSION).toBe(2);
    expect(fitting(five, { rows: 8, bytes: 1e6 }, new Set())).toHaveLength(3);
    expect(fitting(five, { rows: 8, bytes: 1e6 }, new Set(['a']))).toHaveLength(4);
    expect(fitting([c('a'), c('b'), c('a')], { rows: 7, bytes: 1e6 }, new Set())).toHaveLength(2);
    expect(fitting([c('a'), c('b'), c('a')], { rows: 8, bytes: 1e6 }, new Set())).toHaveLength(3);
  });

  it('stops at the byte budget, but lets a batch that has done nothing take one row', () => {
    expect(fitting([c('a', 3), c('a', 3), c('a', 3)], { rows: 100, bytes: 7 }, new Set())).toHaveLength(2);
    expect(fitting([c('a', 50)], { rows: 100, bytes: 7 }, new Set())).toHaveLength(0);
    expect(fitting([c('a', 50), c('a', 1)], { rows: 100, bytes: 7 }, new Set(), true)).toHaveLength(1);
    expect(fitting([c('a', 1)], { rows: 2, bytes: 7 }, new Set(), true)).toHaveLength(0);
  });
});

describe('a purge job on the memory adapters', () => {
  it('deletes a tree leaves first in batches of at most N rows, and gives its bytes back once', async () => {
    const w = world();
    const u = await makeUser(w.ports, 'walk@x.io');
    const other = await makeUser(w.ports, 'grantee@x.io');
    const tree = await trashed(w, u, {
      fanout: [3, 2],
      files: 6,
      extraVersionsEvery: 4,
      grantEvery: 5,
      grantee: other.userId,
    });
    const job = await accepted(w.purges.purge(u, tree.rootId));
    expect(job).toMatchObject({
      state: 'queued',
      operation: 'purge',
      rootId: tree.rootId,
      requestedBy: u.userId,
    });
    // The request claimed the root: gone from the trash listing, and past restoring.
    expect(await w.m.items.listTrash(u.userId, 10)).toEqual([]);
    await expect(w.folders.restoreFromTrash(u, tree.rootId)).rejects.toBeInstanceOf(NotFoundError);
    // The worker was asked for through the state store.
    expect(await w.state.get(`${PURGE_TRIGGER_PREFIX}${job.id}`, 'j')).toBeDefined();

    const owner = randomUUID();
    expect(await w.m.purgeJobs.lease(job.id, owner, 60_000)).toBeDefined();
    const before = new Set(tree.items);
    let batches = 0;
    let versionsLeft = tree.versions.length;
    for (let state = 'running'; state !== 'done'; batches++) {
      const itemsBefore = (await left(w, tree)).length;
      const r = await w.batch(job.id, owner, 25);
      state = r.state;
      expect(r.rows, `batch ${batches}`).toBeLessThanOrEqual(25);
      const remaining = await left(w, tree);
      // What is left still hangs from the root: nothing was deleted above something kept.
      for (const id of remaining) {
        const item = await w.m.items.get(id);
        if (id !== tree.rootId) expect(before.has(item?.parentId ?? ''), `parent of ${id}`).toBe(true);
        if (id !== tree.rootId) expect(remaining).toContain(item?.parentId);
      }
      const kept = await w.m.items.sumVersionSizes(u.userId);
      const itemsDeleted = itemsBefore - remaining.length;
      const versionsNowCount = (
        await Promise.all(tree.versions.map((v) => w.m.items.getVersion(v.id)))
      ).filter(Boolean).length;
      // Deleted rows plus the batch's bookkeeping (job row, usage row, audit row) within N.
      expect(itemsDeleted + (versionsLeft - versionsNowCount), `batch ${batches}`).toBeLessThanOrEqual(
        25 - 2,
      );
      versionsLeft = versionsNowCount;
      expect((await w.m.users.get(u.userId))?.usedBytes).toBe(kept);
      expect(batches).toBeLessThan(200);
    }
    expect(batches).toBeGreaterThanOrEqual(Math.ceil((rowsOf(tree) + tree.grants) / 25));
    expect(await left(w, tree)).toEqual([]);
    expect(await usage(w, u.userId)).toEqual({ used: 0, kept: 0 });
    const done = await w.m.purgeJobs.get(job.id);
    expect(done).toMatchObject({
      state: 'done',
      done: rowsOf(tree),
      total: rowsOf(tree),
      purged: { items: tree.items.length, versions: tree.versions.length, bytes: tree.bytes },
      failures: 0,
    });
    expect(await w.m.permissions.forGrantee(other.userId, 100)).toEqual([]);
    const audit = await w.m.audit.list({ ownerId: u.userId, action: 'purge.item' }, 10);
    expect(audit.map((e) => e.event.itemId)).toEqual([tree.rootId]);
  });

  it('rolls a failed batch back whole; running it again changes nothing twice', async () => {
    const w = world();
    const u = await makeUser(w.ports, 'crash@x.io');
    const shape = { fanout: [4], files: 8, extraVersionsEvery: 3 };
    const a = await trashed(w, u, shape);
    const jobA = await accepted(w.purges.purge(u, a.rootId));
    // Two batches, a third killed before its commit.
    expect(await w.purges.run(jobA.id, { maxBatches: 2 })).toBe('more');
    const afterTwo = await w.m.purgeJobs.get(jobA.id);
    const usedAfterTwo = (await w.m.users.get(u.userId))?.usedBytes;
    const leftAfterTwo = await left(w, a);
    w.control.failing = 1;
    expect(await w.purges.run(jobA.id, { maxBatches: 1 })).toBe('retry');
    const afterCrash = await w.m.purgeJobs.get(jobA.id);
    // Nothing of the killed batch stayed: the cursor, the counts, the rows and the usage are as before.
    expect(afterCrash).toMatchObject({
      cursor: afterTwo?.cursor,
      done: afterTwo?.done,
      purged: afterTwo?.purged,
      failures: 1,
      state: 'running',
    });
    expect(afterCrash?.error).toMatch(/delete the item again/);
    expect(await left(w, a)).toEqual(leftAfterTwo);
    expect((await w.m.users.get(u.userId))?.usedBytes).toBe(usedAfterTwo);
    // Resumed: it ends as an uninterrupted purge of the same shape does.
    expect(await w.purges.run(jobA.id)).toBe('done');
    const b = await trashed(w, u, shape);
    const jobB = await accepted(w.purges.purge(u, b.rootId));
    expect(await w.purges.run(jobB.id)).toBe('done');
    const [endA, endB] = [await w.m.purgeJobs.get(jobA.id), await w.m.purgeJobs.get(jobB.id)];
    expect(endA?.purged).toEqual(endB?.purged);
    expect(endA).toMatchObject({ done: rowsOf(a), total: rowsOf(a), failures: 0, error: null });
    expect(await left(w, a)).toEqual([]);
    expect(await usage(w, u.userId)).toEqual({ used: 0, kept: 0 });
    expect(new Set(w.reclaimed).size).toBe(a.versions.length + b.versions.length);
  });

  it('runs a job in one worker at a time; a worker that died is taken over once its lease is past', async () => {
    const w = world({ leaseMs: 30_000, stalledAfterMs: 10_000 });
    const u = await makeUser(w.ports, 'lease@x.io');
    const tree = await trashed(w, u, { fanout: [2], files: 10 });
    const job = await accepted(w.purges.purge(u, tree.rootId));
    // A worker took it and died (its lease stays).
    const dead = randomUUID();
    expect(await w.m.purgeJobs.lease(job.id, dead, 30_000)).toBeDefined();
    expect(await w.purges.run(job.id)).toBe('busy');
    // A batch under a lease it does not hold commits nothing.
    await expect(w.batch(job.id, randomUUID())).rejects.toBeInstanceOf(LeaseLostError);
    expect(await left(w, tree)).toHaveLength(tree.items.length);
    // Not stalled while the lease holds; after it (and the idle time), triggered again and finished.
    await w.state.delete(`${PURGE_TRIGGER_PREFIX}${job.id}`, 'j');
    expect(await w.purges.resumeStalled()).toBe(0);
    w.clock.advance(31_000);
    expect(await w.purges.resumeStalled()).toBe(1);
    const trigger = await w.state.get<Record<string, unknown>>(`${PURGE_TRIGGER_PREFIX}${job.id}`, 'j');
    if (!trigger) throw new Error('no trigger written');
    await w.purges.onTrigger({ kind: 'upsert', item: trigger });
    expect(await w.m.purgeJobs.get(job.id)).toMatchObject({ state: 'done', done: rowsOf(tree) });
    expect(await w.state.get(`${PURGE_TRIGGER_PREFIX}${job.id}`, 'j')).toBeUndefined();
    // The dead worker's batch, were it to wake, commits nothing either.
    await expect(w.batch(job.id, dead)).rejects.toBeInstanceOf(LeaseLostError);
  });

  it('claims the trash roots inside its tree: out of the listing, past restoring, purged with it', async () => {
    const w = world();
    const u = await makeUser(w.ports, 'nested@x.io');
    const outer = await buildTree(w.ports, u.userId, u.rootFolderId, 'Outer', { fanout: [], files: 5 });
    const inner = await buildTree(w.ports, u.userId, outer.rootId, 'Inner', { fanout: [3], files: 6 });
    const lone = await buildTree(w.ports, u.userId, outer.rootId, 'Lone', { fanout: [], files: 2 });
    await w.m.items.trash(inner.rootId, u.userId);
    await w.m.items.trash(lone.rootId, u.userId);
    await w.m.items.trash(outer.rootId, u.userId);
    expect((await w.m.items.listTrash(u.userId, 10)).map((i) => i.id).sort()).toEqual(
      [outer.rootId, inner.rootId, lone.rootId].sort(),
    );
    const job = await accepted(w.purges.purge(u, outer.rootId));
    // Between the claim and the job's first batch, an inner root cannot be restored either.
    await expect(w.folders.restoreFromTrash(u, lone.rootId)).rejects.toBeInstanceOf(NotFoundError);
    expect(await w.purges.run(job.id, { maxBatches: 1 })).toBe('more');
    // The first batch claimed the inner roots: out of the listing, and a purge of one is the job.
    expect(await w.m.items.listTrash(u.userId, 10)).toEqual([]);
    expect((await accepted(w.purges.purge(u, lone.rootId))).id).toBe(job.id);
    await expect(w.folders.restoreFromTrash(u, inner.rootId)).rejects.toBeInstanceOf(NotFoundError);
    expect(await w.purges.run(job.id)).toBe('done');
    for (const t of [outer, inner, lone]) expect(await left(w, t)).toEqual([]);
    expect(await usage(w, u.userId)).toEqual({ used: 0, kept: 0 });
    const end = await w.m.purgeJobs.get(job.id);
    expect(end?.purged).toMatchObject({
      versions: outer.versions.length + inner.versions.length + lone.versions.length,
      bytes: outer.bytes + inner.bytes + lone.bytes,
    });
    const audit = await w.m.audit.list({ ownerId: u.userId, action: 'purge.item' }, 10);
    expect(audit.map((e) => e.event.itemId).sort()).toEqual([outer.rootId, inner.rootId, lone.rootId].sort());
  });

  it('starts again from its root when another purge took what its cursor pointed at; counts each version once', async () => {
    const w = world();
    const u = await makeUser(w.ports, 'race@x.io');
    const outer = await buildTree(w.ports, u.userId, u.rootFolderId, 'Outer', { fanout: [], files: 3 });
    const inner = await buildTree(w.ports, u.userId, outer.rootId, 'Inner', { fanout: [2], files: 8 });
    await w.m.items.trash(inner.rootId, u.userId);
    // The inner root is purged first, by a job of its own, and gets one batch in.
    const first = await accepted(w.purges.purge(u, inner.rootId));
    expect(await w.purges.run(first.id, { maxBatches: 1 })).toBe('more');
    const cursor = (await w.m.purgeJobs.get(first.id))?.cursor;
    expect(inner.items).toContain(cursor);
    // Then the outer folder is trashed and purged: its job walks into Inner beside the first.
    await w.m.items.trash(outer.rootId, u.userId);
    const second = await accepted(w.purges.purge(u, outer.rootId));
    expect(await w.purges.run(second.id)).toBe('done');
    // The first job's cursor points at nothing now: it starts from its root, which is gone too.
    expect(await w.m.items.get(cursor ?? '')).toBeUndefined();
    expect(await w.purges.run(first.id)).toBe('done');
    const [a, b] = [await w.m.purgeJobs.get(first.id), await w.m.purgeJobs.get(second.id)];
    // Every version counted (and its bytes given back) by exactly one of the two.
    expect((a?.purged.versions ?? 0) + (b?.purged.versions ?? 0)).toBe(
      outer.versions.length + inner.versions.length,
    );
    expect((a?.purged.bytes ?? 0) + (b?.purged.bytes ?? 0)).toBe(outer.bytes + inner.bytes);
    expect(await usage(w, u.userId)).toEqual({ used: 0, kept: 0 });
    expect(await left(w, outer)).toEqual([]);
  });

  it('empties the trash as it was at the request, and runs a small one in the request', async () => {
    const w = world({ inlineRows: 50 });
    const u = await makeUser(w.ports, 'empty@x.io');
    const small = await trashed(w, u, { fanout: [], files: 3 });
    const o = await w.purges.emptyTrash(u);
    expect(o).toMatchObject({
      status: 'done',
      report: { items: small.items.length, versions: small.versions.length, bytes: small.bytes },
    });
    // Nothing left: nothing to do, and no job for it.
    expect(await w.purges.emptyTrash(u)).toEqual({
      status: 'done',
      jobId: null,
      report: { items: 0, versions: 0, bytes: 0, blobsReclaimed: 0 },
    });
    const big = world({ inlineRows: 10 });
    const v = await makeUser(big.ports, 'empty-big@x.io');
    const a = await trashed(big, v, { fanout: [2], files: 5 });
    // More roots than one batch claims (24 of them in 25 rows): the claim goes on in the worker.
    const many: BuiltTree[] = [];
    for (let i = 0; i < 30; i++) many.push(await trashed(big, v, { fanout: [], files: 1 }));
    const answer = await big.purges.emptyTrash(v);
    if (answer.status !== 'accepted') throw new Error('expected a job');
    // Its first batch ran in the request: what it claimed is out of the listing already.
    expect((await big.m.items.listTrash(v.userId, 100)).length).toBeLessThanOrEqual(31 - 24);
    big.clock.advance(1000);
    const later = await trashed(big, v, { fanout: [], files: 1 });
    expect(await big.purges.run(answer.job.id)).toBe('done');
    for (const t of [a, ...many]) expect(await left(big, t)).toEqual([]);
    // Trashed after the request: still there.
    expect((await big.m.items.listTrash(v.userId, 100)).map((i) => i.id)).toEqual([later.rootId]);
    const bytes = a.bytes + many.reduce((n, t) => n + t.bytes, 0);
    expect(await big.m.purgeJobs.get(answer.job.id)).toMatchObject({
      state: 'done',
      purged: { versions: a.versions.length + many.length, bytes },
    });
    expect(await usage(big, v.userId)).toEqual({ used: later.bytes, kept: later.bytes });
  });

  it(`fails a job after ${MAX_FAILURES} failed batches in a row; deleting the root again queues it`, async () => {
    const w = world();
    const u = await makeUser(w.ports, 'fail@x.io');
    const tree = await trashed(w, u, { fanout: [2], files: 4 });
    const job = await accepted(w.purges.purge(u, tree.rootId));
    w.control.failing = MAX_FAILURES;
    for (let i = 1; i < MAX_FAILURES; i++) expect(await w.purges.run(job.id)).toBe('retry');
    expect(await w.purges.run(job.id)).toBe('failed');
    expect(await w.m.purgeJobs.get(job.id)).toMatchObject({ state: 'failed', failures: MAX_FAILURES });
    expect(await w.purges.run(job.id)).toBe('busy');
    // Back in the listing, to try again; a restore is still refused (part of it may be gone).
    expect((await w.m.items.listTrash(u.userId, 10)).map((i) => i.id)).toEqual([tree.rootId]);
    await expect(w.folders.restoreFromTrash(u, tree.rootId)).rejects.toBeInstanceOf(NotFoundError);
    const again = await accepted(w.purges.purge(u, tree.rootId));
    expect(again).toMatchObject({ id: job.id, state: 'queued', failures: 0, error: null });
    expect(await w.purges.run(job.id)).toBe('done');
    expect(await left(w, tree)).toEqual([]);
  });

  it('shows a job to its owner and admins only', async () => {
    const w = world();
    const u = await makeUser(w.ports, 'mine@x.io');
    const stranger = await makeUser(w.ports, 'stranger@x.io');
    const admin = await makeUser(w.ports, 'admin@x.io', 'admin');
    const tree = await trashed(w, u, { fanout: [], files: 2 });
    const job = await accepted(w.purges.purge(u, tree.rootId));
    expect((await w.purges.get(u, job.id)).id).toBe(job.id);
    expect((await w.purges.get(admin, job.id)).id).toBe(job.id);
    await expect(w.purges.get(stranger, job.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(w.purges.get(u, randomUUID())).rejects.toBeInstanceOf(NotFoundError);
    // Nor can a stranger purge what is in someone else's trash.
    await expect(w.purges.purge(stranger, tree.rootId)).rejects.toBeInstanceOf(NotFoundError);
  });
});
