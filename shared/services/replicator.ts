/**
 * Copies versions to the nodes the ledger says they belong on. Driven by the ledger's change
 * stream: a `pending` replica is verified if the node already holds the right bytes (S3 cross-region
 * replication may have copied it first) or copied, streamed, from a verified replica on a node that
 * is up, and read back as it is written. Idempotent; failures back off and, after `maxAttempts`,
 * mark the replica `failed`.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../observability/logger.ts';
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
        ({ sha256: checksum } = await target.store.writeStream(
          r.blobKey,
          await source.store.read(r.blobKey),
          r.size,
        ));
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

  private async hashOf(stream: Promise<AsyncIterable<Buffer>>): Promise<string> {
    const h = createHash('sha256');
    for await (const c of await stream) h.update(c);
    return h.digest('hex');
  }
}
