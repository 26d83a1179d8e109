/**
 * The pending index of the replica ledger: 16 partitions by the version id's first hex digit
 * (one partition took every transition's write), written only when a replica enters or leaves
 * `pending`, and the single partition of earlier releases still read and emptied as it goes stale.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MemoryStateStore } from '../../shared/adapters/memory/memory-state-store.ts';
import type { StateWrite } from '../../shared/ports/state-store.ts';
import { drainPending } from '../../shared/services/rebalance.ts';
import {
  ledgerPk,
  PENDING_SHARDS,
  pendingPk,
  type Replica,
  ReplicaLedger,
} from '../../shared/services/replica-ledger.ts';
import type { Replicator } from '../../shared/services/replicator.ts';

/** A version id beginning with the hex digit `d`. */
const idWith = (d: number) => `${d.toString(16)}${randomUUID().slice(1)}`;
const info = (versionId: string) => ({ versionId, blobKey: `v/${versionId}`, size: 1, sha256: 'h' });

/** The store, recording the partitions each transaction writes. */
function recordingStore() {
  const store = new MemoryStateStore();
  const written: string[][] = [];
  const transact = store.transact.bind(store);
  store.transact = async (writes: readonly StateWrite[]) => {
    written.push(writes.filter((w) => w.op !== 'check').map((w) => (w.op === 'put' ? w.item.pk : w.pk)));
    return transact(writes);
  };
  return { store, written };
}

/** Every entry of the pending index, by partition. */
async function indexEntries(store: MemoryStateStore) {
  const pks = [...Array.from({ length: PENDING_SHARDS }, (_, i) => `ledger-pending#${i}`), 'ledger-pending'];
  const out: string[] = [];
  for (const pk of pks) for (const e of await store.query(pk)) out.push(`${pk} ${e.sk}`);
  return out.sort();
}

describe('the pending index', () => {
  it('spreads entries over 16 partitions by the id, and pending() takes from each', async () => {
    const { store } = recordingStore();
    const ledger = new ReplicaLedger(store);
    const ids = Array.from({ length: 32 }, (_, i) => idWith(i % 16));
    for (const id of ids) await ledger.plan(info(id), 'n1', ['n2']);
    const entries = await indexEntries(store);
    expect(entries).toHaveLength(32);
    expect(entries.every((e) => !e.startsWith('ledger-pending '))).toBe(true);
    for (const id of ids) expect(entries).toContain(`${pendingPk(id)} ${id}#n2`);
    expect(new Set(entries.map((e) => e.split(' ')[0])).size).toBe(16);
    expect(await ledger.pendingCount()).toBe(32);
    // A small batch still reaches every shard: none waits behind another's backlog.
    const batch = await ledger.pending(16);
    expect(batch).toHaveLength(16);
    expect(new Set(batch.map((p) => p.versionId.charAt(0))).size).toBe(16);
    expect((await ledger.pending(500)).map((p) => p.versionId).sort()).toEqual([...ids].sort());
  });

  it('is written only when a replica enters or leaves pending', async () => {
    const { store, written } = recordingStore();
    const ledger = new ReplicaLedger(store);
    const id = idWith(7);
    await ledger.plan(info(id), 'n1', ['n2']);
    const pending = (await ledger.forVersion(id)).find((r) => r.data.nodeId === 'n2');
    if (!pending) throw new Error('planned replica missing');
    written.length = 0;
    // A failed attempt's bookkeeping: still pending.
    const retried = await ledger.update(pending, { attempts: 1, lastError: 'timeout', retryAt: 5 });
    expect(written.flat().filter((pk) => pk.startsWith('ledger-pending'))).toEqual([]);
    expect(written.flat().filter((pk) => pk.startsWith('node#'))).toEqual([]);
    await ledger.update(retried, { state: 'verified' });
    expect(written.flat().filter((pk) => pk.startsWith('ledger-pending'))).toEqual([pendingPk(id)]);
    expect(written.flat().filter((pk) => pk.startsWith('node#'))).toEqual(['node#n2']);
    expect(await indexEntries(store)).toEqual([]);
    expect(await ledger.countOn('n2')).toBe(1);
  });

  it('after any mix of transitions holds exactly the pending replicas', async () => {
    const { store } = recordingStore();
    const ledger = new ReplicaLedger(store);
    const ids = Array.from({ length: 40 }, (_, i) => idWith(i % 16));
    for (const id of ids) await ledger.plan(info(id), 'n1', ['n2', 'n3']);
    const states = ['pending', 'verified', 'failed', 'missing'] as const;
    let seed = 7;
    const pick = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 400; i++) {
      const id = ids[pick(ids.length)] as string;
      const replicas = await ledger.forVersion(id);
      const r = replicas[pick(replicas.length || 1)];
      if (!r) continue;
      if (pick(10) === 0) await ledger.drop(id, r.data.nodeId);
      else await ledger.update(r, { state: states[pick(4)] as Replica['state'], attempts: pick(3) });
    }
    const expected: string[] = [];
    for (const id of ids)
      for (const r of await store.query<Replica>(ledgerPk(id)))
        if (r.data.state === 'pending') expected.push(`${pendingPk(id)} ${id}#${r.data.nodeId}`);
    expect(await indexEntries(store)).toEqual(expected.sort());
  });

  it("reads the earlier releases' single partition, and the drain empties it of stale entries", async () => {
    const { store } = recordingStore();
    const ledger = new ReplicaLedger(store);
    const stillPending = idWith(1);
    const settled = idWith(2);
    for (const id of [stillPending, settled]) await ledger.plan(info(id), 'n1', ['n2']);
    // As an earlier release indexed them: in `ledger-pending`, and not in the shards.
    for (const id of [stillPending, settled]) {
      await store.delete(pendingPk(id), `${id}#n2`);
      await store.put({
        pk: 'ledger-pending',
        sk: `${id}#n2`,
        data: { versionId: id, nodeId: 'n2', createdAt: new Date().toISOString() },
      });
    }
    const r = (await ledger.forVersion(settled)).find((x) => x.data.nodeId === 'n2');
    if (!r) throw new Error('replica missing');
    await ledger.update(r, { state: 'verified' }); // leaves the legacy entry behind
    expect((await ledger.pending()).map((p) => p.versionId).sort()).toEqual([stillPending, settled].sort());

    const copied: string[] = [];
    const replicator = {
      replicate: async (item: { data: Replica; version: number }) => {
        copied.push(item.data.versionId);
        const current = (await ledger.forVersion(item.data.versionId)).find(
          (x) => x.data.nodeId === item.data.nodeId,
        );
        if (current) await ledger.update(current, { state: 'verified' });
        return true;
      },
    } as unknown as Replicator;
    expect(await drainPending(ledger, replicator, 4)).toBe(1);
    expect(copied).toEqual([stillPending]);
    // Both legacy entries went: the settled one at once, the copied one once it was verified.
    expect(await indexEntries(store)).toEqual([]);
    expect(await ledger.pendingCount()).toBe(0);
  });

  it('prunes an entry only while its replica stays as it was read', async () => {
    const { store } = recordingStore();
    const ledger = new ReplicaLedger(store);
    const id = idWith(3);
    await ledger.plan(info(id), 'n1', ['n2']);
    const entry = { versionId: id, nodeId: 'n2', createdAt: new Date().toISOString() };
    const pending = (await ledger.forVersion(id)).find((x) => x.data.nodeId === 'n2');
    if (!pending) throw new Error('replica missing');
    expect(await ledger.prunePending(entry, pending)).toBe(false); // still pending: kept
    const failed = await ledger.update(pending, { state: 'failed' });
    const seen = { ...failed, version: failed.version - 1 }; // read before it failed
    await store.put({ pk: pendingPk(id), sk: `${id}#n2`, data: entry });
    expect(await ledger.prunePending(entry, seen)).toBe(false);
    expect(await indexEntries(store)).toEqual([`${pendingPk(id)} ${id}#n2`]);
    expect(await ledger.prunePending(entry, failed)).toBe(true);
    expect(await indexEntries(store)).toEqual([]);
  });
});
