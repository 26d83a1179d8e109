/**
 * A Jepsen-style concurrency suite on PostgreSQL (PGlite serializes everything and never shows a
 * race). One runtime on a fresh database, the default node layout (three local nodes, replication
 * factor 2), a few users; N clients run seeded random interleavings for a bounded time, every
 * request recorded; then the invariants are checked in SQL, over the API and on the node
 * directories, before and after a reconcile. It prints one line,
 * `concurrency: C clients, O operations, I invariants checked, V violations`, and fails on V > 0,
 * listing each violation with the requests that touched its ids.
 *
 * STRATUS_CONCURRENCY_SEED replays a run's choices (the seed is printed); STRATUS_CONCURRENCY_SECONDS
 * (default 20) and STRATUS_CONCURRENCY_CLIENTS (default 12) size it; STRATUS_CONCURRENCY_KEEP=1
 * keeps the data directory and the database for a look afterwards.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Runtime, startRuntime } from '../support/local-runtime.ts';
import { PG_URL } from '../support/services.ts';
import { History, Rng } from './history.ts';
import {
  apiTreeMatches,
  bytesExist,
  countersMatchRecount,
  noOrphans,
  noServerErrors,
  sessions,
  treeIsSound,
  uploadsAreSingleMinded,
  usageAddsUp,
} from './invariants.ts';
import { type Actor, Worker, World } from './workload.ts';

const SEED = process.env.STRATUS_CONCURRENCY_SEED
  ? Number(process.env.STRATUS_CONCURRENCY_SEED)
  : Math.floor(Math.random() * 2 ** 31);
const SECONDS = Number(process.env.STRATUS_CONCURRENCY_SECONDS ?? 20);
const CLIENTS = Number(process.env.STRATUS_CONCURRENCY_CLIENTS ?? 12);
const KEEP = process.env.STRATUS_CONCURRENCY_KEEP === '1';

const dbName = `stratus_concurrency_${randomBytes(4).toString('hex')}`;
const dbUrl = (() => {
  const u = new URL(PG_URL);
  u.pathname = `/${dbName}`;
  return u.toString();
})();

async function admin(sql: string) {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

let rt: Runtime;
let db: pg.Client;

beforeAll(async () => {
  await admin(`create database ${dbName}`);
  rt = await startRuntime({ STRATUS_DATABASE_URL: dbUrl });
  db = new pg.Client({ connectionString: dbUrl });
  await db.connect();
});

afterAll(async () => {
  await db?.end().catch(() => undefined);
  await rt?.stop();
  if (KEEP) {
    process.stdout.write(`concurrency suite: kept ${rt?.dataDir} and database ${dbName}\n`);
    return;
  }
  if (rt) await fs.rm(rt.dataDir, { recursive: true, force: true });
  await admin(`drop database if exists ${dbName} with (force)`);
});

/** Each owner gets a few folders (some nested), editor grants on some and a viewer grant on one. */
async function seedWorld(w: World) {
  const owners = [await w.signUp('alice', 'owner'), await w.signUp('bob', 'owner')];
  const editors = [await w.signUp('erin', 'editor'), await w.signUp('ed', 'editor')];
  const viewer = await w.signUp('vic', 'viewer');
  for (const o of owners) {
    const mk = async (parentId: string, name: string) => {
      const r = await w.req(0, 'seed', o, 'POST', '/v1/folders', { parentId, name });
      if (r.status !== 201) throw new Error(`seed folder ${name}: ${r.status}`);
      w.folders.get(o.id)?.push(String(r.json.id));
      return String(r.json.id);
    };
    const top = [];
    for (const n of ['A', 'B', 'C', 'D', 'E', 'Shared']) top.push(await mk(o.rootId, n));
    for (const t of top.slice(0, 3)) await mk(t, 'inner');
    const grant = async (itemId: string, who: Actor, role: 'viewer' | 'editor') => {
      const r = await w.req(0, 'seed', o, 'POST', '/v1/permissions', { itemId, email: who.email, role });
      if (r.status !== 201) throw new Error(`seed grant: ${r.status}`);
      w.grants.set(`${itemId}|${who.id}`, {
        id: String(r.json.id),
        itemId,
        ownerId: o.id,
        granteeId: who.id,
        role,
      });
    };
    await grant(top[5] as string, editors[0] as Actor, 'editor');
    await grant(top[4] as string, editors[1] as Actor, 'editor');
    await grant(top[5] as string, viewer, 'viewer');
  }
}

describe('concurrency on PostgreSQL', () => {
  it('keeps every invariant under random interleavings of clients', async () => {
    const h = new History();
    const processErrors: string[] = [];
    const onError = (err: unknown) => processErrors.push(String((err as Error)?.stack ?? err));
    process.on('uncaughtException', onError);
    process.on('unhandledRejection', onError);
    process.stdout.write(
      `concurrency suite: seed ${SEED} (replay with STRATUS_CONCURRENCY_SEED=${SEED}), ${CLIENTS} clients for ${SECONDS} s\n`,
    );
    const w = new World(rt.url, h, new Rng(SEED));
    try {
      await seedWorld(w);
      const deadline = Date.now() + SECONDS * 1000;
      const workers = Array.from(
        { length: CLIENTS },
        (_, i) => new Worker(i + 1, w, new Rng(SEED + 7919 * (i + 1))),
      );
      await Promise.all(workers.map((x) => x.run(deadline)));

      // Let replication triggered by the last commits settle before judging the nodes.
      const settle = Date.now() + 15_000;
      while ((await rt.container.ledger.pendingCount()) > 0 && Date.now() < settle)
        await new Promise((r) => setTimeout(r, 200));

      const before = await sessions(db);
      const live = await treeIsSound(h, db);
      await apiTreeMatches(h, w, live);
      await usageAddsUp(h, db, before);
      await countersMatchRecount(h, db, 'before the reconcile');
      await uploadsAreSingleMinded(h, db, w, before);
      await bytesExist(h, db, rt.dataDir, 'before the reconcile');

      try {
        const report = await rt.container.reconciler.sweep({ orphanGraceSeconds: 0, verifyChecksums: true });
        process.stdout.write(`concurrency suite: reconcile ${JSON.stringify(report)}\n`);
        h.check(true, 'reconcile-failed', '');
      } catch (err) {
        h.check(false, 'reconcile-failed', `the reconcile threw: ${(err as Error).message}`);
      }
      const after = await sessions(db);
      await bytesExist(h, db, rt.dataDir, 'after the reconcile');
      await noOrphans(h, db, rt.dataDir, after);
      await usageAddsUp(h, db, after);
      await countersMatchRecount(h, db, 'after the reconcile');
      noServerErrors(h);
      for (const e of processErrors) h.check(false, 'process-error', `unhandled in the process: ${e}`);
      h.check(processErrors.length === 0, 'process-error', 'no unhandled error in the process');
    } finally {
      process.off('uncaughtException', onError);
      process.off('unhandledRejection', onError);
    }
    const v = h.violations.length;
    if (v > 0) {
      const file = path.join(os.tmpdir(), `stratus-concurrency-${SEED}.jsonl`);
      await fs.writeFile(file, h.jsonl());
      process.stderr.write(`${h.report()}\nevery request of this run: ${file}\n`);
    }
    process.stdout.write(
      `concurrency: ${CLIENTS} clients, ${w.operations} operations, ${h.checks} invariants checked, ${v} violations\n`,
    );
    expect(v, `concurrency violations (seed ${SEED}); see the report above`).toBe(0);
  });
});
