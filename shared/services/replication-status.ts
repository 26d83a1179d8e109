/**
 * Replication status (GET /v1/admin/replication) from counters, in constant time: how many versions
 * there are (the version counters), how many replicas are pending or failed, and how many versions
 * have fewer verified replicas on nodes that are up than the replication factor (the ledger's
 * counts of versions per set of verified nodes, read against the nodes' health now). A handful of
 * reads whatever the number of versions; the exact figures are kept by the writes themselves and
 * checked by the CounterAudit.
 */
import type { ItemStore } from '../ports/metadata.ts';
import type { CounterAudit } from './counter-audit.ts';
import type { NodeRegistry } from './node-registry.ts';
import type { ReplicaLedger } from './replica-ledger.ts';

export interface ReplicationState {
  versions: number;
  belowReplicationFactor: number;
  pending: number;
  failed: number;
}

export class ReplicationStatus {
  private readonly items: Pick<ItemStore, 'countVersions'>;
  private readonly ledger: Pick<ReplicaLedger, 'counts'>;
  private readonly nodes: NodeRegistry;
  private readonly audit: Pick<CounterAudit, 'versionCountsReady' | 'ledgerCountsReady'>;

  constructor(deps: {
    items: Pick<ItemStore, 'countVersions'>;
    ledger: Pick<ReplicaLedger, 'counts'>;
    nodes: NodeRegistry;
    audit: Pick<CounterAudit, 'versionCountsReady' | 'ledgerCountsReady'>;
  }) {
    this.items = deps.items;
    this.ledger = deps.ledger;
    this.nodes = deps.nodes;
    this.audit = deps.audit;
  }

  async status(): Promise<ReplicationState> {
    await this.audit.versionCountsReady();
    await this.audit.ledgerCountsReady();
    await this.nodes.fresh();
    const [versions, counts] = await Promise.all([this.items.countVersions(), this.ledger.counts()]);
    const rf = this.nodes.replicationFactor;
    const usable = (id: string) => {
      const n = this.nodes.get(id);
      return n !== undefined && n.health !== 'down';
    };
    // A version with no ledger entry at all (its commit died before planning) has no verified
    // replica: it is below the factor too, hence versions minus those at it.
    const atFactor = counts.byVerifiedNodes
      .filter((s) => s.nodes.filter(usable).length >= rf)
      .reduce((sum, s) => sum + s.versions, 0);
    return {
      versions,
      belowReplicationFactor: Math.max(0, versions - atFactor),
      pending: counts.replicas.pending,
      failed: counts.replicas.failed,
    };
  }
}
