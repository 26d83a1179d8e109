/**
 * The replica ledger: one StateStore item per (version, node) with its state (pending, verified,
 * failed, missing), attempts, checksum and last check. Writes flow out through the store's change
 * stream (DynamoDB Streams in AWS, the local feed otherwise) and drive the replicator. Pending
 * replicas are also listed in one index partition, so due retries are found without a scan.
 */
import { ConditionFailedError } from '../domain/errors.ts';
import type { StateItem, StateStore } from '../ports/state-store.ts';

export type ReplicaState = 'pending' | 'verified' | 'failed' | 'missing';

export interface Replica {
  versionId: string;
  nodeId: string;
  blobKey: string;
  size: number;
  sha256: string;
  state: ReplicaState;
  attempts: number;
  /** SHA-256 last read back from the node. */
  checksum?: string;
  lastCheck?: string;
  lastError?: string;
  /** Epoch ms before which a failed attempt is not retried. */
  retryAt?: number;
  createdAt: string;
}

const PENDING = 'ledger-pending';
export const ledgerPk = (versionId: string) => `ledger#${versionId}`;
const nodeIndex = (nodeId: string) => `node#${nodeId}`;

export class ReplicaLedger {
  private readonly store: StateStore;

  constructor(store: StateStore) {
    this.store = store;
  }

  /** Records where a committed version should live: `verified` where it was written, `pending` elsewhere. */
  async plan(
    v: { versionId: string; blobKey: string; size: number; sha256: string },
    primary: string | undefined,
    others: string[],
  ) {
    const now = new Date().toISOString();
    const base = {
      versionId: v.versionId,
      blobKey: v.blobKey,
      size: v.size,
      sha256: v.sha256,
      attempts: 0,
      createdAt: now,
    };
    if (primary)
      await this.put(
        { ...base, nodeId: primary, state: 'verified', checksum: v.sha256, lastCheck: now },
        true,
      );
    for (const nodeId of others) await this.put({ ...base, nodeId, state: 'pending' }, true);
  }

  private async put(r: Replica, onlyIfAbsent = false, version?: number) {
    let stored: StateItem<Replica> | undefined;
    try {
      stored = await this.store.put(
        { pk: ledgerPk(r.versionId), sk: r.nodeId, data: r },
        onlyIfAbsent ? { kind: 'absent' } : version !== undefined ? { kind: 'version', version } : undefined,
      );
    } catch (err) {
      if (onlyIfAbsent && err instanceof ConditionFailedError) return undefined; // planned already
      throw err;
    }
    // The indexes follow the item, once its conditional write has won.
    const sk = `${r.versionId}#${r.nodeId}`;
    if (r.state === 'pending')
      await this.store.put({
        pk: PENDING,
        sk,
        data: { versionId: r.versionId, nodeId: r.nodeId, createdAt: r.createdAt },
      });
    else await this.store.delete(PENDING, sk);
    // Per-node index of verified replicas: how many a node holds (a drained node holds none).
    if (r.state === 'verified')
      await this.store.put({ pk: nodeIndex(r.nodeId), sk: r.versionId, data: { versionId: r.versionId } });
    else await this.store.delete(nodeIndex(r.nodeId), r.versionId);
    return stored;
  }

  /** Updates a replica only if nobody changed it since it was read. */
  async update(item: StateItem<Replica>, patch: Partial<Replica>) {
    return this.put({ ...item.data, ...patch }, false, item.version);
  }

  async forVersion(versionId: string): Promise<StateItem<Replica>[]> {
    return this.store.query<Replica>(ledgerPk(versionId));
  }

  async pending(limit = 500): Promise<{ versionId: string; nodeId: string; createdAt: string }[]> {
    return (
      await this.store.query<{ versionId: string; nodeId: string; createdAt: string }>(PENDING, { limit })
    ).map((i) => i.data);
  }

  async forget(versionId: string): Promise<void> {
    for (const r of await this.forVersion(versionId)) await this.drop(versionId, r.data.nodeId);
  }

  /** Removes one replica's record (after its bytes are deleted from the node). */
  async drop(versionId: string, nodeId: string): Promise<void> {
    await this.store.delete(PENDING, `${versionId}#${nodeId}`);
    await this.store.delete(nodeIndex(nodeId), versionId);
    await this.store.delete(ledgerPk(versionId), nodeId);
  }

  async countOn(nodeId: string): Promise<number> {
    return this.store.count(nodeIndex(nodeId));
  }

  async pendingCount(): Promise<number> {
    return this.store.count(PENDING);
  }
}
