/**
 * Distribution on three nodes at replication factor 2, through the real services on PGlite and the
 * SQL state store: replication, repair of missing and corrupt replicas, orphans, node health,
 * adding and draining nodes. A guard fails the test if any replica is ever deleted while fewer
 * than two verified copies remain elsewhere.
 */
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryBlobStore } from '../../shared/adapters/memory/memory-blob-store.ts';
import { createLogger } from '../../shared/observability/logger.ts';
import type { Database } from '../../shared/ports/database.ts';
import { HealthMonitor } from '../../shared/services/health-monitor.ts';
import { NodeRegistry, type StorageNode } from '../../shared/services/node-registry.ts';
import { sqlBackends } from '../support/fixtures.ts';
import { buildHarness, type Harness } from '../support/service-harness.ts';

const pglite = sqlBackends[0];
if (!pglite) throw new Error('no pglite backend');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

class GuardedStore extends MemoryBlobStore {
  guard: ((key: string) => Promise<void>) | undefined;
  failing = false;
  override async delete(key: string) {
    if (this.guard && key.startsWith('v/')) await this.guard(key);
    return super.delete(key);
  }
  override async write(key: string, body: Buffer) {
    if (this.failing) throw new Error('node unreachable');
    return super.write(key, body);
  }
}

describe('distribution (3 nodes, replication factor 2)', () => {
  let db: Database;
  let dispose: () => Promise<void>;
  let h: Harness;
  let stores: GuardedStore[];
  let registry: NodeRegistry;
  const violations: string[] = [];

  const node = (store: GuardedStore, id: string): StorageNode => ({
    id,
    kind: 'localfs',
    region: 'local',
    weight: 1,
    store,
    health: 'healthy',
    draining: false,
  });

  beforeEach(async () => {
    ({ db, dispose } = await pglite.open());
    stores = ['n1', 'n2', 'n3'].map((id) => new GuardedStore(id));
    registry = new NodeRegistry(
      stores.map((s) => node(s, s.nodeId)),
      2,
    );
    h = buildHarness(db, { nodes: registry, blobs: stores[0] });
    violations.length = 0;
    for (const s of stores) guardAll(s);
  });

  /** Fails the test (in afterEach) if a good replica is deleted with fewer than two verified elsewhere. */
  function guardAll(s: GuardedStore) {
    s.guard = async (key) => {
      const versionId = key.slice(2);
      if (!/^[0-9a-f-]{36}$/.test(versionId)) return; // not a version's blob (an orphan)
      // Deleting bytes that are not the version's (a corrupt replica) is repair, not loss.
      const row = (
        await db.query<{ sha256: string }>('select sha256 from versions where id = $1', [versionId])
      )[0];
      if (row && sha(s.objects.get(key) ?? Buffer.alloc(0)) !== row.sha256) return;
      const others = (await h.c.ledger.forVersion(versionId)).filter(
        (r) => r.data.state === 'verified' && r.data.nodeId !== s.nodeId,
      );
      const stillReferenced =
        (await db.query('select 1 from versions where id = $1', [versionId])).length > 0;
      if (stillReferenced && others.length < 2)
        violations.push(`${key} deleted from ${s.nodeId} with ${others.length} verified elsewhere`);
    };
  }

  afterEach(async () => {
    expect(violations).toEqual([]);
    await dispose();
  });

  const holders = (key: string) =>
    stores
      .filter((s) => s.objects.has(key))
      .map((s) => s.nodeId)
      .sort();
  const verified = async (versionId: string) =>
    (await h.c.ledger.forVersion(versionId))
      .filter((r) => r.data.state === 'verified')
      .map((r) => r.data.nodeId)
      .sort();

  /** Commits `n` small files, then lets the reconciler place their replicas. */
  const putAndSweep = async (u: Awaited<ReturnType<Harness['user']>>, prefix: string, n: number) => {
    const files = [];
    for (let i = 0; i < n; i++) files.push(await h.put(u, 'root', `${prefix}${i}.txt`, `${prefix} ${i}`));
    await h.c.reconciler.sweep();
    return files;
  };
  const addFourthNode = () => {
    const fourth = new GuardedStore('n4');
    guardAll(fourth);
    stores.push(fourth);
    registry.add(node(fourth, 'n4'));
  };
  /** Every file's verified replicas, and the bytes, sit exactly on its home nodes. */
  const expectOnHome = async (files: { versionId: string }[]) => {
    for (const one of files) {
      const home = registry
        .home(one.versionId)
        .map((n) => n.id)
        .sort();
      expect(await verified(one.versionId)).toEqual(home);
      expect(holders(`v/${one.versionId}`)).toEqual(home);
    }
  };

  it('replicates every committed version to a second node through the reconciler', async () => {
    const u = await h.user('dist@x.io');
    const files = [];
    for (let i = 0; i < 12; i++) files.push(await h.put(u, 'root', `f${i}.txt`, `content ${i}`));
    const report = await h.c.reconciler.sweep();
    expect(report.belowReplicationFactor).toBeGreaterThan(0);
    for (const f of files) {
      expect(await verified(f.versionId)).toHaveLength(2);
      expect(holders(`v/${f.versionId}`)).toEqual(await verified(f.versionId));
    }
    expect(await h.c.replication.status()).toMatchObject({
      versions: 12,
      belowReplicationFactor: 0,
      pending: 0,
      failed: 0,
    });
    // Placement spreads the load.
    for (const s of stores) expect(await h.c.ledger.countOn(s.nodeId)).toBeGreaterThan(0);
  });

  it('repairs a missing replica and a corrupt one, and deletes orphans', async () => {
    const u = await h.user('repair@x.io');
    const a = await h.put(u, 'root', 'a.txt', 'alpha alpha');
    const b = await h.put(u, 'root', 'b.txt', 'bravo bravo');
    await h.c.reconciler.sweep();
    const [wipedNode] = await verified(a.versionId);
    const wiped = stores.find((s) => s.nodeId === wipedNode);
    wiped?.objects.delete(`v/${a.versionId}`);
    const [flippedNode] = await verified(b.versionId);
    const flipped = stores.find((s) => s.nodeId === flippedNode);
    const bytes = flipped?.objects.get(`v/${b.versionId}`);
    if (!bytes || !flipped) throw new Error('replica not found');
    bytes[0] = (bytes[0] ?? 0) ^ 1;
    stores[2]?.objects.set('v/not-a-version', Buffer.from('orphan'));
    const report = await h.c.reconciler.sweep({ verifyChecksums: true, orphanGraceSeconds: 0 });
    expect(report).toMatchObject({ missing: 1, corrupt: 1, orphansDeleted: 1 });
    for (const [f, content] of [
      [a, 'alpha alpha'],
      [b, 'bravo bravo'],
    ] as const) {
      expect(await verified(f.versionId)).toHaveLength(2);
      for (const s of stores.filter((x) => x.objects.has(`v/${f.versionId}`)))
        expect(sha(s.objects.get(`v/${f.versionId}`) ?? Buffer.alloc(0))).toBe(sha(Buffer.from(content)));
    }
    expect(stores[2]?.objects.has('v/not-a-version')).toBe(false);
  });

  it('drains a node without ever dropping below the factor, and backfills an added node', async () => {
    const u = await h.user('drain@x.io');
    const files = await putAndSweep(u, 'd', 15);
    addFourthNode();
    registry.drain('n1');
    await h.c.reconciler.sweep();
    expect(await h.c.ledger.countOn('n1')).toBe(0);
    expect(stores[0]?.objects.size).toBe(0);
    expect(await h.c.ledger.countOn('n4')).toBeGreaterThan(0);
    for (const f of files) {
      const where = await verified(f.versionId);
      expect(where).toHaveLength(2);
      expect(where).not.toContain('n1');
      const dl = await h.c.downloads.downloadUrl(u, f.fileId);
      expect(dl.url).not.toContain('/n1/');
    }
  });

  it('rebalances onto an added node: copies first, then drops the surplus, never below the factor', async () => {
    const u = await h.user('grow@x.io');
    const files = await putAndSweep(u, 'g', 40);
    addFourthNode();
    const report = await h.c.reconciler.sweep();
    // Rendezvous hashing moves about a quarter of the replicas to the fourth node.
    expect(report.moved).toBeGreaterThan(5);
    expect(await h.c.ledger.countOn('n4')).toBe(report.moved);
    await expectOnHome(files);
    // Settled: a second sweep moves nothing.
    expect((await h.c.reconciler.sweep()).moved).toBe(0);
  });

  it('keeps data in place while a home node is down, and moves nothing back and forth', async () => {
    const u = await h.user('outage@x.io');
    const files = await putAndSweep(u, 'o', 12);
    registry.setHealth('n2', 'down');
    // Stand-ins keep two live copies of what n2 held; n2's own replicas stay in the ledger.
    const during = await h.c.reconciler.sweep();
    expect(during.planned).toBeGreaterThan(0);
    expect(during.moved).toBe(0);
    registry.setHealth('n2', 'healthy');
    // Back up: nothing is copied back to n2 (its replicas were never dropped); the stand-ins go.
    const after = await h.c.reconciler.sweep();
    expect(after.planned).toBe(0);
    expect(after.moved).toBe(during.planned);
    await expectOnHome(files);
  });

  it('skips a down node for new data and catches up when it returns', async () => {
    const u = await h.user('down@x.io');
    const health = new HealthMonitor(registry, createLogger('silent'));
    const flaky = stores[1] as GuardedStore;
    flaky.failing = true;
    expect((await health.check('n2')).health).toBe('degraded');
    expect((await health.check('n2')).health).toBe('down');
    const files = [];
    for (let i = 0; i < 8; i++) files.push(await h.put(u, 'root', `x${i}.txt`, `while down ${i}`));
    await h.c.reconciler.sweep();
    for (const f of files) expect(await verified(f.versionId)).not.toContain('n2');
    flaky.failing = false;
    expect((await health.check('n2')).health).toBe('down');
    expect((await health.check('n2')).health).toBe('healthy');
    await h.c.reconciler.sweep();
    expect(await h.c.replication.status()).toMatchObject({ belowReplicationFactor: 0, failed: 0 });
  });
});

describe('failover in the middle of an operation', () => {
  it('starts an upload on the next node when the first one fails, and serves a download from a replica when one vanishes', async () => {
    const { db, dispose } = await (sqlBackends[0] as (typeof sqlBackends)[0]).open();
    try {
      class Broken extends MemoryBlobStore {
        broken = false;
        override async createMultipartUpload(): Promise<string> {
          if (this.broken) throw (await import('../../shared/domain/errors.ts')).errors.unavailable('node');
          return 'never';
        }
        override async presignUploadPart() {
          return {
            url: `mem://${this.nodeId}/part`,
            method: 'PUT' as const,
            headers: {},
            expiresAt: new Date(),
          };
        }
      }
      const stores = [new Broken('b1'), new Broken('b2')];
      const registry = new NodeRegistry(
        stores.map((s) => ({
          id: s.nodeId,
          kind: 'localfs' as const,
          region: 'local',
          weight: 1,
          store: s,
          health: 'healthy' as const,
          draining: false,
        })),
        2,
      );
      const h = buildHarness(db, { nodes: registry, blobs: stores[0] });
      const u = await h.user('failover@x.io');
      const f = await h.put(u, 'root', 'a.txt', 'replicated bytes');
      await h.c.reconciler.sweep();
      // The node that holds the version loses it: the download goes to the other replica.
      const primary = (
        await db.query<{ node_id: string }>('select node_id from versions where id = $1', [f.versionId])
      )[0]?.node_id;
      const holder = stores.find((s) => s.nodeId === primary);
      holder?.objects.delete(`v/${f.versionId}`);
      const url = (await h.c.downloads.downloadUrl(u, f.fileId)).url;
      expect(url).not.toContain(`/${primary}/`);
      // Multipart uploads (above the 16 MiB part size) start on whichever placed node answers.
      // About half of these versions place the broken node first; every upload must start anyway.
      let firstWasBroken = 0;
      for (let i = 0; i < 12; i++) {
        for (const s of stores) s.broken = s.nodeId === primary;
        registry.setHealth(primary ?? '', 'healthy');
        const up = await h.c.uploads.createUpload(u, {
          parentId: 'root',
          name: `big${i}.bin`,
          size: 40 * 1024 * 1024,
          sha256: '0'.repeat(64),
          contentType: 'application/octet-stream',
        });
        const session = await h.c.state.get<{ nodeId: string; versionId: string }>(
          `upload#${up.uploadId}`,
          's',
        );
        expect(session?.data.nodeId).not.toBe(primary);
        registry.setHealth(primary ?? '', 'healthy');
        if (registry.placement(session?.data.versionId ?? '')[0]?.id === primary) firstWasBroken++;
      }
      expect(firstWasBroken).toBeGreaterThan(0);
    } finally {
      await dispose();
    }
  });
});

describe('node health is shared state', () => {
  it('a canary run by one process steers placement and downloads in another, and counts across instances', async () => {
    const { db, dispose } = await pglite.open();
    try {
      const stores = ['n1', 'n2', 'n3'].map((id) => new GuardedStore(id));
      // Each harness is one process (a Lambda instance): its own registry and memory, one database.
      const instance = () =>
        buildHarness(db, {
          nodes: new NodeRegistry(
            stores.map((s) => ({
              id: s.nodeId,
              kind: 'localfs' as const,
              region: 'local',
              weight: 1,
              store: s,
              health: 'healthy' as const,
              draining: false,
            })),
            2,
          ),
          blobs: stores[0],
        });
      const canaryA = instance();
      const canaryB = instance();
      const api = instance();
      (stores[1] as GuardedStore).failing = true;
      // Two failures in a row make a node down, even when two instances ran one canary each.
      expect((await canaryA.c.health.checkAll()).n2?.health).toBe('degraded');
      expect((await canaryB.c.health.checkAll()).n2?.health).toBe('down');
      // The API process never ran a canary, yet places nothing on n2 and serves nothing from it.
      const u = await api.user('shared-health@x.io');
      for (let i = 0; i < 10; i++) {
        const f = await api.put(u, 'root', `h${i}.txt`, `shared health ${i}`);
        const v = await api.c.versions.fileWithVersion(u, f.fileId);
        expect(v.version.nodeId).not.toBe('n2');
      }
      expect(api.c.nodes.get('n2')?.health).toBe('down');
      // A verdict that expires (the canary stopped) no longer steers anything.
      await db.query(`update state_items set expires_at = 1 where pk = 'health'`);
      await api.c.health.load();
      expect(api.c.nodes.get('n2')?.health).toBe('healthy');
    } finally {
      await dispose();
    }
  });
});
