/**
 * The replica ledger: one StateStore item per (version, node) with its state (pending, verified,
 * failed, missing), attempts, checksum and last check. Writes flow out through the store's change
 * stream (DynamoDB Streams in AWS, the local feed otherwise) and drive the replicator. Pending
 * replicas are also listed in one index partition, so due retries are found without a scan.
 *
 * Counters, so replication status is read without walking the ledger: each version has a summary
 * item (its replicas per state, and the nodes holding a verified one), and sharded counter items
 * hold the sums over every summary: replicas per state, and versions per set of verified nodes
 * (from which "below the replication factor" follows for whichever nodes are down). Every change
 * to a replica is one `transact` with its summary (conditional on the summary's version: two
 * replicas of one version changing at once serialize there, and the loser re-reads and retries),
 * its index entries and the counter deltas, so the counters are exactly the sums over the
 * summaries, through retries and crashes. A version whose replicas were written without a summary
 * (by code from before the counters) is not counted until `reconcileSummary` (the CounterAudit)
 * or its next change builds one.
 */
import { ConditionFailedError, errors } from '../domain/errors.ts';
import type { StateItem, StateStore, StateWrite } from '../ports/state-store.ts';

export type ReplicaState = 'pending' | 'verified' | 'failed' | 'missing';

export interface Replica {
  versionId: string;
  nodeId: string;
  blobKey: string;
  size: number;
  sha256: string;
  state: ReplicaState;
  attempts: number;
  /** SHA-256 last read back from the node. */
  checksum?: string;
  lastCheck?: string;
  lastError?: string;
  /** Epoch ms before which a failed attempt is not retried. */
  retryAt?: number;
  createdAt: string;
}

/** Verified replicas per node, from the counters (`counts()`): no read of the ledger itself. */
export function verifiedByNode(counts: LedgerCounts): Map<string, number> {
  const out = new Map<string, number>();
  for (const set of counts.byVerifiedNodes)
    for (const node of set.nodes) out.set(node, (out.get(node) ?? 0) + set.versions);
  return out;
}

/** What the counters hold for one version. */
export interface VersionSummary {
  /** Nodes holding a verified replica, sorted. */
  verifiedOn: string[];
  /** Replicas per state. */
  states: Record<ReplicaState, number>;
}

/** The sums over every summary, as `counts()` reads them. */
export interface LedgerCounts {
  /** Versions with a summary (with at least one replica in the ledger). */
  versions: number;
  replicas: Record<ReplicaState, number>;
  /** Versions per set of nodes holding their verified replicas. */
  byVerifiedNodes: { nodes: string[]; versions: number }[];
}

/**
 * The index of pending replicas (what the drain copies), in 16 partitions by the version id's
 * first hex digit: one partition took every commit's writes (a DynamoDB partition takes ~1,000 a
 * second). Written only when a replica enters or leaves `pending`. `ledger-pending` alone is where
 * earlier releases kept it: still read, and emptied as its entries go stale.
 */
const LEGACY_PENDING = 'ledger-pending';
export const PENDING_SHARDS = 16;
export const pendingPk = (versionId: string) => {
  const digit = Number.parseInt(versionId.charAt(0), 16);
  return `${LEGACY_PENDING}#${Number.isNaN(digit) ? 0 : digit}`;
};
const PENDING_PKS = [
  ...Array.from({ length: PENDING_SHARDS }, (_, i) => `${LEGACY_PENDING}#${i}`),
  LEGACY_PENDING,
];

/** An entry of the pending index: a replica to copy. */
export interface PendingEntry {
  versionId: string;
  nodeId: string;
  createdAt: string;
}
export const ledgerPk = (versionId: string) => `ledger#${versionId}`;
const nodeIndex = (nodeId: string) => `node#${nodeId}`;
const summaryKey = (versionId: string) => ({ pk: `ledger-summary#${versionId}`, sk: 'summary' });
/**
 * Counter items: every transition adds to one of them, at random, so concurrent transitions rarely
 * share one (a DynamoDB item, and a partition key, takes ~1,000 writes a second, and transactions
 * on one item conflict); reading sums all of them, a fixed 16 queries.
 */
export const LEDGER_COUNTER_SHARDS = 16;
const counterKey = (shard: number) => ({ pk: `ledger-counters#${shard}`, sk: 'counts' });
const STATES: readonly ReplicaState[] = ['pending', 'verified', 'failed', 'missing'];
/** Summary races (another replica of the version changed first) are retried this often. */
const SUMMARY_ATTEMPTS = 12;
/** Replicas planned in one transaction; more are planned one by one. */
const PLAN_AT_ONCE = 4;

/** A change to one replica: from what the caller read (undefined: must not exist) to `after` (undefined: gone). */
interface Change {
  nodeId: string;
  before: StateItem<Replica> | undefined;
  after: Replica | undefined;
}

/** The summary of these replicas; undefined for none. */
export function summarize(replicas: readonly Replica[]): VersionSummary | undefined {
  if (replicas.length === 0) return undefined;
  const states: Record<ReplicaState, number> = { pending: 0, verified: 0, failed: 0, missing: 0 };
  for (const r of replicas) states[r.state]++;
  const verifiedOn = replicas
    .filter((r) => r.state === 'verified')
    .map((r) => r.nodeId)
    .sort();
  return { verifiedOn, states };
}

/** What a summary adds to the counters. */
function contribution(s: VersionSummary | undefined): Record<string, number> {
  if (!s) return {};
  const out: Record<string, number> = { versions: 1, [`set:${s.verifiedOn.join(',')}`]: 1 };
  for (const state of STATES) if (s.states[state]) out[`state:${state}`] = s.states[state];
  return out;
}

function difference(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of new Set([...Object.keys(after), ...Object.keys(before)])) {
    const d = (after[name] ?? 0) - (before[name] ?? 0);
    if (d !== 0) out[name] = d;
  }
  return out;
}

const sameSummary = (a: VersionSummary | undefined, b: VersionSummary | undefined) =>
  JSON.stringify(contribution(a)) === JSON.stringify(contribution(b));

export class ReplicaLedger {
  private readonly store: StateStore;

  constructor(store: StateStore) {
    this.store = store;
  }

  /** Records where a committed version should live: `verified` where it was written, `pending` elsewhere. */
  async plan(
    v: { versionId: string; blobKey: string; size: number; sha256: string },
    primary: string | undefined,
    others: string[],
  ) {
    const now = new Date().toISOString();
    const base = {
      versionId: v.versionId,
      blobKey: v.blobKey,
      size: v.size,
      sha256: v.sha256,
      attempts: 0,
      createdAt: now,
    };
    const planned: Replica[] = [
      ...(primary
        ? [{ ...base, nodeId: primary, state: 'verified' as const, checksum: v.sha256, lastCheck: now }]
        : []),
      ...others.map((nodeId) => ({ ...base, nodeId, state: 'pending' as const })),
    ];
    const changes = planned.map((r) => ({ nodeId: r.nodeId, before: undefined, after: r }));
    // All in one transaction (a commit's usual case); if one was planned already, one by one.
    if (changes.length > 0 && changes.length <= PLAN_AT_ONCE && (await this.apply(v.versionId, changes)))
      return;
    for (const c of changes) await this.apply(v.versionId, [c]); // false: planned already
  }

  /** Updates a replica only if nobody changed it since it was read. */
  async update(item: StateItem<Replica>, patch: Partial<Replica>): Promise<StateItem<Replica>> {
    const next = { ...item.data, ...patch };
    if (!(await this.apply(next.versionId, [{ nodeId: next.nodeId, before: item, after: next }])))
      throw new ConditionFailedError(`replica ${next.versionId}/${next.nodeId} changed`);
    return { ...item, data: next, version: item.version + 1 };
  }

  async forVersion(versionId: string): Promise<StateItem<Replica>[]> {
    return this.store.query<Replica>(ledgerPk(versionId));
  }

  /** The ledgers of several versions in one read (a page of the sweep), by version id. */
  async forVersions(versionIds: readonly string[]): Promise<Map<string, StateItem<Replica>[]>> {
    const byPk = await this.store.queryMany<Replica>(versionIds.map(ledgerPk));
    return new Map(versionIds.map((id) => [id, byPk.get(ledgerPk(id)) ?? []]));
  }

  /**
   * Up to `limit` entries of the pending index, taken from every shard in turn (so no shard waits
   * behind another's backlog), the legacy partition last.
   */
  async pending(limit = 500): Promise<PendingEntry[]> {
    const each = Math.max(1, Math.ceil(limit / PENDING_SHARDS));
    const shards = await Promise.all(
      PENDING_PKS.map((pk) =>
        this.store.query<PendingEntry>(pk, { limit: pk === LEGACY_PENDING ? limit : each }),
      ),
    );
    const out: PendingEntry[] = [];
    for (let i = 0; out.length < limit; i++) {
      let any = false;
      for (const shard of shards) {
        const e = shard[i];
        if (!e) continue;
        any = true;
        if (out.length < limit) out.push(e.data);
      }
      if (!any) break;
    }
    return out;
  }

  /**
   * Removes an index entry whose replica is no longer pending (a legacy entry, or one left by
   * whatever wrote the item apart from its index), only while the replica stays as it was read.
   * Answers whether it removed it.
   */
  async prunePending(entry: PendingEntry, replica: StateItem<Replica> | undefined): Promise<boolean> {
    if (replica?.data.state === 'pending') return false;
    const sk = `${entry.versionId}#${entry.nodeId}`;
    const guard: StateWrite = replica
      ? {
          op: 'check',
          pk: ledgerPk(entry.versionId),
          sk: entry.nodeId,
          condition: { kind: 'version', version: replica.version },
        }
      : { op: 'check', pk: ledgerPk(entry.versionId), sk: entry.nodeId, condition: { kind: 'absent' } };
    try {
      await this.store.transact([
        guard,
        { op: 'delete', pk: pendingPk(entry.versionId), sk },
        { op: 'delete', pk: LEGACY_PENDING, sk },
      ]);
      return true;
    } catch (err) {
      if (err instanceof ConditionFailedError) return false;
      throw err;
    }
  }

  async forget(versionId: string): Promise<void> {
    for (const r of await this.forVersion(versionId)) await this.drop(versionId, r.data.nodeId);
  }

  /** Removes one replica's record (after its bytes are deleted from the node). */
  async drop(versionId: string, nodeId: string): Promise<void> {
    for (;;) {
      const current = await this.store.get<Replica>(ledgerPk(versionId), nodeId);
      if (!current) {
        // Index entries left by a crash of code that wrote them apart from the item.
        await this.store.delete(pendingPk(versionId), `${versionId}#${nodeId}`);
        await this.store.delete(LEGACY_PENDING, `${versionId}#${nodeId}`);
        await this.store.delete(nodeIndex(nodeId), versionId);
        return;
      }
      if (await this.apply(versionId, [{ nodeId, before: current, after: undefined }])) return;
    }
  }

  /**
   * Verified replicas on a node, counted item by item: exact, but it reads the node's whole index
   * (tests and audits; the API answers from `verifiedByNode` and `holdsAny`).
   */
  async countOn(nodeId: string): Promise<number> {
    return this.store.count(nodeIndex(nodeId));
  }

  /** Whether a node still holds a verified replica: one item read, whatever it holds. */
  async holdsAny(nodeId: string): Promise<boolean> {
    return (await this.store.query(nodeIndex(nodeId), { limit: 1 })).length > 0;
  }

  async pendingCount(): Promise<number> {
    const counts = await Promise.all(PENDING_PKS.map((pk) => this.store.count(pk)));
    return counts.reduce((a, b) => a + b, 0);
  }

  /** The counters: a fixed number of reads, whatever the size of the ledger. */
  async counts(): Promise<LedgerCounts> {
    const shards = await Promise.all(
      Array.from({ length: LEDGER_COUNTER_SHARDS }, (_, k) => this.store.counters(counterKey(k).pk)),
    );
    const total: Record<string, number> = {};
    for (const shard of shards)
      for (const [name, v] of Object.entries(shard)) total[name] = (total[name] ?? 0) + v;
    const replicas = Object.fromEntries(STATES.map((s) => [s, total[`state:${s}`] ?? 0])) as Record<
      ReplicaState,
      number
    >;
    const byVerifiedNodes = Object.entries(total)
      .filter(([name, n]) => name.startsWith('set:') && n !== 0)
      .map(([name, n]) => ({ nodes: name === 'set:' ? [] : name.slice(4).split(','), versions: n }))
      .sort((a, b) => (a.nodes.join(',') < b.nodes.join(',') ? -1 : 1));
    return { versions: total.versions ?? 0, replicas, byVerifiedNodes };
  }

  /**
   * Makes a version's summary (and so the counters) agree with its replicas; returns whether it had
   * to. The summary is read before the replicas: a change committed between the two reads moved
   * the summary's version, so the corrected write, conditional on it, fails and is tried again.
   */
  async reconcileSummary(versionId: string): Promise<boolean> {
    const key = summaryKey(versionId);
    for (let attempt = 1; attempt <= SUMMARY_ATTEMPTS; attempt++) {
      const stored = await this.store.get<VersionSummary>(key.pk, key.sk);
      const expected = summarize((await this.forVersion(versionId)).map((r) => r.data));
      if (sameSummary(stored?.data, expected)) return false;
      const writes: StateWrite[] = [this.summaryWrite(versionId, stored, expected)];
      const delta = difference(contribution(expected), contribution(stored?.data));
      if (Object.keys(delta).length) writes.push({ op: 'add', ...counterKey(randomShard()), deltas: delta });
      try {
        await this.store.transact(writes);
        return true;
      } catch (err) {
        if (!(err instanceof ConditionFailedError)) throw err;
      }
    }
    throw errors.unavailable('replica ledger (summary contention)', 1);
  }

  /**
   * Applies changes to replicas of one version, with its summary, index entries and counters, in
   * one transaction. False when a replica was not as the caller read it (nothing written); a
   * summary changed meanwhile by another replica is re-read and the transaction tried again.
   */
  private async apply(versionId: string, changes: readonly Change[]): Promise<boolean> {
    const key = summaryKey(versionId);
    for (let attempt = 1; attempt <= SUMMARY_ATTEMPTS; attempt++) {
      const stored = await this.store.get<VersionSummary>(key.pk, key.sk);
      // No summary: this version is not counted yet; its summary is built from the replicas now.
      let base: VersionSummary | undefined = stored?.data;
      if (!stored) {
        const existing = (await this.forVersion(versionId)).map((r) => r.data);
        const changed = new Set(changes.map((c) => c.nodeId));
        base = summarize([
          ...existing.filter((r) => !changed.has(r.nodeId)),
          ...changes.flatMap((c) => (c.before ? [c.before.data] : [])),
        ]);
      }
      const next = this.applied(base, changes);
      const writes: StateWrite[] = [];
      for (const c of changes) writes.push(...this.replicaWrites(c));
      writes.push(this.summaryWrite(versionId, stored, next));
      const delta = difference(contribution(next), stored ? contribution(stored.data) : {});
      if (Object.keys(delta).length) writes.push({ op: 'add', ...counterKey(randomShard()), deltas: delta });
      try {
        await this.store.transact(writes);
        return true;
      } catch (err) {
        if (!(err instanceof ConditionFailedError)) throw err;
      }
      for (const c of changes) {
        const now = await this.store.get<Replica>(ledgerPk(versionId), c.nodeId);
        if (c.before ? now?.version !== c.before.version : now !== undefined) return false;
      }
      // The summary moved (another replica of this version): read it again.
      await new Promise((r) => setTimeout(r, Math.random() * 5 * attempt));
    }
    throw errors.unavailable('replica ledger (summary contention)', 1);
  }

  private applied(base: VersionSummary | undefined, changes: readonly Change[]): VersionSummary | undefined {
    const states: Record<ReplicaState, number> = base
      ? { ...base.states }
      : { pending: 0, verified: 0, failed: 0, missing: 0 };
    const verified = new Set(base?.verifiedOn ?? []);
    for (const { before, after, nodeId } of changes) {
      if (before) {
        states[before.data.state]--;
        if (before.data.state === 'verified') verified.delete(nodeId);
      }
      if (after) {
        states[after.state]++;
        if (after.state === 'verified') verified.add(nodeId);
      }
    }
    if (STATES.every((s) => states[s] <= 0)) return undefined;
    return { verifiedOn: [...verified].sort(), states };
  }

  /** The replica item, conditional on what was read, and its index entries. */
  private replicaWrites({ nodeId, before, after }: Change): StateWrite[] {
    const versionId = after?.versionId ?? before?.data.versionId ?? '';
    const pk = ledgerPk(versionId);
    const sk = `${versionId}#${nodeId}`;
    const item: StateWrite = after
      ? {
          op: 'put',
          item: { pk, sk: nodeId, data: after },
          condition: before ? { kind: 'version', version: before.version } : { kind: 'absent' },
        }
      : {
          op: 'delete',
          pk,
          sk: nodeId,
          ...(before ? { condition: { kind: 'version', version: before.version } } : {}),
        };
    const writes: StateWrite[] = [item];
    // The indexes change only when the replica enters or leaves their state: a retry's bookkeeping
    // (attempts, lastError) writes the item alone.
    const was = before?.data.state;
    if (after?.state === 'pending' && was !== 'pending')
      writes.push({
        op: 'put',
        item: { pk: pendingPk(versionId), sk, data: { versionId, nodeId, createdAt: after.createdAt } },
      });
    else if (was === 'pending' && after?.state !== 'pending')
      writes.push({ op: 'delete', pk: pendingPk(versionId), sk });
    // Per-node index of verified replicas: how many a node holds (a drained node holds none).
    if (after?.state === 'verified' && was !== 'verified')
      writes.push({ op: 'put', item: { pk: nodeIndex(nodeId), sk: versionId, data: { versionId } } });
    else if (was === 'verified' && after?.state !== 'verified')
      writes.push({ op: 'delete', pk: nodeIndex(nodeId), sk: versionId });
    return writes;
  }

  /** Writes `next` over the summary that was read (or checks it is still absent, for none over none). */
  private summaryWrite(
    versionId: string,
    stored: StateItem<VersionSummary> | undefined,
    next: VersionSummary | undefined,
  ): StateWrite {
    const key = summaryKey(versionId);
    if (next)
      return {
        op: 'put',
        item: { ...key, data: next },
        condition: stored ? { kind: 'version', version: stored.version } : { kind: 'absent' },
      };
    if (stored) return { op: 'delete', ...key, condition: { kind: 'version', version: stored.version } };
    return { op: 'check', ...key, condition: { kind: 'absent' } };
  }
}

const randomShard = () => Math.floor(Math.random() * LEDGER_COUNTER_SHARDS);
