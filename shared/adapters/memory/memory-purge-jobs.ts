/**
 * The in-memory PurgeJobStore, with the semantics of shared/adapters/postgres/
 * purge-job-repository.ts (its SQL is the reference; comments name the clause a rule comes from).
 */
import type { Item } from '../../domain/model.ts';
import type {
  PurgeCandidate,
  PurgeJob,
  PurgeJobState,
  PurgeOperation,
  PurgePhase,
} from '../../domain/purge-job.ts';
import type { SqlExecutor } from '../../ports/database.ts';
import type { PurgeAdvance, PurgeJobStore, PurgeNode } from '../../ports/purge-job-store.ts';
import { toItem } from './memory-metadata-children.ts';
import { type ItemRow, MemoryStore, type PurgeJobRow, type Tables } from './memory-metadata-state.ts';
import {
  dateOf,
  dateOrNull,
  int4,
  int8,
  limitOf,
  type Micros,
  uuid,
  uuidOrNull,
} from './memory-metadata-values.ts';

const STATES: readonly PurgeJobState[] = ['queued', 'running', 'done', 'failed'];
const PHASES: readonly PurgePhase[] = ['claim', 'count', 'walk'];

const toJob = (r: PurgeJobRow): PurgeJob => ({
  id: r.id,
  operation: (r.operation === 'empty-trash' ? 'empty-trash' : 'purge') satisfies PurgeOperation,
  ownerId: r.ownerId,
  requestedBy: r.requestedBy,
  rootId: r.rootId,
  reason: r.reason,
  cutoff: dateOf(r.cutoff),
  state: STATES.find((s) => s === r.state) ?? 'failed',
  phase: PHASES.find((p) => p === r.phase) ?? 'walk',
  cursor: r.walkAt,
  total: r.totalRows,
  done: r.doneRows,
  purged: { items: r.items, versions: r.versions, bytes: r.bytes, blobsReclaimed: r.blobsReclaimed },
  failures: r.failures,
  error: r.error,
  createdAt: dateOf(r.createdAt),
  updatedAt: dateOf(r.updatedAt),
  finishedAt: dateOrNull(r.finishedAt),
});

const MS_US = 1000;

/** `with recursive … union`: each item of the roots' subtrees once (a cycle is walked once). */
function subtreeIds(t: Tables, roots: readonly string[]): string[] {
  const children = new Map<string, string[]>();
  for (const r of t.items.values())
    if (r.parentId !== null) children.set(r.parentId, [...(children.get(r.parentId) ?? []), r.id]);
  const seen = new Set<string>();
  const out: string[] = [];
  const visit = (id: string) => {
    if (seen.has(id)) return;
    seen.add(id);
    out.push(id);
  };
  for (const id of roots) if (t.items.has(id)) visit(id);
  for (let i = 0; i < out.length; i++) for (const c of children.get(out[i] ?? '') ?? []) visit(c);
  return out;
}

/** `where i.id = $1 or i.parent_id = $1` (and files only, where the SQL says so). */
const under = (t: Tables, id: string, filesOnly: boolean): ItemRow[] =>
  [...t.items.values()].filter(
    (r) => r.id === id || (r.parentId === id && (!filesOnly || r.kind === 'file')),
  );

const leaseFree = (r: PurgeJobRow, now: Micros) => r.leaseUntil === null || r.leaseUntil < now;

export class MemoryPurgeJobStore extends MemoryStore implements PurgeJobStore {
  with(tx: SqlExecutor): MemoryPurgeJobStore {
    return new MemoryPurgeJobStore(this.db, this.db.txOf(tx));
  }

  insert(job: {
    id: string;
    operation: PurgeOperation;
    ownerId: string;
    requestedBy: string | null;
    rootId: string | null;
    reason: string;
    phase: PurgePhase;
  }) {
    return this.run((t, now) => {
      const row: PurgeJobRow = {
        id: uuid(job.id),
        operation: job.operation,
        ownerId: uuid(job.ownerId),
        requestedBy: uuidOrNull(job.requestedBy),
        rootId: uuidOrNull(job.rootId),
        reason: job.reason,
        cutoff: now,
        state: 'queued',
        phase: job.phase,
        walkAt: null,
        totalRows: null,
        doneRows: 0,
        items: 0,
        versions: 0,
        bytes: 0,
        blobsReclaimed: 0,
        failures: 0,
        error: null,
        leaseOwner: null,
        leaseUntil: null,
        createdAt: now,
        updatedAt: now,
        finishedAt: null,
      };
      if (t.purgeJobs.has(row.id)) throw new Error('purge_jobs_pkey');
      t.purgeJobs.set(row.id, row);
      return toJob(row);
    });
  }

  get(id: string) {
    return this.run((t) => {
      const r = t.purgeJobs.get(uuid(id));
      return r ? toJob(r) : undefined;
    });
  }

  /** `where id = $2 and deleted_at is not null and purge_job_id is null`. */
  claimRoot(jobId: string, rootId: string) {
    return this.run((t, now): Item | undefined => {
      const job = uuid(jobId);
      const r = t.items.get(uuid(rootId));
      if (!r || r.deletedAt === null || r.purgeJobId !== null) return undefined;
      r.purgeJobId = job;
      r.purgeStartedAt ??= now;
      return toItem(r);
    });
  }

  claimOf(rootId: string) {
    return this.run((t) => t.items.get(uuid(rootId))?.purgeJobId ?? undefined);
  }

  claimTrash(jobId: string, ownerId: string, limit: number) {
    return this.run((t, now) => {
      const job = uuid(jobId);
      const owner = uuid(ownerId);
      const at = t.purgeJobs.get(job)?.cutoff ?? Number.NEGATIVE_INFINITY;
      let n = 0;
      for (const r of t.items.values()) {
        if (n >= limitOf(limit)) break;
        if (r.ownerId !== owner || r.deletedAt === null || r.deletedAt > at || r.purgeJobId !== null)
          continue;
        r.purgeJobId = job;
        r.purgeStartedAt ??= now;
        n++;
      }
      return n;
    });
  }

  claimInner(jobId: string, limit: number) {
    return this.run((t, now) => {
      const job = uuid(jobId);
      const n = limitOf(Math.max(0, limit));
      const roots = [...t.items.values()].filter((r) => r.purgeJobId === job).map((r) => r.id);
      let claimed = 0;
      for (const id of subtreeIds(t, roots)) {
        if (claimed >= n) break;
        const r = t.items.get(id);
        if (!r || r.deletedAt === null || r.purgeJobId !== null) continue;
        r.purgeJobId = job;
        r.purgeStartedAt ??= now;
        claimed++;
      }
      return claimed;
    });
  }

  unclaimedTrash(ownerId: string, limit: number) {
    return this.run((t) => {
      const owner = uuid(ownerId);
      return [...t.items.values()]
        .filter((r) => r.ownerId === owner && r.deletedAt !== null && r.purgeJobId === null)
        .slice(0, limitOf(limit))
        .map((r) => r.id);
    });
  }

  anyClaimed(ids: readonly string[]) {
    return this.run((t) =>
      ids.map(uuid).some((id) => {
        const r = t.items.get(id);
        return r !== undefined && (r.purgeJobId !== null || r.purgeStartedAt !== null);
      }),
    );
  }

  claimedRoot(jobId: string) {
    return this.run((t) => {
      const job = uuid(jobId);
      for (const r of t.items.values()) if (r.purgeJobId === job) return r.id;
      return undefined;
    });
  }

  countRows(roots: readonly string[] | { jobId: string }, cap?: number) {
    return this.run((t) => {
      const seeds = Array.isArray(roots)
        ? roots.map(uuid)
        : [...t.items.values()]
            .filter((r) => r.purgeJobId === uuid((roots as { jobId: string }).jobId))
            .map((r) => r.id);
      let items = subtreeIds(t, seeds);
      if (cap !== undefined) items = items.slice(0, limitOf(cap));
      const inTree = new Set(items);
      const versions = [...t.versions.values()].filter((v) => inTree.has(v.fileId)).length;
      const n = items.length + (cap === undefined ? versions : Math.min(versions, cap));
      return cap === undefined ? n : Math.min(n, cap);
    });
  }

  node(id: string) {
    return this.run((t): PurgeNode | undefined => {
      const r = t.items.get(uuid(id));
      return r
        ? {
            id: r.id,
            parentId: r.parentId,
            kind: r.kind,
            name: r.name,
            ownerId: r.ownerId,
            originalParentId: r.originalParentId,
            claimedBy: r.purgeJobId,
          }
        : undefined;
    });
  }

  childFolder(id: string) {
    return this.run((t) => {
      const p = uuid(id);
      for (const r of t.items.values()) if (r.parentId === p && r.kind === 'folder') return r.id;
      return undefined;
    });
  }

  versionsUnder(id: string, limit: number) {
    return this.run((t): PurgeCandidate[] => {
      const n = limitOf(Math.max(0, limit));
      const files = new Map(under(t, uuid(id), true).map((r) => [r.id, r]));
      const out: PurgeCandidate[] = [];
      for (const v of t.versions.values()) {
        if (out.length >= n) break;
        const f = files.get(v.fileId);
        if (f)
          out.push({
            id: v.id,
            fileId: v.fileId,
            ownerId: f.ownerId,
            nodeId: v.nodeId,
            blobKey: v.blobKey,
            size: v.size,
            weight: Buffer.byteLength(v.partHashes ?? '') + Buffer.byteLength(v.blobKey) + 256,
          });
      }
      return out;
    });
  }

  deleteGrantsUnder(id: string, limit: number) {
    return this.run((t) => {
      const n = limitOf(Math.max(0, limit));
      const items = new Set(under(t, uuid(id), false).map((r) => r.id));
      let deleted = 0;
      for (const table of [t.permissions, t.invitations])
        for (const [key, g] of table) {
          if (deleted >= n) return deleted;
          if (items.has(g.itemId)) {
            table.delete(key);
            deleted++;
          }
        }
      return deleted;
    });
  }

  deleteFilesUnder(id: string, limit: number) {
    return this.run((t) => {
      const n = limitOf(Math.max(0, limit));
      const p = uuid(id);
      const withVersions = new Set([...t.versions.values()].map((v) => v.fileId));
      const out: string[] = [];
      for (const r of [...t.items.values()]) {
        if (out.length >= n) break;
        if (r.parentId === p && r.kind === 'file' && !withVersions.has(r.id)) {
          t.items.delete(r.id);
          out.push(r.id);
        }
      }
      return out;
    });
  }

  /** `where id = $1 and parent_id is not null and not exists (children) and not exists (versions)`. */
  deleteIfEmpty(id: string) {
    return this.run((t) => {
      const r = t.items.get(uuid(id));
      if (!r || r.parentId === null) return false;
      for (const c of t.items.values()) if (c.parentId === r.id) return false;
      for (const v of t.versions.values()) if (v.fileId === r.id) return false;
      t.items.delete(r.id);
      return true;
    });
  }

  lease(id: string, owner: string, ms: number) {
    return this.run((t, now) => {
      const who = uuid(owner);
      const r = t.purgeJobs.get(uuid(id));
      if (!r || (r.state !== 'queued' && r.state !== 'running') || !leaseFree(r, now)) return undefined;
      Object.assign(r, {
        leaseOwner: who,
        leaseUntil: now + Math.round(ms * MS_US),
        state: 'running',
        updatedAt: now,
      });
      return toJob(r);
    });
  }

  /** Row locks are implicit: the transaction holding the mutex is the only one running. */
  lockLeased(id: string, owner: string) {
    return this.run((t) => {
      const who = uuid(owner);
      const r = t.purgeJobs.get(uuid(id));
      return r && r.leaseOwner === who && r.state === 'running' ? toJob(r) : undefined;
    });
  }

  advance(id: string, owner: string, c: PurgeAdvance, leaseMs: number) {
    return this.run((t, now) => {
      const who = uuid(owner);
      const r = t.purgeJobs.get(uuid(id));
      if (!r || r.leaseOwner !== who || r.state !== 'running') return false;
      const done = c.state === 'done';
      const doneRows = r.doneRows + int8(c.done);
      Object.assign(r, {
        phase: c.phase,
        walkAt: uuidOrNull(c.cursor),
        totalRows: done ? doneRows : c.total === null ? r.totalRows : int8(c.total),
        doneRows,
        items: r.items + int8(c.purged.items),
        versions: r.versions + int8(c.purged.versions),
        bytes: r.bytes + int8(c.purged.bytes),
        blobsReclaimed: r.blobsReclaimed + int8(c.purged.blobsReclaimed),
        failures: 0,
        error: null,
        state: c.state,
        updatedAt: now,
        finishedAt: done ? now : null,
        leaseOwner: done ? null : r.leaseOwner,
        leaseUntil: done ? null : now + Math.round(leaseMs * MS_US),
      });
      return true;
    });
  }

  async addReclaimed(id: string, blobs: number): Promise<void> {
    if (blobs <= 0) return;
    await this.run((t, now) => {
      const r = t.purgeJobs.get(uuid(id));
      if (r) Object.assign(r, { blobsReclaimed: r.blobsReclaimed + int8(blobs), updatedAt: now });
    });
  }

  async release(id: string, owner: string): Promise<void> {
    await this.run((t, now) => {
      const who = uuid(owner);
      const r = t.purgeJobs.get(uuid(id));
      if (r && r.leaseOwner === who) Object.assign(r, { leaseOwner: null, leaseUntil: null, updatedAt: now });
    });
  }

  recordFailure(id: string, owner: string, error: string, maxFailures: number) {
    return this.run((t, now) => {
      const who = uuid(owner);
      const max = int4(maxFailures);
      const r = t.purgeJobs.get(uuid(id));
      if (!r || r.leaseOwner !== who) return undefined;
      const failures = r.failures + 1;
      Object.assign(r, {
        failures,
        error,
        leaseOwner: null,
        leaseUntil: null,
        state: failures >= max ? 'failed' : r.state,
        finishedAt: failures >= max ? now : r.finishedAt,
        updatedAt: now,
      });
      return toJob(r);
    });
  }

  requeue(id: string) {
    return this.run((t, now) => {
      const r = t.purgeJobs.get(uuid(id));
      if (r?.state !== 'failed') return undefined;
      Object.assign(r, { state: 'queued', failures: 0, error: null, finishedAt: null, updatedAt: now });
      return toJob(r);
    });
  }

  stalled(idleMs: number, limit: number) {
    return this.run((t, now) =>
      [...t.purgeJobs.values()]
        .filter(
          (r) =>
            (r.state === 'queued' || r.state === 'running') &&
            leaseFree(r, now) &&
            r.updatedAt < now - Math.round(idleMs * MS_US),
        )
        .sort((a, b) => a.updatedAt - b.updatedAt)
        .slice(0, limitOf(limit))
        .map((r) => r.id),
    );
  }

  forgetFinished(ageMs: number, limit: number) {
    return this.run((t, now) => {
      let n = 0;
      for (const [id, r] of t.purgeJobs) {
        if (n >= limitOf(limit)) break;
        if (r.state === 'done' && r.finishedAt !== null && r.finishedAt < now - Math.round(ageMs * MS_US)) {
          t.purgeJobs.delete(id);
          n++;
        }
      }
      return n;
    });
  }
}
