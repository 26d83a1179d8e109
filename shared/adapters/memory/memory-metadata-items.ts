/**
 * The in-memory ItemStore: files, folders and versions with the semantics of
 * shared/adapters/postgres/item-repository.ts (its SQL is the reference; comments here name the
 * clause each rule comes from). The version statements are in memory-metadata-versions.ts.
 */
import { UniqueViolationError } from '../../domain/errors.ts';
import type { ChildCursor, ChildSort, Item, ScanState, Version } from '../../domain/model.ts';
import type { SqlExecutor } from '../../ports/database.ts';
import type { ItemStore } from '../../ports/metadata.ts';
import { listChildren, toItem } from './memory-metadata-children.ts';
import { type ItemRow, MemoryStore, type Tables } from './memory-metadata-state.ts';
import {
  compareNumber,
  compareUuid,
  DAY_US,
  int4,
  int8,
  limitOf,
  type Micros,
  micros,
  uuid,
} from './memory-metadata-values.ts';
import * as versions from './memory-metadata-versions.ts';

/** `constraint items_name_unique unique (parent_id, name_key)`: NULLs never collide. */
function assertNameFree(t: Tables, parentId: string | null, nameKey: string | null, self: string): void {
  if (parentId === null || nameKey === null) return;
  for (const r of t.items.values())
    if (r.parentId === parentId && r.nameKey === nameKey && r.id !== self)
      throw new UniqueViolationError('items_name_unique');
}

function insertItem(t: Tables, row: ItemRow): Item {
  if (t.items.has(row.id)) throw new UniqueViolationError('items_pkey');
  assertNameFree(t, row.parentId, row.nameKey, row.id);
  t.items.set(row.id, row);
  return toItem(row);
}

/** A new item row with every column at its default, as the table's defaults give it. */
export const newItem = (
  now: Micros,
  f: Pick<ItemRow, 'id' | 'ownerId' | 'parentId' | 'kind' | 'name' | 'nameKey'> & Partial<ItemRow>,
): ItemRow => ({
  contentType: null,
  size: 0,
  currentVersionId: null,
  revision: 1,
  createdAt: now,
  updatedAt: now,
  deletedAt: null,
  deletedBy: null,
  originalParentId: null,
  scanState: null,
  purgeStartedAt: null,
  purgeJobId: null,
  ...f,
});

export class MemoryItemStore extends MemoryStore implements ItemStore {
  with(tx: SqlExecutor): MemoryItemStore {
    return new MemoryItemStore(this.db, this.db.txOf(tx));
  }

  get(id: string) {
    return this.run((t) => {
      const r = t.items.get(uuid(id));
      return r ? toItem(r) : undefined;
    });
  }

  /** Row locks are implicit: the transaction holding the mutex is the only one running. */
  async lockTree(ownerId: string): Promise<void> {
    await this.run(() => uuid(ownerId));
  }

  lockChain(id: string, maxDepth = 10_000) {
    return this.run((t) => {
      const chain: Item[] = [];
      let next: string | null = uuid(id);
      while (next !== null && chain.length < maxDepth) {
        const row = t.items.get(next);
        if (!row) break;
        if (chain.some((a) => a.id === row.id)) break; // a cycle already: the caller's check sees it
        chain.push(toItem(row));
        next = row.parentId;
      }
      return chain;
    });
  }

  /** `where parent_id = $1 and name_key = $2`: a trashed item has no name_key, so it never matches. */
  findLiveChild(parentId: string, nameKey: string) {
    return this.run((t) => {
      const p = uuid(parentId);
      for (const r of t.items.values()) if (r.parentId === p && r.nameKey === nameKey) return toItem(r);
      return undefined;
    });
  }

  insertFolder(input: { id: string; ownerId: string; parentId: string; name: string; nameKey: string }) {
    return this.run((t, now) =>
      insertItem(
        t,
        newItem(now, {
          id: uuid(input.id),
          ownerId: uuid(input.ownerId),
          parentId: uuid(input.parentId),
          kind: 'folder',
          name: input.name,
          nameKey: input.nameKey,
        }),
      ),
    );
  }

  insertFile(input: {
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
    return this.run((t, now) =>
      insertItem(
        t,
        newItem(now, {
          id: uuid(input.id),
          ownerId: uuid(input.ownerId),
          parentId: uuid(input.parentId),
          kind: 'file',
          name: input.name,
          nameKey: input.nameKey,
          contentType: input.contentType,
          size: int8(input.size),
          currentVersionId: uuid(input.versionId),
          scanState: input.scanState ?? null,
        }),
      ),
    );
  }

  /** Like the SQL adapter, a missing file is a TypeError (its `returning *` row is absent), not undefined. */
  setCurrentVersion(
    fileId: string,
    v: { versionId: string; size: number; contentType: string; scanState?: ScanState | null },
  ) {
    return this.run((t, now) => {
      const versionId = uuid(v.versionId);
      const size = int8(v.size);
      const r = t.items.get(uuid(fileId));
      if (!r) throw new TypeError(`setCurrentVersion: no item ${fileId}`);
      Object.assign(r, {
        currentVersionId: versionId,
        size,
        contentType: v.contentType,
        scanState: v.scanState ?? null,
        revision: r.revision + 1,
        updatedAt: now,
      });
      return toItem(r);
    });
  }

  insertVersion(v: Omit<Version, 'createdAt'>) {
    return this.run((t, now) => versions.insertVersion(t, now, v));
  }

  async setScanState(versionId: string, state: ScanState): Promise<void> {
    await this.run((t) => versions.setScanState(t, versionId, state));
  }

  versionsAwaitingScan(limit: number) {
    return this.run((t) => versions.versionsAwaitingScan(t, limit));
  }

  getVersion(id: string) {
    return this.run((t) => versions.getVersion(t, id));
  }

  listChildren(parentId: string, sort: ChildSort, after: ChildCursor | undefined, limit: number) {
    return this.run((t) => listChildren(t, parentId, sort, after, limit));
  }

  /** `where id = $1 and revision = $5 and deleted_at is null`. */
  relocate(id: string, to: { parentId: string; name: string; nameKey: string }, revision: number) {
    return this.run((t, now) => {
      const parentId = uuid(to.parentId);
      const rev = int4(revision);
      const r = t.items.get(uuid(id));
      if (!r || r.revision !== rev || r.deletedAt !== null) return undefined;
      assertNameFree(t, parentId, to.nameKey, r.id);
      Object.assign(r, {
        parentId,
        name: to.name,
        nameKey: to.nameKey,
        revision: r.revision + 1,
        updatedAt: now,
      });
      return toItem(r);
    });
  }

  trash(id: string, by: string, revision?: number) {
    return this.run((t, now) => {
      const deletedBy = uuid(by);
      const rev = revision === undefined ? undefined : int4(revision);
      const r = t.items.get(uuid(id));
      if (!r || r.deletedAt !== null || (rev !== undefined && r.revision !== rev)) return undefined;
      Object.assign(r, {
        deletedAt: now,
        deletedBy,
        nameKey: null,
        originalParentId: r.parentId,
        revision: r.revision + 1,
        updatedAt: now,
      });
      return toItem(r);
    });
  }

  /** `where id = $1 and deleted_at is not null and purge_started_at is null`. */
  untrash(id: string, to: { parentId: string; name: string; nameKey: string }) {
    return this.run((t, now) => {
      const parentId = uuid(to.parentId);
      const r = t.items.get(uuid(id));
      if (!r || r.deletedAt === null || r.purgeStartedAt !== null) return undefined;
      assertNameFree(t, parentId, to.nameKey, r.id);
      Object.assign(r, {
        deletedAt: null,
        deletedBy: null,
        originalParentId: null,
        parentId,
        name: to.name,
        nameKey: to.nameKey,
        revision: r.revision + 1,
        updatedAt: now,
      });
      return toItem(r);
    });
  }

  /**
   * `order by deleted_at desc, id limit $2` (ties by id ascending), without the roots a purge job
   * that has not failed claimed.
   */
  listTrash(ownerId: string, limit: number) {
    return this.run((t) => {
      const owner = uuid(ownerId);
      const claimed = (r: ItemRow) => {
        const job = r.purgeJobId === null ? undefined : t.purgeJobs.get(r.purgeJobId);
        return job !== undefined && job.state !== 'failed';
      };
      return [...t.items.values()]
        .filter((r) => r.ownerId === owner && r.deletedAt !== null && !claimed(r))
        .sort((a, b) => compareNumber(b.deletedAt ?? 0, a.deletedAt ?? 0) || compareUuid(a.id, b.id))
        .slice(0, limitOf(limit))
        .map(toItem);
    });
  }

  /** Joined to users: an item whose owner is gone is not listed. */
  trashPastRetention(now: Date, defaultDays: number, limit: number) {
    return this.run((t) => {
      const at = micros(now);
      const fallback = int4(defaultDays);
      const out: string[] = [];
      const n = limitOf(limit);
      for (const r of t.items.values()) {
        if (out.length >= n) break;
        const u = r.deletedAt === null || r.purgeJobId !== null ? undefined : t.users.get(r.ownerId);
        if (u && (r.deletedAt ?? 0) < at - (u.trashDays ?? fallback) * DAY_US) out.push(r.id);
      }
      return out;
    });
  }

  filesPastKeepDays(now: Date, limit: number) {
    return this.run((t) => versions.filesPastKeepDays(t, now, limit));
  }

  /** The recursive walk; unlike the SQL (which would not end), a cycle is walked once. */
  subtree(rootId: string) {
    return this.run((t) => {
      const root = t.items.get(uuid(rootId));
      if (!root) return [];
      const children = new Map<string, ItemRow[]>();
      for (const r of t.items.values())
        if (r.parentId !== null) children.set(r.parentId, [...(children.get(r.parentId) ?? []), r]);
      const seen = new Set([root.id]);
      const out = [root];
      for (let i = 0; i < out.length; i++)
        for (const c of children.get(out[i]?.id ?? '') ?? [])
          if (!seen.has(c.id)) {
            seen.add(c.id);
            out.push(c);
          }
      return out.map(toItem);
    });
  }

  listVersions(fileId: string, limit = 10_000) {
    return this.run((t) => versions.listVersions(t, fileId, limit));
  }

  versionsOfFiles(fileIds: readonly string[], limit: number) {
    return this.run((t) => versions.versionsOfFiles(t, fileIds, limit));
  }

  versionsAfter(afterId: string, limit: number, upTo?: string) {
    return this.run((t) => versions.versionsAfter(t, afterId, limit, upTo));
  }

  versionsCreatedSince(
    since: Date,
    after: { at: string; id: string } | undefined,
    limit: number,
    ids?: { after: string; upTo: string },
  ) {
    return this.run((t) => versions.versionsCreatedSince(t, since, after, limit, ids));
  }

  countVersions() {
    return this.run((t) => versions.countersByNode(t).reduce((sum, n) => sum + n.versions, 0));
  }

  bytesByNode() {
    return this.run((t) => versions.countersByNode(t));
  }

  uncountedShards() {
    return this.run((t) => versions.uncountedShards(t));
  }

  /** Outside a transaction, as on SQL (which runs its own). */
  recountShard(shard: string) {
    if (this.tx) return Promise.reject(new Error('recountShard runs its own transaction'));
    return this.run((t, now) => versions.recountShard(t, now, shard));
  }

  deleteVersions(ids: readonly string[]) {
    return this.run((t) => versions.deleteVersions(t, ids));
  }

  /** `set purge_started_at = coalesce(purge_started_at, now()) where id = $1 and deleted_at is not null`. */
  claimForPurge(id: string) {
    return this.run((t, now) => {
      const r = t.items.get(uuid(id));
      if (!r || r.deletedAt === null) return undefined;
      r.purgeStartedAt ??= now;
      return toItem(r);
    });
  }

  async deleteItems(ids: readonly string[]): Promise<void> {
    await this.run((t) => {
      for (const id of ids.map(uuid)) t.items.delete(id);
    });
  }

  blobReferenced(nodeId: string, blobKey: string) {
    return this.run((t) => versions.blobReferenced(t, nodeId, blobKey));
  }

  blobKeyInUse(blobKey: string) {
    return this.run((t) => versions.blobKeyInUse(t, blobKey));
  }

  sumVersionSizes(ownerId: string) {
    return this.run((t) => versions.sumVersionSizes(t, ownerId));
  }

  /** `where id = $1 and ($2 <= 0 or used_bytes + $2 <= quota_bytes)`: false for no such user. */
  chargeUsage(userId: string, delta: number) {
    return this.run((t) => {
      const d = int8(delta);
      const u = t.users.get(uuid(userId));
      if (!u || (d > 0 && u.usedBytes + d > u.quotaBytes)) return false;
      u.usedBytes += d;
      return true;
    });
  }

  async addUsage(userId: string, delta: number): Promise<void> {
    await this.run((t) => {
      const d = int8(delta);
      const u = t.users.get(uuid(userId));
      if (u) u.usedBytes += d;
    });
  }
}
