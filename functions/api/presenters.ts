/** Domain objects to wire shapes. */
import type { Item, Version } from '../../shared/adapters/postgres/item-repository.ts';
import type { User } from '../../shared/adapters/postgres/user-repository.ts';

export const userOut = (u: User) => ({
  id: u.id,
  email: u.email,
  role: u.role,
  rootFolderId: u.rootFolderId,
});

export const itemOut = (i: Item) => ({
  id: i.id,
  name: i.name,
  type: i.kind,
  parentId: i.parentId,
  ...(i.kind === 'file' ? { size: i.size, contentType: i.contentType ?? 'application/octet-stream' } : {}),
  revision: i.revision,
  createdAt: i.createdAt.toISOString(),
  modifiedAt: i.updatedAt.toISOString(),
});

export const fileOut = (i: Item, v: Version) => ({ ...itemOut(i), versionId: v.id, sha256: v.sha256 });

/** A strong ETag naming the item's revision, for If-Match. */
export const etagOf = (i: Item) => `"${i.id}:${i.revision}"`;
