/** Users in the system of record. A user row and its root folder are created together. */

import { randomUUID } from 'node:crypto';
import type { User } from '../../domain/model.ts';
import type { Database, SqlExecutor } from '../../ports/database.ts';
import type { UserStore } from '../../ports/metadata.ts';

interface Row {
  id: string;
  email: string;
  role: string;
  root_folder_id: string;
  quota_bytes: number | string;
  used_bytes: number | string;
  keep_versions?: number | null;
  keep_days?: number | null;
  trash_days?: number | null;
}

const toUser = (r: Row): User => ({
  id: r.id,
  email: r.email,
  role: r.role === 'admin' ? 'admin' : 'user',
  rootFolderId: r.root_folder_id,
  quotaBytes: Number(r.quota_bytes),
  usedBytes: Number(r.used_bytes),
  keepVersions: r.keep_versions ?? null,
  keepDays: r.keep_days ?? null,
  trashDays: r.trash_days ?? null,
});

export class UserRepository implements UserStore {
  private readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  async get(id: string): Promise<User | undefined> {
    const rows = await this.db.query<Row>('select * from users where id = $1', [id]);
    return rows[0] ? toUser(rows[0]) : undefined;
  }

  async byEmail(email: string): Promise<User | undefined> {
    const rows = await this.db.query<Row>('select * from users where email_key = $1', [
      email.trim().toLowerCase(),
    ]);
    return rows[0] ? toUser(rows[0]) : undefined;
  }

  /** The user's current role (the system of record for authorization); undefined for no such user. */
  async roleOf(id: string): Promise<'admin' | 'user' | undefined> {
    const rows = await this.db.query<{ role: string }>('select role from users where id = $1', [id]);
    return rows[0] ? (rows[0].role === 'admin' ? 'admin' : 'user') : undefined;
  }

  /**
   * Changes a user's role and/or quota. A change that would leave no admin is refused
   * (`last-admin`): the admin rows are locked first (`for update`: PostgreSQL serializes on the
   * locks, DSQL turns a concurrent demotion into a retried 40001), so two admins demoting each
   * other at once cannot both succeed.
   */
  async update(
    id: string,
    patch: { role?: 'admin' | 'user'; quotaBytes?: number },
  ): Promise<{ user: User; previous: User } | 'not-found' | 'last-admin'> {
    return this.db.transaction(async (tx) => {
      const admins = await tx.query<{ id: string }>("select id from users where role = 'admin' for update");
      const rows = await tx.query<Row>('select * from users where id = $1 for update', [id]);
      if (!rows[0]) return 'not-found' as const;
      const previous = toUser(rows[0]);
      if (patch.role === 'user' && previous.role === 'admin' && admins.every((a) => a.id === id))
        return 'last-admin' as const;
      const updated = await tx.query<Row>(
        `update users set role = coalesce($2, role), quota_bytes = coalesce($3, quota_bytes)
         where id = $1 returning *`,
        [id, patch.role ?? null, patch.quotaBytes ?? null],
      );
      return { user: toUser(updated[0] as Row), previous };
    });
  }

  /** Sets the user's retention policy (in `q`'s transaction when given). */
  async setRetention(
    id: string,
    policy: { keepVersions: number | null; keepDays: number | null; trashDays: number },
    q: SqlExecutor = this.db,
  ): Promise<void> {
    await q.query('update users set keep_versions = $2, keep_days = $3, trash_days = $4 where id = $1', [
      id,
      policy.keepVersions,
      policy.keepDays,
      policy.trashDays,
    ]);
  }

  /** Users by stored bytes, most first (admin usage). */
  async byUsage(limit: number): Promise<User[]> {
    const rows = await this.db.query<Row>('select * from users order by used_bytes desc, id limit $1', [
      limit,
    ]);
    return rows.map(toUser);
  }

  /** Creates the user and root folder unless they exist (idempotent: safe on every login). */
  async ensure(input: {
    id: string;
    email: string;
    role: 'admin' | 'user';
    quotaBytes: number;
  }): Promise<User> {
    const existing = await this.get(input.id);
    if (existing) return existing;
    const rootId = randomUUID();
    await this.db.transaction(async (tx) => {
      const inserted = await tx.query(
        `insert into users (id, email, email_key, role, root_folder_id, quota_bytes)
         values ($1, $2, $3, $4, $5, $6) on conflict (id) do nothing returning id`,
        [input.id, input.email, input.email.toLowerCase(), input.role, rootId, input.quotaBytes],
      );
      if (inserted.length === 0) return;
      await tx.query(
        `insert into items (id, owner_id, parent_id, kind, name, name_key) values ($1, $2, null, 'folder', '', null)`,
        [rootId, input.id],
      );
    });
    const user = await this.get(input.id);
    if (!user) throw new Error('user vanished after creation');
    return user;
  }
}
