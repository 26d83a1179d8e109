/**
 * The API's response bodies as TypeScript types, each the output type of its zod schema in
 * `schemas.ts`: the one statement of the wire contract. The presenters return these, the clients
 * (`clients/api.ts`, so the CLI and the dashboard) read them.
 *
 * Types only, on purpose: this module has no runtime import, so a client importing from it, even
 * without `import type`, bundles nothing of the server (not even zod). `verbatimModuleSyntax`
 * makes a value import from here a compile error.
 */
import type { z } from 'zod';
import type * as s from './schemas.ts';

export type TokenSet = z.output<typeof s.TokenSet>;
export type UserOut = z.output<typeof s.UserOut>;
export type AdminUserOut = z.output<typeof s.AdminUserOut>;

export type ScanState = z.output<typeof s.ScanState>;
export type ItemOut = z.output<typeof s.ItemOut>;
export type FileOut = z.output<typeof s.FileOut>;
export type ChildrenOut = z.output<typeof s.ChildrenOut>;

export type UploadState = z.output<typeof s.UploadState>;
export type PartUrl = z.output<typeof s.PartUrl>;
export type CreateUploadOut = z.output<typeof s.CreateUploadOut>;
export type UploadOut = z.output<typeof s.UploadOut>;
export type PartsOut = z.output<typeof s.PartsOut>;
export type CompleteOut = z.output<typeof s.CompleteOut>;
export type DownloadOut = z.output<typeof s.DownloadOut>;

export type VersionOut = z.output<typeof s.VersionOut>;
export type VersionsOut = z.output<typeof s.VersionsOut>;
export type RestoredVersionOut = z.output<typeof s.RestoredVersionOut>;
export type TrashItemOut = z.output<typeof s.TrashItemOut>;
export type TrashOut = z.output<typeof s.TrashOut>;
export type PurgeOut = z.output<typeof s.PurgeOut>;
export type JobOut = z.output<typeof s.JobOut>;

export type GrantRole = z.output<typeof s.GrantRole>;
export type PermissionOut = z.output<typeof s.PermissionOut>;
export type PermissionsOut = z.output<typeof s.PermissionsOut>;
export type SharedItemOut = z.output<typeof s.SharedItemOut>;
export type SharedOut = z.output<typeof s.SharedOut>;
export type UsageOut = z.output<typeof s.UsageOut>;
export type AuditEventOut = z.output<typeof s.AuditEventOut>;
export type AuditOut = z.output<typeof s.AuditOut>;
export type RetentionOut = z.output<typeof s.RetentionOut>;
export type SweepOut = z.output<typeof s.SweepOut>;

export type ShareOut = z.output<typeof s.ShareOut>;
export type CreatedShareOut = z.output<typeof s.CreatedShareOut>;
export type SharesOut = z.output<typeof s.SharesOut>;
export type SharedFileOut = z.output<typeof s.SharedFileOut>;
export type PublicItemOut = z.output<typeof s.PublicItemOut>;
export type PublicFolderOut = z.output<typeof s.PublicFolderOut>;

export type HealthOut = z.output<typeof s.HealthOut>;
export type DeepHealthOut = z.output<typeof s.DeepHealthOut>;
export type AdminUsageOut = z.output<typeof s.AdminUsageOut>;
export type NodeOut = z.output<typeof s.NodeOut>;
export type NodesOut = z.output<typeof s.NodesOut>;
export type ReconcileOut = z.output<typeof s.ReconcileOut>;
export type ReplicationOut = z.output<typeof s.ReplicationOut>;
