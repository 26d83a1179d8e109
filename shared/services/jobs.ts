/**
 * The background work of Stratus, written once: the maintenance jobs and the fan-out of state
 * changes. The runtimes only decide when a job runs:
 * - the scheduled Lambda (`functions/scheduled/maintenance.ts`): one EventBridge rule per task name
 *   (`health`, `reconcile`, `retention`; `promote-admin` by hand), see `run`;
 * - the local runtime (`local/main.ts`): the same jobs on timers, plus the two that stand in for what
 *   the AWS services do by themselves (TTL deletion, autovacuum);
 * - the admin routes (`functions/api/admin.ts`): the retention sweep and a reconciliation on demand;
 * - the state table's change stream: DynamoDB Streams -> `functions/streams/state-stream.ts` in AWS,
 *   the local table's change feed (`local/local-container.ts`) otherwise, both through
 *   `onStateChange`.
 */
import type { Logger } from '../observability/logger.ts';
import type { StateChange, StateStore } from '../ports/state-store.ts';
import type { AuthService } from './auth-service.ts';
import type { CounterAudit } from './counter-audit.ts';
import type { HealthMonitor, NodeStatus } from './health-monitor.ts';
import type { PurgeJobs } from './purge-jobs.ts';
import type { ReconcileReport } from './reconcile-report.ts';
import type { Reconciler } from './reconciler.ts';
import type { Replicator } from './replicator.ts';
import { SessionCleanup } from './session-cleanup.ts';
import { checkPartition, type SweepPartition } from './sweep-partitions.ts';
import type { UploadCompletion } from './upload-completion.ts';
import type { UploadService } from './upload-service.ts';
import { VERIFY_TRIGGER_PREFIX } from './upload-state.ts';
import type { UploadVerification } from './upload-verification.ts';
import type { VersionService } from './version-service.ts';

/** What the jobs need; the composition root's container has all of it. */
export interface JobDeps {
  log: Logger;
  state: StateStore;
  auth: Pick<AuthService, 'updateUser'>;
  users: { byEmail(email: string): Promise<{ id: string } | undefined> };
  versions: Pick<VersionService, 'sweep'>;
  uploads: UploadService;
  verification: Pick<UploadVerification, 'rescanPending'>;
  health: Pick<HealthMonitor, 'checkAll'>;
  reconciler: Pick<Reconciler, 'sweep'>;
  /** The counters' drift check (counter-audit.ts); absent, none runs. */
  counters?: Pick<CounterAudit, 'run'>;
  replicator: Pick<Replicator, 'handle'>;
  /** Purge jobs of big trash trees (purge-jobs.ts): their triggers, and the stalled ones. */
  purges: Pick<PurgeJobs, 'onTrigger' | 'resumeStalled'>;
  /** The background verifier of uploads that answered 202 (upload-completion.ts). */
  backgroundVerifier: Pick<UploadCompletion, 'verifyInBackground' | 'resumeStalled'>;
  /** Local profile only (read at call time: the profile attaches it after assembly). */
  reapExpiredState?: () => Promise<number>;
  /** Embedded database only (read at call time, as above). */
  maintainDatabase?: () => Promise<void>;
}

/** The tasks a maintenance event names; anything else runs `retention`. */
export type MaintenanceTask = 'health' | 'reconcile' | 'retention' | 'rescan' | 'promote-admin';

export type RetentionReport = Awaited<ReturnType<VersionService['sweep']>> & { rescanned: number };

export class Jobs {
  private readonly deps: JobDeps;
  private readonly cleanup: SessionCleanup;

  constructor(deps: JobDeps) {
    this.deps = deps;
    this.cleanup = new SessionCleanup(deps.uploads, deps.state, deps.log);
  }

  /**
   * A maintenance event (`{"task": …}`) as the scheduled function answers it. The answer's shape is
   * part of the operator's interface: `{health}`, `{reconcile}`, `{admin}`, `{rescanned}`, or
   * `{retention, rescanned}`.
   */
  async run(task: string | undefined, event: { email?: string; partition?: SweepPartition } = {}) {
    switch (task) {
      case 'promote-admin':
        return { admin: await this.promoteAdmin(event.email) };
      case 'health':
        return { health: await this.health() };
      // `partition`: one worker's share of the sweep (the Step Functions Distributed Map's items).
      case 'reconcile':
        return {
          reconcile: await this.reconcile(
            event.partition ? { partition: checkPartition(event.partition) } : {},
          ),
        };
      // Quarantined versions only: what an object scanner's "scan finished" event asks for
      // (GuardDuty's scan results, through EventBridge), without a whole retention sweep.
      case 'rescan':
        return { rescanned: await this.deps.verification.rescanPending() };
      default: {
        const { rescanned, ...retention } = await this.retention();
        return { retention, rescanned };
      }
    }
  }

  /** Node canaries: every node checked now. */
  health(): Promise<Record<string, NodeStatus>> {
    return this.deps.health.checkAll();
  }

  /**
   * A reconciliation sweep (a running one is joined), then the uploads whose background
   * verification stalled are handed to the verifier again, and the purge jobs whose run died; then
   * a part of the counters' drift check.
   */
  async reconcile(opts?: Parameters<Reconciler['sweep']>[0]): Promise<ReconcileReport> {
    // Workers of a partitioned sweep run at once: the first does the rest, once.
    if (opts?.partition && opts.partition.index !== 0) return this.deps.reconciler.sweep(opts);
    // The hand-overs first: they are quick, and a sweep that runs out of time must not starve them.
    await this.deps.backgroundVerifier
      .resumeStalled()
      .catch((err: unknown) => this.deps.log.error('resuming verifications failed', { err: String(err) }));
    await this.deps.purges
      .resumeStalled()
      .catch((err: unknown) => this.deps.log.error('resuming purge jobs failed', { err: String(err) }));
    const report = await this.deps.reconciler.sweep(opts);
    // The usage and replication counters checked against a recount, a bounded part per run.
    await this.deps.counters
      ?.run()
      .catch((err: unknown) => this.deps.log.error('counter drift check failed', { err: String(err) }));
    return report;
  }

  /**
   * One trigger of a purge job (`purgejob#<id>`): batches until done or the run's time is up, then
   * the next run is triggered. In AWS the background function's own stream mapping delivers them.
   */
  runPurgeJob(change: StateChange): Promise<void> {
    return this.deps.purges.onTrigger(change);
  }

  /** One trigger of the background verifier: the upload it names is verified and committed. */
  async verifyUpload(change: StateChange): Promise<void> {
    if (change.kind !== 'upsert' || !change.item.pk.startsWith(VERIFY_TRIGGER_PREFIX)) return;
    const uploadId = change.item.pk.slice(VERIFY_TRIGGER_PREFIX.length);
    const outcome = await this.deps.backgroundVerifier.verifyInBackground(uploadId);
    this.deps.log.info('background verification', { uploadId, outcome });
  }

  /**
   * A reconciliation started without waiting for it, where the process lives on (a node just added
   * or set draining); its failure is logged as `<what> failed`. The schedule covers Lambda.
   */
  reconcileInBackground(what: string): void {
    void this.reconcile().catch((err: unknown) =>
      this.deps.log.error(`${what} failed`, { err: String(err) }),
    );
  }

  /** Trash and version retention, then rescans of versions whose scan could not finish. */
  async retention(): Promise<RetentionReport> {
    const report = await this.deps.versions.sweep();
    return { ...report, rescanned: await this.deps.verification.rescanPending() };
  }

  /** Local profile: deletes expired state items and feeds their removal to `onStateChange`. */
  reapExpiredState(): Promise<number> {
    return this.deps.reapExpiredState?.() ?? Promise.resolve(0);
  }

  /** Whether this deployment has database housekeeping to run (PGlite, which has no autovacuum). */
  get hasDatabaseHousekeeping(): boolean {
    return this.deps.maintainDatabase !== undefined;
  }

  /** What autovacuum does on a server: statistics for the planner, dead rows reclaimed. */
  async databaseHousekeeping(): Promise<void> {
    await this.deps.maintainDatabase?.();
  }

  /**
   * The first admin of a deployment: whoever may invoke the maintenance function (the AWS account's
   * operator, through IAM; nobody over HTTP) promotes a registered account. Roles live in the users
   * table, so this is the one way in before any admin exists; later admins use
   * PATCH /v1/admin/users/{id}.
   */
  async promoteAdmin(email: string | undefined) {
    const address = email?.trim().toLowerCase();
    if (!address) throw new Error('promote-admin needs {"email": "..."} of a registered account');
    const user = await this.deps.users.byEmail(address);
    if (!user) throw new Error(`no registered account has the email ${address}`);
    const updated = await this.deps.auth.updateUser(
      { userId: user.id, role: 'admin', tokenId: 'operator', expiresAt: Math.floor(Date.now() / 1000) + 60 },
      user.id,
      { role: 'admin' },
    );
    this.deps.log.info('admin promoted by the account operator', { userId: updated.id });
    return { id: updated.id, email: updated.email, role: updated.role };
  }

  /**
   * The fan-out of one state change to the services that follow state: upload-session cleanup
   * (a session removed or expired without a commit), then replication (a pending replica planned in
   * the ledger). Throws to ask for a retry (the stream's batch item failure, the feed's error log).
   */
  async onStateChange(change: StateChange): Promise<void> {
    await this.cleanup.handle(change);
    await this.deps.replicator.handle(change);
    // In AWS a function of its own gets these (functions/streams/verifier.ts): a verification or a
    // purge job may take minutes, and must not hold up the stream's cleanup and replication.
    await this.verifyUpload(change);
    await this.runPurgeJob(change);
  }
}
