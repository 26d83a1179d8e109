/** Files, folders and versions in the system of record. */
import type { SqlExecutor } from '../../ports/database.ts';

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
}

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
}

interface ItemRow {
  id: string;
  owner_id: string;
  parent_id: string | null;
  kind: string;
  name: string;
  name_key: string | null;
  content_type: string | null;
  size: number | string;
  current_version_id: string | null;
  revision: number;
  created_at: Date | string;
  updated_at: Date | string;
  deleted_at: Date | string | null;
}

interface VersionRow {
  id: string;
  file_id: string;
  node_id: string;
  blob_key: string;
  size: number | string;
  sha256: string;
  content_type: string;
  created_by: string;
  created_at: Date | string;
}

const date = (v: Date | string) => (v instanceof Date ? v : new Date(v));

export const toItem = (r: ItemRow): Item => ({
  id: r.id,
  ownerId: r.owner_id,
  parentId: r.parent_id,
  kind: r.kind === 'folder' ? 'folder' : 'file',
  name: r.name,
  contentType: r.content_type,
  size: Number(r.size),
  currentVersionId: r.current_version_id,
  revision: Number(r.revision),
  createdAt: date(r.created_at),
  updatedAt: date(r.updated_at),
  deletedAt: r.deleted_at === null ? null : date(r.deleted_at),
});

const toVersion = (r: VersionRow): Version => ({
  id: r.id,
  fileId: r.file_id,
  nodeId: r.node_id,
  blobKey: r.blob_key,
  size: Number(r.size),
  sha256: r.sha256,
  contentType: r.content_type,
  createdBy: r.created_by,
  createdAt: date(r.created_at),
});

export class ItemRepository {
  private readonly q: SqlExecutor;

  constructor(q: SqlExecutor) {
    this.q = q;
  }

  /** The same repository bound to a transaction. */
  with(tx: SqlExecutor): ItemRepository {
    return new ItemRepository(tx);
  }

  async get(id: string): Promise<Item | undefined> {
    const rows = await this.q.query<ItemRow>('select * from items where id = $1', [id]);
    return rows[0] ? toItem(rows[0]) : undefined;
  }

  async findLiveChild(parentId: string, nameKey: string): Promise<Item | undefined> {
    const rows = await this.q.query<ItemRow>('select * from items where parent_id = $1 and name_key = $2', [
      parentId,
      nameKey,
    ]);
    return rows[0] ? toItem(rows[0]) : undefined;
  }

  async insertFolder(input: {
    id: string;
    ownerId: string;
    parentId: string;
    name: string;
    nameKey: string;
  }) {
    const rows = await this.q.query<ItemRow>(
      `insert into items (id, owner_id, parent_id, kind, name, name_key) values ($1, $2, $3, 'folder', $4, $5) returning *`,
      [input.id, input.ownerId, input.parentId, input.name, input.nameKey],
    );
    return toItem(rows[0] as ItemRow);
  }

  async insertFile(input: {
    id: string;
    ownerId: string;
    parentId: string;
    name: string;
    nameKey: string;
    contentType: string;
    size: number;
    versionId: string;
  }) {
    const rows = await this.q.query<ItemRow>(
      `insert into items (id, owner_id, parent_id, kind, name, name_key, content_type, size, current_version_id)
       values ($1, $2, $3, 'file', $4, $5, $6, $7, $8) returning *`,
      [
        input.id,
        input.ownerId,
        input.parentId,
        input.name,
        input.nameKey,
        input.contentType,
        input.size,
        input.versionId,
      ],
    );
    return toItem(rows[0] as ItemRow);
  }

  async setCurrentVersion(fileId: string, v: { versionId: string; size: number; contentType: string }) {
    const rows = await this.q.query<ItemRow>(
      `update items set current_version_id = $2, size = $3, content_type = $4, revision = revision + 1, updated_at = now()
       where id = $1 returning *`,
      [fileId, v.versionId, v.size, v.contentType],
    );
    return toItem(rows[0] as ItemRow);
  }

  async insertVersion(v: Omit<Version, 'createdAt'>): Promise<Version> {
    const rows = await this.q.query<VersionRow>(
      `insert into versions (id, file_id, node_id, blob_key, size, sha256, content_type, created_by)
       values ($1, $2, $3, $4, $5, $6, $7, $8) returning *`,
      [v.id, v.fileId, v.nodeId, v.blobKey, v.size, v.sha256, v.contentType, v.createdBy],
    );
    return toVersion(rows[0] as VersionRow);
  }

  async getVersion(id: string): Promise<Version | undefined> {
    const rows = await this.q.query<VersionRow>('select * from versions where id = $1', [id]);
    return rows[0] ? toVersion(rows[0]) : undefined;
  }

  /** Live children in name order, after the keyset cursor (nameKey, id). */
  async listChildren(parentId: string, after: { nameKey: string; id: string } | undefined, limit: number) {
    const rows = after
      ? await this.q.query<ItemRow>(
          `select * from items where parent_id = $1 and name_key is not null and (name_key, id) > ($2, $3)
           order by name_key, id limit $4`,
          [parentId, after.nameKey, after.id, limit],
        )
      : await this.q.query<ItemRow>(
          'select * from items where parent_id = $1 and name_key is not null order by name_key, id limit $2',
          [parentId, limit],
        );
    return rows.map((r) => ({ item: toItem(r), nameKey: r.name_key as string }));
  }

  async addUsage(userId: string, delta: number) {
    await this.q.query('update users set used_bytes = used_bytes + $2 where id = $1', [userId, delta]);
  }
}
