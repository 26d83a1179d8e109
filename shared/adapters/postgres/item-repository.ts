/** Files, folders and versions in the system of record. */

import { shardOf, shardRange, VERSION_SHARDS } from '../../domain/counter-shards.ts';
import type { ChildCursor, ChildSort, Item, ScanState, Version, VersionRef } from '../../domain/model.ts';
import type { Database, SqlExecutor, SqlValue } from '../../ports/database.ts';
import type { ItemStore } from '../../ports/metadata.ts';

interface ItemRow {
  id: string;
  owner_id: string;
  parent_id: string | null;
  kind: string;
  name: string;
  name_key: string | null;
  content_type: string | null;
  size: number | string;
  current_version_id: string | null;
  revision: number;
  created_at: Date | string;
  updated_at: Date | string;
  deleted_at: Date | string | null;
  original_parent_id?: string | null;
  scan_state?: string | null;
}

interface VersionRow {
  id: string;
  file_id: string;
  node_id: string;
  blob_key: string;
  size: number | string;
  sha256: string;
  content_type: string;
  created_by: string;
  created_at: Date | string;
  content_hash?: string | null;
  part_size?: number | string | null;
  part_hashes?: string | null;
  scan_state?: string | null;
}

const scanState = (v: string | null | undefined): ScanState | null =>
  v === 'scanning' || v === 'clean' || v === 'infected' ? v : null;

const date = (v: Date | string) => (v instanceof Date ? v : new Date(v));

export const toItem = (r: ItemRow): Item => ({
  id: r.id,
  ownerId: r.owner_id,
  parentId: r.parent_id,
  kind: r.kind === 'folder' ? 'folder' : 'file',
  name: r.name,
  contentType: r.content_type,
  size: Number(r.size),
  currentVersionId: r.current_version_id,
  revision: Number(r.revision),
  createdAt: date(r.created_at),
  updatedAt: date(r.updated_at),
  deletedAt: r.deleted_at === null ? null : date(r.deleted_at),
  originalParentId: r.original_parent_id ?? null,
  scanState: scanState(r.scan_state),
});

const toVersion = (r: VersionRow): Version => ({
  id: r.id,
  fileId: r.file_id,
  nodeId: r.node_id,
  blobKey: r.blob_key,
  size: Number(r.size),
  sha256: r.sha256,
  contentType: r.content_type,
  createdBy: r.created_by,
  createdAt: date(r.created_at),
  contentHash: r.content_hash ?? null,
  partSize: r.part_size === null || r.part_size === undefined ? null : Number(r.part_size),
  partHashes: r.part_hashes ? (JSON.parse(r.part_hashes) as string[]) : null,
  scanState: scanState(r.scan_state),
});

export class ItemRepository implements ItemStore {
  private readonly q: SqlExecutor;

  constructor(q: SqlExecutor) {
    this.q = q;
  }

  /** The same repository bound to a transaction. */
  with(tx: SqlExecutor): ItemRepository {
    return new ItemRepository(tx);
  }

  async get(id: string): Promise<Item | undefined> {
    const rows = await this.q.query<ItemRow>('select * from items where id = $1', [id]);
    return rows[0] ? toItem(rows[0]) : undefined;
  }

  /**
   * The folder `id` and its ancestors up to the root, each row locked (`SELECT … FOR UPDATE`) for
   * the rest of the transaction: a move that checks this chain for a cycle cannot interleave with
   * another move that changes it (PostgreSQL waits; Aurora DSQL fails one at commit with 40001 and
   * the adapter retries). Nearest first.
   */
  /**
   * Locks the owner's root folder row. Every transaction that locks an ancestor chain (moves,
   * restores, commits) takes this first, so they queue per tree instead of locking chains in
   * opposite orders (two crossing moves, or a move and a commit, otherwise deadlock, and their
   * retries deadlock again).
   */
  async lockTree(ownerId: string): Promise<void> {
    await this.q.query(
      'select id from items where id = (select root_folder_id from users where id = $1) for update',
      [ownerId],
    );
  }

  async lockChain(id: string, maxDepth = 10_000): Promise<Item[]> {
    const chain: Item[] = [];
    let next: string | null = id;
    while (next !== null && chain.length < maxDepth) {
      const rows: ItemRow[] = await this.q.query<ItemRow>('select * from items where id = $1 for update', [
        next,
      ]);
      const row = rows[0];
      if (!row) break;
      const item = toItem(row);
      if (chain.some((a) => a.id === item.id)) break; // a cycle already: the caller's check sees it
      chain.push(item);
      next = item.parentId;
    }
    return chain;
  }

  async findLiveChild(parentId: string, nameKey: string): Promise<Item | undefined> {
    const rows = await this.q.query<ItemRow>('select * from items where parent_id = $1 and name_key = $2', [
      parentId,
      nameKey,
    ]);
    return rows[0] ? toItem(rows[0]) : undefined;
  }

  async insertFolder(input: {
    id: string;
    ownerId: string;
    parentId: string;
    name: string;
    nameKey: string;
  }) {
    const rows = await this.q.query<ItemRow>(
      `insert into items (id, owner_id, parent_id, kind, name, name_key) values ($1, $2, $3, 'folder', $4, $5) returning *`,
      [input.id, input.ownerId, input.parentId, input.name, input.nameKey],
    );
    return toItem(rows[0] as ItemRow);
  }

  async insertFile(input: {
    id: string;
    ownerId: string;
    parentId: string;
    name: string;
    nameKey: string;
    contentType: string;
    size: number;
    versionId: string;
    scanState?: ScanState | null;
  }) {
    const rows = await this.q.query<ItemRow>(
      `insert into items (id, owner_id, parent_id, kind, name, name_key, content_type, size, current_version_id, scan_state)
       values ($1, $2, $3, 'file', $4, $5, $6, $7, $8, $9) returning *`,
      [
        input.id,
        input.ownerId,
        input.parentId,
        input.name,
        input.nameKey,
        input.contentType,
        input.size,
        input.versionId,
        input.scanState ?? null,
      ],
    );
    return toItem(rows[0] as ItemRow);
  }

  async setCurrentVersion(
    fileId: string,
    v: { versionId: string; size: number; contentType: string; scanState?: ScanState | null },
  ) {
    const rows = await this.q.query<ItemRow>(
      `update items set current_version_id = $2, size = $3, content_type = $4, scan_state = $5, revision = revision + 1,
         updated_at = now()
       where id = $1 returning *`,
      [fileId, v.versionId, v.size, v.contentType, v.scanState ?? null],
    );
    return toItem(rows[0] as ItemRow);
  }

  /**
   * Runs `work` in this repository's transaction, or in one of its own when it is not bound to one:
   * a version and its counters change together.
   */
  private atomically<T>(work: (q: SqlExecutor) => Promise<T>): Promise<T> {
    const db = this.q as Partial<Database>;
    return typeof db.transaction === 'function' ? db.transaction(work) : work(this.q);
  }

  /** Adds to the counters of a (shard, node) row; rows in (shard, node) order, so two writers never deadlock. */
  private static async addToCounters(
    q: SqlExecutor,
    deltas: { shard: string; nodeId: string; versions: number; bytes: number }[],
  ) {
    const sorted = [...deltas].sort((a, b) =>
      a.shard === b.shard ? (a.nodeId < b.nodeId ? -1 : 1) : a.shard < b.shard ? -1 : 1,
    );
    for (const d of sorted)
      await q.query(
        `insert into version_counters (shard, node_id, versions, bytes) values ($1, $2, $3::bigint, $4::bigint)
         on conflict (shard, node_id) do update
           set versions = version_counters.versions + excluded.versions, bytes = version_counters.bytes + excluded.bytes`,
        [d.shard, d.nodeId, d.versions, d.bytes],
      );
  }

  async insertVersion(v: Omit<Version, 'createdAt'>): Promise<Version> {
    return this.atomically(async (q) => {
      const version = await this.insertVersionRow(q, v);
      await ItemRepository.addToCounters(q, [
        { shard: shardOf(version.id), nodeId: version.nodeId, versions: 1, bytes: version.size },
      ]);
      return version;
    });
  }

  private async insertVersionRow(q: SqlExecutor, v: Omit<Version, 'createdAt'>): Promise<Version> {
    const rows = await q.query<VersionRow>(
      `insert into versions (id, file_id, node_id, blob_key, size, sha256, content_type, created_by, content_hash, part_size,
         part_hashes, scan_state)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) returning *`,
      [
        v.id,
        v.fileId,
        v.nodeId,
        v.blobKey,
        v.size,
        v.sha256,
        v.contentType,
        v.createdBy,
        v.contentHash,
        v.partSize,
        v.partHashes ? JSON.stringify(v.partHashes) : null,
        v.scanState,
      ],
    );
    return toVersion(rows[0] as VersionRow);
  }

  /** Records a scan verdict on the version and, when it is current, on its file. */
  async setScanState(versionId: string, state: ScanState) {
    await this.q.query('update versions set scan_state = $2 where id = $1', [versionId, state]);
    await this.q.query('update items set scan_state = $2 where current_version_id = $1', [versionId, state]);
  }

  async versionsAwaitingScan(limit: number): Promise<Version[]> {
    const rows = await this.q.query<VersionRow>(
      "select * from versions where scan_state = 'scanning' order by created_at limit $1",
      [limit],
    );
    return rows.map(toVersion);
  }

  async getVersion(id: string): Promise<Version | undefined> {
    const rows = await this.q.query<VersionRow>('select * from versions where id = $1', [id]);
    return rows[0] ? toVersion(rows[0]) : undefined;
  }

  /** Live children of a folder in a keyset order: by name, size or modified time. */
  async listChildren(parentId: string, sort: ChildSort, after: ChildCursor | undefined, limit: number) {
    const col = { name: 'name_key', size: 'size', modified: 'updated_at' }[sort.by];
    const cast = { name: 'text', size: 'bigint', modified: 'timestamptz' }[sort.by];
    const dir = sort.dir === 'desc' ? 'desc' : 'asc';
    const cmp = dir === 'desc' ? '<' : '>';
    const params: SqlValue[] = [parentId, limit];
    let where = '';
    if (after) {
      params.push(after.value, after.id);
      where = `and (${col}, id) ${cmp} ($3::${cast}, $4::uuid)`;
    }
    const rows = await this.q.query<ItemRow & { sort_value: string }>(
      `select *, ${col}::text as sort_value from items
       where parent_id = $1 and deleted_at is null ${where}
       order by ${col} ${dir}, id ${dir} limit $2`,
      params,
    );
    return rows.map((r) => ({ item: toItem(r), cursor: { value: r.sort_value, id: r.id } }));
  }

  /** Renames and/or moves, only if the item is still at `revision` (optimistic concurrency). */
  async relocate(id: string, to: { parentId: string; name: string; nameKey: string }, revision: number) {
    const rows = await this.q.query<ItemRow>(
      `update items set parent_id = $2, name = $3, name_key = $4, revision = revision + 1, updated_at = now()
       where id = $1 and revision = $5 and deleted_at is null returning *`,
      [id, to.parentId, to.name, to.nameKey, revision],
    );
    return rows[0] ? toItem(rows[0]) : undefined;
  }

  /** Marks a trash root. Its name is freed; its descendants are hidden by it. */
  async trash(id: string, by: string, revision?: number) {
    const rows = await this.q.query<ItemRow>(
      `update items set deleted_at = now(), deleted_by = $2, name_key = null, original_parent_id = parent_id,
         revision = revision + 1, updated_at = now()
       where id = $1 and deleted_at is null ${revision === undefined ? '' : 'and revision = $3'} returning *`,
      revision === undefined ? [id, by] : [id, by, revision],
    );
    return rows[0] ? toItem(rows[0]) : undefined;
  }

  async untrash(id: string, to: { parentId: string; name: string; nameKey: string }) {
    const rows = await this.q.query<ItemRow>(
      `update items set deleted_at = null, deleted_by = null, original_parent_id = null, parent_id = $2, name = $3,
         name_key = $4, revision = revision + 1, updated_at = now()
       where id = $1 and deleted_at is not null and purge_started_at is null returning *`,
      [id, to.parentId, to.name, to.nameKey],
    );
    return rows[0] ? toItem(rows[0]) : undefined;
  }

  /** Trash roots of an owner, newest first. */
  async listTrash(ownerId: string, limit: number) {
    // A root a purge job is deleting is gone already; one whose job failed is back, to try again.
    const rows = await this.q.query<ItemRow>(
      `select * from items i where owner_id = $1 and deleted_at is not null
         and (purge_job_id is null
              or not exists (select 1 from purge_jobs j where j.id = i.purge_job_id and j.state <> 'failed'))
       order by deleted_at desc, id limit $2`,
      [ownerId, limit],
    );
    return rows.map(toItem);
  }

  /** Trash roots whose owner's trash retention (or `defaultDays`) has passed at `now`. */
  async trashPastRetention(now: Date, defaultDays: number, limit: number): Promise<string[]> {
    const rows = await this.q.query<{ id: string }>(
      `select i.id from items i join users u on u.id = i.owner_id
       where i.deleted_at is not null and i.purge_job_id is null
         and i.deleted_at < $1::timestamptz - make_interval(days => coalesce(u.trash_days, $2::int))
       limit $3`,
      [now, defaultDays, limit],
    );
    return rows.map((r) => r.id);
  }

  /** Files with a non-current version older than their owner's `keepDays` at `now`. */
  async filesPastKeepDays(now: Date, limit: number): Promise<string[]> {
    const rows = await this.q.query<{ id: string }>(
      `select distinct i.id from versions v join items i on i.id = v.file_id join users u on u.id = i.owner_id
       where u.keep_days is not null and v.id <> i.current_version_id
         and v.created_at < $1::timestamptz - make_interval(days => u.keep_days)
       limit $2`,
      [now, limit],
    );
    return rows.map((r) => r.id);
  }

  /** Versions in id order after `afterId`, a page at a time (the reconciler's walk). */
  async versionsAfter(afterId: string, limit: number, upTo?: string): Promise<VersionRef[]> {
    const rows = await this.q.query<{
      id: string;
      node_id: string;
      blob_key: string;
      size: number | string;
      sha256: string;
    }>(
      upTo === undefined
        ? 'select id, node_id, blob_key, size, sha256 from versions where id > $1 order by id limit $2'
        : 'select id, node_id, blob_key, size, sha256 from versions where id > $1 and id <= $3 order by id limit $2',
      upTo === undefined ? [afterId, limit] : [afterId, limit, upTo],
    );
    return rows.map((r) => ({
      id: r.id,
      nodeId: r.node_id,
      blobKey: r.blob_key,
      size: Number(r.size),
      sha256: r.sha256,
    }));
  }

  async versionsCreatedSince(
    since: Date,
    after: { at: string; id: string } | undefined,
    limit: number,
    ids?: { after: string; upTo: string },
  ): Promise<(VersionRef & { at: string })[]> {
    // created_at::text round-trips exactly (microseconds), so the keyset neither skips nor repeats.
    // A partition's id range filters the rows the created_at index finds (each partition reads the
    // recent rows of the others too: an hour of commits, small beside a pass).
    const params: SqlValue[] = after ? [since, after.at, after.id, limit] : [since, limit];
    let range = '';
    if (ids) {
      params.push(ids.after, ids.upTo);
      range = ` and id > $${params.length - 1} and id <= $${params.length}`;
    }
    const rows = await this.q.query<{
      id: string;
      node_id: string;
      blob_key: string;
      size: number | string;
      sha256: string;
      at: string;
    }>(
      after
        ? `select id, node_id, blob_key, size, sha256, created_at::text as at from versions
           where created_at >= $1 and (created_at > $2::timestamptz or (created_at = $2::timestamptz and id > $3))${range}
           order by created_at, id limit $4`
        : `select id, node_id, blob_key, size, sha256, created_at::text as at from versions
           where created_at >= $1${range} order by created_at, id limit $2`,
      params,
    );
    return rows.map((r) => ({
      id: r.id,
      nodeId: r.node_id,
      blobKey: r.blob_key,
      size: Number(r.size),
      sha256: r.sha256,
      at: r.at,
    }));
  }

  /** Whether any version stores its bytes under this key (on any node). */
  async blobKeyInUse(blobKey: string): Promise<boolean> {
    return (await this.q.query('select 1 from versions where blob_key = $1 limit 1', [blobKey])).length > 0;
  }

  async countVersions(): Promise<number> {
    return (await this.bytesByNode()).reduce((sum, n) => sum + n.versions, 0);
  }

  /** Bytes and versions whose primary copy is on each node: the counter rows, never the versions. */
  async bytesByNode(): Promise<{ nodeId: string; bytes: number; versions: number }[]> {
    const rows = await this.q.query<{ node_id: string; bytes: string; versions: string }>(
      `select node_id, sum(bytes)::text as bytes, sum(versions)::text as versions from version_counters
       group by node_id having sum(versions) <> 0 order by node_id`,
    );
    return rows.map((n) => ({ nodeId: n.node_id, bytes: Number(n.bytes), versions: Number(n.versions) }));
  }

  async uncountedShards(): Promise<string[]> {
    const rows = await this.q.query<{ shard: string }>('select shard from version_counter_shards');
    const counted = new Set(rows.map((r) => r.shard));
    return VERSION_SHARDS.filter((s) => !counted.has(s));
  }

  /**
   * Sets a shard's counters to what its versions add up to. First the rows of every node the
   * shard's versions are on are made to exist and are locked (`for update`); only then are the
   * versions counted, in a statement of its own. A commit that wrote a version of the shard has
   * either committed before the lock was taken (the count sees its version) or waits on the lock
   * and adds its +1 afterwards; on Aurora DSQL the two write the same row, so the later one fails
   * at commit with 40001 and is retried. A node whose row is created by such a commit and had no
   * version here before is left as the commit wrote it.
   */
  async recountShard(shard: string): Promise<{ versions: number; bytes: number }> {
    const { first, last } = shardRange(shard);
    const db = this.q as Partial<Database>;
    if (typeof db.transaction !== 'function') throw new Error('recountShard runs its own transaction');
    return db.transaction(async (q) => {
      const present = await q.query<{ node_id: string }>(
        'select distinct node_id from versions where id between $1 and $2',
        [first, last],
      );
      for (const { node_id } of [...present].sort((a, b) => (a.node_id < b.node_id ? -1 : 1)))
        await q.query(
          `insert into version_counters (shard, node_id, versions, bytes) values ($1, $2, 0, 0)
           on conflict (shard, node_id) do nothing`,
          [shard, node_id],
        );
      const held = await q.query<{ node_id: string; versions: number | string; bytes: number | string }>(
        'select node_id, versions, bytes from version_counters where shard = $1 order by node_id for update',
        [shard],
      );
      const actual = await q.query<{ node_id: string; versions: string; bytes: string }>(
        `select node_id, count(*)::text as versions, sum(size)::text as bytes from versions
         where id between $1 and $2 group by node_id`,
        [first, last],
      );
      const exact = new Map(
        actual.map((r) => [r.node_id, { versions: Number(r.versions), bytes: Number(r.bytes) }]),
      );
      const drift = { versions: 0, bytes: 0 };
      for (const row of held) {
        const want = exact.get(row.node_id) ?? { versions: 0, bytes: 0 };
        exact.delete(row.node_id);
        const off = { versions: Number(row.versions) - want.versions, bytes: Number(row.bytes) - want.bytes };
        if (off.versions === 0 && off.bytes === 0) continue;
        drift.versions += off.versions;
        drift.bytes += off.bytes;
        await q.query(
          'update version_counters set versions = $3, bytes = $4 where shard = $1 and node_id = $2',
          [shard, row.node_id, want.versions, want.bytes],
        );
      }
      // Versions on a node whose row a commit created after the lock: that commit counted its own
      // version, and a node here without a held row had only that version (see above).
      await q.query(
        `insert into version_counter_shards (shard, counted_at) values ($1, now())
         on conflict (shard) do update set counted_at = excluded.counted_at`,
        [shard],
      );
      return drift;
    });
  }

  /** The item and everything under it, whatever its state. */
  async subtree(rootId: string): Promise<Item[]> {
    const rows = await this.q.query<ItemRow>(
      `with recursive t (id) as (
         select id from items where id = $1
         union all
         select i.id from items i join t on i.parent_id = t.id
       )
       select items.* from items join t on items.id = t.id`,
      [rootId],
    );
    return rows.map(toItem);
  }

  async listVersions(fileId: string, limit = 10_000): Promise<Version[]> {
    const rows = await this.q.query<VersionRow>(
      'select * from versions where file_id = $1 order by created_at desc, id desc limit $2',
      [fileId, limit],
    );
    return rows.map(toVersion);
  }

  async versionsOfFiles(fileIds: readonly string[], limit: number): Promise<Version[]> {
    if (fileIds.length === 0) return [];
    const rows = await this.q.query<VersionRow>(
      'select * from versions where file_id = any($1::uuid[]) limit $2',
      [fileIds as unknown as string, limit],
    );
    return rows.map(toVersion);
  }

  /** Deletes versions; returns the ids it deleted (a concurrent purge may have taken some). */
  async deleteVersions(ids: readonly string[]): Promise<Set<string>> {
    if (!ids.length) return new Set();
    return this.atomically(async (q) => {
      const rows = await q.query<{ id: string; node_id: string; size: number | string; file_id: string }>(
        'delete from versions where id = any($1::uuid[]) returning id, node_id, size, file_id',
        [ids as unknown as string],
      );
      if (rows.length === 0) return new Set<string>();
      // Lock order: a commit locks its owner's users row (the charge) before a counter row (its
      // version), so a purge takes the owners' rows before the counters too, else a commit and a
      // purge of one owner could each hold what the other waits for (a deadlock on PostgreSQL).
      await q.query(
        `select id from users where id in (select owner_id from items where id = any($1::uuid[]))
         order by id for update`,
        [[...new Set(rows.map((r) => r.file_id))] as unknown as string],
      );
      const by = new Map<string, { shard: string; nodeId: string; versions: number; bytes: number }>();
      for (const r of rows) {
        const key = `${shardOf(r.id)}\u0000${r.node_id}`;
        const d = by.get(key) ?? { shard: shardOf(r.id), nodeId: r.node_id, versions: 0, bytes: 0 };
        d.versions -= 1;
        d.bytes -= Number(r.size);
        by.set(key, d);
      }
      await ItemRepository.addToCounters(q, [...by.values()]);
      return new Set(rows.map((r) => r.id));
    });
  }

  /**
   * Claims a trash root for purging: from here on it cannot be restored, so a purge and a restore
   * of one item never both act on it. Undefined when the item is not (or no longer) in the trash.
   * A purge that stopped half-way (a crash) is claimed again by the next one.
   */
  async claimForPurge(id: string): Promise<Item | undefined> {
    const rows = await this.q.query<ItemRow>(
      `update items set purge_started_at = coalesce(purge_started_at, now())
       where id = $1 and deleted_at is not null returning *`,
      [id],
    );
    return rows[0] ? toItem(rows[0]) : undefined;
  }

  async deleteItems(ids: readonly string[]) {
    if (ids.length)
      await this.q.query('delete from items where id = any($1::uuid[])', [ids as unknown as string]);
  }

  async blobReferenced(nodeId: string, blobKey: string): Promise<boolean> {
    const rows = await this.q.query('select 1 from versions where node_id = $1 and blob_key = $2 limit 1', [
      nodeId,
      blobKey,
    ]);
    return rows.length > 0;
  }

  /** Sum of the sizes of every retained version of an owner's files (the usage invariant). */
  async sumVersionSizes(ownerId: string): Promise<number> {
    const rows = await this.q.query<{ total: string | number | null }>(
      'select coalesce(sum(v.size), 0)::text as total from versions v join items i on i.id = v.file_id where i.owner_id = $1',
      [ownerId],
    );
    return Number(rows[0]?.total ?? 0);
  }

  /** Adds to usage unless it would pass the quota; false when refused. Negative deltas always apply. */
  async chargeUsage(userId: string, delta: number): Promise<boolean> {
    const rows = await this.q.query(
      // $2 is a bigint: compared with a literal 0, PostgreSQL would otherwise type it integer and
      // refuse deltas of 2 GiB and more.
      'update users set used_bytes = used_bytes + $2::bigint where id = $1 and ($2::bigint <= 0 or used_bytes + $2::bigint <= quota_bytes) returning id',
      [userId, delta],
    );
    return rows.length > 0;
  }

  async addUsage(userId: string, delta: number) {
    await this.q.query('update users set used_bytes = used_bytes + $2::bigint where id = $1', [
      userId,
      delta,
    ]);
  }
}
