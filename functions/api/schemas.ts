/** Wire schemas of the public API. Types come from these (`wire-types.ts`); OpenAPI is generated from them. */
import * as z from 'zod';
import {
  MAX_OBJECT,
  MAX_PART,
  MAX_PARTS,
  MIN_PART,
  PARTS_PER_REQUEST,
} from '../../shared/domain/upload-session.ts';

export const Email = z.string().trim().toLowerCase().max(254).pipe(z.email());
export const Password = z.string().min(8).max(256);
/**
 * Ids are canonical (lower case) from the edge on: every cache key, lock and comparison sees one
 * spelling. `z.uuid()` accepts upper case, and an upper-case spelling once missed the metadata
 * cache's invalidation (keyed by the lower-case id) and read stale access for five minutes.
 */
export const Uuid = z.uuid().transform((s) => s.toLowerCase());
export const FolderRef = z.union([z.literal('root'), Uuid]).meta({ description: 'a folder id, or "root"' });
export const Sha256Hex = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/, 'a SHA-256 as 64 hex digits')
  .transform((s) => s.toLowerCase());
export const ContentType = z
  .string()
  .max(255)
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/,
    'a media type such as text/plain',
  );

export const Credentials = z.object({ email: Email, password: Password });
export const TokenSet = z.object({
  accessToken: z.string(),
  refreshToken: z.string(),
  expiresIn: z.number().int(),
});
export const RefreshBody = z.object({ refreshToken: z.string().min(16).max(1024) });
export const LogoutBody = z.object({ refreshToken: z.string().min(16).max(1024).optional() });
export const ForgotPasswordBody = z.object({ email: Email });
export const ResetPasswordBody = z.object({
  email: Email,
  code: z.string().trim().min(4).max(64).meta({ description: 'the one-time code from the reset email' }),
  newPassword: Password,
});
export const UserOut = z.object({
  id: z.string(),
  email: z.string(),
  role: z.enum(['admin', 'user']),
  rootFolderId: z.string(),
});
export const AdminUserParams = z.object({ id: Uuid });
export const AdminUserPatch = z
  .strictObject({
    role: z.enum(['admin', 'user']).optional(),
    quotaBytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  })
  .refine((b) => b.role !== undefined || b.quotaBytes !== undefined, {
    message: 'role or quotaBytes is required',
  });
export const AdminUserOut = UserOut.extend({ quotaBytes: z.number().int(), usedBytes: z.number().int() });

export const ScanState = z.enum(['scanning', 'clean', 'infected']);
export const ItemOut = z.object({
  id: z.string(),
  name: z.string(),
  type: z.enum(['file', 'folder']),
  parentId: z.string().nullable(),
  size: z.number().int().optional(),
  contentType: z.string().optional(),
  scanState: ScanState.optional(),
  revision: z.number().int(),
  etag: z.string(),
  createdAt: z.string(),
  modifiedAt: z.string(),
});
export const FileOut = ItemOut.extend({
  versionId: z.string(),
  sha256: z.string(),
  contentHash: z.string().nullable(),
  scanState: ScanState,
});

export const CreateFolderBody = z.object({ parentId: FolderRef, name: z.string().min(1).max(1024) });
export const IdParams = z.object({ id: Uuid });
export const FolderParams = z.object({ id: FolderRef });
export const ChildrenQuery = z.object({
  cursor: z.string().max(1024).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  sort: z.enum(['name', 'size', 'modified']).default('name'),
  dir: z.enum(['asc', 'desc']).default('asc'),
});
export const ChildrenOut = z.object({ items: z.array(ItemOut), nextCursor: z.string().nullable() });

export const PartUrl = z.object({
  partNumber: z.number().int(),
  url: z.string(),
  headers: z.record(z.string(), z.string()),
  expiresAt: z.string(),
});
export const CreateUploadBody = z.object({
  parentId: FolderRef,
  name: z.string().min(1).max(1024),
  size: z.number().int().min(0).max(MAX_OBJECT),
  sha256: Sha256Hex,
  contentType: ContentType.default('application/octet-stream'),
  /** The current version this upload replaces; null: "I expect no file at this name". */
  baseVersionId: Uuid.nullable().optional(),
  /** On a stale base or a folder at the name: fail with 409 (default) or commit a conflict copy. */
  onConflict: z.enum(['fail', 'copy']).optional(),
  /** 5 MiB to 5 GiB; grown if the file would need more than 10,000 parts. */
  partSize: z.number().int().min(MIN_PART).max(MAX_PART).optional(),
  /**
   * Per-part SHA-256s: URLs for these parts come back bound to them, and unchanged parts of the
   * file's current version are reused server-side (delta re-upload). Declaring any binds every
   * part: each part's URL then needs its hash, and the parts past the first 1,000 are declared in
   * batches with `POST /v1/uploads/{id}/parts`.
   */
  parts: z
    .array(z.object({ partNumber: z.number().int().min(1).max(MAX_PARTS), sha256: Sha256Hex }))
    .max(PARTS_PER_REQUEST)
    .optional(),
});
export const UploadState = z.enum([
  'uploading',
  'completing',
  'verifying',
  'committed',
  'failed',
  'aborted',
  'expired',
]);
export const CreateUploadOut = z.object({
  uploadId: z.string(),
  state: UploadState,
  partSize: z.number().int(),
  partCount: z.number().int(),
  parts: z.array(PartUrl),
  reusedParts: z.array(z.number().int()),
  bytesSkipped: z.number().int(),
  expiresAt: z.string(),
});
export const CompleteOut = z.object({
  fileId: z.string(),
  versionId: z.string(),
  name: z.string(),
  size: z.number().int(),
  sha256: z.string(),
  contentHash: z.string().optional(),
  scanState: ScanState.optional(),
});
/** Why verification refused an upload (state `failed`, or `aborted` after an inline refusal). */
export const UploadErrorOut = z.object({ type: z.string(), detail: z.string() });
export const UploadOut = z.object({
  uploadId: z.string(),
  state: UploadState,
  name: z.string(),
  size: z.number().int(),
  partSize: z.number().int(),
  partCount: z.number().int(),
  receivedParts: z.array(
    z.object({
      partNumber: z.number().int(),
      etag: z.string(),
      sha256: z.string().optional(),
      size: z.number().int(),
    }),
  ),
  expiresAt: z.string(),
  fileId: z.string().optional(),
  versionId: z.string().optional(),
  /** While `verifying`: bytes the background verifier has read (of `size`). */
  verifiedBytes: z.number().int().optional(),
  /** When `committed`: what the complete answered (or, after a 202, would have). */
  result: CompleteOut.optional(),
  error: UploadErrorOut.optional(),
});
/**
 * Fresh URLs for these parts. A `sha256` binds the part to that hash (on S3, if the upload declared
 * part hashes at create: its multipart upload takes part checksums only then); once declared, a
 * part's hash never changes (409).
 */
export const PartsBody = z.object({
  parts: z
    .array(z.object({ partNumber: z.number().int().min(1).max(MAX_PARTS), sha256: Sha256Hex.optional() }))
    .min(1)
    .max(PARTS_PER_REQUEST),
});
export const PartsOut = z.object({ parts: z.array(PartUrl) });
export const CompleteBody = z.object({
  parts: z
    .array(z.object({ partNumber: z.number().int().min(1).max(MAX_PARTS), etag: z.string().min(1).max(200) }))
    .max(MAX_PARTS),
  onConflict: z.enum(['fail', 'copy']).optional(),
});
export const DownloadQuery = z.object({
  format: z.enum(['json', 'redirect']).default('redirect'),
  versionId: Uuid.optional(),
});
export const DownloadOut = z.object({ url: z.string(), expiresAt: z.string() });
export const HealthOut = z.object({ status: z.literal('ok'), version: z.string() });

export const PatchItemBody = z
  .object({ name: z.string().min(1).max(1024).optional(), parentId: FolderRef.optional() })
  .refine(
    (b) => b.name !== undefined || b.parentId !== undefined,
    'give a new name, a new parentId, or both',
  );
export const PathQuery = z.object({ path: z.string().min(1).max(4096) });
export const CopyBody = z.object({
  parentId: FolderRef,
  name: z.string().min(1).max(1024).optional(),
  autorename: z.boolean().default(false),
});
export const VersionParams = z.object({ id: Uuid, versionId: Uuid });
export const VersionOut = z.object({
  versionId: z.string(),
  size: z.number().int(),
  sha256: z.string(),
  createdAt: z.string(),
  createdBy: z.string(),
  current: z.boolean(),
  contentHash: z.string().nullable(),
  scanState: ScanState,
});
export const VersionsOut = z.object({ items: z.array(VersionOut) });
export const RestoredVersionOut = z.object({
  fileId: z.string(),
  versionId: z.string(),
  restoredFrom: z.string(),
  etag: z.string(),
});
export const TrashItemOut = z.object({
  id: z.string(),
  name: z.string(),
  type: z.enum(['file', 'folder']),
  deletedAt: z.string(),
  size: z.number().int().optional(),
  originalParentId: z.string().nullable(),
});
export const TrashOut = z.object({ items: z.array(TrashItemOut) });
export const PurgeOut = z.object({
  items: z.number().int(),
  versions: z.number().int(),
  bytes: z.number().int(),
  blobsReclaimed: z.number().int(),
});
/** A purge too big for one request, as `GET /v1/jobs/{id}` shows it. */
export const JobOut = z.object({
  id: z.string(),
  operation: z.enum(['purge', 'empty-trash']).describe('what was asked: one trash root, or the whole trash'),
  rootId: z.string().nullable().describe('the trash root purged (null: the whole trash)'),
  state: z.enum(['queued', 'running', 'done', 'failed']),
  requestedBy: z.string().nullable().describe('who asked (null: the trash retention sweep)'),
  progress: z
    .object({
      done: z.number().int(),
      total: z.number().int().nullable(),
    })
    .describe(
      'rows (items and versions) deleted, of those counted when the job started (null: not counted yet)',
    ),
  purged: PurgeOut.describe('what was purged so far'),
  error: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  finishedAt: z.string().nullable(),
});
export const GrantRole = z.enum(['viewer', 'editor']);
export const PermissionBody = z.object({ itemId: Uuid, email: Email, role: GrantRole });
/**
 * A grant, or an invitation of an address that has no account yet (it becomes a grant when the
 * address registers): the same shape either way, so sharing reveals nothing about accounts.
 */
export const PermissionOut = z.object({
  id: z.string(),
  itemId: z.string(),
  email: z.string(),
  role: GrantRole,
  createdAt: z.string(),
});
export const PermissionsQuery = z.object({ itemId: Uuid });
export const PermissionsOut = z.object({ items: z.array(PermissionOut) });
export const SharedItemOut = ItemOut.extend({ role: GrantRole });
export const SharedOut = z.object({ items: z.array(SharedItemOut) });
export const UsageOut = z.object({
  usedBytes: z.number().int(),
  /** Bytes of open uploads, held against the quota until each commits or is aborted. */
  reservedBytes: z.number().int(),
  quotaBytes: z.number().int(),
});
export const AuditQuery = z.object({
  itemId: Uuid.optional(),
  action: z
    .string()
    .regex(/^[a-z_.]{1,64}$/)
    .optional(),
  cursor: z.string().max(1024).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});
export const AuditEventOut = z.object({
  id: z.string(),
  at: z.string(),
  actorId: z.string().nullable(),
  ownerId: z.string().nullable(),
  itemId: z.string().nullable(),
  action: z.string(),
  detail: z.record(z.string(), z.unknown()),
});
export const AuditOut = z.object({ items: z.array(AuditEventOut), nextCursor: z.string().nullable() });
export const RetentionBody = z.object({
  keepVersions: z.number().int().min(1).max(100_000).nullable(),
  keepDays: z.number().int().min(1).max(36_500).nullable(),
  trashDays: z.number().int().min(1).max(3650).default(30),
});
export const RetentionOut = z.object({
  keepVersions: z.number().int().nullable(),
  keepDays: z.number().int().nullable(),
  trashDays: z.number().int(),
});
export const SweepOut = PurgeOut.extend({ trashRoots: z.number().int(), rescanned: z.number().int() });

export const ShareBody = z.object({
  itemId: Uuid,
  expiresInSeconds: z
    .number()
    .int()
    .min(60)
    .max(365 * 86_400),
  // 8 for new links (#18); links made under the old minimum of 4 still verify.
  password: z.string().min(8).max(256).optional(),
  maxDownloads: z.number().int().min(1).max(1_000_000).optional(),
  maxBytes: z
    .number()
    .int()
    .min(1)
    .max(MAX_OBJECT * 1000)
    .optional(),
});
export const ShareOut = z.object({
  id: z.string(),
  itemId: z.string(),
  expiresAt: z.string(),
  hasPassword: z.boolean(),
  maxDownloads: z.number().int().nullable(),
  maxBytes: z.number().int().nullable(),
  downloads: z.number().int(),
  bytesServed: z.number().int(),
  revoked: z.boolean(),
  createdAt: z.string(),
});
export const CreatedShareOut = ShareOut.extend({ token: z.string(), url: z.string() });
export const SharesQuery = z.object({ itemId: Uuid });
export const SharesOut = z.object({ items: z.array(ShareOut) });
export const ShareTokenParams = z.object({ token: z.string().min(1).max(200) });
export const ShareQuery = z.object({
  /** redirect (default): 302 to the file; json: the signed URL; info: name and size, nothing spent. */
  format: z.enum(['redirect', 'json', 'info']).optional(),
});
export const SharedFileOut = z.object({
  file: z.object({ id: z.string(), name: z.string(), size: z.number().int() }),
  url: z.string().optional(),
  expiresAt: z.string().optional(),
});
export const WebAssetParams = z.object({
  file: z.string().regex(/^[a-z0-9-]+\.(js|css|js\.map|css\.map)$/, 'a dashboard file name'),
});
export const ShareItemParams = z.object({ token: z.string().min(1).max(200), itemId: Uuid });
export const PublicItemOut = z.object({
  id: z.string(),
  name: z.string(),
  type: z.enum(['file', 'folder']),
  size: z.number().int().optional(),
  modifiedAt: z.string(),
});
export const PublicFolderOut = z.object({
  folder: z.object({ id: z.string(), name: z.string() }),
  items: z.array(PublicItemOut),
});
export const DeepHealthOut = z.object({
  status: z.enum(['ok', 'degraded']),
  checks: z.record(z.string(), z.object({ ok: z.boolean(), latencyMs: z.number() })),
});
export const AdminUsageOut = z.object({
  totalBytes: z.number().int(),
  users: z.array(
    z.object({
      userId: z.string(),
      email: z.string(),
      usedBytes: z.number().int(),
      quotaBytes: z.number().int(),
    }),
  ),
  nodes: z.array(z.object({ nodeId: z.string(), bytes: z.number().int(), versions: z.number().int() })),
});

const NodeId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'lower-case letters, digits and dashes');
export const AddNodeBody = z.discriminatedUnion('kind', [
  z.object({
    id: NodeId,
    kind: z.literal('localfs'),
    path: z.string().min(1).max(1024),
    region: z.string().max(64).optional(),
    weight: z.number().min(0).max(100).optional(),
  }),
  z.object({
    id: NodeId,
    kind: z.literal('s3'),
    bucket: z.string().min(3).max(63),
    region: z.string().min(1).max(64),
    endpoint: z.url().optional(),
    weight: z.number().min(0).max(100).optional(),
  }),
]);
export const NodeParams = z.object({ id: NodeId });
export const NodeOut = z.object({
  id: z.string(),
  kind: z.enum(['s3', 'localfs']),
  region: z.string().optional(),
  state: z.enum(['active', 'draining', 'drained']),
  health: z.enum(['healthy', 'degraded', 'down']),
  latencyMs: z.number().nullable(),
  lastCheck: z.string().nullable(),
  replicas: z.number().int(),
});
export const NodesOut = z.object({ replicationFactor: z.number().int(), items: z.array(NodeOut) });
export const ReconcileOut = z.object({
  pass: z.enum(['full', 'incremental', 'busy']),
  complete: z.boolean(),
  resumedAfter: z.string().optional(),
  versions: z.number().int(),
  contended: z.number().int(),
  belowReplicationFactor: z.number().int(),
  statChecks: z.number().int(),
  listRequests: z.number().int(),
  missing: z.number().int(),
  corrupt: z.number().int(),
  planned: z.number().int(),
  retried: z.number().int(),
  replicated: z.number().int(),
  moved: z.number().int(),
  orphansDeleted: z.number().int(),
  orphanSweep: z.enum(['idle', 'done', 'continues']),
  partition: z.string().optional(),
  partitions: z.number().int().optional(),
  expiredSessions: z.number().int(),
  leftoversRemoved: z.number().int(),
});
export const ReplicationOut = z.object({
  versions: z.number().int(),
  belowReplicationFactor: z.number().int(),
  pending: z.number().int(),
  failed: z.number().int(),
});
