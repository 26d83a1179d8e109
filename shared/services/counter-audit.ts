/**
 * The counters' backfill and drift check. Two families of counters answer usage and replication
 * status in constant time (docs/architecture.md, "Counters"): the version counters in the system of
 * record (ItemStore: versions and bytes per node, per id shard) and the replica-ledger counters in
 * the state store (ReplicaLedger: replicas per state, versions per set of verified nodes). Both are
 * changed in the same transaction as what they count, so they drift only when something writes
 * around them: code from before the counters (an existing deployment, or old functions still
 * serving during a deploy) or a hand edit. This service recomputes them from the data in bounded
 * steps, each safe beside live traffic: one version shard (1/256 of the versions) per transaction,
 * one version's ledger summary per transaction.
 *
 * - Backfill: before anything answers from the counters, every shard must have been counted once
 *   and the ledger walked once (`versionCountsReady`, `ledgerCountsReady`). A fresh deployment has
 *   nothing to walk; an existing one does it at the first read, or in the maintenance runs before.
 * - Drift check (`run`, after each reconciliation): a full recount of both, resumed from a cursor
 *   in the state store, a time budget per run, a new cycle every `cycleSeconds`.
 */
import { VERSION_SHARDS } from '../domain/counter-shards.ts';
import { errors } from '../domain/errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { ItemStore } from '../ports/metadata.ts';
import type { StateStore } from '../ports/state-store.ts';
import type { ReplicaLedger } from './replica-ledger.ts';

/** Persisted progress: where the current cycle is, and what has been counted at least once. */
interface AuditState {
  /** The ledger was walked to its end once: its counters cover every version. */
  ledgerCounted?: string;
  /** The cycle under way, if any. */
  cycle?: { startedAt: string; nextShard: number; ledgerAfter: string; ledgerDone: boolean };
  lastCycle?: { startedAt: string; completedAt: string };
  /** A backfill walk of the ledger under way (before `ledgerCounted`). */
  backfillAfter?: string;
  /** The first drift-check run: the first cycle is due a period after it. */
  firstRunAt?: string;
}

export interface DriftReport {
  /** Shards recounted, and how far off their counters were in all (counters minus versions). */
  shards: number;
  versionsOff: number;
  bytesOff: number;
  /** Versions whose ledger summary was checked, and those that had to be corrected. */
  ledgerVersions: number;
  ledgerCorrected: number;
}

const STATE = { pk: 'counter-audit#state', sk: 'state' };
const FIRST_ID = '00000000-0000-0000-0000-000000000000';
const PAGE = 200;
const PARALLEL = 16;

const emptyDrift = (): DriftReport => ({
  shards: 0,
  versionsOff: 0,
  bytesOff: 0,
  ledgerVersions: 0,
  ledgerCorrected: 0,
});

export class CounterAudit {
  private readonly items: ItemStore;
  private readonly ledger: Pick<ReplicaLedger, 'reconcileSummary'>;
  private readonly state: StateStore;
  private readonly log: Logger;
  private readonly cycleMs: number;
  private shardsReady = false;
  private ledgerReady = false;

  constructor(deps: {
    items: ItemStore;
    ledger: Pick<ReplicaLedger, 'reconcileSummary'>;
    state: StateStore;
    log: Logger;
    /** How often a full drift check starts (default a day). */
    cycleSeconds?: number;
  }) {
    this.items = deps.items;
    this.ledger = deps.ledger;
    this.state = deps.state;
    this.log = deps.log;
    this.cycleMs = (deps.cycleSeconds ?? 86_400) * 1000;
  }

  /**
   * Every version shard counted once: until then the version counters lack what was written before
   * them. Counts the rest now, a shard per transaction; remembered by the process once true.
   */
  async versionCountsReady(): Promise<void> {
    if (this.shardsReady) return;
    const missing = await this.items.uncountedShards();
    for (const shard of missing) await this.items.recountShard(shard);
    if (missing.length) this.log.info('version counters backfilled', { shards: missing.length });
    this.shardsReady = true;
  }

  /**
   * The ledger walked once, building the summaries of versions whose replicas predate them. Goes on
   * from where an earlier walk stopped; past `budgetMs` it stops and throws `unavailable` (503 with
   * Retry-After), since counters that lack versions would understate what is below the factor.
   */
  async ledgerCountsReady(budgetMs = 20_000): Promise<void> {
    if (this.ledgerReady) return;
    const stop = Date.now() + budgetMs;
    let st = await this.read();
    if (!st.ledgerCounted) {
      let after = st.backfillAfter ?? FIRST_ID;
      for (;;) {
        const page = await this.items.versionsAfter(after, PAGE);
        await this.reconcilePage(page, emptyDrift());
        after = page[page.length - 1]?.id ?? after;
        const done = page.length < PAGE;
        st = {
          ...(await this.read()),
          backfillAfter: after,
          ...(done ? { ledgerCounted: new Date().toISOString() } : {}),
        };
        await this.write(st);
        if (done) break;
        if (Date.now() > stop)
          throw errors.unavailable('replication counters (their backfill is under way)', 30);
      }
      this.log.info('replica-ledger counters backfilled');
    }
    this.ledgerReady = true;
  }

  /**
   * One run of the drift check, within `budgetMs`: goes on with the cycle under way (or starts one
   * when the last is older than the cycle period), recounting shards, then ledger summaries.
   * Returns what this run found and whether the cycle reached its end.
   */
  async run(opts: { budgetMs?: number; now?: Date } = {}): Promise<DriftReport & { complete: boolean }> {
    const now = opts.now ?? new Date();
    const stop = Date.now() + (opts.budgetMs ?? 20_000);
    let st = await this.read();
    const drift = emptyDrift();
    if (!st.cycle) {
      // The counters were just backfilled or seeded when a deployment first runs this: its first
      // full recount is due a period later, not in the first reconciliation.
      if (!st.lastCycle && !st.firstRunAt) {
        await this.write({ ...st, firstRunAt: now.toISOString() });
        return { ...drift, complete: true };
      }
      const last = Date.parse(st.lastCycle?.startedAt ?? st.firstRunAt ?? now.toISOString());
      if (now.getTime() - last < this.cycleMs) return { ...drift, complete: true };
      st = {
        ...st,
        cycle: { startedAt: now.toISOString(), nextShard: 0, ledgerAfter: FIRST_ID, ledgerDone: false },
      };
    }
    const cycle = st.cycle as NonNullable<AuditState['cycle']>;
    // One step at least per run (a shard, or a page of versions), so any budget makes progress.
    let steps = 0;
    const more = () => steps++ === 0 || Date.now() < stop;
    while (cycle.nextShard < VERSION_SHARDS.length && more()) {
      await this.recountShard(VERSION_SHARDS[cycle.nextShard] as string, drift);
      cycle.nextShard++;
    }
    while (!cycle.ledgerDone && more()) {
      const page = await this.items.versionsAfter(cycle.ledgerAfter, PAGE);
      await this.reconcilePage(page, drift);
      cycle.ledgerAfter = page[page.length - 1]?.id ?? cycle.ledgerAfter;
      cycle.ledgerDone = page.length < PAGE;
      await this.write({ ...(await this.read()), cycle });
    }
    const complete = cycle.nextShard >= VERSION_SHARDS.length && cycle.ledgerDone;
    const latest = await this.read();
    await this.write(
      complete
        ? {
            ...latest,
            cycle: undefined,
            ledgerCounted: latest.ledgerCounted ?? new Date().toISOString(),
            lastCycle: { startedAt: cycle.startedAt, completedAt: new Date().toISOString() },
          }
        : { ...latest, cycle },
    );
    if (drift.versionsOff || drift.bytesOff || drift.ledgerCorrected)
      this.log.warn('counters drifted and were corrected', { ...drift });
    return { ...drift, complete };
  }

  /** The whole recount at once (tests, an operator): every shard, every version's summary. */
  async recountAll(): Promise<DriftReport> {
    const drift = emptyDrift();
    for (const shard of VERSION_SHARDS) await this.recountShard(shard, drift);
    let after = FIRST_ID;
    for (;;) {
      const page = await this.items.versionsAfter(after, PAGE);
      await this.reconcilePage(page, drift);
      if (page.length < PAGE) break;
      after = page[page.length - 1]?.id ?? after;
    }
    return drift;
  }

  private async recountShard(shard: string, drift: DriftReport) {
    const off = await this.items.recountShard(shard);
    drift.shards++;
    drift.versionsOff += off.versions;
    drift.bytesOff += off.bytes;
  }

  /** A page of versions' summaries, a few at once (each is two reads, and a write only on drift). */
  private async reconcilePage(page: readonly { id: string }[], drift: DriftReport) {
    for (let i = 0; i < page.length; i += PARALLEL) {
      const corrected = await Promise.all(
        page.slice(i, i + PARALLEL).map((v) => this.ledger.reconcileSummary(v.id)),
      );
      drift.ledgerVersions += corrected.length;
      drift.ledgerCorrected += corrected.filter(Boolean).length;
    }
  }

  private async read(): Promise<AuditState> {
    return (await this.state.get<AuditState>(STATE.pk, STATE.sk))?.data ?? {};
  }

  private async write(st: AuditState): Promise<void> {
    const { cycle, ...rest } = st;
    await this.state.put({ ...STATE, data: cycle ? { ...rest, cycle } : rest });
  }
}
