/**
 * A full pass learns what listing nodes (S3) hold from their listings, merge-joined against pages of
 * versions in id order: one LIST per 1,000 keys, a stat only where a listing lacks a replica. Through
 * the real services on PGlite, three listing nodes at replication factor 2, every call counted; then
 * the S3 adapter against the emulator, every SDK command counted.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { postgresMetadata } from '../../functions/container.ts';
import { MemoryBlobStore } from '../../shared/adapters/memory/memory-blob-store.ts';
import { MemoryStateStore } from '../../shared/adapters/memory/memory-state-store.ts';
import { S3BlobStore } from '../../shared/adapters/s3/s3-blob-store.ts';
import { createLogger } from '../../shared/observability/logger.ts';
import type { Database } from '../../shared/ports/database.ts';
import type { ItemStore, ReservationStore } from '../../shared/ports/metadata.ts';
import { NodeRegistry } from '../../shared/services/node-registry.ts';
import { Reconciler } from '../../shared/services/reconciler.ts';
import { ReplicaLedger } from '../../shared/services/replica-ledger.ts';
import type { Replicator } from '../../shared/services/replicator.ts';
import { sqlBackends } from '../support/fixtures.ts';
import { startSeededS3 } from '../support/seeded-s3.ts';
import { buildHarness, type Harness } from '../support/service-harness.ts';

const pglite = sqlBackends[0];
if (!pglite) throw new Error('no pglite backend');

/** A listing node that counts its stats and listings. */
class CountingStore extends MemoryBlobStore {
  stats = 0;
  lists = 0;
  override async stat(key: string) {
    this.stats++;
    return super.stat(key);
  }
  override async listPage(prefix: string, opts?: { startAfter?: string; limit?: number }) {
    this.lists++;
    return super.listPage(prefix, opts);
  }
}

describe('full reconcile passes over listing nodes', () => {
  let db: Database;
  let dispose: () => Promise<void>;
  let h: Harness;
  let stores: CountingStore[];
  let reconciler: Reconciler;

  beforeEach(async () => {
    ({ db, dispose } = await pglite.open());
    stores = ['s1', 's2', 's3'].map((id) => new CountingStore(id, { sweepBy: 'listing' }));
    const registry = new NodeRegistry(
      stores.map((store) => ({
        id: store.nodeId,
        kind: 's3' as const,
        region: 'local',
        weight: 1,
        store,
        health: 'healthy' as const,
        draining: false,
      })),
      2,
    );
    h = buildHarness(db, { nodes: registry, blobs: stores[0] });
    const meta = postgresMetadata(db);
    // The container's sweep, with pages of 20 versions so that 50 versions make three.
    reconciler = new Reconciler({
      items: meta.items,
      reservations: meta.reservations,
      nodes: registry,
      ledger: h.c.ledger,
      replicator: h.c.replicator,
      state: h.c.state,
      log: createLogger('silent'),
      pageSize: 20,
    });
  });
  afterEach(async () => {
    await dispose();
  });

  const reset = () => {
    for (const s of stores) {
      s.stats = 0;
      s.lists = 0;
    }
  };
  const total = (k: 'stats' | 'lists') => stores.reduce((n, s) => n + s[k], 0);

  it('checks every replica from listings, with no stat when all are there', async () => {
    const u = await h.user('list@x.io');
    const files = [];
    for (let i = 0; i < 50; i++) files.push(await h.put(u, 'root', `f${i}.txt`, `content ${i}`));
    await reconciler.sweep({ full: true });
    reset();
    const report = await reconciler.sweep({ full: true });
    expect(report).toMatchObject({ pass: 'full', complete: true, versions: 50, missing: 0, statChecks: 0 });
    // 50 versions in pages of 20: one listing request per node per page (three pages).
    expect(report.listRequests).toBe(9);
    // The orphan sweep at the end of the pass lists each node once more (fewer than 1,000 keys each).
    expect(total('lists')).toBe(9 + 3);
    expect(total('stats')).toBe(0);
  });

  it('finds a replica gone from a node, confirms it with one stat, and copies it back', async () => {
    const u = await h.user('gone@x.io');
    const files = [];
    for (let i = 0; i < 30; i++) files.push(await h.put(u, 'root', `g${i}.txt`, `gone ${i}`));
    await reconciler.sweep({ full: true });
    const victim = files[17];
    if (!victim) throw new Error('no file');
    const key = `v/${victim.versionId}`;
    const holder = stores.find((s) => s.objects.has(key));
    if (!holder) throw new Error('no replica');
    holder.objects.delete(key);
    reset();
    const report = await reconciler.sweep({ full: true });
    expect(report).toMatchObject({ missing: 1, statChecks: 1 });
    expect(holder.objects.has(key)).toBe(true);
    const verified = (await h.c.ledger.forVersion(victim.versionId)).filter(
      (r) => r.data.state === 'verified',
    );
    expect(verified).toHaveLength(2);
  });

  it('falls back to a stat per replica on a node whose listing fails', async () => {
    const u = await h.user('fail@x.io');
    for (let i = 0; i < 10; i++) await h.put(u, 'root', `h${i}.txt`, `fail ${i}`);
    await reconciler.sweep({ full: true });
    const broken = stores[1] as CountingStore;
    const held = [...broken.objects.keys()].filter((k) => k.startsWith('v/')).length;
    expect(held).toBeGreaterThan(0);
    broken.listPage = async () => {
      throw new Error('ListObjectsV2: service unavailable');
    };
    reset();
    const report = await reconciler.sweep({ full: true });
    expect(report).toMatchObject({ missing: 0, statChecks: held });
    expect(broken.stats).toBe(held);
  });
});

describe('a full pass over an S3 node in the emulator', () => {
  it('makes one ListObjectsV2 per 1,000 keys and a HeadObject only for the replica that is gone', async () => {
    const N = 2_500;
    const ids = Array.from({ length: N }, () => randomUUID()).sort();
    const gone = ids[1_700] as string;
    const s3 = await startSeededS3(
      ids.filter((id) => id !== gone).map((id) => ({ key: `v/${id}`, size: 1 })),
    );
    try {
      const calls: Record<string, number> = {};
      s3.client.middlewareStack.add(
        (next, ctx) => async (args) => {
          const name = (ctx as { commandName?: string }).commandName ?? '?';
          calls[name] = (calls[name] ?? 0) + 1;
          return next(args);
        },
        { step: 'initialize', name: 'countCommands' },
      );
      const store = new S3BlobStore('s3a', s3.client, s3.bucket);
      const registry = new NodeRegistry(
        [{ id: 's3a', kind: 's3', region: 'local', weight: 1, store, health: 'healthy', draining: false }],
        1,
      );
      const ledger = new ReplicaLedger(new MemoryStateStore());
      const versions = ids.map((id) => ({
        id,
        nodeId: 's3a',
        blobKey: `v/${id}`,
        size: '1',
        sha256: 'ab'.repeat(32),
      }));
      for (const v of versions)
        await ledger.plan({ versionId: v.id, blobKey: v.blobKey, size: 1, sha256: v.sha256 }, 's3a', []);
      const items = {
        versionsAfter: async (after: string, limit: number) =>
          versions.filter((v) => v.id > after).slice(0, limit),
        versionsCreatedSince: async () => [],
        blobReferenced: async () => true,
        blobKeyInUse: async () => true,
      } as unknown as ItemStore;
      const reconciler = new Reconciler({
        items,
        reservations: { heldByOpenUpload: async () => false } as unknown as ReservationStore,
        nodes: registry,
        ledger,
        replicator: { replicate: async () => false } as unknown as Replicator,
        state: new MemoryStateStore(),
        log: createLogger('silent'),
      });
      const report = await reconciler.sweep({ full: true });
      expect(report).toMatchObject({ pass: 'full', complete: true, versions: N, missing: 1, statChecks: 1 });
      // Pages of 500 versions: each page's listing starts at its first key and reads one LIST of 1,000.
      expect(report.listRequests).toBe(N / 500);
      expect(calls.HeadObjectCommand).toBe(1);
      // The pass's five LISTs, and the orphan sweep's three over the whole bucket.
      expect(calls.ListObjectsV2Command).toBe(N / 500 + Math.ceil((N - 1) / 1000));
      expect((await ledger.forVersion(gone))[0]?.data.state).toBe('pending');
    } finally {
      await s3.stop();
    }
  }, 120_000);
});
