/**
 * Purging trash trees of any size: `DELETE /v1/trash/{id}`, `DELETE /v1/trash` and the retention
 * sweep. Every purge is a job (shared/domain/purge-job.ts) whose batches run in bounded
 * transactions (shared/services/purge-batch.ts). The request claims what it purges, so from its
 * answer on the tree is out of the trash listing and can no longer be restored; then:
 * - a tree of up to `inlineRows` rows (items and versions) is purged in the request, which answers
 *   as before with what was purged;
 * - a bigger one is handed to a worker through a trigger in the state store (`purgejob#<id>`): the
 *   local change feed, or in AWS the state table's stream -> the background function, which runs
 *   batches until `runMs` is spent and then triggers the next run. The request answers 202 with the
 *   job (`GET /v1/jobs/{id}`). Jobs nobody holds whose trigger was lost are found by `resumeStalled`
 *   (the reconcile task).
 * A worker holds a lease on its job; every batch is fenced by it, so of two workers on one job only
 * the holder's batches commit.
 */
import { randomUUID } from 'node:crypto';
import { errors } from '../domain/errors.ts';
import type { Item, Principal } from '../domain/model.ts';
import { type BatchLimits, DEFAULT_BATCH_LIMITS, MAX_FAILURES, type PurgeJob } from '../domain/purge-job.ts';
import type { Logger } from '../observability/logger.ts';
import type { Database } from '../ports/database.ts';
import type { AuditLog, ItemStore } from '../ports/metadata.ts';
import type { PurgeJobStore } from '../ports/purge-job-store.ts';
import type { StateChange, StateStore } from '../ports/state-store.ts';
import type { AccessControl } from './access-control.ts';
import type { MetadataCache } from './metadata-cache.ts';
import { LeaseLostError, purgeBatch } from './purge-batch.ts';
import type { PurgeReport, Purger } from './purger.ts';

export const PURGE_TRIGGER_PREFIX = 'purgejob#';
const triggerKey = (jobId: string) => ({ pk: `${PURGE_TRIGGER_PREFIX}${jobId}`, sk: 'j' });

export type PurgeOutcome =
  /** Purged in the request; `jobId` null when there was nothing to purge (and so no job). */
  { status: 'done'; jobId: string | null; report: PurgeReport } | { status: 'accepted'; job: PurgeJob };

/** How a run of a job ended. */
export type RunOutcome = 'done' | 'more' | 'busy' | 'retry' | 'failed';

export interface PurgeJobsOptions {
  limits: BatchLimits;
  /** Trees up to this many rows are purged inside the request. */
  inlineRows: number;
  /** How long a worker holds a job without committing a batch before another may take it. */
  leaseMs: number;
  /** How long one run works before it hands over to the next (0: until done). */
  runMs: number;
  /** An unfinished job nobody holds, idle this long, is triggered again by `resumeStalled`. */
  stalledAfterMs: number;
}

const DEFAULTS: PurgeJobsOptions = {
  limits: DEFAULT_BATCH_LIMITS,
  inlineRows: 500,
  leaseMs: 60_000,
  runMs: 0,
  stalledAfterMs: 60_000,
};

/** What a failed job tells its owner (the cause is in the log, never in an answer). */
const FAILED = 'the purge stopped on an internal error; delete the item again to retry';

export class PurgeJobs {
  private readonly db: Database;
  private readonly jobs: PurgeJobStore;
  private readonly items: ItemStore;
  private readonly audit: AuditLog;
  private readonly access: AccessControl;
  private readonly purger: Pick<Purger, 'reclaim'>;
  private readonly cache: MetadataCache;
  private readonly state: StateStore;
  private readonly log: Logger;
  readonly opts: PurgeJobsOptions;

  constructor(deps: {
    db: Database;
    jobs: PurgeJobStore;
    items: ItemStore;
    audit: AuditLog;
    access: AccessControl;
    purger: Pick<Purger, 'reclaim'>;
    cache: MetadataCache;
    state: StateStore;
    log: Logger;
    opts?: Partial<PurgeJobsOptions>;
  }) {
    this.db = deps.db;
    this.jobs = deps.jobs;
    this.items = deps.items;
    this.audit = deps.audit;
    this.access = deps.access;
    this.purger = deps.purger;
    this.cache = deps.cache;
    this.state = deps.state;
    this.log = deps.log;
    this.opts = { ...DEFAULTS, ...deps.opts };
  }

  /** `DELETE /v1/trash/{id}`: a trash root of the principal's (any, for an admin) and all beneath it. */
  async purge(p: Principal, id: string): Promise<PurgeOutcome> {
    const item = await this.access.requireTrashed(p, id);
    const outcome = await this.purgeRoot(item, p.userId, 'explicit');
    if (!outcome) throw errors.notFound('trashed item');
    return outcome;
  }

  /** The retention sweep's purge of an expired trash root; undefined when it left the trash. */
  async purgeExpired(root: Item): Promise<PurgeOutcome | undefined> {
    return this.purgeRoot(root, null, 'trash retention');
  }

  /** `DELETE /v1/trash`: every root in the principal's trash now (not those trashed later). */
  async emptyTrash(p: Principal): Promise<PurgeOutcome> {
    const roots = await this.jobs.unclaimedTrash(p.userId, this.opts.inlineRows + 1);
    if (roots.length === 0)
      return { status: 'done', jobId: null, report: { items: 0, versions: 0, bytes: 0, blobsReclaimed: 0 } };
    const rows =
      roots.length > this.opts.inlineRows
        ? roots.length
        : await this.jobs.countRows(roots, this.opts.inlineRows + 1);
    const job = await this.db.transaction((tx) =>
      this.jobs.with(tx).insert({
        id: randomUUID(),
        operation: 'empty-trash',
        ownerId: p.userId,
        requestedBy: p.userId,
        rootId: null,
        reason: 'explicit',
        phase: 'claim',
      }),
    );
    // Small: all of it here. Big: the first batch here, so most trashes leave the listing at once.
    return this.start(job, rows <= this.opts.inlineRows ? undefined : 1);
  }

  /** A job for its owner or an admin; 404 for anyone else (existence never leaks). */
  async get(p: Principal, id: string): Promise<PurgeJob> {
    const job = await this.jobs.get(id);
    if (!job || (job.ownerId !== p.userId && p.role !== 'admin')) throw errors.notFound('job');
    return job;
  }

  private async purgeRoot(
    item: Item,
    actorId: string | null,
    reason: string,
  ): Promise<PurgeOutcome | undefined> {
    const id = randomUUID();
    const job = await this.db.transaction(async (tx) => {
      const created = await this.jobs.with(tx).insert({
        id,
        operation: 'purge',
        ownerId: item.ownerId,
        requestedBy: actorId,
        rootId: item.id,
        reason,
        phase: 'claim',
      });
      // Undefined (and the job rolled back) when a restore or another purge got there first.
      return (await this.jobs.with(tx).claimRoot(id, item.id)) ? created : undefined;
    });
    if (!job) return this.existing(item.id);
    const rows = await this.jobs.countRows([item.id], this.opts.inlineRows + 1);
    return this.start(job, rows <= this.opts.inlineRows ? undefined : 0);
  }

  /** The purge that claimed the root first, queued again if it had failed; undefined: not in the trash. */
  private async existing(rootId: string): Promise<PurgeOutcome | undefined> {
    const jobId = await this.jobs.claimOf(rootId);
    const job = jobId ? await this.jobs.get(jobId) : undefined;
    if (!job) return undefined;
    if (job.state === 'failed') {
      const again = await this.jobs.requeue(job.id);
      if (again) {
        await this.trigger(again.id);
        return { status: 'accepted', job: again };
      }
    }
    return { status: 'accepted', job: (await this.jobs.get(job.id)) ?? job };
  }

  /**
   * Runs the job here to the end (`inlineBatches` undefined) or for that many batches, then, if
   * anything is left, hands it to a worker.
   */
  private async start(job: PurgeJob, inlineBatches: number | undefined): Promise<PurgeOutcome> {
    const ran = inlineBatches === 0 ? 'more' : await this.run(job.id, { maxBatches: inlineBatches });
    const now = (await this.jobs.get(job.id)) ?? job;
    if (ran === 'done' && now.state === 'done') {
      const { items, versions, bytes, blobsReclaimed } = now.purged;
      return { status: 'done', jobId: now.id, report: { items, versions, bytes, blobsReclaimed } };
    }
    if (ran === 'more' || ran === 'retry') await this.trigger(job.id);
    return { status: 'accepted', job: now };
  }

  /** Asks a worker to run the job: the state store's change feed or stream delivers the trigger. */
  async trigger(jobId: string): Promise<void> {
    await this.state.put({
      ...triggerKey(jobId),
      data: { jobId, at: Date.now() },
      expiresAt: Math.floor(Date.now() / 1000) + 86_400,
    });
  }

  /** One trigger from the stream or the local feed: the job it names runs, and hands over if need be. */
  async onTrigger(change: StateChange): Promise<void> {
    if (change.kind !== 'upsert' || !change.item.pk.startsWith(PURGE_TRIGGER_PREFIX)) return;
    const jobId = change.item.pk.slice(PURGE_TRIGGER_PREFIX.length);
    const outcome = await this.run(jobId);
    this.log.info('purge job run', { jobId, outcome });
    if (outcome === 'more') await this.trigger(jobId);
    else if (outcome === 'done' || outcome === 'failed')
      await this.state.delete(triggerKey(jobId).pk, triggerKey(jobId).sk);
    // A failed batch: the stream (or, locally, the reconcile task's resumeStalled) tries again.
    else if (outcome === 'retry') throw new Error(`purge job ${jobId}: a batch failed; retry`);
  }

  /**
   * Runs batches of the job under a lease until it is done, `maxBatches` ran, or the run's time is
   * up. `busy`: another worker holds it, or it has ended.
   */
  async run(jobId: string, o: { maxBatches?: number } = {}): Promise<RunOutcome> {
    const owner = randomUUID();
    if (!(await this.jobs.lease(jobId, owner, this.opts.leaseMs))) return 'busy';
    const started = Date.now();
    let reclaimed = 0;
    for (let n = 0; ; n++) {
      const timeUp = this.opts.runMs > 0 && Date.now() - started >= this.opts.runMs;
      if ((o.maxBatches !== undefined && n >= o.maxBatches) || timeUp) {
        await this.jobs.addReclaimed(jobId, reclaimed);
        await this.jobs.release(jobId, owner);
        return 'more';
      }
      let batch: Awaited<ReturnType<typeof purgeBatch>>;
      try {
        const carried = reclaimed;
        batch = await this.db.transaction((tx) =>
          purgeBatch(
            { jobs: this.jobs.with(tx), items: this.items.with(tx), audit: this.audit.with(tx) },
            jobId,
            owner,
            { limits: this.opts.limits, leaseMs: this.opts.leaseMs, blobsReclaimed: carried },
          ),
        );
        reclaimed = 0;
      } catch (err) {
        await this.jobs.addReclaimed(jobId, reclaimed).catch(() => undefined);
        // Another worker took the job over (this one stalled past its lease): it goes on from here.
        if (err instanceof LeaseLostError) return 'busy';
        this.log.error('purge batch failed', { jobId, err: String((err as Error)?.stack ?? err) });
        const after = await this.jobs
          .recordFailure(jobId, owner, FAILED, MAX_FAILURES)
          .catch(() => undefined);
        return after?.state === 'failed' ? 'failed' : 'retry';
      }
      // After the commit: blobs no version references any more, then the cache. The reconciler's
      // orphan sweep deletes any blob a crash or a storage error here leaves behind.
      reclaimed += await this.purger.reclaim(batch.versions).catch((err: unknown) => {
        this.log.warn('purged blobs left for the orphan sweep', { jobId, err: String(err) });
        return 0;
      });
      await this.cache.invalidate(batch.items, batch.folders);
      if (batch.state === 'done') {
        await this.jobs.addReclaimed(jobId, reclaimed);
        const job = await this.jobs.get(jobId);
        this.log.info('purged', { jobId, ...job?.purged });
        return 'done';
      }
    }
  }

  /** Unfinished jobs nobody holds whose trigger was lost (a run that died): triggered again. */
  async resumeStalled(): Promise<number> {
    const ids = await this.jobs.stalled(this.opts.stalledAfterMs, 100);
    for (const id of ids) await this.trigger(id);
    if (ids.length) this.log.warn('stalled purge jobs triggered again', { jobs: ids.length });
    return ids.length;
  }

  /** Forgets finished jobs after a week (their audit records stay). */
  forgetFinished(): Promise<number> {
    return this.jobs.forgetFinished(7 * 86_400_000, 1000);
  }
}
