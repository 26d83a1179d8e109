/**
 * Trees of folders, files, versions and grants written straight through the metadata ports (no
 * uploads), for the purge-job suites: the unit suite on the memory adapters, the integration suite
 * on PostgreSQL. A tree's shape is deterministic, so two trees built alike purge alike.
 */
import { randomUUID } from 'node:crypto';
import { PurgeJobRepository } from '../../shared/adapters/postgres/purge-job-repository.ts';
import type { Principal } from '../../shared/domain/model.ts';
import type { Database } from '../../shared/ports/database.ts';
import type { AuditLog, ItemStore, PermissionStore, UserStore } from '../../shared/ports/metadata.ts';
import type { PurgeJobStore } from '../../shared/ports/purge-job-store.ts';
import { sqlMetadataPorts } from './metadata-backends.ts';

export interface TreePorts {
  db: Database;
  items: ItemStore;
  users: UserStore;
  permissions: PermissionStore;
  audit: AuditLog;
  purgeJobs: PurgeJobStore;
}

/** The PostgreSQL repositories over one database, the purge jobs' with them. */
export const sqlTreePorts = (db: Database): TreePorts => ({
  ...sqlMetadataPorts(db),
  purgeJobs: new PurgeJobRepository(db),
});

export interface TreeShape {
  /** Subfolders per folder, level by level (`[40]`: forty folders under the root of the tree). */
  fanout: number[];
  /** Files in each folder of the deepest level (and one in every folder above it). */
  files: number;
  /** Every n-th file gets two more versions. */
  extraVersionsEvery?: number;
  /** Every n-th item gets a grant to `grantee`. */
  grantEvery?: number;
  grantee?: string;
}

export interface BuiltTree {
  rootId: string;
  /** Every item of the tree, the root first. */
  items: string[];
  versions: { id: string; fileId: string; size: number; blobKey: string }[];
  bytes: number;
  grants: number;
}

export async function makeUser(
  p: Pick<TreePorts, 'users'>,
  email: string,
  role: 'user' | 'admin' = 'user',
): Promise<Principal & { rootFolderId: string }> {
  const u = await p.users.ensure({ id: randomUUID(), email, role, quotaBytes: 1024 ** 4 });
  return {
    userId: u.id,
    role,
    tokenId: randomUUID(),
    expiresAt: 9_999_999_999,
    rootFolderId: u.rootFolderId,
  };
}

/** Builds the tree under `parentId`, one transaction per folder, and charges its bytes to the owner. */
export async function buildTree(
  p: TreePorts,
  ownerId: string,
  parentId: string,
  name: string,
  shape: TreeShape,
): Promise<BuiltTree> {
  const built: BuiltTree = { rootId: '', items: [], versions: [], bytes: 0, grants: 0 };
  let fileNo = 0;
  let itemNo = 0;
  const grant = async (items: PermissionStore, itemId: string) => {
    if (!shape.grantEvery || !shape.grantee || itemNo++ % shape.grantEvery !== 0) return;
    await items.upsert({
      id: randomUUID(),
      itemId,
      ownerId,
      granteeId: shape.grantee,
      role: 'viewer',
      grantedBy: ownerId,
    });
    built.grants++;
  };
  const folder = async (parent: string, folderName: string, level: number): Promise<string> => {
    const id = randomUUID();
    const leaf = level >= shape.fanout.length;
    await p.db.transaction(async (tx) => {
      const items = p.items.with(tx);
      const grants = p.permissions.with(tx);
      await items.insertFolder({
        id,
        ownerId,
        parentId: parent,
        name: folderName,
        nameKey: folderName.toLowerCase(),
      });
      built.items.push(id);
      await grant(grants, id);
      const files = leaf ? shape.files : 1;
      for (let f = 0; f < files; f++) {
        const fileId = randomUUID();
        const n = fileNo++;
        const extra = shape.extraVersionsEvery && n % shape.extraVersionsEvery === 0 ? 2 : 0;
        const versionIds = Array.from({ length: 1 + extra }, () => randomUUID());
        const size = 100 + (n % 37);
        const fileName = `f${f}.bin`;
        await items.insertFile({
          id: fileId,
          ownerId,
          parentId: id,
          name: fileName,
          nameKey: fileName,
          contentType: 'application/octet-stream',
          size,
          versionId: versionIds[versionIds.length - 1] as string,
          scanState: 'clean',
        });
        built.items.push(fileId);
        await grant(grants, fileId);
        for (const versionId of versionIds) {
          const blobKey = `blobs/${versionId}`;
          await items.insertVersion({
            id: versionId,
            fileId,
            nodeId: 'n1',
            blobKey,
            size,
            sha256: 'a'.repeat(64),
            contentType: 'application/octet-stream',
            createdBy: ownerId,
            contentHash: null,
            partSize: null,
            partHashes: null,
            scanState: 'clean',
          });
          built.versions.push({ id: versionId, fileId, size, blobKey });
          built.bytes += size;
        }
      }
    });
    if (!leaf)
      for (let i = 0; i < (shape.fanout[level] ?? 0); i++) await folder(id, `d${level}-${i}`, level + 1);
    return id;
  };
  built.rootId = await folder(parentId, name, 0);
  await p.items.addUsage(ownerId, built.bytes);
  return built;
}

/** Rows a purge of the tree deletes and counts: items and versions. */
export const rowsOf = (t: BuiltTree) => t.items.length + t.versions.length;
