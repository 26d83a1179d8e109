/**
 * Usage and replication status answered from counters.
 *
 * - An existing deployment (versions and replicas written before the counters existed: no counter
 *   rows, no shard counted, no ledger summaries) is backfilled before its first answer, which then
 *   equals the figures computed by walking every version, also while commits go on beside it.
 * - GET /v1/admin/usage and GET /v1/admin/replication, over HTTP on the local runtime, run no
 *   `count(` and read neither the versions table nor a ledger partition: every statement they send
 *   is recorded (a Database wrapper), and what they answer equals the walk.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Container } from '../../functions/container.ts';
import { migrate } from '../../shared/adapters/postgres/migrations.ts';
import { openPgDatabase } from '../../shared/adapters/postgres/pg-database.ts';
import type { Database, SqlExecutor, SqlValue } from '../../shared/ports/database.ts';
import { sqlBackends, uid } from '../support/fixtures.ts';
import { ADMIN_PASSWORD, adminEnv, Client, type Runtime, startRuntime } from '../support/local-runtime.ts';
import { buildHarness } from '../support/service-harness.ts';

/** What the old code computed by walking every version and every replica. */
async function walked(db: Database, c: Container) {
  const versions = await db.query<{ id: string }>('select id from versions');
  let below = 0;
  let pending = 0;
  let failed = 0;
  for (const v of versions) {
    const replicas = (await c.ledger.forVersion(v.id)).map((r) => r.data);
    const up = replicas.filter((r) => r.state === 'verified' && c.nodes.get(r.nodeId)?.health !== 'down');
    if (up.length < c.nodes.replicationFactor) below++;
    pending += replicas.filter((r) => r.state === 'pending').length;
    failed += replicas.filter((r) => r.state === 'failed').length;
  }
  const nodes = await db.query<{ node_id: string; bytes: string; versions: string }>(
    'select node_id, sum(size)::text as bytes, count(*)::text as versions from versions group by node_id order by node_id',
  );
  return {
    replication: { versions: versions.length, belowReplicationFactor: below, pending, failed },
    nodes: nodes.map((n) => ({ nodeId: n.node_id, bytes: Number(n.bytes), versions: Number(n.versions) })),
  };
}

/** Makes the database look as it did before the counters: nothing counted, no summaries. */
async function forgetCounters(db: Database) {
  await db.query('delete from version_counters');
  await db.query('delete from version_counter_shards');
  await db.query('delete from state_counters');
  await db.query(
    `delete from state_items where starts_with(pk, 'ledger-summary#') or starts_with(pk, 'counter-audit#')`,
  );
}

describe.each(sqlBackends)('counters of an existing deployment ($name)', (backend) => {
  it('are backfilled before the first answer, which equals the walk, with commits going on', async () => {
    const { db, dispose } = await backend.open();
    try {
      const before = buildHarness(db);
      const u = await before.user('existing@x.io');
      for (let i = 0; i < 12; i++) await before.put(u, 'root', `old${i}.txt`, `old ${i}`);
      await before.c.reconciler.sweep();
      await forgetCounters(db);
      // A fresh process of the new code (its readiness is remembered per process).
      const h = buildHarness(db);
      expect(await h.c.ops.usage().then((x) => x.nodes)).toEqual((await walked(db, h.c)).nodes);
      const commits = Array.from({ length: 6 }, (_, i) => h.put(u, 'root', `new${i}.txt`, `new ${i}`));
      const [status] = await Promise.all([h.c.replication.status(), ...commits]);
      expect(status.versions).toBeGreaterThanOrEqual(12);
      expect(await h.c.replication.status()).toEqual((await walked(db, h.c)).replication);
      await h.c.reconciler.sweep();
      const after = await walked(db, h.c);
      expect(await h.c.replication.status()).toEqual(after.replication);
      expect(after.replication.versions).toBe(18);
      const usage = await h.c.ops.usage();
      expect(usage.nodes).toEqual(after.nodes);
      expect(usage.totalBytes).toBe(usage.users.reduce((s, x) => s + x.usedBytes, 0));
      // The drift check finds the backfilled counters right.
      expect(await h.c.counters.recountAll()).toMatchObject({
        versionsOff: 0,
        bytesOff: 0,
        ledgerCorrected: 0,
      });
    } finally {
      await dispose();
    }
  });
});

/** A Database that records every statement sent through it (and through its transactions). */
function recording(db: Database) {
  const log: { sql: string; params: readonly SqlValue[] }[] = [];
  const on = { value: false };
  const note = (sql: string, params: readonly SqlValue[] = []) => {
    if (on.value) log.push({ sql: sql.replace(/\s+/g, ' ').trim(), params });
  };
  const wrap = (q: SqlExecutor): SqlExecutor => ({
    query: <Row>(sql: string, params?: readonly SqlValue[]) => {
      note(sql, params);
      return q.query<Row>(sql, params);
    },
  });
  const wrapped: Database = {
    dialect: db.dialect,
    query: (sql, params) => wrap(db).query(sql, params),
    transaction: (work) => db.transaction((tx) => work(wrap(tx))),
    exec: (sql) => {
      note(sql);
      return db.exec(sql);
    },
    ping: () => db.ping(),
    close: () => db.close(),
  };
  return { db: wrapped, log, on };
}

describe('the admin API answers from counters (local runtime on PostgreSQL)', () => {
  const ADMIN = 'counters-admin@example.com';
  let rt: Runtime;
  let rec: ReturnType<typeof recording>;
  let schema: string;
  let raw: Database;

  beforeAll(async () => {
    schema = uid('t_');
    raw = await openPgDatabase({ connectionString: inject('pgUrl'), schema, max: 6 });
    await migrate(raw);
    rec = recording(raw);
    rt = await startRuntime(adminEnv(ADMIN), undefined, { db: rec.db });
  }, 60_000);
  afterAll(async () => {
    await rt?.stop();
    await raw.query(`drop schema ${schema} cascade`);
    await raw.close();
  });

  it('runs no count( and reads no version or ledger partition, and answers what the walk computes', async () => {
    const admin = new Client(rt.url);
    await admin.login(ADMIN, ADMIN_PASSWORD);
    const other = new Client(rt.url);
    await other.signUp(`someone-${randomUUID().slice(0, 6)}@example.com`);
    for (let i = 0; i < 5; i++) await admin.upload('root', `a${i}.bin`, Buffer.alloc(1000 + i, i));
    for (let i = 0; i < 3; i++) await other.upload('root', `b${i}.bin`, Buffer.alloc(2000 + i, i));
    expect((await admin.call('POST', '/v1/admin/reconcile')).status).toBe(200);
    // The first answer of a process makes sure the counters are backfilled (here: nothing to do).
    expect((await admin.call('GET', '/v1/admin/replication')).status).toBe(200);

    rec.log.length = 0;
    rec.on.value = true;
    const usage = await admin.call('GET', '/v1/admin/usage');
    const replication = await admin.call('GET', '/v1/admin/replication');
    rec.on.value = false;
    expect(usage.status).toBe(200);
    expect(replication.status).toBe(200);

    const statements = rec.log.map((e) => e.sql);
    expect(statements.length).toBeGreaterThan(0);
    expect(statements.filter((s) => /count\s*\(/i.test(s))).toEqual([]);
    expect(statements.filter((s) => /\bfrom versions\b/i.test(s))).toEqual([]);
    // State items are read by key or one small partition (a session, the node health): never the
    // ledger's partitions (a version's replicas, the pending index, a node's replicas).
    const stateReads = rec.log.filter((e) => /\bstate_items\b/.test(e.sql));
    expect(stateReads.filter((e) => !/where pk = \$1/.test(e.sql))).toEqual([]);
    expect(stateReads.filter((e) => /^(ledger#|ledger-pending|node#)/.test(String(e.params[0])))).toEqual([]);
    expect(statements.some((s) => /\bfrom version_counters\b/.test(s))).toBe(true);
    expect(statements.some((s) => /\bfrom state_counters\b/.test(s))).toBe(true);

    const truth = await walked(raw, rt.container);
    expect(replication.json).toEqual(truth.replication);
    expect(replication.json).toMatchObject({ versions: 8, belowReplicationFactor: 0, pending: 0, failed: 0 });
    const body = usage.json as { totalBytes: number; users: { usedBytes: number }[]; nodes: unknown[] };
    expect(body.nodes).toEqual(truth.nodes);
    expect(body.totalBytes).toBe(body.users.reduce((s, x) => s + x.usedBytes, 0));
    expect(body.totalBytes).toBe(5 * 1000 + 10 + 3 * 2000 + 3);
  });

  it('lists nodes with their replicas from the counters, counting no node index item by item', async () => {
    const admin = new Client(rt.url);
    await admin.login(ADMIN, ADMIN_PASSWORD);
    rec.log.length = 0;
    rec.on.value = true;
    const nodes = await admin.call('GET', '/v1/admin/nodes');
    rec.on.value = false;
    expect(nodes.status).toBe(200);
    const stateReads = rec.log.filter((e) => /\bstate_items\b/.test(e.sql));
    expect(stateReads.filter((e) => /count\s*\(/i.test(e.sql))).toEqual([]);
    expect(stateReads.filter((e) => /^(ledger#|ledger-pending|node#)/.test(String(e.params[0])))).toEqual([]);
    // The figures are the exact ones.
    const items = nodes.json.items as { id: string; replicas: number; state: string }[];
    expect(items.length).toBeGreaterThan(0);
    for (const n of items) {
      expect(n.state).toBe('active');
      expect(n.replicas, n.id).toBe(await rt.container.ledger.countOn(n.id));
    }
    expect(items.reduce((sum, n) => sum + n.replicas, 0)).toBeGreaterThan(0);
  });
});
