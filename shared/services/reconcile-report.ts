import type { SweepPartition } from './sweep-partitions.ts';

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
  /**
   * Where the orphan sweep stands after this run: it follows each completed full pass, and goes on
   * within each later run's budget until every node is listed (`continues` until then).
   */
  orphanSweep: 'idle' | 'done' | 'continues';
  /** Which share of the id space the run swept (`<index>of<count>`); absent for the whole space. */
  partition?: string;
  /** A run over several partitions: how many it ran. */
  partitions?: number;
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
  /** One share of the id space (a Step Functions Distributed Map item); absent: every partition in turn. */
  partition?: SweepPartition;
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
    orphanSweep: 'idle',
    leftoversRemoved: 0,
    expiredSessions: 0,
  };
}

/**
 * The report of a run over several partitions: counts added; `full` if any partition ran a full
 * pass (else `incremental` if any ran, else `busy`); complete only if every one was.
 */
export function mergeReports(reports: readonly ReconcileReport[]): ReconcileReport {
  const [first, ...rest] = reports;
  if (!first) return emptyReport();
  if (rest.length === 0) return first;
  const out: ReconcileReport = { ...emptyReport(), partitions: reports.length };
  const orphanRank = { idle: 0, done: 1, continues: 2 } as const;
  for (const r of reports) {
    for (const [k, v] of Object.entries(r) as [keyof ReconcileReport, unknown][])
      if (typeof v === 'number' && k !== 'partitions') (out[k] as number) += v;
    out.complete &&= r.complete;
    if (orphanRank[r.orphanSweep] > orphanRank[out.orphanSweep]) out.orphanSweep = r.orphanSweep;
  }
  out.pass = reports.some((r) => r.pass === 'full')
    ? 'full'
    : reports.some((r) => r.pass === 'incremental')
      ? 'incremental'
      : 'busy';
  return out;
}
