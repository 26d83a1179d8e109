/**
 * The replica ledger's counters against a recount. Seeded random mixes of what the ledger's callers
 * do (commits planning replicas, the replicator verifying and failing them, the reconciler marking
 * them missing, re-planning and dropping surplus, purges forgetting versions), many at once so
 * their writes interleave (two replicas of one version changing together, stale reads that lose
 * their condition), plus writes around the counters as code from before them made; then the
 * counters must equal the sums recomputed from every replica, before and after the CounterAudit's
 * recount, and the replication status read from them must equal the one computed by walking every
 * version as the reconciler used to.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MemoryBlobStore } from '../../shared/adapters/memory/memory-blob-store.ts';
import { MemoryStateStore } from '../../shared/adapters/memory/memory-state-store.ts';
import { createLogger } from '../../shared/observability/logger.ts';
import { CounterAudit } from '../../shared/services/counter-audit.ts';
import { NodeRegistry, type StorageNode } from '../../shared/services/node-registry.ts';
import {
  type LedgerCounts,
  ledgerPk,
  type Replica,
  ReplicaLedger,
  type ReplicaState,
  summarize,
} from '../../shared/services/replica-ledger.ts';
import { ReplicationStatus } from '../../shared/services/replication-status.ts';

const NODES = ['n1', 'n2', 'n3', 'n4'];
const STATES: ReplicaState[] = ['pending', 'verified', 'failed', 'missing'];

/** mulberry32: a small seeded generator, so a failing seed replays. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T,
  };
}

/** What the counters should say: the sums over every version's replicas, recomputed. */
async function recount(ledger: ReplicaLedger, versionIds: Iterable<string>): Promise<LedgerCounts> {
  const replicas = Object.fromEntries(STATES.map((s) => [s, 0])) as Record<ReplicaState, number>;
  const sets = new Map<string, number>();
  let versions = 0;
  for (const id of versionIds) {
    const s = summarize((await ledger.forVersion(id)).map((r) => r.data));
    if (!s) continue;
    versions++;
    for (const st of STATES) replicas[st] += s.states[st];
    const key = s.verifiedOn.join(',');
    sets.set(key, (sets.get(key) ?? 0) + 1);
  }
  return {
    versions,
    replicas,
    byVerifiedNodes: [...sets.entries()]
      .map(([k, n]) => ({ nodes: k === '' ? [] : k.split(','), versions: n }))
      .sort((a, b) => (a.nodes.join(',') < b.nodes.join(',') ? -1 : 1)),
  };
}

function world(seed: number, opts: { around: boolean } = { around: true }) {
  const state = new MemoryStateStore();
  const ledger = new ReplicaLedger(state);
  const r = rng(seed);
  const versions = new Set<string>();
  const base = (versionId: string) => ({
    versionId,
    blobKey: `v/${versionId}`,
    size: 10,
    sha256: 'a'.repeat(64),
  });

  /** One thing a caller of the ledger does; conflicts it may lose are what callers see too. */
  const step = async (): Promise<void> => {
    const known = [...versions];
    const roll = opts.around ? r.next() : r.next() * 0.95;
    if (roll < 0.2 || known.length === 0) {
      // A commit: verified where written, pending elsewhere.
      const id = randomUUID();
      versions.add(id);
      const [primary, ...rest] = [...NODES].sort(() => r.next() - 0.5);
      await ledger.plan(base(id), primary, rest.slice(0, r.int(3)));
      return;
    }
    const id = r.pick(known);
    const replicas = await ledger.forVersion(id);
    if (roll < 0.3) {
      // The reconciler plans what is missing (some planned already: those are skipped).
      await ledger.plan(
        base(id),
        undefined,
        NODES.filter(() => r.next() < 0.5),
      );
    } else if (roll < 0.75 && replicas.length) {
      // The replicator or the reconciler moves a replica to another state, on what it read.
      const item = r.pick(replicas);
      if (r.next() < 0.2) await new Promise((res) => setTimeout(res, r.int(3)));
      await ledger.update(item, { state: r.pick(STATES), attempts: item.data.attempts + 1 }).catch((err) => {
        if ((err as Error).name !== 'ConditionFailedError') throw err;
      });
    } else if (roll < 0.88 && replicas.length) {
      await ledger.drop(id, r.pick(replicas).data.nodeId);
    } else if (roll < 0.95) {
      await ledger.forget(id);
    } else {
      // Code from before the counters writes a replica around them.
      const nodeId = r.pick(NODES);
      const data: Replica = {
        ...base(id),
        nodeId,
        state: r.pick(STATES),
        attempts: 0,
        createdAt: new Date().toISOString(),
      };
      await state.put({ pk: ledgerPk(id), sk: nodeId, data });
    }
  };
  return { state, ledger, versions, step, r };
}

describe('replica-ledger counters', () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8])(
    'equal a recount after a random mix of concurrent transitions (seed %i)',
    async (seed) => {
      const w = world(seed);
      for (let round = 0; round < 30; round++) await Promise.all(Array.from({ length: 8 }, () => w.step()));
      const audit = new CounterAudit({
        items: {
          // The walk the audit does over the system of record's versions.
          versionsAfter: async (after: string, limit: number) =>
            [...w.versions]
              .sort()
              .filter((id) => id > after)
              .slice(0, limit)
              .map((id) => ({ id, nodeId: 'n1', blobKey: `v/${id}`, size: 10, sha256: 'a'.repeat(64) })),
          uncountedShards: async () => [],
          recountShard: async () => ({ versions: 0, bytes: 0 }),
        } as never,
        ledger: w.ledger,
        state: w.state,
        log: createLogger('silent'),
      });
      await audit.recountAll();
      expect(await w.ledger.counts()).toEqual(await recount(w.ledger, w.versions));
      // A second recount finds nothing left to correct.
      expect((await audit.recountAll()).ledgerCorrected).toBe(0);
    },
  );

  it('need the recount only for writes made around them', async () => {
    const w = world(42, { around: false });
    for (let round = 0; round < 40; round++) await Promise.all(Array.from({ length: 8 }, () => w.step()));
    expect(await w.ledger.counts()).toEqual(await recount(w.ledger, w.versions));
  });

  it('answer replication status as walking every version does, with nodes down', async () => {
    const w = world(7, { around: false });
    for (let round = 0; round < 30; round++) await Promise.all(Array.from({ length: 6 }, () => w.step()));
    // Versions the system of record has but the ledger never planned (a commit that died first).
    const unplanned = [randomUUID(), randomUUID()];
    const node = (id: string): StorageNode => ({
      id,
      kind: 'localfs',
      region: 'local',
      weight: 1,
      store: new MemoryBlobStore(),
      health: 'healthy',
      draining: false,
    });
    for (const down of [[], ['n2'], ['n1', 'n3']]) {
      const registry = new NodeRegistry(NODES.map(node), 2);
      for (const id of down) registry.setHealth(id, 'down');
      const all = [...w.versions, ...unplanned];
      const status = new ReplicationStatus({
        items: { countVersions: async () => all.length },
        ledger: w.ledger,
        nodes: registry,
        audit: { versionCountsReady: async () => undefined, ledgerCountsReady: async () => undefined },
      });
      // The walk the reconciler's replicationStatus() did: every version, every replica.
      let below = 0;
      let failed = 0;
      let pending = 0;
      for (const id of all) {
        const replicas = (await w.ledger.forVersion(id)).map((x) => x.data);
        const up = replicas.filter((x) => x.state === 'verified' && !down.includes(x.nodeId));
        if (up.length < 2) below++;
        failed += replicas.filter((x) => x.state === 'failed').length;
        pending += replicas.filter((x) => x.state === 'pending').length;
      }
      expect(await status.status()).toEqual({
        versions: all.length,
        belowReplicationFactor: below,
        pending,
        failed,
      });
    }
  });

  it('count two replicas of one version verified at once, each exactly once', async () => {
    const state = new MemoryStateStore();
    const ledger = new ReplicaLedger(state);
    const id = randomUUID();
    await ledger.plan({ versionId: id, blobKey: 'k', size: 1, sha256: 'a'.repeat(64) }, 'n1', ['n2', 'n3']);
    const pending = (await ledger.forVersion(id)).filter((x) => x.data.state === 'pending');
    // Both read the same summary; one transaction loses its condition on it, re-reads, goes again.
    await Promise.all(pending.map((p) => ledger.update(p, { state: 'verified' })));
    expect(await ledger.counts()).toEqual({
      versions: 1,
      replicas: { pending: 0, verified: 3, failed: 0, missing: 0 },
      byVerifiedNodes: [{ nodes: ['n1', 'n2', 'n3'], versions: 1 }],
    });
    // A stale read loses, and counts nothing.
    await expect(ledger.update(pending[0] as never, { state: 'failed' })).rejects.toThrow(/changed/);
    await ledger.forget(id);
    expect(await ledger.counts()).toEqual({
      versions: 0,
      replicas: { pending: 0, verified: 0, failed: 0, missing: 0 },
      byVerifiedNodes: [],
    });
    expect(await state.get(`ledger-summary#${id}`, 'summary')).toBeUndefined();
  });
});
