/**
 * The PurgeJobStore port: purge jobs (shared/domain/purge-job.ts) and the steps of their walk over
 * the items, in the system of record. The PostgreSQL repository (shared/adapters/postgres/
 * purge-job-repository.ts) and the in-memory one implement it; the batch logic that strings the
 * steps together is the service's (shared/services/purge-batch.ts).
 *
 * Roots are claimed by a job (`items.purge_job_id`, with `purge_started_at`): a claimed root is out
 * of the trash listing, cannot be restored, and no item beneath it can be restored on its own. A
 * claim is one conditional update, so of two purges of one root exactly one claims it.
 */

import type { Item } from '../domain/model.ts';
import type {
  PurgeCandidate,
  PurgeJob,
  PurgeOperation,
  PurgePhase,
  PurgeTally,
} from '../domain/purge-job.ts';
import type { Tx } from './metadata.ts';

/** An item as the walk sees it. */
export interface PurgeNode {
  id: string;
  parentId: string | null;
  kind: 'file' | 'folder';
  name: string;
  ownerId: string;
  originalParentId: string | null;
  /** The job that claimed it as a root, if any. */
  claimedBy: string | null;
}

/** What a batch adds to its job, in the batch's transaction. */
export interface PurgeAdvance {
  phase: PurgePhase;
  cursor: string | null;
  /** Set once counted; null leaves it. */
  total: number | null;
  done: number;
  purged: PurgeTally;
  state: 'running' | 'done';
}

export interface PurgeJobStore {
  with(tx: Tx): PurgeJobStore;
  /** A new job, `queued`; its cutoff is the transaction's time. */
  insert(job: {
    id: string;
    operation: PurgeOperation;
    ownerId: string;
    requestedBy: string | null;
    rootId: string | null;
    reason: string;
    phase: PurgePhase;
  }): Promise<PurgeJob>;
  get(id: string): Promise<PurgeJob | undefined>;

  // ---- claims
  /** Claims a trash root for the job; undefined when it is not in the trash or claimed already. */
  claimRoot(jobId: string, rootId: string): Promise<Item | undefined>;
  /** The job that claimed this root, if any. */
  claimOf(rootId: string): Promise<string | undefined>;
  /**
   * Claims up to `limit` of the owner's unclaimed trash roots trashed at or before the job's cutoff
   * (read from the job's row: a Date would lose the microseconds).
   */
  claimTrash(jobId: string, ownerId: string, limit: number): Promise<number>;
  /**
   * Claims up to `limit` unclaimed trash roots inside the trees the job claimed (an item trashed
   * before its folder was): they go with the job, out of the listing and past restoring.
   */
  claimInner(jobId: string, limit: number): Promise<number>;
  /** The owner's trash roots no job has claimed (the size estimate of emptying the trash). */
  unclaimedTrash(ownerId: string, limit: number): Promise<string[]>;
  /** Whether any of these items is a claimed root. */
  anyClaimed(ids: readonly string[]): Promise<boolean>;
  /** A root the job claimed that still exists. */
  claimedRoot(jobId: string): Promise<string | undefined>;
  /**
   * Items and versions in the subtrees of `roots` (ids), or of every root the job claimed
   * (`{ jobId }`), each counted once; with `cap`, counting stops there.
   */
  countRows(roots: readonly string[] | { jobId: string }, cap?: number): Promise<number>;

  // ---- the walk: leaves first, so what is left is always a tree hanging from a claimed root
  node(id: string): Promise<PurgeNode | undefined>;
  /** Any child folder of the item. */
  childFolder(id: string): Promise<string | undefined>;
  /** Versions of the item itself (a file) and of the files directly in it. */
  versionsUnder(id: string, limit: number): Promise<PurgeCandidate[]>;
  /** Deletes up to `limit` grants and invitations on the item and on the items directly in it. */
  deleteGrantsUnder(id: string, limit: number): Promise<number>;
  /** Deletes up to `limit` files directly in the item that have no version left; their ids. */
  deleteFilesUnder(id: string, limit: number): Promise<string[]>;
  /** Deletes the item if nothing is in it and no version of it is left. */
  deleteIfEmpty(id: string): Promise<boolean>;

  // ---- leases: one worker at a time; every batch is fenced by its lease
  /** Takes the job for `ms` unless another worker holds it or it has ended; the job as taken. */
  lease(id: string, owner: string, ms: number): Promise<PurgeJob | undefined>;
  /** The job, its row locked for the transaction, if `owner` still holds it. */
  lockLeased(id: string, owner: string): Promise<PurgeJob | undefined>;
  /** Adds a batch's work and renews the lease (or lets it go when done); false if it was lost. */
  advance(id: string, owner: string, change: PurgeAdvance, leaseMs: number): Promise<boolean>;
  /** Blobs deleted after a batch committed (counted in the next statement about the job). */
  addReclaimed(id: string, blobs: number): Promise<void>;
  release(id: string, owner: string): Promise<void>;
  /** Counts a failed batch and lets the lease go; `failed` after `maxFailures` in a row. */
  recordFailure(id: string, owner: string, error: string, maxFailures: number): Promise<PurgeJob | undefined>;
  /** A `failed` job queued again (its roots stay claimed); undefined when it is not failed. */
  requeue(id: string): Promise<PurgeJob | undefined>;
  /** Unfinished jobs nobody holds and nothing moved for `idleMs`: their trigger was lost. */
  stalled(idleMs: number, limit: number): Promise<string[]>;
  /**
   * Forgets `done` jobs that ended more than `ageMs` ago; how many. A `failed` job is kept: its
   * roots are still claimed by it, and a DELETE of one queues it again.
   */
  forgetFinished(ageMs: number, limit: number): Promise<number>;
}
