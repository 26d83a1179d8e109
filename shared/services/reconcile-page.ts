/**
 * One page of a reconcile pass (see reconciler.ts): each version's replicas checked against the
 * ledger and placement, what is missing planned, the page's pending copies made, then the page
 * rebalanced.
 */
import { createHash } from 'node:crypto';
import { ConditionFailedError } from '../domain/errors.ts';
import type { VersionRef } from '../domain/model.ts';
import type { StateItem } from '../ports/state-store.ts';
import { type Listed, listedAt } from './listing-join.ts';
import type { NodeRegistry } from './node-registry.ts';
import { rebalance } from './rebalance.ts';
import type { ReconcileReport, SweepOptions } from './reconcile-report.ts';
import type { Replica, ReplicaLedger } from './replica-ledger.ts';
import type { Replicator } from './replicator.ts';

/** Runs `each` over `items`, at most `limit` at once. */
async function inParallel<T>(items: readonly T[], limit: number, each: (x: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) await each(items[i] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export class PageReconciler {
  private readonly nodes: NodeRegistry;
  private readonly ledger: ReplicaLedger;
  private readonly replicator: Replicator;

  constructor(deps: { nodes: NodeRegistry; ledger: ReplicaLedger; replicator: Replicator }) {
    this.nodes = deps.nodes;
    this.ledger = deps.ledger;
    this.replicator = deps.replicator;
  }

  private usable(nodeId: string) {
    const n = this.nodes.get(nodeId);
    return n !== undefined && n.health !== 'down';
  }

  /**
   * One page: each version checked and planned, its pending copies made, then rebalanced. The
   * page's ledgers are read at once; a version's is read again only after this pass changed it, so
   * a page of settled versions costs one ledger read (writes stay conditional on what was read).
   */
  async reconcile(
    page: readonly VersionRef[],
    opts: SweepOptions,
    report: ReconcileReport,
    stopAt: number,
    listed?: Listed,
  ) {
    const concurrency = opts.concurrency ?? 8;
    const read = await this.ledger.forVersions(page.map((v) => v.id));
    /** A version's ledger as this pass last saw it; absent once the pass has changed it. */
    const known = new Map<string, StateItem<Replica>[]>();
    const current = async (id: string) => known.get(id) ?? (await this.ledger.forVersion(id));
    await inParallel(page, concurrency, async (v) => {
      try {
        const after = await this.reconcileVersion(v, opts, report, read.get(v.id) ?? [], listed);
        if (after) known.set(v.id, after);
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
      for (const r of await current(v.id)) {
        if (r.data.state !== 'pending' || (r.data.retryAt ?? 0) > Date.now() || Date.now() >= stopAt)
          continue;
        known.delete(v.id);
        if (await this.replicator.replicate(r)) report.replicated++;
      }
    });
    await inParallel(page, concurrency, async (v) => {
      // Not `report.moved += await …`: that reads the total before the await, losing the others' counts.
      const moved = await rebalance(this.nodes, this.ledger, v, known.get(v.id));
      report.moved += moved;
    });
  }

  /**
   * Checks one version's replicas against `read` (its ledger at the page's read) and plans what it
   * lacks. Answers the ledger as it stands when this left it unchanged, undefined when it wrote.
   */
  private async reconcileVersion(
    v: VersionRef,
    opts: SweepOptions,
    report: ReconcileReport,
    read: StateItem<Replica>[],
    listed?: Listed,
  ): Promise<StateItem<Replica>[] | undefined> {
    const rf = this.nodes.replicationFactor;
    report.versions++;
    const size = Number(v.size);
    let replicas = read;
    let wrote = false;
    if (replicas.length === 0) {
      // Committed before the ledger existed, or a crash between commit and plan.
      await this.ledger.plan({ versionId: v.id, blobKey: v.blobKey, size, sha256: v.sha256 }, v.nodeId, []);
      replicas = await this.ledger.forVersion(v.id);
    }
    // Check what the ledger calls verified. The listing vouches for a replica of the right size;
    // what it lacks is confirmed by a stat (the copy may have landed after the listing, or the key
    // may lie outside the listed range), the replicas' stats at once.
    const checked = await Promise.all(
      replicas
        .filter((x) => x.data.state === 'verified' && this.usable(x.data.nodeId))
        .map(async (r) => {
          const store = this.nodes.store(r.data.nodeId);
          if (!store) return undefined;
          if (listedAt(listed, r.data.nodeId, v.blobKey, size)) return { r, store, stat: { size } };
          report.statChecks++;
          return { r, store, stat: await store.stat(v.blobKey).catch(() => undefined) };
        }),
    );
    for (const c of checked) {
      if (!c) continue;
      const { r, store, stat } = c;
      let bad: 'missing' | 'corrupt' | undefined = stat?.size === size ? undefined : 'missing';
      if (!bad && opts.verifyChecksums) {
        const h = createHash('sha256');
        for await (const chunk of (await store.read(v.blobKey)) as AsyncIterable<Buffer>) h.update(chunk);
        if (h.digest('hex') !== v.sha256) bad = 'corrupt';
      }
      if (bad) {
        report[bad]++;
        if (bad === 'corrupt') await store.delete(v.blobKey);
        wrote = true;
        await this.ledger.update(r, {
          state: 'pending',
          attempts: 0,
          lastError: bad,
          lastCheck: new Date().toISOString(),
        });
      }
    }
    if (wrote) replicas = await this.ledger.forVersion(v.id);
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
      wrote = true;
    }
    for (const r of replicas.filter((x) => x.data.state === 'failed' || x.data.state === 'missing')) {
      await this.ledger.update(r, { state: 'pending', attempts: 0, retryAt: 0 });
      report.retried++;
      wrote = true;
    }
    return wrote ? undefined : replicas;
  }
}
