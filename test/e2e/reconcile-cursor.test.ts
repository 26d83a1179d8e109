/**
 * Incremental reconciliation (issue 19): a full pass walks the versions a page at a time from a
 * persisted cursor, so a run that dies or runs out of time loses nothing and the next one goes on
 * from where it stopped; with nothing changed, a sweep reads no version at all beyond those created
 * since the last pass; two sweeps never run a pass at once. On the default layout (3 nodes, RF 2),
 * with version rows seeded in bulk against one real blob, as the bench does.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresMetadata } from '../../functions/container.ts';
import type { StateItem } from '../../shared/ports/state-store.ts';
import { Reconciler } from '../../shared/services/reconciler.ts';
import type { Replica } from '../../shared/services/replica-ledger.ts';
import { allPartitions, partitionRange, sweepStateKey } from '../../shared/services/sweep-partitions.ts';
import { Client, type Runtime, startRuntime } from '../support/local-runtime.ts';

let rt: Runtime;
let seed: { fileId: string; nodeId: string; blobKey: string; size: number; sha256: string; userId: string };
const db = () => rt.container.db as unknown as { query: (sql: string, p?: unknown[]) => Promise<unknown[]> };
const PAGE = 10;
const BODY = Buffer.from('reconcile me');

/** A reconciler over the runtime's stores, with small pages; `forVersion` may be wrapped. */
function reconciler(
  o: {
    runBudgetMs?: number;
    partitions?: number;
    onLedgerRead?: (versionId: string) => Promise<void>;
    /** Each ledger request: one version's, or a page's (how many versions). */
    onLedgerCall?: (kind: 'version' | 'page', versions: number) => void;
  } = {},
) {
  const meta = postgresMetadata(rt.container.db);
  const ledger = rt.container.ledger;
  const watched = Object.create(ledger) as typeof ledger;
  watched.forVersion = async (id: string): Promise<StateItem<Replica>[]> => {
    o.onLedgerCall?.('version', 1);
    await o.onLedgerRead?.(id);
    return ledger.forVersion(id);
  };
  // A page's ledgers are read at once: each version of it counts as read.
  watched.forVersions = async (ids: readonly string[]) => {
    o.onLedgerCall?.('page', ids.length);
    for (const id of ids) await o.onLedgerRead?.(id);
    return ledger.forVersions(ids);
  };
  return new Reconciler({
    items: meta.items,
    reservations: meta.reservations,
    nodes: rt.container.nodes,
    ledger: watched,
    replicator: rt.container.replicator,
    state: rt.container.state,
    log: rt.container.log,
    pageSize: PAGE,
    ...(o.runBudgetMs !== undefined ? { runBudgetMs: o.runBudgetMs } : {}),
    ...(o.partitions !== undefined ? { partitions: o.partitions } : {}),
  });
}

/** A reconciler whose ledger reads wait at a gate: `inside` once one is waiting, `release` opens it. */
function gatedReconciler() {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  let entered: () => void = () => undefined;
  const inside = new Promise<void>((r) => {
    entered = r;
  });
  const r = reconciler({
    onLedgerRead: async () => {
      entered();
      await gate;
    },
  });
  return { r, inside, release: () => release() };
}

/**
 * `n` versions of the seed file, created a day ago (settled), each with its own blob on the seed's
 * node and no ledger entries yet (the first pass plans them).
 */
async function seedVersions(n: number) {
  const store = rt.container.nodes.store(seed.nodeId);
  if (!store) throw new Error('seed node missing');
  for (let i = 0; i < n; i++) {
    const id = randomUUID();
    await store.writeStream(`v/${id}`, Readable.from([BODY]), BODY.length);
    await db().query(
      `insert into versions (id, file_id, node_id, blob_key, size, sha256, content_type, created_by, created_at)
       values ($1, $2, $3, $4, $5, $6, 'application/octet-stream', $7, now() - interval '1 day')`,
      [id, seed.fileId, seed.nodeId, `v/${id}`, seed.size, seed.sha256, seed.userId],
    );
  }
}

async function allVersionIds(): Promise<string[]> {
  const rows = (await db().query('select id from versions order by id')) as { id: string }[];
  return rows.map((r) => r.id);
}

beforeAll(async () => {
  rt = await startRuntime({ STRATUS_RECONCILE_INTERVAL_SECONDS: '0' });
  const c = new Client(rt.url);
  await c.signUp('sweeper@example.com');
  const up = await c.upload('root', 'seed.bin', BODY);
  const versionId = up.complete?.json.versionId as string;
  const [row] = (await db().query(
    'select file_id, node_id, blob_key, size, created_by from versions where id = $1',
    [versionId],
  )) as { file_id: string; node_id: string; blob_key: string; size: number; created_by: string }[];
  if (!row) throw new Error('seed version missing');
  seed = {
    fileId: row.file_id,
    nodeId: row.node_id,
    blobKey: row.blob_key,
    size: Number(row.size),
    sha256: createHash('sha256').update(BODY).digest('hex'),
    userId: row.created_by,
  };
  await seedVersions(54); // 55 versions in all: six pages of ten
});
afterAll(async () => {
  await rt?.stop();
});

describe('reconciliation from a persisted cursor', () => {
  it('a sweep killed halfway is resumed from its cursor by the next run, which finishes', async () => {
    const ids = await allVersionIds();
    const seen = new Set<string>();
    const killed = reconciler({
      onLedgerRead: async (id) => {
        // The first ledger read of the third page's versions kills the run (pages of ten).
        seen.add(id);
        if (seen.size === 2 * PAGE + 1) throw new Error('killed');
      },
    });
    await expect(killed.sweep()).rejects.toThrow('killed');
    const saved = await rt.container.state.get<{ pass?: { after: string } }>('reconcile#sweep', 'state');
    // The cursor stands after a page boundary; the first pages are done.
    const after = saved?.data.pass?.after ?? '';
    expect(ids.indexOf(after) + 1).toBeGreaterThanOrEqual(PAGE);
    expect((ids.indexOf(after) + 1) % PAGE).toBe(0);

    const report = await reconciler().sweep();
    expect(report).toMatchObject({ pass: 'full', complete: true, resumedAfter: after });
    // It went on after the cursor: the versions before it were not checked again.
    expect(report.versions).toBe(ids.length - (ids.indexOf(after) + 1));
    // And the end state is whole: every version has two verified replicas.
    for (const id of ids) {
      const verified = (await rt.container.ledger.forVersion(id)).filter((r) => r.data.state === 'verified');
      expect(verified.length, id).toBe(2);
    }
    const state = await rt.container.state.get<{ pass?: unknown; lastFull?: unknown }>(
      'reconcile#sweep',
      'state',
    );
    expect(state?.data.pass).toBeUndefined();
    expect(state?.data.lastFull).toBeDefined();
  });

  it('with nothing changed, the next sweep reads no settled version', async () => {
    const seen: string[] = [];
    const report = await reconciler({ onLedgerRead: async (id) => void seen.push(id) }).sweep();
    expect(report.pass).toBe('incremental');
    // Only the seed upload (created minutes ago, inside the look-back) is checked again.
    expect(report.versions).toBeLessThanOrEqual(1);
    expect(report.planned).toBe(0);
  });

  it('a full pass over settled versions reads their ledgers a page at a time, and no version alone', async () => {
    const calls: string[] = [];
    const report = await reconciler({ onLedgerCall: (kind, n) => void calls.push(`${kind}:${n}`) }).sweep({
      full: true,
    });
    const total = (await allVersionIds()).length;
    expect(report).toMatchObject({ pass: 'full', complete: true, versions: total, planned: 0, moved: 0 });
    // 55 versions in pages of ten: six page reads (ten, ..., five) and nothing else.
    const pages = Array.from({ length: Math.ceil(total / PAGE) }, (_, i) => Math.min(PAGE, total - i * PAGE));
    expect(calls).toEqual(pages.map((n) => `page:${n}`));
  });

  it('an incremental sweep plans a version committed since, whose replicas were never planned', async () => {
    // What a commit that died before planning leaves: a version row and no ledger entries.
    const id = randomUUID();
    await rt.container.nodes.store(seed.nodeId)?.writeStream(`v/${id}`, Readable.from([BODY]), BODY.length);
    await db().query(
      `insert into versions (id, file_id, node_id, blob_key, size, sha256, content_type, created_by)
       values ($1, $2, $3, $4, $5, $6, 'application/octet-stream', $7)`,
      [id, seed.fileId, seed.nodeId, `v/${id}`, seed.size, seed.sha256, seed.userId],
    );
    const report = await reconciler().sweep();
    expect(report.pass).toBe('incremental');
    expect(report.planned).toBeGreaterThanOrEqual(1);
    const replicas = await rt.container.ledger.forVersion(id);
    expect(replicas.filter((r) => r.data.state === 'verified')).toHaveLength(2);
  });

  it('a run out of time stops at a page and the following runs finish the pass', async () => {
    const total = (await allVersionIds()).length;
    const reports = [];
    for (let i = 0; i < 20; i++) {
      // A budget of 1 ms is spent after the first page: each run does one page.
      const r = await reconciler({ runBudgetMs: 1 }).sweep({ full: i === 0 });
      reports.push(r);
      if (r.complete) break;
    }
    expect(reports.every((r) => r.pass === 'full')).toBe(true);
    expect(reports.slice(0, -1).every((r) => !r.complete && r.versions === PAGE)).toBe(true);
    expect(reports.at(-1)?.complete).toBe(true);
    expect(reports.reduce((n, r) => n + r.versions, 0)).toBe(total);
  });

  it('a topology change starts a full pass', async () => {
    const node = rt.container.nodes.all()[2];
    if (!node) throw new Error('three nodes expected');
    rt.container.nodes.setHealth(node.id, 'down');
    try {
      const report = await reconciler().sweep();
      expect(report.pass).toBe('full');
      expect(report.versions).toBe((await allVersionIds()).length);
    } finally {
      rt.container.nodes.setHealth(node.id, 'healthy');
    }
  });

  it('two sweeps at once: one runs the pass, the other stands aside', async () => {
    const { r, inside, release } = gatedReconciler();
    const first = r.sweep({ full: true });
    await inside;
    const second = await reconciler().sweep({ full: true });
    expect(second).toMatchObject({ pass: 'busy', complete: false, versions: 0 });
    release();
    expect((await first).complete).toBe(true);
  });

  it('a sweep asked for after a topology change does not join one that began before it', async () => {
    const { r, inside, release } = gatedReconciler();
    const first = r.sweep({ full: true });
    await inside;
    // Same topology: the running sweep is joined, not doubled.
    const joined = r.sweep();
    const node = rt.container.nodes.all()[2];
    if (!node) throw new Error('three nodes expected');
    rt.container.nodes.setHealth(node.id, 'down');
    try {
      // A node went down since the first began: this one runs after it, on the new topology.
      const queued = r.sweep();
      release();
      const [a, b, c] = await Promise.all([first, joined, queued]);
      expect(b).toBe(a);
      expect(c).not.toBe(a);
      expect(c).toMatchObject({ pass: 'full', complete: true });
      const state = await rt.container.state.get<{ lastFull?: { topology: string } }>(
        'reconcile#sweep',
        'state',
      );
      expect(state?.data.lastFull?.topology).toContain(`${node.id}:down`);
    } finally {
      rt.container.nodes.setHealth(node.id, 'healthy');
    }
  });
});

describe('a sweep split into partitions (the Distributed Map in AWS, a loop locally)', () => {
  const COUNT = 4;
  const inRange = (ids: string[], index: number) => {
    const r = partitionRange({ index, count: COUNT });
    return ids.filter((id) => id > r.after && id <= r.upTo);
  };

  it('each partition checks its own versions once, keeps its own cursor, and one killed halfway resumes alone', async () => {
    const ids = await allVersionIds();
    const parts = allPartitions(COUNT);
    // The partitions hold every version between them, once.
    expect(parts.flatMap((p) => inRange(ids, p.index)).sort()).toEqual(ids);
    // The largest share (over a page: 56 versions in four) is the one killed in its second page.
    const victim = parts.reduce((a, b) =>
      inRange(ids, b.index).length > inRange(ids, a.index).length ? b : a,
    );
    const mine = inRange(ids, victim.index);
    expect(mine.length).toBeGreaterThan(PAGE);
    for (const p of parts.filter((x) => x !== victim)) {
      const r = await reconciler({ partitions: COUNT }).sweep({ partition: p, full: true });
      expect(r).toMatchObject({ pass: 'full', complete: true, partition: `${p.index}of${COUNT}` });
      expect(r.versions).toBe(inRange(ids, p.index).length);
    }
    const seen: string[] = [];
    const killed = reconciler({
      partitions: COUNT,
      onLedgerRead: async (id) => {
        // The first ledger read of the second page's versions kills the run.
        if (!seen.includes(id)) seen.push(id);
        if (seen.length === PAGE + 1) throw new Error('killed');
      },
    });
    await expect(killed.sweep({ partition: victim, full: true })).rejects.toThrow('killed');
    // Only versions of its own range were read.
    expect(seen.every((id) => mine.includes(id))).toBe(true);
    const key = sweepStateKey(victim);
    const saved = await rt.container.state.get<{ pass?: { after: string } }>(key.pk, key.sk);
    expect(saved?.data.pass?.after).toBe(mine[PAGE - 1]);

    // The loop over every partition: the killed one goes on from its cursor, the others have
    // nothing to do but an incremental pass.
    const all = await reconciler({ partitions: COUNT }).sweep();
    expect(all).toMatchObject({ pass: 'full', complete: true, partitions: COUNT });
    const again = await reconciler({ partitions: COUNT }).sweep({ partition: victim });
    expect(again.pass).toBe('incremental');
    for (const p of parts) {
      const k = sweepStateKey(p);
      const st = await rt.container.state.get<{ pass?: unknown; lastFull?: unknown }>(k.pk, k.sk);
      expect(st?.data.pass, k.pk).toBeUndefined();
      expect(st?.data.lastFull, k.pk).toBeDefined();
    }
    for (const id of ids) {
      const verified = (await rt.container.ledger.forVersion(id)).filter((r) => r.data.state === 'verified');
      expect(verified.length, id).toBe(2);
    }
  });

  it('a resumed partition checks only what is left of its range', async () => {
    const ids = await allVersionIds();
    const p = { index: 1, count: COUNT };
    const mine = inRange(ids, p.index);
    const stops = [];
    for (let i = 0; i < 20; i++) {
      // A spent budget: each run does one page of the partition, then keeps its cursor.
      const r = await reconciler({ partitions: COUNT, runBudgetMs: 1 }).sweep({
        partition: p,
        full: i === 0,
      });
      stops.push(r);
      if (r.complete) break;
    }
    expect(stops.reduce((n, r) => n + r.versions, 0)).toBe(mine.length);
    expect(stops.slice(1).every((r) => r.resumedAfter !== undefined)).toBe(true);
  });
});
