/**
 * The metadata commit of a verified upload: the version with its file row, usage and audit record
 * in one transaction; then the plan for its other replicas, and what follows a commit (the cache,
 * the owner's version retention).
 */

import { errors, UniqueViolationError } from '../domain/errors.ts';
import type { Item, Principal, ScanState } from '../domain/model.ts';
import { nameKey, normaliseName } from '../domain/names.ts';
import type { UploadSession } from '../domain/upload-session.ts';
import type { Database } from '../ports/database.ts';
import type { AuditLog, ItemStore, ReservationStore, UserStore } from '../ports/metadata.ts';
import type { FolderService } from './folder-service.ts';
import type { MetadataCache } from './metadata-cache.ts';
import type { NodeRegistry } from './node-registry.ts';
import type { ReplicaLedger } from './replica-ledger.ts';
import type { VersionService } from './version-service.ts';

export class UploadCommit {
  private readonly db: Database;
  private readonly items: ItemStore;
  private readonly users: UserStore;
  private readonly audit: AuditLog;
  private readonly reservations: ReservationStore;
  private readonly nodes: NodeRegistry;
  private readonly ledger: ReplicaLedger;
  private readonly cache: MetadataCache;
  private readonly folders: Pick<FolderService, 'freeName'>;
  private readonly versions: Pick<VersionService, 'applyRetention'>;

  constructor(deps: {
    db: Database;
    items: ItemStore;
    users: UserStore;
    audit: AuditLog;
    reservations: ReservationStore;
    nodes: NodeRegistry;
    ledger: ReplicaLedger;
    cache: MetadataCache;
    folders: Pick<FolderService, 'freeName'>;
    versions: Pick<VersionService, 'applyRetention'>;
  }) {
    this.db = deps.db;
    this.items = deps.items;
    this.users = deps.users;
    this.audit = deps.audit;
    this.reservations = deps.reservations;
    this.nodes = deps.nodes;
    this.ledger = deps.ledger;
    this.cache = deps.cache;
    this.folders = deps.folders;
    this.versions = deps.versions;
  }

  /**
   * The metadata commit. Conflicts: a folder at the name, or a file whose current version is not the
   * base the client named, either fail (409, the session stays open so the client can retry with a
   * conflict copy) or commit as "name (conflicted copy <user> <date>).ext".
   */
  async commit(
    s: UploadSession,
    copyName: string,
    extra: { contentHash: string; partSize: number; partHashes: string[] | null; scanState: ScanState },
  ): Promise<{ file: Item }> {
    return this.db.transaction(async (tx) => {
      const items = this.items.with(tx);
      const already = await items.getVersion(s.versionId);
      if (already) return { file: (await items.get(already.fileId)) as Item }; // committed before a crash
      // The folder and every ancestor must still be live; their rows stay locked until the commit,
      // so a concurrent trash of any of them waits for it (or, on DSQL, conflicts and is retried).
      await items.lockTree(s.ownerId); // first, as every chain-locking transaction does
      const chain = await items.lockChain(s.parentId);
      if (chain.length === 0 || chain.some((a) => a.deletedAt) || chain[chain.length - 1]?.parentId !== null)
        throw errors.notFound('folder');
      let name = s.name;
      let existing = await items.findLiveChild(s.parentId, nameKey(name));
      const clash =
        existing &&
        (existing.kind === 'folder' ||
          (s.baseVersionId !== undefined && existing.currentVersionId !== s.baseVersionId));
      if (existing && clash) {
        if (s.onConflict !== 'copy') {
          throw errors.conflict('the file changed since the version this upload is based on', {
            current: {
              fileId: existing.id,
              kind: existing.kind,
              versionId: existing.currentVersionId,
              revision: existing.revision,
            },
          });
        }
        name = await this.folders.freeName(tx, s.parentId, copyName);
        existing = undefined;
      } else if (!existing && s.baseVersionId) {
        throw errors.conflict('the file this upload is based on no longer exists here', { current: null });
      }
      // The reservation becomes usage: the quota was checked when it was made.
      await this.reservations.with(tx).release(s.uploadId);
      if (!(await items.chargeUsage(s.ownerId, s.size))) throw errors.quotaExceeded();
      const version = {
        id: s.versionId,
        nodeId: s.nodeId,
        blobKey: s.blobKey,
        size: s.size,
        sha256: s.sha256,
        contentType: s.contentType,
        createdBy: s.createdBy,
        ...extra,
      };
      let file: Item;
      if (existing) {
        await items.insertVersion({ ...version, fileId: existing.id });
        file = await items.setCurrentVersion(existing.id, {
          versionId: s.versionId,
          size: s.size,
          contentType: s.contentType,
          scanState: extra.scanState,
        });
      } else {
        try {
          file = await items.insertFile({
            id: s.fileId,
            ownerId: s.ownerId,
            parentId: s.parentId,
            name,
            nameKey: nameKey(name),
            contentType: s.contentType,
            size: s.size,
            versionId: s.versionId,
            scanState: extra.scanState,
          });
        } catch (err) {
          if (err instanceof UniqueViolationError) throw errors.nameConflict(name);
          throw err;
        }
        await items.insertVersion({ ...version, fileId: file.id });
      }
      await this.audit.with(tx).record({
        actorId: s.createdBy,
        ownerId: s.ownerId,
        itemId: file.id,
        action: 'file.commit',
        detail: { versionId: s.versionId, size: s.size, name, scan: extra.scanState },
      });
      return { file };
    });
  }

  /** "name (conflicted copy <user> <date>).ext" for a commit that must not replace the file there. */
  async conflictCopyName(name: string, p: Principal): Promise<string> {
    const who = ((await this.users.get(p.userId))?.email ?? 'someone').split('@')[0] ?? 'someone';
    const date = new Date().toISOString().slice(0, 10);
    const dot = name.lastIndexOf('.');
    const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ''];
    return normaliseName(`${stem} (conflicted copy ${who.replace(/[^\p{L}\p{N}._-]/gu, '')} ${date})${ext}`);
  }

  /** Where the other replicas go; the replicator copies them from the change stream. */
  async planReplicas(s: UploadSession): Promise<void> {
    const others = this.nodes
      .placement(s.versionId)
      .map((n) => n.id)
      .filter((id) => id !== s.nodeId)
      .slice(0, this.nodes.replicationFactor - 1);
    await this.ledger.plan(
      { versionId: s.versionId, blobKey: s.blobKey, size: s.size, sha256: s.sha256 },
      s.nodeId,
      others,
    );
  }

  /** After the commit: the cache forgets the file and its folder, and retention runs. */
  async settle(file: Item, parentId: string): Promise<void> {
    await this.cache.invalidate([file.id], [parentId]);
    await this.versions.applyRetention(file);
  }
}
