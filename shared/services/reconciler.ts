/**
 * The reconciler: a scheduled sweep (EventBridge -> Lambda in AWS, a timer locally) that finds and
 * repairs what the event path missed. For each version it checks the ledger against placement:
 * replicas that are missing or corrupt go back to `pending`; versions below the replication factor
 * get new pending replicas; failed ones are retried. It also rebalances: replicas on draining nodes,
 * or on nodes outside placement once placement holds enough, are deleted, but only while at least
 * the replication factor of verified replicas remain elsewhere, so no version ever drops below it.
 * Blobs no version references are deleted after a grace period. Pending work is then driven
 * through the replicator with bounded concurrency.
 */

import { createHash } from 'node:crypto';
import type { VersionRef } from '../domain/model.ts';
import type { Logger } from '../observability/logger.ts';
import type { ItemStore, ReservationStore } from '../ports/metadata.ts';
import type { NodeRegistry } from './node-registry.ts';
import { OrphanSweep } from './orphan-sweep.ts';
import type { ReplicaLedger } from './replica-ledger.ts';
import type { Replicator } from './replicator.ts';

export interface ReconcileReport {
  versions: number;
  belowReplicationFactor: number;
  missing: number;
  corrupt: number;
  planned: number;
  retried: number;
  replicated: number;
  moved: number;
  orphansDeleted: number;
  expiredSessions: number;
  /** Abandoned multipart uploads, temp files and pushed-aside objects removed from nodes. */
  leftoversRemoved: number;
}

export class Reconciler {
  private readonly items: ItemStore;
  private readonly nodes: NodeRegistry;
  private readonly ledger: ReplicaLedger;
  private readonly replicator: Replicator;
  private readonly log: Logger;
  private readonly reapExpired: (() => Promise<number>) | undefined;
  private readonly orphans: OrphanSweep;
  private running: Promise<ReconcileReport> | undefined;

  constructor(deps: {
    items: ItemStore;
    reservations: ReservationStore;
    nodes: NodeRegistry;
    ledger: ReplicaLedger;
    replicator: Replicator;
    log: Logger;
    reapExpired?: () => Promise<number>;
  }) {
    this.items = deps.items;
    this.nodes = deps.nodes;
    this.ledger = deps.ledger;
    this.replicator = deps.replicator;
    this.log = deps.log;
    this.reapExpired = deps.reapExpired;
    this.orphans = new OrphanSweep(deps);
  }

  /** Runs one sweep; a sweep already running is joined rather than doubled. */
  sweep(
    opts: { verifyChecksums?: boolean; orphanGraceSeconds?: number; concurrency?: number } = {},
  ): Promise<ReconcileReport> {
    this.running ??= this.run(opts).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Calls `each` for every version, in id order, a page at a time. */
  private async forEachVersion(each: (v: VersionRef) => Promise<void>): Promise<void> {
    let after = '00000000-0000-0000-0000-000000000000';
    for (;;) {
      const page = await this.items.versionsAfter(after, 500);
      if (page.length === 0) return;
      after = page[page.length - 1]?.id ?? after;
      for (const v of page) await each(v);
    }
  }

  private usable(nodeId: string) {
    const n = this.nodes.get(nodeId);
    return n !== undefined && n.health !== 'down';
  }

  private async run(opts: {
    verifyChecksums?: boolean;
    orphanGraceSeconds?: number;
    concurrency?: number;
  }): Promise<ReconcileReport> {
    const report: ReconcileReport = {
      versions: 0,
      belowReplicationFactor: 0,
      missing: 0,
      corrupt: 0,
      planned: 0,
      retried: 0,
      replicated: 0,
      moved: 0,
      orphansDeleted: 0,
      leftoversRemoved: 0,
      expiredSessions: 0,
    };
    await this.nodes.fresh();
    const rf = this.nodes.replicationFactor;
    await this.forEachVersion(async (v) => {
      report.versions++;
      const size = Number(v.size);
      let replicas = await this.ledger.forVersion(v.id);
      if (replicas.length === 0) {
        // Committed before the ledger existed, or a crash between commit and plan.
        await this.ledger.plan({ versionId: v.id, blobKey: v.blobKey, size, sha256: v.sha256 }, v.nodeId, []);
        replicas = await this.ledger.forVersion(v.id);
      }
      // Check what the ledger calls verified.
      for (const r of replicas.filter((x) => x.data.state === 'verified' && this.usable(x.data.nodeId))) {
        const store = this.nodes.store(r.data.nodeId);
        if (!store) continue;
        const stat = await store.stat(v.blobKey).catch(() => undefined);
        let bad: 'missing' | 'corrupt' | undefined = stat?.size === size ? undefined : 'missing';
        if (!bad && opts.verifyChecksums) {
          const h = createHash('sha256');
          for await (const c of (await store.read(v.blobKey)) as AsyncIterable<Buffer>) h.update(c);
          if (h.digest('hex') !== v.sha256) bad = 'corrupt';
        }
        if (bad) {
          report[bad]++;
          if (bad === 'corrupt') await store.delete(v.blobKey);
          await this.ledger.update(r, {
            state: 'pending',
            attempts: 0,
            lastError: bad,
            lastCheck: new Date().toISOString(),
          });
        }
      }
      replicas = await this.ledger.forVersion(v.id);
      const good = replicas.filter(
        (r) =>
          r.data.state === 'verified' &&
          this.usable(r.data.nodeId) &&
          !this.nodes.get(r.data.nodeId)?.draining,
      );
      if (good.length < rf) report.belowReplicationFactor++;
      // Plan replicas on the version's home nodes that are up and have none: this is what moves data
      // onto an added node (rebalance() drops the surplus once these copies are verified). While a
      // home node is down, stand-ins from the live placement keep the factor. Failed ones are retried.
      const have = new Set(replicas.map((r) => r.data.nodeId));
      const onHome = this.nodes
        .home(v.id)
        .map((n) => n.id)
        .filter((id) => !have.has(id) && this.usable(id));
      const active =
        replicas.filter(
          (r) =>
            r.data.state !== 'failed' &&
            !this.nodes.get(r.data.nodeId)?.draining &&
            this.usable(r.data.nodeId),
        ).length + onHome.length;
      const standIns = this.nodes
        .placement(v.id)
        .map((n) => n.id)
        .filter((id) => !have.has(id) && !onHome.includes(id))
        .slice(0, Math.max(0, rf - active));
      const missingNodes = [...onHome, ...standIns];
      if (missingNodes.length) {
        await this.ledger.plan(
          { versionId: v.id, blobKey: v.blobKey, size, sha256: v.sha256 },
          undefined,
          missingNodes,
        );
        report.planned += missingNodes.length;
      }
      for (const r of replicas.filter((x) => x.data.state === 'failed' || x.data.state === 'missing')) {
        await this.ledger.update(r, { state: 'pending', attempts: 0, retryAt: 0 });
        report.retried++;
      }
    });
    report.replicated = await this.drain(opts.concurrency ?? 4);
    report.moved = await this.rebalance();
    report.orphansDeleted = await this.orphans.sweepOrphans(opts.orphanGraceSeconds ?? 3600);
    report.expiredSessions = (await this.reapExpired?.()) ?? 0;
    report.leftoversRemoved = await this.orphans.sweepLeftovers(opts.orphanGraceSeconds ?? 3600);
    this.log.info('reconcile sweep', { ...report });
    return report;
  }

  /**
   * Drops replicas on draining nodes or off their home nodes, once the home nodes hold enough
   * verified copies: never while fewer than the factor remain on home nodes that are up. Runs after the copies
   * of this sweep, so a drain or an added node settles in one sweep.
   */
  private async rebalance(): Promise<number> {
    const rf = this.nodes.replicationFactor;
    let moved = 0;
    await this.forEachVersion(async (v) => {
      const replicas = await this.ledger.forVersion(v.id);
      const placed = this.nodes.home(v.id).map((n) => n.id);
      const keep = replicas.filter(
        (r) =>
          r.data.state === 'verified' &&
          placed.includes(r.data.nodeId) &&
          this.usable(r.data.nodeId) &&
          !this.nodes.get(r.data.nodeId)?.draining,
      );
      if (keep.length < rf) return;
      for (const r of replicas) {
        const n = this.nodes.get(r.data.nodeId);
        const surplus = !placed.includes(r.data.nodeId) || n?.draining;
        if (!surplus || keep.some((k) => k.data.nodeId === r.data.nodeId)) continue;
        if (n && n.health !== 'down') await n.store.delete(v.blobKey);
        await this.ledger.drop(v.id, r.data.nodeId);
        moved++;
      }
    });
    return moved;
  }

  /** Copies pending replicas, a few at a time, until none is due. */
  private async drain(concurrency: number): Promise<number> {
    let done = 0;
    for (let round = 0; round < 20; round++) {
      const pending = await this.ledger.pending(concurrency * 25);
      if (pending.length === 0) break;
      let progressed = 0;
      for (let i = 0; i < pending.length; i += concurrency) {
        const batch = pending.slice(i, i + concurrency);
        const results = await Promise.all(
          batch.map(async (p) => {
            const item = (await this.ledger.forVersion(p.versionId)).find((r) => r.data.nodeId === p.nodeId);
            if (item?.data.state !== 'pending') return false;
            return this.replicator.replicate({ ...item, data: { ...item.data, retryAt: 0 } });
          }),
        );
        progressed += results.filter(Boolean).length;
      }
      done += progressed;
      if (progressed === 0) break;
    }
    return done;
  }

  async replicationStatus() {
    const versions = await this.items.countVersions();
    let below = 0;
    let failed = 0;
    await this.forEachVersion(async (v) => {
      const replicas = (await this.ledger.forVersion(v.id)).map((r) => r.data);
      if (
        replicas.filter((r) => r.state === 'verified' && this.usable(r.nodeId)).length <
        this.nodes.replicationFactor
      )
        below++;
      failed += replicas.filter((r) => r.state === 'failed').length;
    });
    return { versions, belowReplicationFactor: below, pending: await this.ledger.pendingCount(), failed };
  }
}
