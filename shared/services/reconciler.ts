/**
 * The reconciler: a scheduled sweep (EventBridge -> Lambda in AWS, a timer locally) that finds and
 * repairs what the event path missed. The event path (commit -> ledger -> stream -> replicator) is
 * the primary mechanism; the sweep only catches what it missed, and its cost follows what changed:
 *
 * - A **full pass** walks every version in id order, a page at a time, from a cursor persisted
 *   after each page (`reconcile#sweep` in the state store): a run that stops (its time budget is
 *   spent, or it dies) loses nothing, and the next run goes on from the cursor. It runs when the
 *   topology changed (a node added, draining, down or back), when the last full pass is older than
 *   `fullPassEverySeconds`, on demand (`full`, `verifyChecksums`), and the first time. It ends
 *   with the orphan and leftover sweeps, which list every node.
 * - Otherwise an **incremental pass** looks only at the versions created since the last pass
 *   began (a commit that died before planning its replicas), then drains due replicas. With
 *   nothing changed it reads one page and the pending index: near-instant.
 *
 * A full pass learns what S3 nodes hold from their listings, merge-joined against each page of
 * versions (one LIST per 1,000 keys instead of a HEAD per replica; only what a listing lacks is
 * confirmed with a HEAD); local nodes answer a stat per replica, a system call.
 *
 * For each version it checks the ledger against placement: replicas that are missing or corrupt go
 * back to `pending`; versions below the replication factor get new pending replicas; failed ones
 * are retried. The page's pending replicas are then copied, and the page rebalanced: replicas on
 * draining nodes, or on nodes outside placement once placement holds enough, are deleted, but only
 * while at least the replication factor of verified replicas remain elsewhere, so no version ever
 * drops below it. Two sweeps never run one pass at once: the cursor item is also a lease.
 */

import { createHash } from 'node:crypto';
import { ConditionFailedError } from '../domain/errors.ts';
import type { VersionRef } from '../domain/model.ts';
import type { Logger } from '../observability/logger.ts';
import type { ItemStore, ReservationStore } from '../ports/metadata.ts';
import type { StateStore } from '../ports/state-store.ts';
import { type Listed, listedAt, listRange } from './listing-join.ts';
import type { NodeRegistry } from './node-registry.ts';
import { OrphanSweep } from './orphan-sweep.ts';
import { drainPending, rebalance } from './rebalance.ts';
import { emptyReport, mergeReports, type ReconcileReport, type SweepOptions } from './reconcile-report.ts';
import type { ReplicaLedger } from './replica-ledger.ts';
import type { Replicator } from './replicator.ts';
import {
  allPartitions,
  checkPartition,
  keyRange,
  partitionRange,
  type SweepPartition,
  sweepStateKey,
} from './sweep-partitions.ts';
import { SweepLease } from './sweep-state.ts';

/**
 * The incremental pass looks back this far before its watermark: a version row's created_at is
 * its insert time, and its transaction may commit (become visible) a little later.
 */
const WATERMARK_SLACK_MS = 10 * 60_000;

/** Runs `each` over `items`, at most `limit` at once. */
async function inParallel<T>(items: readonly T[], limit: number, each: (x: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) await each(items[i] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export class Reconciler {
  private readonly items: ItemStore;
  private readonly nodes: NodeRegistry;
  private readonly ledger: ReplicaLedger;
  private readonly replicator: Replicator;
  private readonly state: StateStore;
  private readonly log: Logger;
  private readonly reapExpired: (() => Promise<number>) | undefined;
  private readonly orphans: OrphanSweep;
  /** A run stops at the next page boundary after this long (0: never); the next run goes on. */
  private readonly runBudgetMs: number;
  private readonly fullPassEverySeconds: number;
  /** Versions per page: checked together, and the cursor saved after each. */
  private readonly pageSize: number;
  /** How many shares of the id space a sweep of everything runs, one after another (see sweepAll). */
  private readonly partitions: number;
  /** Sweeps running in this process, by partition state key. */
  private readonly running = new Map<string, Promise<ReconcileReport>>();

  constructor(deps: {
    items: ItemStore;
    reservations: ReservationStore;
    nodes: NodeRegistry;
    ledger: ReplicaLedger;
    replicator: Replicator;
    state: StateStore;
    log: Logger;
    reapExpired?: () => Promise<number>;
    runBudgetMs?: number;
    fullPassEverySeconds?: number;
    pageSize?: number;
    partitions?: number;
  }) {
    this.items = deps.items;
    this.nodes = deps.nodes;
    this.ledger = deps.ledger;
    this.replicator = deps.replicator;
    this.state = deps.state;
    this.log = deps.log;
    this.reapExpired = deps.reapExpired;
    this.orphans = new OrphanSweep(deps);
    this.runBudgetMs = deps.runBudgetMs ?? 0;
    this.fullPassEverySeconds = deps.fullPassEverySeconds ?? 86_400;
    this.pageSize = deps.pageSize ?? 500;
    this.partitions = checkPartition({ index: 0, count: deps.partitions ?? 1 }).count;
  }

  /**
   * Runs one sweep: of `opts.partition` (one worker's share, as the Distributed Map asks in AWS),
   * or of every partition in turn (the local loop). A sweep of a partition already running in this
   * process is joined rather than doubled.
   */
  async sweep(opts: SweepOptions = {}): Promise<ReconcileReport> {
    if (opts.partition) return this.sweepPartition(checkPartition(opts.partition), opts);
    const reports: ReconcileReport[] = [];
    for (const p of allPartitions(this.partitions)) reports.push(await this.sweepPartition(p, opts));
    return mergeReports(reports);
  }

  private sweepPartition(partition: SweepPartition, opts: SweepOptions): Promise<ReconcileReport> {
    const key = sweepStateKey(partition).pk;
    let run = this.running.get(key);
    if (!run) {
      run = this.run(partition, opts).finally(() => this.running.delete(key));
      this.running.set(key, run);
    }
    return run;
  }

  private usable(nodeId: string) {
    const n = this.nodes.get(nodeId);
    return n !== undefined && n.health !== 'down';
  }

  /** What placement depends on: the nodes, which are draining and which are down. */
  private topology(): string {
    return this.nodes
      .all()
      .map((n) => `${n.id}${n.draining ? ':draining' : ''}${n.health === 'down' ? ':down' : ''}`)
      .sort()
      .join(',');
  }

  private async run(partition: SweepPartition, opts: SweepOptions): Promise<ReconcileReport> {
    const report = emptyReport();
    if (partition.count > 1) report.partition = `${partition.index}of${partition.count}`;
    const range = partitionRange(partition);
    // The whole space asks the store without a bound, as it always did.
    const upTo = partition.count > 1 ? range.upTo : undefined;
    const lease = new SweepLease(this.state, sweepStateKey(partition));
    const stopAt = this.runBudgetMs > 0 ? Date.now() + this.runBudgetMs : Number.POSITIVE_INFINITY;
    await this.nodes.fresh();
    let held = await lease.hold();
    if (!held) return { ...report, pass: 'busy', complete: false };
    try {
      const topology = this.topology();
      const st = held.data;
      const startedAt = new Date().toISOString();
      const due =
        !st.lastFull ||
        st.lastFull.topology !== topology ||
        Date.parse(st.lastFull.completedAt) + this.fullPassEverySeconds * 1000 <= Date.now();
      const verify = opts.verifyChecksums ?? false;
      if (st.pass || due || opts.full || verify) {
        report.pass = 'full';
        // An unfinished pass goes on from its cursor, unless it must now read replicas back.
        const pass =
          st.pass && (!verify || st.pass.verifyChecksums)
            ? st.pass
            : { after: range.after, startedAt, topology, verifyChecksums: verify };
        if (pass.after !== range.after) report.resumedAfter = pass.after;
        held = await lease.save(held, { ...st, pass });
        for (;;) {
          const page = await this.items.versionsAfter(pass.after, this.pageSize, upTo);
          if (page.length === 0) break;
          const listed = await listRange(this.nodes, this.log, pass.after, page, () => {
            report.listRequests++;
          });
          await this.reconcilePage(
            page,
            { ...opts, verifyChecksums: pass.verifyChecksums },
            report,
            stopAt,
            listed,
          );
          pass.after = page[page.length - 1]?.id ?? pass.after;
          held = await lease.save(held, { ...held.data, pass });
          if (page.length < this.pageSize) break; // the last page
          if (Date.now() >= stopAt) {
            report.complete = false;
            break;
          }
        }
        if (report.complete) {
          const { pass: _done, ...rest } = held.data;
          held = await lease.save(held, {
            ...rest,
            lastFull: {
              startedAt: pass.startedAt,
              completedAt: new Date().toISOString(),
              topology: pass.topology,
            },
            watermark: pass.startedAt,
            // Then every node's keys in this partition's range, from this run on, within budgets.
            orphans: {
              nodes: this.nodes
                .all()
                .map((n) => n.id)
                .sort(),
            },
          });
        }
      } else {
        // Versions committed since the last pass began, in case one died before planning replicas.
        const since = new Date(Date.parse(st.watermark ?? startedAt) - WATERMARK_SLACK_MS);
        let after: { at: string; id: string } | undefined;
        for (;;) {
          const page = await this.items.versionsCreatedSince(
            since,
            after,
            this.pageSize,
            upTo === undefined ? undefined : range,
          );
          if (page.length === 0) break;
          await this.reconcilePage(page, opts, report, stopAt);
          const last = page[page.length - 1];
          if (last) after = { at: last.at, id: last.id };
          held = await lease.save(held, { ...held.data });
          if (page.length < this.pageSize) break;
          if (Date.now() >= stopAt) {
            report.complete = false;
            break;
          }
        }
        if (report.complete) held = await lease.save(held, { ...held.data, watermark: startedAt });
      }
      if (Date.now() < stopAt)
        report.replicated += await drainPending(this.ledger, this.replicator, opts.concurrency ?? 4);
      // Sessions and leftovers are not split by id: the first partition sees to them.
      if (partition.index === 0) report.expiredSessions = (await this.reapExpired?.()) ?? 0;
      const orphans = held.data.orphans;
      if (orphans && Date.now() < stopAt) {
        const grace = opts.orphanGraceSeconds ?? 3600;
        let h = held;
        const r = await this.orphans.sweepOrphans(grace, keyRange(partition), orphans, stopAt, async (c) => {
          h = await lease.save(h, { ...h.data, orphans: c });
        });
        held = h;
        report.orphansDeleted = r.deleted;
        report.orphanSweep = r.done ? 'done' : 'continues';
        if (r.done) {
          const { orphans: _done, ...rest } = held.data;
          held = await lease.save(held, rest);
          if (partition.index === 0) report.leftoversRemoved = await this.orphans.sweepLeftovers(grace);
        }
      }
    } finally {
      await lease
        .release(held)
        .catch((err: unknown) =>
          this.log.warn('reconcile: could not let go of the sweep state', { err: String(err) }),
        );
    }
    this.log.info('reconcile sweep', { ...report });
    return report;
  }

  /** One page: each version checked and planned, its pending copies made, then rebalanced. */
  private async reconcilePage(
    page: readonly VersionRef[],
    opts: SweepOptions,
    report: ReconcileReport,
    stopAt: number,
    listed?: Listed,
  ) {
    const concurrency = opts.concurrency ?? 8;
    await inParallel(page, concurrency, async (v) => {
      try {
        await this.reconcileVersion(v, opts, report, listed);
      } catch (err) {
        // The replicator (or a commit) changed this version's ledger meanwhile: it is being acted
        // on, and the next pass looks at it again.
        if (!(err instanceof ConditionFailedError)) throw err;
        report.contended++;
      }
    });
    // The page's copies, while the run has time: past its budget they are left to the replicator
    // (the stream) and the next pass, so a page of big copies cannot keep a run from its cursor.
    await inParallel(page, concurrency, async (v) => {
      for (const r of await this.ledger.forVersion(v.id)) {
        if (r.data.state !== 'pending' || (r.data.retryAt ?? 0) > Date.now() || Date.now() >= stopAt)
          continue;
        if (await this.replicator.replicate(r)) report.replicated++;
      }
    });
    await inParallel(page, concurrency, async (v) => {
      // Not `report.moved += await …`: that reads the total before the await, losing the others' counts.
      const moved = await rebalance(this.nodes, this.ledger, v);
      report.moved += moved;
    });
  }

  private async reconcileVersion(
    v: VersionRef,
    opts: SweepOptions,
    report: ReconcileReport,
    listed?: Listed,
  ) {
    const rf = this.nodes.replicationFactor;
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
      // The listing vouches for a replica of the right size; what it lacks is confirmed by a stat
      // (the copy may have landed after the listing, or the key may lie outside the listed range).
      let stat: { size: number } | undefined;
      if (listedAt(listed, r.data.nodeId, v.blobKey, size)) stat = { size };
      else {
        report.statChecks++;
        stat = await store.stat(v.blobKey).catch(() => undefined);
      }
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
        r.data.state === 'verified' && this.usable(r.data.nodeId) && !this.nodes.get(r.data.nodeId)?.draining,
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
          r.data.state !== 'failed' && !this.nodes.get(r.data.nodeId)?.draining && this.usable(r.data.nodeId),
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
  }
}
