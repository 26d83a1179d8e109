/**
 * rebalance() decides on a fresh read of the ledger: the caller's earlier read (a sweep page's,
 * up to a page old) may spare that read only when it shows nothing to drop, never justify a drop.
 */
import { describe, expect, it } from 'vitest';
import { MemoryBlobStore } from '../../shared/adapters/memory/memory-blob-store.ts';
import { MemoryStateStore } from '../../shared/adapters/memory/memory-state-store.ts';
import { rebalance } from '../../shared/services/rebalance.ts';
import { ReplicaLedger } from '../../shared/services/replica-ledger.ts';
import { healthyRegistry } from '../support/fixtures.ts';

const V = { id: '5e8c1f2a-0000-4000-8000-000000000001', blobKey: 'v/5e8c1f2a-0000-4000-8000-000000000001' };

async function setUp() {
  const stores = ['n1', 'n2', 'n3'].map((id) => new MemoryBlobStore(id));
  const nodes = healthyRegistry(stores, 2);
  const ledger = new ReplicaLedger(new MemoryStateStore());
  const home = nodes.home(V.id).map((n) => n.id);
  const off = stores.map((s) => s.nodeId).find((id) => !home.includes(id)) as string;
  for (const s of stores) s.objects.set(V.blobKey, Buffer.from('x'));
  // Verified everywhere: on both home nodes and on the third, which holds a surplus copy.
  await ledger.plan({ versionId: V.id, blobKey: V.blobKey, size: 1, sha256: 'h' }, undefined, [...home, off]);
  for (const r of await ledger.forVersion(V.id)) await ledger.update(r, { state: 'verified' });
  const version = { ...V, nodeId: home[0] as string, size: 1, sha256: 'h' };
  return { stores, nodes, ledger, home, off, version };
}

describe('rebalance', () => {
  it('drops the copy off the home nodes once both home nodes hold verified copies', async () => {
    const { stores, nodes, ledger, off, version } = await setUp();
    const seen = await ledger.forVersion(V.id);
    expect(await rebalance(nodes, ledger, version, seen)).toBe(1);
    expect((await ledger.forVersion(V.id)).map((r) => r.data.nodeId)).not.toContain(off);
    expect(stores.find((s) => s.nodeId === off)?.objects.has(V.blobKey)).toBe(false);
  });

  it('keeps the surplus copy when, since the caller read, a home copy went missing', async () => {
    const { stores, nodes, ledger, home, off, version } = await setUp();
    const seen = await ledger.forVersion(V.id); // shows a surplus to drop
    const homeCopy = (await ledger.forVersion(V.id)).find((r) => r.data.nodeId === home[1]);
    if (!homeCopy) throw new Error('home replica missing');
    await ledger.update(homeCopy, { state: 'pending', lastError: 'missing' });
    expect(await rebalance(nodes, ledger, version, seen)).toBe(0);
    expect((await ledger.forVersion(V.id)).map((r) => r.data.nodeId)).toContain(off);
    expect(stores.find((s) => s.nodeId === off)?.objects.has(V.blobKey)).toBe(true);
  });

  it('reads nothing when the earlier read shows nothing to drop', async () => {
    const { nodes, ledger, home, version } = await setUp();
    const seen = (await ledger.forVersion(V.id)).filter((r) => home.includes(r.data.nodeId));
    let reads = 0;
    const counted = Object.assign(Object.create(ledger) as ReplicaLedger, {
      forVersion: async (id: string) => {
        reads++;
        return ledger.forVersion(id);
      },
    });
    expect(await rebalance(nodes, counted, version, seen)).toBe(0);
    expect(reads).toBe(0);
    // Without an earlier read it reads, and finds the surplus.
    expect(await rebalance(nodes, counted, version)).toBe(1);
    expect(reads).toBe(1);
  });
});
