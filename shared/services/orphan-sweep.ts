/**
 * What storage nodes hold that nothing owns: objects no version references (orphans), and what
 * nodes wrote beside their objects and nobody will finish (leftovers). Both are removed only after
 * a grace period. Part of the reconciler's sweep.
 */
import type { Logger } from '../observability/logger.ts';
import type { ItemStore, ReservationStore } from '../ports/metadata.ts';
import type { NodeRegistry } from './node-registry.ts';
import type { ReplicaLedger } from './replica-ledger.ts';

export class OrphanSweep {
  private readonly items: ItemStore;
  private readonly reservations: ReservationStore;
  private readonly nodes: NodeRegistry;
  private readonly ledger: ReplicaLedger;
  private readonly log: Logger;

  constructor(deps: {
    items: ItemStore;
    reservations: ReservationStore;
    nodes: NodeRegistry;
    ledger: ReplicaLedger;
    log: Logger;
  }) {
    this.items = deps.items;
    this.reservations = deps.reservations;
    this.nodes = deps.nodes;
    this.ledger = deps.ledger;
    this.log = deps.log;
  }

  /** Deletes objects no version references, once they are older than the grace period. */
  async sweepOrphans(graceSeconds: number): Promise<number> {
    let deleted = 0;
    const cutoff = Date.now() - graceSeconds * 1000;
    for (const n of this.nodes.all().filter((x) => x.health !== 'down')) {
      for (const o of await n.store.list('v/').catch(() => [])) {
        if (o.modifiedAt.getTime() > cutoff) continue;
        if (await this.items.blobReferenced(n.id, o.key)) continue;
        // An open upload's object (a single PUT landed, the complete is still to come) is not an
        // orphan, however old: sessions live a day, longer than the grace period.
        if (await this.reservations.heldByOpenUpload(o.key)) continue;
        if (await this.items.blobKeyInUse(o.key)) {
          // Referenced by a version whose primary is elsewhere: an orphan only if the ledger disowns it.
          const versionId = o.key.slice(2);
          const known = (await this.ledger.forVersion(versionId)).some((r) => r.data.nodeId === n.id);
          if (known || this.nodes.home(versionId).some((p) => p.id === n.id)) continue;
        }
        await n.store.delete(o.key);
        deleted++;
      }
    }
    return deleted;
  }

  /**
   * Removes what nodes wrote beside their objects and nobody will finish: multipart uploads no open
   * session holds, temp files of interrupted writes, objects pushed aside by a replacing write.
   * Runs after expired sessions are reaped, so those go through their own path first.
   */
  async sweepLeftovers(graceSeconds: number): Promise<number> {
    let removed = 0;
    const cutoff = new Date(Date.now() - graceSeconds * 1000);
    for (const n of this.nodes.all().filter((x) => x.health !== 'down')) {
      const leftovers = await n.store.leftovers(cutoff).catch((err: unknown) => {
        this.log.warn('leftover listing failed', { nodeId: n.id, err: String(err) });
        return [];
      });
      for (const l of leftovers) {
        if (l.key && (await this.reservations.heldByOpenUpload(l.key))) continue;
        await n.store.removeLeftover(l);
        removed++;
      }
    }
    return removed;
  }
}
