/** Purge jobs and the statements of their walk, in the system of record (the PurgeJobStore port). */
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
import { toItem } from './item-repository.ts';

interface JobRow {
  id: string;
  operation: string;
  owner_id: string;
  requested_by: string | null;
  root_id: string | null;
  reason: string;
  cutoff: Date | string;
  state: string;
  phase: string;
  walk_at: string | null;
  total_rows: string | number | null;
  done_rows: string | number;
  items: string | number;
  versions: string | number;
  bytes: string | number;
  blobs_reclaimed: string | number;
  failures: number;
  error: string | null;
  created_at: Date | string;
  updated_at: Date | string;
  finished_at: Date | string | null;
}

const date = (v: Date | string) => (v instanceof Date ? v : new Date(v));
const STATES: readonly PurgeJobState[] = ['queued', 'running', 'done', 'failed'];
const PHASES: readonly PurgePhase[] = ['claim', 'count', 'walk'];

const toJob = (r: JobRow): PurgeJob => ({
  id: r.id,
  operation: (r.operation === 'empty-trash' ? 'empty-trash' : 'purge') satisfies PurgeOperation,
  ownerId: r.owner_id,
  requestedBy: r.requested_by,
  rootId: r.root_id,
  reason: r.reason,
  cutoff: date(r.cutoff),
  state: STATES.find((s) => s === r.state) ?? 'failed',
  phase: PHASES.find((p) => p === r.phase) ?? 'walk',
  cursor: r.walk_at,
  total: r.total_rows === null ? null : Number(r.total_rows),
  done: Number(r.done_rows),
  purged: {
    items: Number(r.items),
    versions: Number(r.versions),
    bytes: Number(r.bytes),
    blobsReclaimed: Number(r.blobs_reclaimed),
  },
  failures: Number(r.failures),
  error: r.error,
  createdAt: date(r.created_at),
  updatedAt: date(r.updated_at),
  finishedAt: r.finished_at === null ? null : date(r.finished_at),
});

const ids = (v: readonly string[]) => v as unknown as string;

/** The subtrees of the roots in `seed` (a select of ids), each item once (UNION also ends a cycle). */
const tree = (seed: string) => `with recursive t (id) as (
    ${seed}
    union
    select i.id from items i join t on i.parent_id = t.id
  )`;

export class PurgeJobRepository implements PurgeJobStore {
  private readonly q: SqlExecutor;

  constructor(q: SqlExecutor) {
    this.q = q;
  }

  with(tx: SqlExecutor): PurgeJobRepository {
    return new PurgeJobRepository(tx);
  }

  async insert(job: {
    id: string;
    operation: PurgeOperation;
    ownerId: string;
    requestedBy: string | null;
    rootId: string | null;
    reason: string;
    phase: PurgePhase;
  }): Promise<PurgeJob> {
    const rows = await this.q.query<JobRow>(
      `insert into purge_jobs (id, operation, owner_id, requested_by, root_id, reason, state, phase)
       values ($1, $2, $3, $4, $5, $6, 'queued', $7) returning *`,
      [job.id, job.operation, job.ownerId, job.requestedBy, job.rootId, job.reason, job.phase],
    );
    return toJob(rows[0] as JobRow);
  }

  async get(id: string): Promise<PurgeJob | undefined> {
    const rows = await this.q.query<JobRow>('select * from purge_jobs where id = $1', [id]);
    return rows[0] ? toJob(rows[0]) : undefined;
  }

  async claimRoot(jobId: string, rootId: string): Promise<Item | undefined> {
    const rows = await this.q.query<Parameters<typeof toItem>[0]>(
      `update items set purge_job_id = $1, purge_started_at = coalesce(purge_started_at, now())
       where id = $2 and deleted_at is not null and purge_job_id is null returning *`,
      [jobId, rootId],
    );
    return rows[0] ? toItem(rows[0]) : undefined;
  }

  async claimOf(rootId: string): Promise<string | undefined> {
    const rows = await this.q.query<{ purge_job_id: string | null }>(
      'select purge_job_id from items where id = $1',
      [rootId],
    );
    return rows[0]?.purge_job_id ?? undefined;
  }

  async claimTrash(jobId: string, ownerId: string, limit: number): Promise<number> {
    const rows = await this.q.query(
      `update items set purge_job_id = $1, purge_started_at = coalesce(purge_started_at, now())
       where id in (
         select id from items where owner_id = $2 and deleted_at is not null and purge_job_id is null
           and deleted_at <= (select cutoff from purge_jobs where id = $1)
         limit $3)
       returning id`,
      [jobId, ownerId, limit],
    );
    return rows.length;
  }

  async claimInner(jobId: string, limit: number): Promise<number> {
    if (limit <= 0) return 0;
    const rows = await this.q.query(
      `update items set purge_job_id = $1, purge_started_at = coalesce(purge_started_at, now())
       where id in (
         ${tree('select id from items where purge_job_id = $1')}
         select i.id from items i join t on i.id = t.id
         where i.deleted_at is not null and i.purge_job_id is null
         limit $2)
       returning id`,
      [jobId, limit],
    );
    return rows.length;
  }

  async unclaimedTrash(ownerId: string, limit: number): Promise<string[]> {
    const rows = await this.q.query<{ id: string }>(
      'select id from items where owner_id = $1 and deleted_at is not null and purge_job_id is null limit $2',
      [ownerId, limit],
    );
    return rows.map((r) => r.id);
  }

  async anyClaimed(list: readonly string[]): Promise<boolean> {
    if (list.length === 0) return false;
    const rows = await this.q.query(
      'select 1 from items where id = any($1::uuid[]) and (purge_job_id is not null or purge_started_at is not null) limit 1',
      [ids(list)],
    );
    return rows.length > 0;
  }

  async claimedRoot(jobId: string): Promise<string | undefined> {
    const rows = await this.q.query<{ id: string }>('select id from items where purge_job_id = $1 limit 1', [
      jobId,
    ]);
    return rows[0]?.id;
  }

  async countRows(roots: readonly string[] | { jobId: string }, cap?: number): Promise<number> {
    const byJob = !Array.isArray(roots);
    if (!byJob && roots.length === 0) return 0;
    const seed = byJob
      ? 'select id from items where purge_job_id = $1'
      : 'select id from items where id = any($1::uuid[])';
    const first = byJob ? (roots as { jobId: string }).jobId : ids(roots as readonly string[]);
    // Evaluated only as far as the LIMIT reads, so a capped count of a huge tree stays cheap.
    const capped = cap === undefined ? '' : ' limit $2';
    const rows = await this.q.query<{ items: string; versions: string }>(
      `${tree(seed)},
       c as (select id from t${capped})
       select (select count(*) from c)::text as items,
              (select count(*) from (select 1 from versions v where v.file_id in (select id from c)${capped}) x)::text
                as versions`,
      cap === undefined ? [first] : [first, cap],
    );
    const n = Number(rows[0]?.items ?? 0) + Number(rows[0]?.versions ?? 0);
    return cap === undefined ? n : Math.min(n, cap);
  }

  async node(id: string): Promise<PurgeNode | undefined> {
    const rows = await this.q.query<{
      id: string;
      parent_id: string | null;
      kind: string;
      name: string;
      owner_id: string;
      original_parent_id: string | null;
      purge_job_id: string | null;
    }>(
      'select id, parent_id, kind, name, owner_id, original_parent_id, purge_job_id from items where id = $1',
      [id],
    );
    const r = rows[0];
    return r
      ? {
          id: r.id,
          parentId: r.parent_id,
          kind: r.kind === 'folder' ? 'folder' : 'file',
          name: r.name,
          ownerId: r.owner_id,
          originalParentId: r.original_parent_id,
          claimedBy: r.purge_job_id,
        }
      : undefined;
  }

  async childFolder(id: string): Promise<string | undefined> {
    const rows = await this.q.query<{ id: string }>(
      "select id from items where parent_id = $1 and kind = 'folder' limit 1",
      [id],
    );
    return rows[0]?.id;
  }

  async versionsUnder(id: string, limit: number): Promise<PurgeCandidate[]> {
    if (limit <= 0) return [];
    const rows = await this.q.query<{
      id: string;
      file_id: string;
      owner_id: string;
      node_id: string;
      blob_key: string;
      size: string | number;
      weight: string | number;
    }>(
      `select v.id, v.file_id, i.owner_id, v.node_id, v.blob_key, v.size,
              coalesce(octet_length(v.part_hashes), 0) + octet_length(v.blob_key) + 256 as weight
       from items i join versions v on v.file_id = i.id
       where i.id = $1 or (i.parent_id = $1 and i.kind = 'file')
       limit $2`,
      [id, limit],
    );
    return rows.map((r) => ({
      id: r.id,
      fileId: r.file_id,
      ownerId: r.owner_id,
      nodeId: r.node_id,
      blobKey: r.blob_key,
      size: Number(r.size),
      weight: Number(r.weight),
    }));
  }

  async deleteGrantsUnder(id: string, limit: number): Promise<number> {
    if (limit <= 0) return 0;
    const grants = await this.q.query(
      `delete from permissions where id in (
         select p.id from permissions p join items i on i.id = p.item_id
         where i.id = $1 or i.parent_id = $1 limit $2)
       returning id`,
      [id, limit],
    );
    if (grants.length >= limit) return grants.length;
    const invitations = await this.q.query(
      `delete from invitations where id in (
         select n.id from invitations n join items i on i.id = n.item_id
         where i.id = $1 or i.parent_id = $1 limit $2)
       returning id`,
      [id, limit - grants.length],
    );
    return grants.length + invitations.length;
  }

  async deleteFilesUnder(id: string, limit: number): Promise<string[]> {
    if (limit <= 0) return [];
    const rows = await this.q.query<{ id: string }>(
      `delete from items where id in (
         select f.id from items f where f.parent_id = $1 and f.kind = 'file'
           and not exists (select 1 from versions v where v.file_id = f.id)
         limit $2)
       returning id`,
      [id, limit],
    );
    return rows.map((r) => r.id);
  }

  async deleteIfEmpty(id: string): Promise<boolean> {
    const rows = await this.q.query(
      `delete from items where id = $1 and parent_id is not null
         and not exists (select 1 from items c where c.parent_id = $1)
         and not exists (select 1 from versions v where v.file_id = $1)
       returning id`,
      [id],
    );
    return rows.length > 0;
  }

  async lease(id: string, owner: string, ms: number): Promise<PurgeJob | undefined> {
    const rows = await this.q.query<JobRow>(
      `update purge_jobs set lease_owner = $2, lease_until = now() + make_interval(secs => $3::float8),
         state = 'running', updated_at = now()
       where id = $1 and state in ('queued', 'running') and (lease_until is null or lease_until < now())
       returning *`,
      [id, owner, ms / 1000],
    );
    return rows[0] ? toJob(rows[0]) : undefined;
  }

  async lockLeased(id: string, owner: string): Promise<PurgeJob | undefined> {
    const rows = await this.q.query<JobRow>(
      `select * from purge_jobs where id = $1 and lease_owner = $2 and state = 'running' for update`,
      [id, owner],
    );
    return rows[0] ? toJob(rows[0]) : undefined;
  }

  async advance(id: string, owner: string, c: PurgeAdvance, leaseMs: number): Promise<boolean> {
    const done = c.state === 'done';
    const rows = await this.q.query(
      `update purge_jobs set phase = $3, walk_at = $4,
         total_rows = case when $5::boolean then done_rows + $7::bigint else coalesce($6::bigint, total_rows) end,
         done_rows = done_rows + $7::bigint, items = items + $8::bigint, versions = versions + $9::bigint,
         bytes = bytes + $10::bigint, blobs_reclaimed = blobs_reclaimed + $11::bigint,
         failures = 0, error = null, state = $12, updated_at = now(),
         finished_at = case when $5::boolean then now() else null end,
         lease_owner = case when $5::boolean then null else lease_owner end,
         lease_until = case when $5::boolean then null else now() + make_interval(secs => $13::float8) end
       where id = $1 and lease_owner = $2 and state = 'running' returning id`,
      [
        id,
        owner,
        c.phase,
        c.cursor,
        done,
        c.total,
        c.done,
        c.purged.items,
        c.purged.versions,
        c.purged.bytes,
        c.purged.blobsReclaimed,
        c.state,
        leaseMs / 1000,
      ],
    );
    return rows.length > 0;
  }

  async addReclaimed(id: string, blobs: number): Promise<void> {
    if (blobs > 0)
      await this.q.query(
        'update purge_jobs set blobs_reclaimed = blobs_reclaimed + $2::bigint, updated_at = now() where id = $1',
        [id, blobs],
      );
  }

  async release(id: string, owner: string): Promise<void> {
    await this.q.query(
      'update purge_jobs set lease_owner = null, lease_until = null, updated_at = now() where id = $1 and lease_owner = $2',
      [id, owner],
    );
  }

  async recordFailure(
    id: string,
    owner: string,
    error: string,
    maxFailures: number,
  ): Promise<PurgeJob | undefined> {
    const rows = await this.q.query<JobRow>(
      `update purge_jobs set failures = failures + 1, error = $3, lease_owner = null, lease_until = null,
         state = case when failures + 1 >= $4 then 'failed' else state end,
         finished_at = case when failures + 1 >= $4 then now() else finished_at end, updated_at = now()
       where id = $1 and lease_owner = $2 returning *`,
      [id, owner, error, maxFailures],
    );
    return rows[0] ? toJob(rows[0]) : undefined;
  }

  async requeue(id: string): Promise<PurgeJob | undefined> {
    const rows = await this.q.query<JobRow>(
      `update purge_jobs set state = 'queued', failures = 0, error = null, finished_at = null, updated_at = now()
       where id = $1 and state = 'failed' returning *`,
      [id],
    );
    return rows[0] ? toJob(rows[0]) : undefined;
  }

  async stalled(idleMs: number, limit: number): Promise<string[]> {
    const rows = await this.q.query<{ id: string }>(
      `select id from purge_jobs where state in ('queued', 'running')
         and (lease_until is null or lease_until < now())
         and updated_at < now() - make_interval(secs => $1::float8)
       order by updated_at limit $2`,
      [idleMs / 1000, limit],
    );
    return rows.map((r) => r.id);
  }

  async forgetFinished(ageMs: number, limit: number): Promise<number> {
    const rows = await this.q.query(
      `delete from purge_jobs where id in (
         select id from purge_jobs where state = 'done'
           and finished_at < now() - make_interval(secs => $1::float8) limit $2)
       returning id`,
      [ageMs / 1000, limit],
    );
    return rows.length;
  }
}
