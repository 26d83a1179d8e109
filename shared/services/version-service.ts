/**
 * Versions and retention: a file's versions, its current version, restoring an old one, each
 * owner's retention policy, and the retention that enforces it (after every commit, and the
 * scheduled sweep of trash and old versions).
 */

import { randomUUID } from 'node:crypto';
import { errors } from '../domain/errors.ts';
import { type BaseRevision, baseFor } from '../domain/etag.ts';
import type { Item, Principal, Version } from '../domain/model.ts';
import type { Logger } from '../observability/logger.ts';
import type { Database } from '../ports/database.ts';
import type { AuditLog, ItemStore, UserStore } from '../ports/metadata.ts';
import type { AccessControl } from './access-control.ts';
import type { FolderService } from './folder-service.ts';
import type { MetadataCache } from './metadata-cache.ts';
import type { PurgeJobs } from './purge-jobs.ts';
import { DEFAULT_TRASH_DAYS, type PurgeReport, type Purger } from './purger.ts';
import { staleRevision } from './revisions.ts';

export class VersionService {
  private readonly db: Database;
  private readonly items: ItemStore;
  private readonly users: UserStore;
  private readonly audit: AuditLog;
  private readonly access: AccessControl;
  private readonly cache: MetadataCache;
  private readonly purger: Purger;
  private readonly purges: Pick<PurgeJobs, 'purgeExpired' | 'forgetFinished'>;
  private readonly folders: Pick<FolderService, 'item'>;
  private readonly log: Logger;

  constructor(deps: {
    db: Database;
    items: ItemStore;
    users: UserStore;
    audit: AuditLog;
    access: AccessControl;
    cache: MetadataCache;
    purger: Purger;
    purges: Pick<PurgeJobs, 'purgeExpired' | 'forgetFinished'>;
    folders: Pick<FolderService, 'item'>;
    log: Logger;
  }) {
    this.db = deps.db;
    this.items = deps.items;
    this.users = deps.users;
    this.audit = deps.audit;
    this.access = deps.access;
    this.cache = deps.cache;
    this.purger = deps.purger;
    this.purges = deps.purges;
    this.folders = deps.folders;
    this.log = deps.log;
  }

  async versions(p: Principal, fileId: string): Promise<{ file: Item; versions: Version[] }> {
    const { item } = await this.folders.item(p, fileId, 'file');
    return { file: item, versions: await this.items.listVersions(item.id) };
  }

  /** A file the principal may read, with its current version. */
  async fileWithVersion(p: Principal, fileId: string) {
    const { item: file, role } = await this.folders.item(p, fileId, 'file');
    const version = file.currentVersionId ? await this.items.getVersion(file.currentVersionId) : undefined;
    if (!version) throw errors.notFound('file');
    return { file, version, role };
  }

  /** Makes an old version current by committing a new version with its content. */
  async restoreVersion(p: Principal, fileId: string, versionId: string, ifMatch: BaseRevision) {
    const { item } = await this.access.require(p, fileId, 'write', 'file');
    if (item.kind !== 'file') throw errors.notFound('file');
    const baseRevision = baseFor(ifMatch, item.revision);
    if (baseRevision !== undefined && baseRevision !== item.revision) throw staleRevision(item);
    const old = await this.items.getVersion(versionId);
    if (!old || old.fileId !== item.id) throw errors.notFound('version');
    const result = await this.db.transaction(async (tx) => {
      const items = this.items.with(tx);
      if (!(await items.chargeUsage(item.ownerId, old.size))) throw errors.quotaExceeded();
      const version = await items.insertVersion({ ...old, id: randomUUID(), createdBy: p.userId });
      const file = await items.setCurrentVersion(item.id, {
        versionId: version.id,
        size: old.size,
        contentType: old.contentType,
        scanState: old.scanState,
      });
      await this.audit.with(tx).record({
        actorId: p.userId,
        ownerId: item.ownerId,
        itemId: item.id,
        action: 'version.restore',
        detail: { from: old.id, to: version.id },
      });
      return { file, version };
    });
    await this.cache.invalidate([item.id], [item.parentId]);
    await this.applyRetention(result.file);
    return result;
  }

  async applyRetention(file: Item): Promise<void> {
    try {
      const owner = await this.users.get(file.ownerId);
      if (owner)
        await this.purger.applyRetention(file, {
          keepVersions: owner.keepVersions,
          keepDays: owner.keepDays,
        });
    } catch (err) {
      // Retention is also enforced by the sweep; a failure here only delays it.
      this.log.warn('retention after commit failed', { fileId: file.id, err: String(err) });
    }
  }

  async retention(p: Principal) {
    const user = await this.users.get(p.userId);
    if (!user) throw errors.unauthorized();
    return {
      keepVersions: user.keepVersions,
      keepDays: user.keepDays,
      trashDays: user.trashDays ?? DEFAULT_TRASH_DAYS,
    };
  }

  async setRetention(
    p: Principal,
    policy: { keepVersions: number | null; keepDays: number | null; trashDays: number },
  ) {
    await this.db.transaction(async (tx) => {
      await this.users.setRetention(p.userId, policy, tx);
      await this.audit.with(tx).record({
        actorId: p.userId,
        ownerId: p.userId,
        itemId: null,
        action: 'retention.set',
        detail: policy,
      });
    });
    return this.retention(p);
  }

  /**
   * The scheduled sweep: trash past each owner's retention, and versions past `keepDays`. Bounded
   * per call; run it again until it reports nothing. `trashRoots` counts the roots it purged or
   * handed to a purge job; the other counts are what it purged itself (a job reports its own).
   */
  async sweep(now = new Date()): Promise<PurgeReport & { trashRoots: number }> {
    const total = { items: 0, versions: 0, bytes: 0, blobsReclaimed: 0, trashRoots: 0 };
    const roots = await this.items.trashPastRetention(now, DEFAULT_TRASH_DAYS, 100);
    for (const id of roots) {
      const item = await this.items.get(id);
      if (!item) continue;
      const outcome = await this.purges.purgeExpired(item);
      if (!outcome) continue;
      total.trashRoots++;
      if (outcome.status !== 'done') continue;
      const r = outcome.report;
      total.items += r.items;
      total.versions += r.versions;
      total.bytes += r.bytes;
      total.blobsReclaimed += r.blobsReclaimed;
    }
    await this.purges.forgetFinished();
    const files = await this.items.filesPastKeepDays(now, 500);
    for (const id of files) {
      const file = await this.items.get(id);
      const owner = file && (await this.users.get(file.ownerId));
      if (!file || !owner) continue;
      const r = await this.purger.applyRetention(
        file,
        { keepVersions: owner.keepVersions, keepDays: owner.keepDays },
        now,
      );
      total.versions += r.versions;
      total.bytes += r.bytes;
      total.blobsReclaimed += r.blobsReclaimed;
    }
    return total;
  }
}
