/**
 * Folders and the tree: folders, listing, paths, rename and move, copy, trash and restore, and the
 * free-name rule the others share (purging for good is purge-jobs.ts). The SQL store is the system
 * of record; every change and its audit record commit in one transaction, and the cache is
 * invalidated after the commit.
 */

import { randomUUID } from 'node:crypto';
import { errors, UniqueViolationError } from '../domain/errors.ts';
import { type BaseRevision, baseFor } from '../domain/etag.ts';
import type { ChildSort, Item, Principal } from '../domain/model.ts';
import { nameKey, normaliseName } from '../domain/names.ts';
import type { Database, SqlExecutor } from '../ports/database.ts';
import type { AuditLog, ItemStore, UserStore } from '../ports/metadata.ts';
import type { PurgeJobStore } from '../ports/purge-job-store.ts';
import type { AccessControl } from './access-control.ts';
import { decodeChildCursor, encodeChildCursor, type Page } from './cursors.ts';
import type { MetadataCache } from './metadata-cache.ts';
import { staleRevision } from './revisions.ts';

/** "name (n).ext" for the first n that is free in the folder. */
export function numberedName(name: string, n: number): string {
  const dot = name.lastIndexOf('.');
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ''];
  return `${stem} (${n})${ext}`;
}

export class FolderService {
  private readonly db: Database;
  private readonly items: ItemStore;
  private readonly users: UserStore;
  private readonly audit: AuditLog;
  private readonly access: AccessControl;
  private readonly cache: MetadataCache;
  private readonly claims: Pick<PurgeJobStore, 'with' | 'anyClaimed'>;

  constructor(deps: {
    db: Database;
    items: ItemStore;
    users: UserStore;
    audit: AuditLog;
    access: AccessControl;
    cache: MetadataCache;
    /** Purge claims: nothing beneath a tree being purged is restored. */
    claims: Pick<PurgeJobStore, 'with' | 'anyClaimed'>;
  }) {
    this.db = deps.db;
    this.items = deps.items;
    this.users = deps.users;
    this.audit = deps.audit;
    this.access = deps.access;
    this.cache = deps.cache;
    this.claims = deps.claims;
  }

  /** Resolves "root" to the principal's root folder id. */
  async folderId(p: Principal, ref: string): Promise<string> {
    if (ref !== 'root') return ref;
    const user = await this.users.get(p.userId);
    if (!user) throw errors.notFound('folder');
    return user.rootFolderId;
  }

  async folder(p: Principal, ref: string, need: 'read' | 'write') {
    const access = await this.access.require(p, await this.folderId(p, ref), need, 'folder');
    if (access.item.kind !== 'folder') throw errors.notFound('folder');
    return access;
  }

  async item(p: Principal, id: string, kind?: 'file' | 'folder') {
    const access = await this.access.require(p, id, 'read', kind ?? 'item');
    if (kind && access.item.kind !== kind) throw errors.notFound(kind);
    return access;
  }

  /** The first free name in a folder: the name itself, or "name (n).ext". */
  async freeName(q: SqlExecutor, parentId: string, name: string): Promise<string> {
    const items = this.items.with(q);
    for (let n = 0; n < 1000; n++) {
      const candidate = n === 0 ? name : numberedName(name, n);
      if (Buffer.byteLength(candidate) > 255) break;
      if (!(await items.findLiveChild(parentId, nameKey(candidate)))) return candidate;
    }
    throw errors.conflict(`no free name like ${JSON.stringify(name)} in this folder`);
  }

  async createFolder(p: Principal, parentRef: string, rawName: string): Promise<Item> {
    const { item: parent } = await this.folder(p, parentRef, 'write');
    const name = normaliseName(rawName);
    const folder = await this.db.transaction(async (tx) => {
      try {
        const created = await this.items.with(tx).insertFolder({
          id: randomUUID(),
          ownerId: parent.ownerId,
          parentId: parent.id,
          name,
          nameKey: nameKey(name),
        });
        await this.audit.with(tx).record({
          actorId: p.userId,
          ownerId: parent.ownerId,
          itemId: created.id,
          action: 'folder.create',
          detail: { name },
        });
        return created;
      } catch (err) {
        if (err instanceof UniqueViolationError) throw errors.nameConflict(name);
        throw err;
      }
    });
    await this.cache.invalidate([], [parent.id]);
    return folder;
  }

  async listChildren(
    p: Principal,
    ref: string,
    opts: { sort: ChildSort; cursor?: string; limit: number },
  ): Promise<Page<Item>> {
    const { item: folder } = await this.folder(p, ref, 'read');
    // Strictly parsed, for this sort only: a crafted cursor is a 400 here, never a cast in SQL.
    const after = opts.cursor === undefined ? undefined : decodeChildCursor(opts.cursor, opts.sort);
    const pageKey = `${opts.sort.by}:${opts.sort.dir}:${opts.limit}:${opts.cursor ?? ''}`;
    const page = await this.cache.page(folder.id, pageKey, async () => {
      const rows = await this.items.listChildren(folder.id, opts.sort, after, opts.limit + 1);
      const shown = rows.slice(0, opts.limit);
      const last = shown[shown.length - 1];
      return {
        items: shown.map((r) => r.item),
        nextCursor: rows.length > opts.limit && last ? encodeChildCursor(last.cursor, opts.sort) : null,
      };
    });
    // Pages come back from the cache as JSON: restore the dates.
    return {
      items: page.items.map((i) => ({
        ...i,
        createdAt: new Date(i.createdAt),
        updatedAt: new Date(i.updatedAt),
        deletedAt: i.deletedAt ? new Date(i.deletedAt) : null,
      })),
      nextCursor: page.nextCursor,
    };
  }

  /** "/Docs/2026/report.pdf" in the principal's own tree. */
  async resolvePath(p: Principal, path: string): Promise<Item> {
    if (!path.startsWith('/')) throw errors.validation('a path starts with "/"');
    const segments = path.split('/').filter((s) => s !== '');
    if (segments.length > 256) throw errors.validation('the path is too deep');
    const root = await this.users.get(p.userId);
    if (!root) throw errors.notFound('path');
    let cur = await this.cache.item(root.rootFolderId);
    for (const seg of segments) {
      if (cur?.kind !== 'folder') throw errors.notFound('path');
      cur = await this.items.findLiveChild(cur.id, nameKey(seg.normalize('NFC')));
    }
    if (!cur) throw errors.notFound('path');
    return (await this.access.require(p, cur.id, 'read', 'path')).item;
  }

  /** Rename and/or move, based on the revision the client saw. */
  async relocate(
    p: Principal,
    id: string,
    kind: 'file' | 'folder',
    change: { name?: string; parentId?: string },
    ifMatch: BaseRevision,
  ) {
    if (ifMatch === undefined) throw errors.preconditionRequired();
    const { item, ancestors } = await this.access.require(p, id, 'write', kind);
    if (item.kind !== kind) throw errors.notFound(kind);
    if (!item.parentId) throw errors.forbidden('the root folder cannot be renamed or moved');
    const baseRevision = baseFor(ifMatch, item.revision) as number;
    if (baseRevision !== item.revision) throw staleRevision(item);
    const name = change.name === undefined ? item.name : normaliseName(change.name);
    let parentId = item.parentId;
    if (change.parentId !== undefined) {
      const { item: dest, ancestors: destAncestors } = await this.folder(p, change.parentId, 'write');
      if (dest.ownerId !== item.ownerId)
        throw errors.validation('items move only within one owner\u2019s tree; copy instead');
      if (dest.id === item.id || destAncestors.some((a) => a.id === item.id)) {
        throw errors.conflict('a folder cannot move into itself or its own subfolder', { reason: 'cycle' });
      }
      parentId = dest.id;
    }
    const moved = await this.db.transaction(async (tx) => {
      if (parentId !== item.parentId) {
        // The cycle check above read the chain outside this transaction; two crossing moves (a into
        // b, b into a) could both pass it. Re-read the destination's chain with its rows locked.
        await this.items.with(tx).lockTree(item.ownerId);
        // Where it comes from, locked too: a folder above it trashed since the check above (and
        // perhaps being purged, leaves first) must not lose a subtree back to the live tree.
        const from = item.parentId ? await this.items.with(tx).lockChain(item.parentId) : [];
        if (from.some((a) => a.deletedAt) || from[from.length - 1]?.parentId !== null)
          throw errors.notFound(kind);
        const chain = await this.items.with(tx).lockChain(parentId);
        if (chain.some((a) => a.id === item.id))
          throw errors.conflict('a folder cannot move into itself or its own subfolder', { reason: 'cycle' });
        if (chain.some((a) => a.deletedAt) || chain[chain.length - 1]?.parentId !== null)
          throw errors.notFound('folder');
      }
      try {
        const updated = await this.items
          .with(tx)
          .relocate(item.id, { parentId, name, nameKey: nameKey(name) }, baseRevision);
        if (!updated) throw staleRevision((await this.items.with(tx).get(item.id)) ?? item);
        await this.audit.with(tx).record({
          actorId: p.userId,
          ownerId: item.ownerId,
          itemId: item.id,
          action: parentId === item.parentId ? 'item.rename' : 'item.move',
          detail: { from: { parentId: item.parentId, name: item.name }, to: { parentId, name } },
        });
        return updated;
      } catch (err) {
        if (err instanceof UniqueViolationError) throw errors.nameConflict(name);
        throw err;
      }
    });
    await this.cache.invalidate([item.id], [item.parentId, parentId]);
    void ancestors;
    return moved;
  }

  /** A new file sharing the source's current blob. */
  async copyFile(p: Principal, id: string, to: { parentId: string; name?: string; autorename: boolean }) {
    const { item: src } = await this.item(p, id, 'file');
    const { item: dest } = await this.folder(p, to.parentId, 'write');
    const version = src.currentVersionId ? await this.items.getVersion(src.currentVersionId) : undefined;
    if (!version) throw errors.notFound('file');
    const wanted = normaliseName(to.name ?? src.name);
    const copy = await this.db.transaction(async (tx) => {
      const items = this.items.with(tx);
      const name = to.autorename ? await this.freeName(tx, dest.id, wanted) : wanted;
      const fileId = randomUUID();
      const versionId = randomUUID();
      if (!(await items.chargeUsage(dest.ownerId, version.size))) throw errors.quotaExceeded();
      try {
        await items.insertFile({
          id: fileId,
          ownerId: dest.ownerId,
          parentId: dest.id,
          name,
          nameKey: nameKey(name),
          contentType: version.contentType,
          size: version.size,
          versionId,
          // A copy of a quarantined version stays quarantined.
          scanState: version.scanState,
        });
      } catch (err) {
        if (err instanceof UniqueViolationError) throw errors.nameConflict(name);
        throw err;
      }
      await items.insertVersion({ ...version, id: versionId, fileId, createdBy: p.userId });
      await this.audit.with(tx).record({
        actorId: p.userId,
        ownerId: dest.ownerId,
        itemId: fileId,
        action: 'file.copy',
        detail: { from: src.id },
      });
      return (await items.get(fileId)) as Item;
    });
    await this.cache.invalidate([], [dest.id]);
    return copy;
  }

  /** Soft delete: the item becomes a trash root; its subtree goes with it. */
  async trash(p: Principal, id: string, kind: 'file' | 'folder', ifMatch: BaseRevision) {
    const { item } = await this.access.require(p, id, 'write', kind);
    if (item.kind !== kind) throw errors.notFound(kind);
    if (!item.parentId) throw errors.forbidden('the root folder cannot be deleted');
    const baseRevision = baseFor(ifMatch, item.revision);
    if (baseRevision !== undefined && baseRevision !== item.revision) throw staleRevision(item);
    const trashed = await this.db.transaction(async (tx) => {
      const done = await this.items.with(tx).trash(item.id, p.userId, baseRevision);
      if (!done) throw staleRevision((await this.items.with(tx).get(item.id)) ?? item);
      await this.audit.with(tx).record({
        actorId: p.userId,
        ownerId: item.ownerId,
        itemId: item.id,
        action: 'item.trash',
        detail: { name: item.name },
      });
      return done;
    });
    await this.cache.invalidate([item.id], [item.parentId]);
    return trashed;
  }

  async listTrash(p: Principal, limit: number): Promise<Item[]> {
    return this.items.listTrash(p.userId, limit);
  }

  /** Puts a trash root back where it was (or in the root when that place is gone), under a free name. */
  async restoreFromTrash(p: Principal, id: string): Promise<Item> {
    const item = await this.access.requireTrashed(p, id);
    const owner = await this.users.get(item.ownerId);
    if (!owner) throw errors.notFound('trashed item');
    let parentId = owner.rootFolderId;
    if (item.originalParentId) {
      const parent = await this.cache.item(item.originalParentId);
      const chain = parent ? await this.access.chain(parent) : undefined;
      if (parent && chain && !parent.deletedAt && !chain.some((a) => a.deletedAt)) parentId = parent.id;
    }
    const restored = await this.db.transaction(async (tx) => {
      // Checked again with the destination's chain locked: a concurrent move or delete may have
      // changed it since; then the item goes back to the owner's root instead.
      await this.items.with(tx).lockTree(item.ownerId);
      // An item beneath a trashed folder a purge claimed goes with that purge: its chain, locked,
      // has no claimed root (a claim is an update of that row, so it waits for this or sees it).
      const here = item.parentId ? await this.items.with(tx).lockChain(item.parentId) : [];
      if (
        here[here.length - 1]?.parentId !== null ||
        (await this.claims.with(tx).anyClaimed(here.map((a) => a.id)))
      )
        throw errors.notFound('trashed item');
      const chain = await this.items.with(tx).lockChain(parentId);
      if (chain.some((a) => a.id === item.id || a.deletedAt) || chain[chain.length - 1]?.parentId !== null)
        parentId = owner.rootFolderId;
      const name = await this.freeName(tx, parentId, item.name);
      const back = await this.items.with(tx).untrash(item.id, { parentId, name, nameKey: nameKey(name) });
      if (!back) throw errors.notFound('trashed item');
      await this.audit.with(tx).record({
        actorId: p.userId,
        ownerId: item.ownerId,
        itemId: item.id,
        action: 'item.restore',
        detail: { parentId, name },
      });
      return back;
    });
    await this.cache.invalidate([item.id], [parentId]);
    return restored;
  }
}
