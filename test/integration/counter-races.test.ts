/**
 * The counters under concurrency, on PostgreSQL with a pool of connections (PGlite serializes
 * everything and never shows a race). Many clients at once commit versions (charge, then insert, as
 * a commit does), purge them (delete, then give the bytes back, as a purge does) and recount
 * shards (the CounterAudit), all on a few shards and two nodes so they keep meeting on the same
 * counter rows; others move replicas of the same few versions through the ledger at once, with
 * summary reconciliations beside them. Afterwards the invariants: every counter equals a recount
 * from the rows themselves, no shard recount finds drift, usage equals the retained versions, and
 * no operation failed (a deadlock between a commit and a purge would be one).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ItemRepository } from '../../shared/adapters/postgres/item-repository.ts';
import { migrate } from '../../shared/adapters/postgres/migrations.ts';
import { openPgDatabase } from '../../shared/adapters/postgres/pg-database.ts';
import { SqlStateStore } from '../../shared/adapters/postgres/sql-state-store.ts';
import { UserRepository } from '../../shared/adapters/postgres/user-repository.ts';
import { VERSION_SHARDS } from '../../shared/domain/counter-shards.ts';
import { ConditionFailedError } from '../../shared/domain/errors.ts';
import type { Database } from '../../shared/ports/database.ts';
import {
  type Replica,
  ReplicaLedger,
  type ReplicaState,
  summarize,
} from '../../shared/services/replica-ledger.ts';
import { uid } from '../support/fixtures.ts';

const CLIENTS = 16;
const SHARDS = ['3c', '3d', 'a0'];
const NODES = ['n1', 'n2'];
const STATES: ReplicaState[] = ['pending', 'verified', 'failed', 'missing'];
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)] as T;
/** The rest of a real transaction's work (items, audit) between its statements: windows for races. */
const work = () => new Promise((r) => setTimeout(r, Math.random() * 4));

let db: Database;
let schema: string;
/** Transactions the adapter had to run again: on PostgreSQL only a deadlock (40P01) does that. */
let retried = 0;

beforeAll(async () => {
  schema = uid('t_');
  db = await openPgDatabase({
    connectionString: inject('pgUrl'),
    schema,
    max: CLIENTS + 2,
    retry: { onConflict: () => void retried++ },
  });
  await migrate(db);
});
afterAll(async () => {
  await db.query(`drop schema ${schema} cascade`);
  await db.close();
});

describe('counters under concurrent clients on PostgreSQL', () => {
  it('version counters equal a recount after racing commits, purges and shard recounts', async () => {
    const items = new ItemRepository(db);
    const users = new UserRepository(db);
    const owners = await Promise.all(
      [1, 2].map((i) =>
        users.ensure({ id: randomUUID(), email: `o${i}@x.io`, role: 'user', quotaBytes: 2 ** 50 }),
      ),
    );
    const fileOf = new Map<string, string>();
    for (const o of owners) {
      const fileId = randomUUID();
      const first = await items.insertVersion({
        id: `${SHARDS[0]}${randomUUID().slice(2)}`,
        fileId,
        nodeId: 'n1',
        blobKey: `b/${fileId}`,
        size: 1,
        sha256: 'a'.repeat(64),
        contentType: 'x/y',
        createdBy: o.id,
        contentHash: null,
        partSize: null,
        partHashes: null,
        scanState: null,
      });
      await items.chargeUsage(o.id, 1);
      await items.insertFile({
        id: fileId,
        ownerId: o.id,
        parentId: o.rootFolderId,
        name: 'f',
        nameKey: 'f',
        contentType: 'x/y',
        size: 1,
        versionId: first.id,
      });
      fileOf.set(o.id, fileId);
    }
    const live = new Map<string, { owner: string; size: number }>();
    const failures: unknown[] = [];
    const done = { commits: 0, purges: 0, recounts: 0, around: 0 };
    // counters minus versions: writes around the counters move it, a recount reports it and
    // brings it back to zero, and nothing else may change it (a lost update would).
    const expectedOff = { versions: 0, bytes: 0 };
    const newVersion = (id: string, owner: string, size: number) => ({
      id,
      fileId: fileOf.get(owner) as string,
      nodeId: pick(NODES),
      blobKey: `b/${id}`,
      size,
      sha256: 'a'.repeat(64),
      contentType: 'x/y',
      createdBy: owner,
      contentHash: null,
      partSize: null,
      partHashes: null,
      scanState: null,
    });
    const client = async () => {
      for (let n = 0; n < 30; n++) {
        const roll = Math.random();
        const owner = pick(owners).id;
        const size = 1 + Math.floor(Math.random() * 1000);
        const id = `${pick(SHARDS)}${randomUUID().slice(2)}`;
        try {
          if (roll < 0.45) {
            await db.transaction(async (tx) => {
              const repo = items.with(tx);
              await repo.chargeUsage(owner, size);
              await work();
              await repo.insertVersion(newVersion(id, owner, size));
              await work();
            });
            live.set(id, { owner, size });
            done.commits++;
          } else if (roll < 0.7) {
            const doomed = [...live.entries()]
              .filter(([, v]) => v.owner === owner)
              .slice(0, 1 + Math.floor(Math.random() * 4));
            if (doomed.length === 0) continue;
            await db.transaction(async (tx) => {
              const repo = items.with(tx);
              const gone = await repo.deleteVersions(doomed.map(([v]) => v));
              await work();
              const bytes = doomed.filter(([v]) => gone.has(v)).reduce((sum, [, v]) => sum + v.size, 0);
              if (bytes) await repo.chargeUsage(owner, -bytes);
            });
            for (const [v] of doomed) live.delete(v);
            done.purges++;
          } else if (roll < 0.9) {
            const off = await items.recountShard(pick(SHARDS));
            expectedOff.versions -= off.versions;
            expectedOff.bytes -= off.bytes;
            done.recounts++;
          } else {
            // Code from before the counters (an old function during a deploy) writes a version.
            const v = newVersion(id, owner, size);
            await db.query(
              `insert into versions (id, file_id, node_id, blob_key, size, sha256, content_type, created_by)
               values ($1, $2, $3, $4, $5, $6, $7, $8)`,
              [v.id, v.fileId, v.nodeId, v.blobKey, v.size, v.sha256, v.contentType, v.createdBy],
            );
            await items.chargeUsage(owner, size);
            live.set(id, { owner, size });
            expectedOff.versions -= 1;
            expectedOff.bytes -= size;
            done.around++;
          }
        } catch (err) {
          failures.push(err);
        }
      }
    };
    retried = 0;
    await Promise.all(Array.from({ length: CLIENTS }, client));
    expect(failures).toEqual([]);
    // A purge takes the owner's row before the counters, as a commit does: no deadlock to retry.
    expect(retried).toBe(0);
    expect(done.commits).toBeGreaterThan(100);
    expect(done.purges).toBeGreaterThan(20);
    expect(done.recounts).toBeGreaterThan(20);
    expect(done.around).toBeGreaterThan(5);

    const truth = async () =>
      (
        await db.query<{ node_id: string; bytes: string; versions: string }>(
          'select node_id, sum(size)::text as bytes, count(*)::text as versions from versions group by node_id order by node_id',
        )
      ).map((t) => ({ nodeId: t.node_id, bytes: Number(t.bytes), versions: Number(t.versions) }));
    const sum = (xs: { bytes: number; versions: number }[]) =>
      xs.reduce((a, x) => ({ versions: a.versions + x.versions, bytes: a.bytes + x.bytes }), {
        versions: 0,
        bytes: 0,
      });
    const [counted, actual] = [sum(await items.bytesByNode()), sum(await truth())];
    expect({ versions: counted.versions - actual.versions, bytes: counted.bytes - actual.bytes }).toEqual(
      expectedOff,
    );
    // Recounted, every counter is the recount, and a second recount finds nothing.
    for (const shard of SHARDS) await items.recountShard(shard);
    expect(await items.bytesByNode()).toEqual(await truth());
    expect(await items.countVersions()).toBe(sum(await truth()).versions);
    for (const shard of VERSION_SHARDS)
      expect(await items.recountShard(shard), shard).toEqual({ versions: 0, bytes: 0 });
    for (const o of owners)
      expect((await users.get(o.id))?.usedBytes).toBe(await items.sumVersionSizes(o.id));
  }, 120_000);

  it('ledger counters equal a recount after replicas of the same versions change at once', async () => {
    const store = new SqlStateStore(db);
    const ledger = new ReplicaLedger(store);
    const versions = Array.from({ length: 6 }, () => randomUUID());
    const base = (versionId: string) => ({
      versionId,
      blobKey: `v/${versionId}`,
      size: 1,
      sha256: 'a'.repeat(64),
    });
    await Promise.all(versions.map((v) => ledger.plan(base(v), 'n1', ['n2', 'n3'])));
    const failures: unknown[] = [];
    let won = 0;
    let lost = 0;
    const client = async () => {
      for (let n = 0; n < 25; n++) {
        const v = pick(versions);
        const roll = Math.random();
        try {
          if (roll < 0.65) {
            const item = pick(await ledger.forVersion(v));
            if (!item) continue;
            await ledger.update(item, { state: pick(STATES), attempts: item.data.attempts + 1 });
            won++;
          } else if (roll < 0.8) {
            await ledger.plan(
              base(v),
              undefined,
              ['n2', 'n3', 'n4'].filter(() => Math.random() < 0.5),
            );
          } else if (roll < 0.9) {
            await ledger.drop(v, pick(['n2', 'n3', 'n4']));
          } else await ledger.reconcileSummary(v);
        } catch (err) {
          if (err instanceof ConditionFailedError) lost++;
          else failures.push(err);
        }
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, client));
    expect(failures).toEqual([]);
    expect(won).toBeGreaterThan(50);
    // Stale reads did lose (the race happened); none of them counted.
    expect(lost).toBeGreaterThan(0);

    const replicas = Object.fromEntries(STATES.map((s) => [s, 0])) as Record<ReplicaState, number>;
    const sets = new Map<string, number>();
    let summarized = 0;
    for (const v of versions) {
      const s = summarize((await ledger.forVersion(v)).map((r) => r.data as Replica));
      if (!s) continue;
      summarized++;
      for (const st of STATES) replicas[st] += s.states[st];
      sets.set(s.verifiedOn.join(','), (sets.get(s.verifiedOn.join(',')) ?? 0) + 1);
    }
    const counts = await ledger.counts();
    expect(counts.versions).toBe(summarized);
    expect(counts.replicas).toEqual(replicas);
    expect(Object.fromEntries(counts.byVerifiedNodes.map((s) => [s.nodes.join(','), s.versions]))).toEqual(
      Object.fromEntries(sets),
    );
    for (const v of versions) expect(await ledger.reconcileSummary(v)).toBe(false);
  }, 120_000);
});
