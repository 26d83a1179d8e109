/**
 * What storage nodes hold that nothing owns: objects no version references (orphans), and what
 * nodes wrote beside their objects and nobody will finish (leftovers). Both are removed only after
 * a grace period. Part of the reconciler's sweep.
 */
import type { Logger } from '../observability/logger.ts';
import { compareBlobKeys } from '../ports/blob-store.ts';
import type { ItemStore, ReservationStore } from '../ports/metadata.ts';
import { blobPages } from './blob-pages.ts';
import type { NodeRegistry } from './node-registry.ts';
import type { ReplicaLedger } from './replica-ledger.ts';

/** Where an orphan sweep is: the nodes still to list, the first from after `after`. */
export interface OrphanCursor {
  nodes: string[];
  after?: string;
}

export class OrphanSweep {
  private readonly items: Pick<ItemStore, 'blobReferenced' | 'blobKeyInUse'>;
  private readonly reservations: Pick<ReservationStore, 'heldByOpenUpload'>;
  private readonly nodes: NodeRegistry;
  private readonly ledger: Pick<ReplicaLedger, 'forVersion'>;
  private readonly log: Logger;

  constructor(deps: {
    items: Pick<ItemStore, 'blobReferenced' | 'blobKeyInUse'>;
    reservations: Pick<ReservationStore, 'heldByOpenUpload'>;
    nodes: NodeRegistry;
    ledger: Pick<ReplicaLedger, 'forVersion'>;
    log: Logger;
  }) {
    this.items = deps.items;
    this.reservations = deps.reservations;
    this.nodes = deps.nodes;
    this.ledger = deps.ledger;
    this.log = deps.log;
  }

  /**
   * Deletes objects no version references, once they are older than the grace period, among the
   * keys of `keys` (one sweep partition's share, see sweep-partitions.ts). Walks each node of
   * `cursor.nodes` in turn a page at a time (one page in memory, whatever the node holds),
   * deleting as it goes: the listing's cursor is a key, so deletions do not shift it. After each
   * page the cursor (the nodes left, and the last key listed of the first) goes to `save`, and past
   * `stopAt` the sweep stops there: the next run goes on from the cursor. A node whose listing
   * fails, or that is down, keeps what it has not listed until the next sweep; a failed lookup or
   * delete fails the run (the cursor keeps what it had done).
   */
  async sweepOrphans(
    graceSeconds: number,
    keys: { startAfter?: string; upTo?: string },
    cursor: OrphanCursor,
    stopAt: number,
    save: (c: OrphanCursor) => Promise<void>,
  ): Promise<{ deleted: number; done: boolean }> {
    let deleted = 0;
    const cutoff = Date.now() - graceSeconds * 1000;
    const left = [...cursor.nodes];
    let after = cursor.after;
    while (left.length > 0) {
      const n = this.nodes.get(left[0] as string);
      if (n && n.health !== 'down') {
        const from = after ?? keys.startAfter;
        const pages = blobPages(n.store, 'v/', from !== undefined ? { startAfter: from } : {});
        for (;;) {
          let page: Awaited<ReturnType<typeof pages.next>>;
          try {
            page = await pages.next();
          } catch (err) {
            this.log.warn('orphan listing failed', { nodeId: n.id, err: String(err) });
            break;
          }
          if (page.done) break;
          let end = false;
          for (const o of page.value) {
            if (keys.upTo !== undefined && compareBlobKeys(o.key, keys.upTo) > 0) {
              end = true;
              break;
            }
            after = o.key;
            if (o.modifiedAt.getTime() > cutoff) continue;
            if (await this.isOwned(n.id, o.key)) continue;
            await n.store.delete(o.key);
            deleted++;
          }
          if (end) break;
          await save({ nodes: [...left], ...(after !== undefined ? { after } : {}) });
          if (Date.now() >= stopAt) return { deleted, done: false };
        }
      }
      left.shift();
      after = undefined;
      await save({ nodes: [...left] });
      if (left.length > 0 && Date.now() >= stopAt) return { deleted, done: false };
    }
    return { deleted, done: true };
  }

  private async isOwned(nodeId: string, key: string): Promise<boolean> {
    if (await this.items.blobReferenced(nodeId, key)) return true;
    // An open upload's object (a single PUT landed, the complete is still to come) is not an
    // orphan, however old: sessions live a day, longer than the grace period.
    if (await this.reservations.heldByOpenUpload(key)) return true;
    if (!(await this.items.blobKeyInUse(key))) return false;
    // Referenced by a version whose primary is elsewhere: an orphan only if the ledger disowns it.
    const versionId = key.slice(2);
    const known = (await this.ledger.forVersion(versionId)).some((r) => r.data.nodeId === nodeId);
    return known || this.nodes.home(versionId).some((p) => p.id === nodeId);
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
