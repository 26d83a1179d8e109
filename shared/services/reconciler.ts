import type { Logger } from '../observability/logger.ts';
import type { ItemStore, ReservationStore } from '../ports/metadata.ts';
import type { StateStore } from '../ports/state-store.ts';
import { listRange } from './listing-join.ts';
import type { NodeRegistry } from './node-registry.ts';
import { OrphanSweep } from './orphan-sweep.ts';
import { drainPending } from './rebalance.ts';
import { PageReconciler } from './reconcile-page.ts';
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

const noop = () => undefined;

export class Reconciler {
  private readonly items: ItemStore;
  private readonly nodes: NodeRegistry;
  private readonly ledger: ReplicaLedger;
  private readonly replicator: Replicator;
  private readonly state: StateStore;
  private readonly log: Logger;
  private readonly reapExpired: (() => Promise<number>) | undefined;
  private readonly orphans: OrphanSweep;
  private readonly pages: PageReconciler;
  /** A run stops at the next page boundary after this long (0: never); the next run goes on. */
  private readonly runBudgetMs: number;
  private readonly fullPassEverySeconds: number;
  /** Versions per page: checked together, and the cursor saved after each. */
  private readonly pageSize: number;
  /** How many shares of the id space a sweep of everything runs, one after another (see sweepAll). */
  private readonly partitions: number;
  /** Sweeps running (or queued) in this process, by partition state key, with their topology. */
  private readonly running = new Map<string, { topology: string; run: Promise<ReconcileReport> }>();

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
    this.pages = new PageReconciler(deps);
    this.runBudgetMs = deps.runBudgetMs ?? 0;
    this.fullPassEverySeconds = deps.fullPassEverySeconds ?? 86_400;
    this.pageSize = deps.pageSize ?? 500;
    this.partitions = checkPartition({ index: 0, count: deps.partitions ?? 1 }).count;
  }

  /**
   * Runs one sweep: of `opts.partition` (one worker's share, as the Distributed Map asks in AWS),
   * or of every partition in turn (the local loop). A sweep of a partition already running in this
   * process on the same topology is joined rather than doubled; one that began before a node was
   * added, drained or went down is not what the caller asked for, so the new sweep runs after it.
   */
  async sweep(opts: SweepOptions = {}): Promise<ReconcileReport> {
    if (opts.partition) return this.sweepPartition(checkPartition(opts.partition), opts);
    const reports: ReconcileReport[] = [];
    for (const p of allPartitions(this.partitions)) reports.push(await this.sweepPartition(p, opts));
    return mergeReports(reports);
  }

  private sweepPartition(partition: SweepPartition, opts: SweepOptions): Promise<ReconcileReport> {
    const key = sweepStateKey(partition).pk;
    const topology = this.topology();
    const current = this.running.get(key);
    if (current?.topology === topology) return current.run;
    const after = current ? current.run.then(noop, noop) : Promise.resolve();
    const run: Promise<ReconcileReport> = after
      .then(() => this.run(partition, opts))
      .finally(() => {
        if (this.running.get(key)?.run === run) this.running.delete(key);
      });
    this.running.set(key, { topology, run });
    return run;
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
          await this.pages.reconcile(
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
          await this.pages.reconcile(page, opts, report, stopAt);
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
}
