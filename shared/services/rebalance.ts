/**
 * The reconciler's moves: dropping the replicas a version no longer needs where it is (a draining
 * node, a node outside its placement once placement holds enough), and draining the pending index.
 */
import type { VersionRef } from '../domain/model.ts';
import type { StateItem } from '../ports/state-store.ts';
import type { NodeRegistry } from './node-registry.ts';
import type { Replica, ReplicaLedger } from './replica-ledger.ts';
import type { Replicator } from './replicator.ts';

/**
 * The replicas of `v` to drop: on draining nodes or off its home nodes, once the home nodes hold
 * enough verified copies (never while fewer than the factor remain on home nodes that are up).
 */
function surplus(nodes: NodeRegistry, v: VersionRef, replicas: readonly StateItem<Replica>[]) {
  const placed = nodes.home(v.id).map((n) => n.id);
  const keep = replicas.filter((r) => {
    const n = nodes.get(r.data.nodeId);
    return (
      r.data.state === 'verified' &&
      placed.includes(r.data.nodeId) &&
      n !== undefined &&
      n.health !== 'down' &&
      !n.draining
    );
  });
  if (keep.length < nodes.replicationFactor) return [];
  return replicas.filter((r) => {
    const off = !placed.includes(r.data.nodeId) || nodes.get(r.data.nodeId)?.draining;
    return off && !keep.some((k) => k.data.nodeId === r.data.nodeId);
  });
}

/**
 * Drops the surplus replicas of a version (see `surplus`). Runs after the page's copies, so a
 * drain or an added node settles in one pass. Decides on a fresh read of the ledger: `seen` (the
 * caller's last read) only spares that read when it shows nothing to drop.
 */
export async function rebalance(
  nodes: NodeRegistry,
  ledger: ReplicaLedger,
  v: VersionRef,
  seen?: readonly StateItem<Replica>[],
): Promise<number> {
  if (seen && surplus(nodes, v, seen).length === 0) return 0;
  let moved = 0;
  for (const r of surplus(nodes, v, await ledger.forVersion(v.id))) {
    const n = nodes.get(r.data.nodeId);
    if (n && n.health !== 'down') await n.store.delete(v.blobKey);
    await ledger.drop(v.id, r.data.nodeId);
    moved++;
  }
  return moved;
}

/** Copies pending replicas, a few at a time, until none is due. */
export async function drainPending(
  ledger: ReplicaLedger,
  replicator: Replicator,
  concurrency: number,
): Promise<number> {
  let done = 0;
  for (let round = 0; round < 20; round++) {
    const pending = await ledger.pending(concurrency * 25);
    if (pending.length === 0) break;
    let progressed = 0;
    for (let i = 0; i < pending.length; i += concurrency) {
      const batch = pending.slice(i, i + concurrency);
      const results = await Promise.all(
        batch.map(async (p) => {
          const item = (await ledger.forVersion(p.versionId)).find((r) => r.data.nodeId === p.nodeId);
          if (item?.data.state !== 'pending') {
            // A stale entry (an earlier release's, kept in one partition): it goes, or the drain
            // would meet it every round.
            await ledger.prunePending(p, item);
            return false;
          }
          return replicator.replicate({ ...item, data: { ...item.data, retryAt: 0 } });
        }),
      );
      progressed += results.filter(Boolean).length;
    }
    done += progressed;
    if (progressed === 0) break;
  }
  return done;
}
