/**
 * Domain objects to wire shapes. Each presenter returns its response schema's output type
 * (`wire-types.ts`), so a field dropped, renamed or retyped here fails the typecheck.
 */
import { etagFor } from '../../shared/domain/etag.ts';
import type { AuditEvent, Item, User, Version } from '../../shared/domain/model.ts';
import type { PurgeJob } from '../../shared/domain/purge-job.ts';
import type { Sharing } from '../../shared/services/permission-service.ts';
import type {
  AuditEventOut,
  FileOut,
  ItemOut,
  JobOut,
  PermissionOut,
  TrashItemOut,
  UserOut,
  VersionOut,
} from './wire-types.ts';

export const userOut = (u: User): UserOut => ({
  id: u.id,
  email: u.email,
  role: u.role,
  rootFolderId: u.rootFolderId,
});

export const itemOut = (i: Item): ItemOut => ({
  id: i.id,
  name: i.name,
  type: i.kind,
  parentId: i.parentId,
  // A spread is not checked for excess keys; `satisfies` makes a renamed optional field fail too.
  ...(i.kind === 'file'
    ? ({
        size: i.size,
        contentType: i.contentType ?? 'application/octet-stream',
        scanState: i.scanState ?? 'clean',
      } satisfies Required<Pick<ItemOut, 'size' | 'contentType' | 'scanState'>>)
    : {}),
  revision: i.revision,
  etag: etagFor(i),
  createdAt: i.createdAt.toISOString(),
  modifiedAt: i.updatedAt.toISOString(),
});

export const fileOut = (i: Item, v: Version): FileOut => ({
  ...itemOut(i),
  versionId: v.id,
  sha256: v.sha256,
  contentHash: v.contentHash,
  scanState: v.scanState ?? 'clean',
});

export const versionOut = (v: Version, currentId: string | null): VersionOut => ({
  versionId: v.id,
  size: v.size,
  sha256: v.sha256,
  createdAt: v.createdAt.toISOString(),
  createdBy: v.createdBy,
  current: v.id === currentId,
  contentHash: v.contentHash,
  scanState: v.scanState ?? 'clean',
});

export const trashOut = (i: Item): TrashItemOut => ({
  id: i.id,
  name: i.name,
  type: i.kind,
  deletedAt: (i.deletedAt ?? new Date(0)).toISOString(),
  ...(i.kind === 'file' ? ({ size: i.size } satisfies Pick<TrashItemOut, 'size'>) : {}),
  originalParentId: i.originalParentId,
});

/** A grant or an invitation, alike (no account id, no status: the answer is no account oracle). */
export const permissionOut = (g: Sharing): PermissionOut => ({
  id: g.id,
  itemId: g.itemId,
  email: g.email,
  role: g.role,
  createdAt: g.createdAt.toISOString(),
});

export const auditOut = (e: AuditEvent): AuditEventOut => ({
  id: e.id,
  at: e.at.toISOString(),
  actorId: e.actorId,
  ownerId: e.ownerId,
  itemId: e.itemId,
  action: e.action,
  detail: e.detail,
});

export { etagFor };

export const jobOut = (j: PurgeJob): JobOut => ({
  id: j.id,
  operation: j.operation,
  rootId: j.rootId,
  state: j.state,
  requestedBy: j.requestedBy,
  progress: { done: j.done, total: j.total },
  purged: j.purged,
  error: j.error,
  createdAt: j.createdAt.toISOString(),
  updatedAt: j.updatedAt.toISOString(),
  finishedAt: j.finishedAt?.toISOString() ?? null,
});

/** Where a purge job's progress is (the 202's Location, and the 200's Content-Location). */
export const jobPath = (id: string) => `/v1/jobs/${id}`;
