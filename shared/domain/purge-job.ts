/**
 * A purge job: the deletion for good of trash trees too big for one transaction (Aurora DSQL
 * commits at most 3,000 changed rows and 10 MiB per transaction, within 5 minutes). The job is a row
 * beside the items; each batch is one transaction that deletes at most `BatchLimits.rows` rows,
 * leaves first, and moves the job's cursor and counts in that same transaction, so a batch either
 * happened whole (and the cursor says so) or not at all, and a worker killed anywhere resumes from
 * the last committed batch.
 *
 *   claim ──────────────────▶ count ──▶ walk ─────────────▶ done
 *   (empty-trash: the owner's   (rows to  (deleting leaves first;
 *    trash roots; every job:     delete)   `purge` of one trash root: the request claimed it)
 *    the trash roots inside
 *    its trees, a batch at a time)
 */

export type PurgeOperation = 'purge' | 'empty-trash';
export type PurgeJobState = 'queued' | 'running' | 'done' | 'failed';
export type PurgePhase = 'claim' | 'count' | 'walk';

export interface PurgeTally {
  items: number;
  versions: number;
  bytes: number;
  blobsReclaimed: number;
}

export interface PurgeJob {
  id: string;
  operation: PurgeOperation;
  /** Whose trash: every item of a tree has its root's owner. */
  ownerId: string;
  /** Who asked; null for the retention sweep. */
  requestedBy: string | null;
  /** `purge`: the trash root; `empty-trash`: null. */
  rootId: string | null;
  /** Recorded in the audit trail: `explicit` or `trash retention`. */
  reason: string;
  /** `empty-trash` takes only the roots trashed at or before this (the request's time). */
  cutoff: Date;
  state: PurgeJobState;
  phase: PurgePhase;
  /** `walk`: the folder (or file) being emptied; null: start from the next root the job claimed. */
  cursor: string | null;
  /** Rows to delete (items and versions), once counted; set to `done` when the job ends. */
  total: number | null;
  /** Rows (items and versions) this job's batches deleted. */
  done: number;
  purged: PurgeTally;
  /** Batches that failed in a row; at `MAX_FAILURES` the job is `failed`. */
  failures: number;
  /** For the client: what went wrong, in words that reveal nothing internal. */
  error: string | null;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
}

/** What one batch transaction may change: rows (every insert, update and delete) and bytes. */
export interface BatchLimits {
  rows: number;
  bytes: number;
}

/**
 * Well under DSQL's 3,000 rows and 10 MiB: a batch's own bookkeeping (the job row, a usage row per
 * owner, an audit row per root) is counted inside `rows`, and a version row carries its part hashes
 * (up to some 650 KB for 10,000 parts), which `bytes` bounds.
 */
export const DEFAULT_BATCH_LIMITS: BatchLimits = { rows: 500, bytes: 4 * 1024 * 1024 };

/** A version the walk may delete, with what the batch must account for. */
export interface PurgeCandidate {
  id: string;
  fileId: string;
  ownerId: string;
  nodeId: string;
  blobKey: string;
  size: number;
  /** About the row's stored size: its part hashes and a fixed allowance for the rest. */
  weight: number;
}

/**
 * Rows one deleted version may change: its own, and the per-node counter row its deletion updates
 * (`version_counters`, one per shard and node, so often shared by several versions of a batch:
 * counted for each anyway, an upper bound).
 */
export const ROWS_PER_VERSION = 2;

/**
 * The longest prefix of `candidates` that fits in `room`: each takes `ROWS_PER_VERSION` rows and its
 * weight in bytes, and each owner not yet in `owners` one more row (the usage update the batch ends
 * with). With `force`, the first always fits, so a batch that has changed nothing yet always makes
 * progress (one row is at most 2 MiB in DSQL, below any sensible byte limit).
 */
export function fitting<T extends Pick<PurgeCandidate, 'ownerId' | 'weight'>>(
  candidates: readonly T[],
  room: BatchLimits,
  owners: ReadonlySet<string>,
  force = false,
): T[] {
  const out: T[] = [];
  const seen = new Set(owners);
  let rows = 0;
  let bytes = 0;
  for (const c of candidates) {
    const extra = ROWS_PER_VERSION + (seen.has(c.ownerId) ? 0 : 1);
    const fits = rows + extra <= room.rows && bytes + c.weight <= room.bytes;
    if (!fits && !(force && out.length === 0 && extra <= room.rows)) break;
    out.push(c);
    seen.add(c.ownerId);
    rows += extra;
    bytes += c.weight;
  }
  return out;
}

/** Consecutive failed batches after which a job is `failed` (a DELETE of its root queues it again). */
export const MAX_FAILURES = 5;
