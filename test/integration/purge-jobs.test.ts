/**
 * Purge jobs on PostgreSQL 15: trees of thousands of items purged in batches, with the rows each
 * transaction changed counted by the server (`pg_stat_xact_user_tables`: its inserts, updates and
 * deletes between the transaction's start and just before COMMIT), bytes given back once, a
 * job killed inside a batch resuming from its cursor to the end state of an uninterrupted run,
 * trash and restore of a big tree as transactions of constant size, and restores and purges racing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBlobStore } from '../../shared/adapters/memory/memory-blob-store.ts';
import { MemoryCache } from '../../shared/adapters/memory/memory-cache.ts';
import { PurgeJobRepository } from '../../shared/adapters/postgres/purge-job-repository.ts';
import { SqlStateStore } from '../../shared/adapters/postgres/sql-state-store.ts';
import { NotFoundError } from '../../shared/domain/errors.ts';
import { createLogger } from '../../shared/observability/logger.ts';
import type { Database, SqlExecutor } from '../../shared/ports/database.ts';
import type { ItemStore } from '../../shared/ports/metadata.ts';
import { AccessControl } from '../../shared/services/access-control.ts';
import { FolderService } from '../../shared/services/folder-service.ts';
import { MetadataCache } from '../../shared/services/metadata-cache.ts';
import { NodeRegistry } from '../../shared/services/node-registry.ts';
import { PURGE_TRIGGER_PREFIX, PurgeJobs, type PurgeJobsOptions } from '../../shared/services/purge-jobs.ts';
import { Purger } from '../../shared/services/purger.ts';
import { ReplicaLedger } from '../../shared/services/replica-ledger.ts';
import { sqlBackends } from '../support/fixtures.ts';
import { type BuiltTree, buildTree, makeUser, rowsOf, sqlTreePorts } from '../support/purge-trees.ts';

const log = createLogger('silent');
const N = 200;
const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const d of disposers.splice(0)) await d();
});

/**
 * The database, its transactions measured: each records the rows it changed, as the server counts
 * them, just before it commits. `failIn` kills the n-th transaction from now inside its work.
 */
function measured(db: Database) {
  const rows: number[] = [];
  const control = { failIn: 0 };
  const wrapped: Database = {
    dialect: db.dialect,
    query: (sql, params) => db.query(sql, params),
    exec: (sql) => db.exec(sql),
    ping: () => db.ping(),
    close: () => db.close(),
    transaction: (work) =>
      db.transaction(async (tx) => {
        // A difference: PostgreSQL 15 may still hold earlier transactions' counts of this
        // connection, not yet flushed, in the same view.
        const changed = async () =>
          Number(
            (
              await tx.query<{ n: number }>(
                'select coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::int as n from pg_stat_xact_user_tables',
              )
            )[0]?.n,
          );
        const before = await changed();
        const result = await work(tx);
        const n = (await changed()) - before;
        if (control.failIn > 0 && --control.failIn === 0) throw new Error('killed inside the batch');
        rows.push(n);
        return result;
      }),
  };
  return { db: wrapped, rows, control };
}

/** The item store, running `hook` ahead of every call of `method` (in its transaction). */
function hooked(
  items: ItemStore,
  method: 'deleteVersions' | 'lockTree',
  hook: () => Promise<void>,
): ItemStore {
  const wrap = (store: ItemStore): ItemStore =>
    new Proxy(store, {
      get(target, key) {
        if (key === 'with') return (tx: SqlExecutor) => wrap(target.with(tx));
        const value = Reflect.get(target, key);
        if (typeof value !== 'function') return value;
        if (key !== method) return value.bind(target);
        return async (...args: unknown[]) => {
          await hook();
          return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        };
      },
    });
  return wrap(items);
}

/** The purge job store, remembering every item the walk looked at. */
class RecordingJobs extends PurgeJobRepository {
  visited: string[] = [];
  override with(tx: SqlExecutor): RecordingJobs {
    const r = new RecordingJobs(tx);
    r.visited = this.visited;
    return r;
  }
  override node(id: string) {
    this.visited.push(id);
    return super.node(id);
  }
}

async function world(opts: Partial<PurgeJobsOptions> = {}) {
  const pg = sqlBackends.find((b) => b.name === 'postgres');
  if (!pg) throw new Error('no postgres backend');
  const { db, dispose } = await pg.open();
  disposers.push(dispose);
  const ports = sqlTreePorts(db);
  const blobs = new MemoryBlobStore('n1');
  const nodes = new NodeRegistry(
    [
      {
        id: 'n1',
        kind: 'localfs',
        region: 'default',
        weight: 1,
        store: blobs,
        health: 'healthy',
        draining: false,
      },
    ],
    1,
  );
  const state = new SqlStateStore(db);
  const purger = new Purger(db, ports.items, ports.audit, nodes, new ReplicaLedger(state), log);
  const m = measured(db);
  const cache = new MetadataCache(new MemoryCache(), ports.items, log);
  const access = new AccessControl(cache, ports.permissions);
  const jobs = new RecordingJobs(db);
  /** The purge jobs over these stores; `items` may be a wrapped one. */
  const purgesOver = (items: ItemStore) =>
    new PurgeJobs({
      db: m.db,
      jobs,
      items,
      audit: ports.audit,
      access,
      purger,
      cache,
      state,
      log,
      opts: { inlineRows: 300, limits: { rows: N, bytes: 4 * 1024 * 1024 }, ...opts },
    });
  const purges = purgesOver(ports.items);
  const foldersOver = (items: ItemStore) =>
    new FolderService({
      db: m.db,
      items,
      users: ports.users,
      audit: ports.audit,
      access,
      cache,
      claims: ports.purgeJobs,
    });
  const folders = foldersOver(ports.items);
  /** A tree whose every version has its blob on the node. */
  const tree = async (
    ownerId: string,
    parentId: string,
    name: string,
    shape: Parameters<typeof buildTree>[4],
  ) => {
    const t = await buildTree(ports, ownerId, parentId, name, shape);
    for (const v of t.versions) await blobs.write(v.blobKey, Buffer.from(v.id));
    return t;
  };
  return { db, ports, blobs, state, m, jobs, purges, purgesOver, folders, foldersOver, tree };
}

type World = Awaited<ReturnType<typeof world>>;

const countIn = async (w: World, table: 'items' | 'versions', ids: readonly string[]) => {
  const [row] = await w.db.query<{ n: string }>(
    `select count(*)::text as n from ${table} where id = any($1::uuid[])`,
    [ids as unknown as string],
  );
  return Number(row?.n);
};

const usage = async (w: World, userId: string) => ({
  used: (await w.ports.users.get(userId))?.usedBytes,
  kept: await w.ports.items.sumVersionSizes(userId),
});

async function jobOf(p: ReturnType<PurgeJobs['purge']>) {
  const o = await p;
  if (o.status !== 'accepted') throw new Error('expected a job');
  return o.job;
}

describe('purge jobs on PostgreSQL', () => {
  it(`purges a tree of thousands of items in batches of at most ${N} changed rows, giving its bytes back once`, async () => {
    const w = await world();
    const u = await makeUser(w.ports, 'big@x.io');
    const other = await makeUser(w.ports, 'other@x.io');
    const big = await w.tree(u.userId, u.rootFolderId, 'Big', {
      fanout: [30],
      files: 100,
      extraVersionsEvery: 10,
      grantEvery: 40,
      grantee: other.userId,
    });
    const bystander = await w.tree(other.userId, other.rootFolderId, 'Mine', { fanout: [2], files: 5 });
    expect(big.items.length).toBeGreaterThan(3000);
    await w.folders.trash(u, big.rootId, 'folder', undefined);
    expect(await usage(w, u.userId)).toEqual({ used: big.bytes, kept: big.bytes });

    // Too big for the request: a job, its root claimed, its worker asked for.
    w.m.rows.length = 0;
    const job = await jobOf(w.purges.purge(u, big.rootId));
    expect(w.m.rows).toEqual([2]); // the job row and the claim
    expect(await w.ports.items.listTrash(u.userId, 10)).toEqual([]);
    expect(await w.state.get(`${PURGE_TRIGGER_PREFIX}${job.id}`, 'j')).toBeDefined();

    w.m.rows.length = 0;
    expect(await w.purges.run(job.id)).toBe('done');
    // Every batch within N rows as the server counted them; and they were batches, not one.
    expect(Math.max(...w.m.rows)).toBeLessThanOrEqual(N);
    expect(Math.max(...w.m.rows)).toBeGreaterThan(N / 2);
    expect(w.m.rows.length).toBeGreaterThanOrEqual(Math.ceil((rowsOf(big) + big.grants) / N));
    expect(await countIn(w, 'items', big.items)).toBe(0);
    expect(
      await countIn(
        w,
        'versions',
        big.versions.map((v) => v.id),
      ),
    ).toBe(0);
    expect(await w.ports.permissions.forGrantee(other.userId, 10)).toEqual([]);
    expect(await usage(w, u.userId)).toEqual({ used: 0, kept: 0 });
    expect(await w.purges.get(u, job.id)).toMatchObject({
      state: 'done',
      done: rowsOf(big),
      total: rowsOf(big),
      purged: {
        items: big.items.length,
        versions: big.versions.length,
        bytes: big.bytes,
        blobsReclaimed: big.versions.length,
      },
    });
    // Only the bystander's blobs are left, and its tree and usage are as they were.
    expect([...w.blobs.objects.keys()].sort()).toEqual(bystander.versions.map((v) => v.blobKey).sort());
    expect(await countIn(w, 'items', bystander.items)).toBe(bystander.items.length);
    expect(await usage(w, other.userId)).toEqual({ used: bystander.bytes, kept: bystander.bytes });
    const audit = await w.ports.audit.list({ ownerId: u.userId, action: 'purge.item' }, 10);
    expect(audit.map((e) => e.event.itemId)).toEqual([big.rootId]);
  }, 180_000);

  it('resumes a job killed inside a batch from its cursor, to the end state of an uninterrupted run', async () => {
    const w = await world({ limits: { rows: 100, bytes: 4 * 1024 * 1024 } });
    const shape = { fanout: [10], files: 60, extraVersionsEvery: 7 };
    const [u1, u2] = [await makeUser(w.ports, 'calm@x.io'), await makeUser(w.ports, 'killed@x.io')];
    const calm = await w.tree(u1.userId, u1.rootFolderId, 'Same', shape);
    const killed = await w.tree(u2.userId, u2.rootFolderId, 'Same', shape);
    await w.folders.trash(u1, calm.rootId, 'folder', undefined);
    await w.folders.trash(u2, killed.rootId, 'folder', undefined);

    const calmJob = await jobOf(w.purges.purge(u1, calm.rootId));
    expect(await w.purges.run(calmJob.id)).toBe('done');

    const job = await jobOf(w.purges.purge(u2, killed.rootId));
    expect(await w.purges.run(job.id, { maxBatches: 4 })).toBe('more');
    const before = await w.jobs.get(job.id);
    const itemsBefore = await countIn(w, 'items', killed.items);
    const usedBefore = (await w.ports.users.get(u2.userId))?.usedBytes;
    expect(before?.cursor).not.toBeNull();
    // The fifth batch throws after its statements ran, before COMMIT.
    w.m.control.failIn = 1;
    expect(await w.purges.run(job.id)).toBe('retry');
    const after = await w.jobs.get(job.id);
    expect(after).toMatchObject({
      cursor: before?.cursor,
      done: before?.done,
      purged: before?.purged,
      failures: 1,
    });
    expect(await countIn(w, 'items', killed.items)).toBe(itemsBefore);
    expect((await w.ports.users.get(u2.userId))?.usedBytes).toBe(usedBefore);

    // Resumed: the walk starts where the last committed batch left it.
    w.jobs.visited.length = 0;
    expect(await w.purges.run(job.id)).toBe('done');
    expect(w.jobs.visited[0]).toBe(before?.cursor);
    const [a, b] = [await w.jobs.get(calmJob.id), await w.jobs.get(job.id)];
    expect(b?.purged).toEqual(a?.purged);
    expect(b).toMatchObject({ state: 'done', done: rowsOf(killed), total: rowsOf(killed), failures: 0 });
    expect(await countIn(w, 'items', killed.items)).toBe(0);
    expect(await usage(w, u2.userId)).toEqual(await usage(w, u1.userId));
    expect(await usage(w, u2.userId)).toEqual({ used: 0, kept: 0 });
    expect(w.blobs.objects.size).toBe(0);
  }, 120_000);

  it('gives bytes back once when two purges delete the same versions at the same time', async () => {
    const w = await world({ inlineRows: 0, limits: { rows: 60, bytes: 4 * 1024 * 1024 } });
    const u = await makeUser(w.ports, 'overlap@x.io');
    const outer = await w.tree(u.userId, u.rootFolderId, 'Outer', { fanout: [], files: 3 });
    const inner = await w.tree(u.userId, outer.rootId, 'Inner', { fanout: [2], files: 20 });
    await w.folders.trash(u, inner.rootId, 'folder', undefined);
    const first = await jobOf(w.purges.purge(u, inner.rootId));
    await w.folders.trash(u, outer.rootId, 'folder', undefined);
    const second = await jobOf(w.purges.purge(u, outer.rootId));
    // The first job's first batch has picked its versions; before it deletes them, the second job
    // purges the whole outer tree (Inner with it) and commits.
    let raced = false;
    const racing = w.purgesOver(
      hooked(w.ports.items, 'deleteVersions', async () => {
        if (raced) return;
        raced = true;
        expect(await w.purges.run(second.id)).toBe('done');
      }),
    );
    expect(await racing.run(first.id)).toBe('done');
    expect(raced).toBe(true);
    const [a, b] = [await w.jobs.get(first.id), await w.jobs.get(second.id)];
    // Each version counted, and its bytes given back, by exactly one of them.
    expect((a?.purged.versions ?? 0) + (b?.purged.versions ?? 0)).toBe(
      outer.versions.length + inner.versions.length,
    );
    expect((a?.purged.bytes ?? 0) + (b?.purged.bytes ?? 0)).toBe(outer.bytes + inner.bytes);
    expect(await usage(w, u.userId)).toEqual({ used: 0, kept: 0 });
    expect(await countIn(w, 'items', [...outer.items, ...inner.items])).toBe(0);
  }, 120_000);

  it('refuses a move whose folder was trashed after its check, so no part of a purge comes back', async () => {
    const w = await world({ inlineRows: 0 });
    const u = await makeUser(w.ports, 'mover@x.io');
    const a = await w.tree(u.userId, u.rootFolderId, 'A', { fanout: [1, 1], files: 4 });
    const x = a.items[2] as string; // A's subfolder, which the move takes out
    const dest = await w.folders.createFolder(u, 'root', 'Elsewhere');
    const revision = (await w.ports.items.get(x))?.revision as number;
    // The move has passed its access check; before its transaction locks anything, A is trashed.
    let trashed = false;
    const racing = w.foldersOver(
      hooked(w.ports.items, 'lockTree', async () => {
        if (trashed) return;
        trashed = true;
        await w.folders.trash(u, a.rootId, 'folder', undefined);
      }),
    );
    await expect(racing.relocate(u, x, 'folder', { parentId: dest.id }, revision)).rejects.toBeInstanceOf(
      NotFoundError,
    );
    expect(trashed).toBe(true);
    expect((await w.ports.items.get(x))?.parentId).toBe(a.rootId);
    // So the purge takes all of A, and nothing of it is left in the live tree.
    const job = await jobOf(w.purges.purge(u, a.rootId));
    expect(await w.purges.run(job.id)).toBe('done');
    expect(await countIn(w, 'items', a.items)).toBe(0);
    expect(await usage(w, u.userId)).toEqual({ used: 0, kept: 0 });
  }, 60_000);

  it('trashes and restores a tree of thousands of items in transactions of two rows', async () => {
    const w = await world();
    const u = await makeUser(w.ports, 'flip@x.io');
    const t = await w.tree(u.userId, u.rootFolderId, 'Flip', { fanout: [20], files: 60 });
    w.m.rows.length = 0;
    await w.folders.trash(u, t.rootId, 'folder', undefined);
    expect(w.m.rows).toEqual([2]); // the trash root and its audit record
    w.m.rows.length = 0;
    const back = await w.folders.restoreFromTrash(u, t.rootId);
    expect(w.m.rows).toEqual([2]);
    expect(back.parentId).toBe(u.rootFolderId);
    expect(await countIn(w, 'items', t.items)).toBe(t.items.length);
  }, 120_000);

  it('races restores of an inner trash root with purges of its folder: one wins, bytes go back once', async () => {
    const w = await world({ inlineRows: 0 });
    const u = await makeUser(w.ports, 'race@x.io');
    let restored = 0;
    for (let round = 0; round < 6; round++) {
      const outer: BuiltTree = await w.tree(u.userId, u.rootFolderId, `Outer${round}`, {
        fanout: [2],
        files: 5,
      });
      const inner = await w.tree(u.userId, outer.rootId, 'Inner', { fanout: [1], files: 6 });
      await w.folders.trash(u, inner.rootId, 'folder', undefined);
      await w.folders.trash(u, outer.rootId, 'folder', undefined);
      const [restore, purge, purgeAgain] = await Promise.allSettled([
        w.folders.restoreFromTrash(u, inner.rootId),
        w.purges.purge(u, outer.rootId),
        w.purges.purge(u, outer.rootId),
      ]);
      if (restore.status === 'rejected') expect(restore.reason).toBeInstanceOf(NotFoundError);
      // Two purges of one root: one job, the other answers it.
      const ids = [purge, purgeAgain].map((r) =>
        r.status === 'fulfilled' && r.value.status === 'accepted' ? r.value.job.id : undefined,
      );
      expect(ids[0]).toBeDefined();
      expect(ids[1]).toBe(ids[0]);
      expect(await w.purges.run(ids[0] as string)).toBe('done');
      expect(await countIn(w, 'items', outer.items)).toBe(0);
      if (restore.status === 'fulfilled') {
        restored++;
        // Restored whole, out of the purged tree, into the root.
        expect(restore.value.parentId).toBe(u.rootFolderId);
        expect(await countIn(w, 'items', inner.items)).toBe(inner.items.length);
        expect(
          await countIn(
            w,
            'versions',
            inner.versions.map((v) => v.id),
          ),
        ).toBe(inner.versions.length);
      } else expect(await countIn(w, 'items', inner.items)).toBe(0);
      const { used, kept } = await usage(w, u.userId);
      expect(used, `round ${round}`).toBe(kept);
    }
    log.info('restore won', { rounds: 6, restored });
  }, 120_000);
});
