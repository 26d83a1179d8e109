/** What a reconcile sweep answers (the admin route's body, the maintenance task's log line), and its options. */
export interface ReconcileReport {
  /** Which pass ran: every version, only those created since the last pass, or none (another sweep holds it). */
  pass: 'full' | 'incremental' | 'busy';
  /** False when the run's time was up before the pass reached its end; the next run goes on. */
  complete: boolean;
  /** The version id a full pass went on after (a resumed pass), if not from the start. */
  resumedAfter?: string;
  versions: number;
  /** Versions whose ledger changed under the sweep (the event path was acting on them): left for the next pass. */
  contended: number;
  belowReplicationFactor: number;
  /**
   * Replicas checked with a `stat` of their node. A full pass learns what listing nodes (S3) hold
   * from their listings, a page of keys at a time, and stats only what the listing lacks.
   */
  statChecks: number;
  /** `listPage` requests the pass made to learn what listing nodes hold. */
  listRequests: number;
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

export interface SweepOptions {
  /** Read every verified replica back and compare its SHA-256 (implies a full pass). */
  verifyChecksums?: boolean;
  /** A full pass now, whatever changed (an unfinished one is finished first). */
  full?: boolean;
  orphanGraceSeconds?: number;
  concurrency?: number;
}

/** A report of a pass that has done nothing yet. */
export function emptyReport(): ReconcileReport {
  return {
    pass: 'incremental',
    complete: true,
    versions: 0,
    contended: 0,
    belowReplicationFactor: 0,
    statChecks: 0,
    listRequests: 0,
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
}
