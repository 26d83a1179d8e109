/**
 * Copies versions to the nodes the ledger says they belong on. Driven by the ledger's change
 * stream: a `pending` replica is verified if the node already holds the right bytes (S3 cross-region
 * replication may have copied it first) or copied from a verified replica on a node that is up.
 * Where the target can copy from the source server-side (`BlobStore.copyFrom`: S3 to S3, local
 * node to local node) the bytes never pass through this process, and the copy is verified by what
 * the storage vouches for (`CopyCheck`): its SHA-256 of the copy, compared with the version's; or
 * that it checked the copy against the source (the source is a verified replica, so the copy is as
 * good); or, when it vouches for nothing, a read-back. Otherwise the bytes are streamed from the
 * source and hashed as they are written. Idempotent; failures back off and, after `maxAttempts`,
 * mark the replica `failed`.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../observability/logger.ts';
import type { BlobStore } from '../ports/blob-store.ts';
import type { Metrics } from '../ports/metrics.ts';
import type { StateChange, StateItem } from '../ports/state-store.ts';
import type { NodeRegistry } from './node-registry.ts';
import type { Replica, ReplicaLedger } from './replica-ledger.ts';

export class Replicator {
  private readonly ledger: ReplicaLedger;
  private readonly nodes: NodeRegistry;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly maxAttempts: number;

  constructor(ledger: ReplicaLedger, nodes: NodeRegistry, log: Logger, metrics: Metrics, maxAttempts = 5) {
    this.ledger = ledger;
    this.nodes = nodes;
    this.log = log;
    this.metrics = metrics;
    this.maxAttempts = maxAttempts;
  }

  /** Handles one change from the state stream; ignores everything but pending ledger items. */
  async handle(change: StateChange): Promise<void> {
    if (change.kind !== 'upsert' || !change.item.pk.startsWith('ledger#')) return;
    const r = change.item as unknown as StateItem<Replica>;
    if (r.data.state !== 'pending' || (r.data.retryAt ?? 0) > Date.now()) return;
    await this.replicate(r);
  }

  async replicate(item: StateItem<Replica>): Promise<boolean> {
    const r = item.data;
    await this.nodes.fresh();
    const target = this.nodes.get(r.nodeId);
    try {
      if (!target || target.health === 'down') throw new Error(`node ${r.nodeId} is unavailable`);
      // Verify only, when the bytes are already there (e.g. copied by S3 replication).
      const existing = await target.store.stat(r.blobKey);
      let checksum: string | undefined;
      if (existing?.size === r.size) checksum = await this.hashOf(target.store.read(r.blobKey));
      if (checksum !== r.sha256) {
        const sources = (await this.ledger.forVersion(r.versionId))
          .map((x) => x.data)
          .filter((x) => x.state === 'verified' && x.nodeId !== r.nodeId)
          .map((x) => this.nodes.get(x.nodeId))
          .filter((n) => n !== undefined && n.health !== 'down');
        const source = sources[0];
        if (!source) throw new Error('no verified replica on a node that is up');
        checksum = await this.copy(source.store, target.store, r);
      }
      if (checksum !== r.sha256) throw new Error('copy does not match the version checksum');
      await this.ledger.update(item, {
        state: 'verified',
        checksum,
        lastCheck: new Date().toISOString(),
        attempts: r.attempts + 1,
      });
      this.metrics.count('stratus_replicas_verified_total', { node: r.nodeId });
      // Replica lag: from the moment the copy was planned (the commit) to a verified copy.
      const lag = (Date.now() - Date.parse(r.createdAt)) / 1000;
      if (Number.isFinite(lag)) this.metrics.observe('stratus_replica_lag_seconds', Math.max(0, lag));
      return true;
    } catch (err) {
      const attempts = r.attempts + 1;
      const failed = attempts >= this.maxAttempts;
      await this.ledger
        .update(item, {
          state: failed ? 'failed' : 'pending',
          attempts,
          lastError: String((err as Error)?.message ?? err),
          lastCheck: new Date().toISOString(),
          retryAt: Date.now() + Math.min(300_000, 1000 * 2 ** attempts),
        })
        .catch(() => undefined);
      if (failed) this.metrics.count('stratus_replicas_failed_total', { node: r.nodeId });
      this.log.warn('replication attempt failed', {
        versionId: r.versionId,
        nodeId: r.nodeId,
        attempts,
        failed,
        err: String(err),
      });
      return false;
    }
  }

  /** Copies the replica's bytes from `source` to `target`; answers the SHA-256 the copy is known to have. */
  private async copy(source: BlobStore, target: BlobStore, r: Replica): Promise<string> {
    const check = await target.copyFrom?.(source, r.blobKey, r.size);
    if (!check) {
      this.metrics.count('stratus_replica_copies_total', { node: r.nodeId, path: 'stream' });
      return (await target.writeStream(r.blobKey, await source.read(r.blobKey), r.size)).sha256;
    }
    this.metrics.count('stratus_replica_copies_total', { node: r.nodeId, path: 'server-side' });
    switch (check.kind) {
      case 'sha256':
        return check.sha256;
      case 'same-as-source':
        // The source is a verified replica of this version, and the storage says the copy is its bytes.
        return r.sha256;
      case 'none':
        return this.hashOf(target.read(r.blobKey));
    }
  }

  private async hashOf(stream: Promise<AsyncIterable<Buffer>>): Promise<string> {
    const h = createHash('sha256');
    for await (const c of await stream) h.update(c);
    return h.digest('hex');
  }
}
