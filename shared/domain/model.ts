/**
 * The data model the core works with: files and folders, versions, users, grants, share links,
 * audit events and the caller (principal). Adapters map their rows to these; services and the
 * HTTP layer import them from here, never from an adapter.
 */

export interface Principal {
  userId: string;
  role: 'admin' | 'user';
  tokenId: string;
  originTokenId?: string;
  expiresAt: number;
}

export interface User {
  id: string;
  email: string;
  role: 'admin' | 'user';
  rootFolderId: string;
  quotaBytes: number;
  usedBytes: number;
  keepVersions: number | null;
  keepDays: number | null;
  trashDays: number | null;
}

export interface Item {
  id: string;
  ownerId: string;
  parentId: string | null;
  kind: 'file' | 'folder';
  name: string;
  contentType: string | null;
  size: number;
  currentVersionId: string | null;
  revision: number;
  createdAt: Date;
  updatedAt: Date;
  deletedAt: Date | null;
  originalParentId: string | null;
  /** The current version's scan state (null: scanned before scanning existed, i.e. clean). */
  scanState: ScanState | null;
}

export type ScanState = 'scanning' | 'clean' | 'infected';

export interface Version {
  id: string;
  fileId: string;
  nodeId: string;
  blobKey: string;
  size: number;
  sha256: string;
  contentType: string;
  createdBy: string;
  createdAt: Date;
  contentHash: string | null;
  partSize: number | null;
  partHashes: string[] | null;
  scanState: ScanState | null;
}

/** What the reconciler needs of a version: where its bytes are and what they hash to. */
export type VersionRef = Pick<Version, 'id' | 'nodeId' | 'blobKey' | 'size' | 'sha256'>;

export interface ChildSort {
  by: 'name' | 'size' | 'modified';
  dir: 'asc' | 'desc';
}

export interface ChildCursor {
  value: string;
  id: string;
}

export type GrantRole = 'viewer' | 'editor';

export interface Grant {
  id: string;
  itemId: string;
  ownerId: string;
  granteeId: string;
  role: GrantRole;
  grantedBy: string;
  createdAt: Date;
}

/**
 * A grant to an address no account holds yet: it becomes a Grant when an account registers that
 * address, unless it expired or was revoked first. The API answers an invitation exactly as a grant,
 * so sharing is no way to learn which addresses have accounts.
 */
export interface Invitation {
  id: string;
  itemId: string;
  ownerId: string;
  email: string;
  role: GrantRole;
  grantedBy: string;
  createdAt: Date;
  expiresAt: Date;
}

export interface ShareLink {
  id: string;
  tokenHash: string;
  itemId: string;
  ownerId: string;
  createdBy: string;
  createdAt: Date;
  expiresAt: Date;
  passwordHash: string | null;
  maxDownloads: number | null;
  maxBytes: number | null;
  downloads: number;
  bytesServed: number;
  revokedAt: Date | null;
}

export interface AuditEvent {
  id: string;
  at: Date;
  actorId: string | null;
  ownerId: string | null;
  itemId: string | null;
  action: string;
  detail: Record<string, unknown>;
}
