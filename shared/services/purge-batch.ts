/**
 * One batch of a purge job, run inside one transaction: it changes at most `limits.rows` rows (its
 * own bookkeeping included) and about `limits.bytes` bytes, and ends by moving the job's cursor and
 * counts in the same transaction. So a batch is all or nothing, and running it again after a crash
 * changes nothing twice: a version's bytes go back to its owner only when this batch's DELETE
 * removed it, and deleted rows are simply not found again.
 *
 * The walk deletes leaves first: from the cursor it goes down to a folder with no subfolder, deletes
 * the versions of its files, their grants, the files, then the folder, and goes up to the parent.
 * What is left is therefore always a tree hanging from a claimed root, and a cursor that points at
 * nothing (another purge took that part) is answered by starting again from a root.
 */
import type { BatchLimits, PurgeCandidate, PurgeJob, PurgePhase } from '../domain/purge-job.ts';
import { fitting, ROWS_PER_VERSION } from '../domain/purge-job.ts';
import type { AuditLog, ItemStore } from '../ports/metadata.ts';
import type { PurgeJobStore } from '../ports/purge-job-store.ts';

/** The stores a batch uses, each bound to the batch's transaction. */
export interface BatchStores {
  jobs: PurgeJobStore;
  items: Pick<ItemStore, 'deleteVersions' | 'chargeUsage'>;
  audit: AuditLog;
}

export interface BatchResult {
  /** The job as this batch left it (state `done` when nothing is left). */
  state: 'running' | 'done';
  phase: PurgePhase;
  cursor: string | null;
  /** Versions this batch deleted: their blobs are reclaimed after the commit. */
  versions: PurgeCandidate[];
  /** Items this batch deleted, and folders whose pages may show them (cache invalidation). */
  items: string[];
  folders: (string | null)[];
  /** Rows written, bookkeeping included (never above `limits.rows`). */
  rows: number;
}

/** Thrown when the batch's lease was lost: the transaction rolls back and the run stops. */
export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
}

/** Reads a descent may take per row of budget: enough for deep trees, bounded for a batch. */
const STEPS_PER_ROW = 4;
const MIN_STEPS = 300;

export async function purgeBatch(
  s: BatchStores,
  jobId: string,
  leaseOwner: string,
  opts: { limits: BatchLimits; leaseMs: number; blobsReclaimed: number },
): Promise<BatchResult> {
  // The job row is locked for the transaction: no other worker's batch of this job runs beside it.
  const job: PurgeJob | undefined = await s.jobs.lockLeased(jobId, leaseOwner);
  if (!job) throw new LeaseLostError(`purge job ${jobId}: lease lost`);
  const { rows: maxRows, bytes: maxBytes } = opts.limits;
  let rows = 0;
  let bytes = 0;
  let phase = job.phase;
  let cursor = job.cursor;
  let total: number | null = null;
  let finished = false;
  const freed = new Map<string, number>();
  const tally = { items: 0, versions: 0, bytes: 0 };
  const versions: PurgeCandidate[] = [];
  const items: string[] = [];
  const folders: (string | null)[] = [];
  /** Rows still free once the job row and a usage row per owner charged so far are counted. */
  const room = () => maxRows - rows - 1 - freed.size;

  if (phase === 'claim') {
    // Emptying the trash claims the owner's roots; then every job claims the trash roots inside its
    // trees (items trashed before their folder was), so nothing it will delete can still be restored.
    const want = room();
    let claimed = 0;
    if (job.operation === 'empty-trash' && want > 0)
      claimed = await s.jobs.claimTrash(job.id, job.ownerId, want);
    if (claimed < want) claimed += await s.jobs.claimInner(job.id, want - claimed);
    rows += claimed;
    if (claimed < want) phase = 'count';
  }
  if (phase === 'count') {
    total = await s.jobs.countRows({ jobId: job.id });
    phase = 'walk';
  }
  if (phase === 'walk') {
    const maxSteps = Math.max(MIN_STEPS, maxRows * STEPS_PER_ROW);
    for (let step = 0; step < maxSteps && room() > 0; step++) {
      if (cursor === null) {
        cursor = (await s.jobs.claimedRoot(job.id)) ?? null;
        if (cursor === null) {
          finished = true;
          break;
        }
      }
      const node = await s.jobs.node(cursor);
      if (!node) {
        cursor = null; // taken by another purge (an inner trash root purged on its own): from a root
        continue;
      }
      const sub = await s.jobs.childFolder(node.id);
      if (sub) {
        cursor = sub;
        continue;
      }
      const candidates = await s.jobs.versionsUnder(node.id, Math.ceil(room() / ROWS_PER_VERSION));
      if (candidates.length) {
        const owners = new Set(freed.keys());
        const batch = fitting(candidates, { rows: room(), bytes: maxBytes - bytes }, owners, rows === 0);
        if (batch.length === 0) break;
        const gone = await s.items.deleteVersions(batch.map((v) => v.id));
        // As `fitting` counted them: each version's row and the counter row its deletion updates.
        rows += batch.length * ROWS_PER_VERSION;
        for (const v of batch) {
          bytes += v.weight;
          if (!gone.has(v.id)) continue; // another purge deleted it, and gave its bytes back
          freed.set(v.ownerId, (freed.get(v.ownerId) ?? 0) + v.size);
          versions.push(v);
          tally.versions++;
          tally.bytes += v.size;
        }
        continue;
      }
      const grants = await s.jobs.deleteGrantsUnder(node.id, room());
      if (grants > 0) {
        rows += grants;
        continue;
      }
      const files = await s.jobs.deleteFilesUnder(node.id, room());
      if (files.length) {
        rows += files.length;
        tally.items += files.length;
        items.push(...files);
        continue;
      }
      const ownRoot = node.claimedBy === job.id;
      if (room() < (ownRoot ? 2 : 1)) break;
      // The walk only ever goes up from inside a claimed root; a user's root folder is never in it.
      if (node.parentId === null) throw new Error(`purge job ${job.id}: walked up to a root folder`);
      if (!(await s.jobs.deleteIfEmpty(node.id))) continue; // something is left in it: look again
      rows++;
      tally.items++;
      items.push(node.id);
      if (ownRoot) {
        await s.audit.record({
          actorId: job.requestedBy,
          ownerId: node.ownerId,
          itemId: node.id,
          action: 'purge.item',
          detail: { reason: job.reason, name: node.name, jobId: job.id },
        });
        rows++;
        folders.push(node.parentId, node.originalParentId);
        cursor = null;
      } else cursor = node.parentId;
    }
  }
  for (const [owner, n] of freed) await s.items.chargeUsage(owner, -n);
  rows += freed.size;
  const state = finished ? 'done' : 'running';
  const moved = await s.jobs.advance(
    job.id,
    leaseOwner,
    {
      phase,
      cursor: finished ? null : cursor,
      total,
      done: tally.items + tally.versions,
      purged: { ...tally, blobsReclaimed: opts.blobsReclaimed },
      state,
    },
    opts.leaseMs,
  );
  if (!moved) throw new LeaseLostError(`purge job ${job.id}: lease lost`);
  rows++;
  return { state, phase, cursor, versions, items, folders, rows };
}
