/**
 * Purging versions: the retention policy's deletions, in transactions of at most BATCH rows (Aurora
 * DSQL allows 3,000 changed rows per transaction), each of which deletes versions, gives their bytes
 * back to the owner's usage and records the purge; and `reclaim`, which deletes blobs after a
 * commit, only when no remaining version references them (copies share blobs). Whole trees are
 * purged by jobs (purge-jobs.ts), which reclaim through here too. Every step is idempotent, so an
 * interrupted purge is finished by running it again.
 */

import type { Item, Version } from '../domain/model.ts';
import type { Logger } from '../observability/logger.ts';
import type { Database } from '../ports/database.ts';
import type { AuditLog, ItemStore } from '../ports/metadata.ts';
import type { NodeRegistry } from './node-registry.ts';
import type { ReplicaLedger } from './replica-ledger.ts';

export const BATCH = 1000;
export const DEFAULT_TRASH_DAYS = 30;

export interface PurgeReport {
  items: number;
  versions: number;
  bytes: number;
  blobsReclaimed: number;
}

export interface RetentionPolicy {
  keepVersions: number | null;
  keepDays: number | null;
}

export class Purger {
  private readonly db: Database;
  private readonly items: ItemStore;
  private readonly audit: AuditLog;
  private readonly nodes: NodeRegistry;
  private readonly ledger: ReplicaLedger;
  private readonly log: Logger;

  constructor(
    db: Database,
    items: ItemStore,
    audit: AuditLog,
    nodes: NodeRegistry,
    ledger: ReplicaLedger,
    log: Logger,
  ) {
    this.db = db;
    this.items = items;
    this.audit = audit;
    this.nodes = nodes;
    this.ledger = ledger;
    this.log = log;
  }

  private empty(): PurgeReport {
    return { items: 0, versions: 0, bytes: 0, blobsReclaimed: 0 };
  }

  /** Deletes versions (never a file's current one unless the file goes too), in bounded batches. */
  async purgeVersions(
    versions: readonly Version[],
    ownerOf: Map<string, string>,
    actorId: string | null,
    reason: string,
  ) {
    const report = this.empty();
    for (let i = 0; i < versions.length; i += BATCH) {
      const batch = versions.slice(i, i + BATCH);
      const gone = await this.db.transaction(async (tx) => {
        const items = this.items.with(tx);
        // Only what this transaction deleted is uncharged: a purge racing another one (or a restore
        // and a purge) must not give the same bytes back twice.
        const deleted = await items.deleteVersions(batch.map((v) => v.id));
        const mine = batch.filter((v) => deleted.has(v.id));
        if (mine.length === 0) return mine;
        const perOwner = new Map<string, number>();
        for (const v of mine) {
          const owner = ownerOf.get(v.fileId);
          if (owner) perOwner.set(owner, (perOwner.get(owner) ?? 0) + v.size);
        }
        for (const [owner, bytes] of perOwner) await items.chargeUsage(owner, -bytes);
        await this.audit.with(tx).record({
          actorId,
          ownerId: [...perOwner.keys()][0] ?? null,
          itemId: mine.length === 1 ? (mine[0]?.fileId ?? null) : null,
          action: 'purge.versions',
          detail: { reason, versions: mine.length, bytes: mine.reduce((a, v) => a + v.size, 0) },
        });
        return mine;
      });
      report.versions += gone.length;
      report.bytes += gone.reduce((a, v) => a + v.size, 0);
      report.blobsReclaimed += await this.reclaim(gone);
    }
    return report;
  }

  /**
   * Deletes blobs that no version references any more, with every replica of them, and forgets the
   * purged versions' ledger entries.
   */
  async reclaim(versions: readonly Pick<Version, 'id' | 'nodeId' | 'blobKey'>[]): Promise<number> {
    const seen = new Set<string>();
    let reclaimed = 0;
    for (const v of versions) {
      const replicas = await this.ledger.forVersion(v.id);
      const key = `${v.nodeId}\u0000${v.blobKey}`;
      if (!seen.has(key)) {
        seen.add(key);
        if (!(await this.items.blobReferenced(v.nodeId, v.blobKey))) {
          const holders = new Set([v.nodeId, ...replicas.map((r) => r.data.nodeId)]);
          for (const nodeId of holders) {
            const store = this.nodes.store(nodeId);
            if (store) await store.delete(v.blobKey);
            else
              this.log.warn('blob on an unknown node left for the reconciler', {
                nodeId,
                blobKey: v.blobKey,
              });
          }
          reclaimed++;
        }
      }
      await this.ledger.forget(v.id);
    }
    return reclaimed;
  }

  /** Non-current versions outside the policy: beyond the newest `keepVersions`, or older than `keepDays`. */
  async applyRetention(file: Item, policy: RetentionPolicy, now = new Date()): Promise<PurgeReport> {
    if (policy.keepVersions === null && policy.keepDays === null) return this.empty();
    const versions = await this.items.listVersions(file.id);
    const cutoff = policy.keepDays === null ? null : now.getTime() - policy.keepDays * 86_400_000;
    const doomed = versions.filter(
      (v, rank) =>
        v.id !== file.currentVersionId &&
        ((policy.keepVersions !== null && rank >= policy.keepVersions) ||
          (cutoff !== null && v.createdAt.getTime() < cutoff)),
    );
    if (doomed.length === 0) return this.empty();
    return this.purgeVersions(doomed, new Map([[file.id, file.ownerId]]), null, 'retention');
  }
}
