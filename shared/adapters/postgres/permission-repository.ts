/** Grants of `viewer` or `editor` on an item to another user; they apply to the item's subtree. */
import type { Grant, Invitation } from '../../domain/model.ts';
import type { SqlExecutor } from '../../ports/database.ts';
import type { PermissionStore } from '../../ports/metadata.ts';

interface Row {
  id: string;
  item_id: string;
  owner_id: string;
  grantee_id: string;
  role: string;
  granted_by: string;
  created_at: Date | string;
}

const toGrant = (r: Row): Grant => ({
  id: r.id,
  itemId: r.item_id,
  ownerId: r.owner_id,
  granteeId: r.grantee_id,
  role: r.role === 'editor' ? 'editor' : 'viewer',
  grantedBy: r.granted_by,
  createdAt: r.created_at instanceof Date ? r.created_at : new Date(r.created_at),
});

interface InvitationRow {
  id: string;
  item_id: string;
  owner_id: string;
  email: string;
  role: string;
  granted_by: string;
  created_at: Date | string;
  expires_at: Date | string;
}

const dateOf = (v: Date | string) => (v instanceof Date ? v : new Date(v));

const toInvitation = (r: InvitationRow): Invitation => ({
  id: r.id,
  itemId: r.item_id,
  ownerId: r.owner_id,
  email: r.email,
  role: r.role === 'editor' ? 'editor' : 'viewer',
  grantedBy: r.granted_by,
  createdAt: dateOf(r.created_at),
  expiresAt: dateOf(r.expires_at),
});

export class PermissionRepository implements PermissionStore {
  private readonly q: SqlExecutor;

  constructor(q: SqlExecutor) {
    this.q = q;
  }

  with(tx: SqlExecutor): PermissionRepository {
    return new PermissionRepository(tx);
  }

  /** Grants to `granteeId` on any of `itemIds` (an item and its ancestors). */
  async grantsOn(granteeId: string, itemIds: readonly string[]): Promise<Grant[]> {
    if (itemIds.length === 0) return [];
    const rows = await this.q.query<Row>(
      'select * from permissions where grantee_id = $1 and item_id = any($2::uuid[])',
      [granteeId, itemIds as unknown as string],
    );
    return rows.map(toGrant);
  }

  /** Inserts or changes the role of a grant. */
  async upsert(g: Omit<Grant, 'createdAt'>): Promise<Grant> {
    const rows = await this.q.query<Row>(
      `insert into permissions (id, item_id, owner_id, grantee_id, role, granted_by) values ($1, $2, $3, $4, $5, $6)
       on conflict (item_id, grantee_id) do update set role = excluded.role, granted_by = excluded.granted_by
       returning *`,
      [g.id, g.itemId, g.ownerId, g.granteeId, g.role, g.grantedBy],
    );
    return toGrant(rows[0] as Row);
  }

  async get(id: string): Promise<Grant | undefined> {
    const rows = await this.q.query<Row>('select * from permissions where id = $1', [id]);
    return rows[0] ? toGrant(rows[0]) : undefined;
  }

  async forItem(itemId: string): Promise<Grant[]> {
    const rows = await this.q.query<Row>('select * from permissions where item_id = $1 order by created_at', [
      itemId,
    ]);
    return rows.map(toGrant);
  }

  async forGrantee(granteeId: string, limit: number): Promise<Grant[]> {
    const rows = await this.q.query<Row>(
      'select * from permissions where grantee_id = $1 order by created_at desc limit $2',
      [granteeId, limit],
    );
    return rows.map(toGrant);
  }

  async delete(id: string): Promise<void> {
    await this.q.query('delete from permissions where id = $1', [id]);
  }

  async deleteForItems(itemIds: readonly string[]): Promise<void> {
    if (!itemIds.length) return;
    await this.q.query('delete from permissions where item_id = any($1::uuid[])', [
      itemIds as unknown as string,
    ]);
    await this.q.query('delete from invitations where item_id = any($1::uuid[])', [
      itemIds as unknown as string,
    ]);
  }

  async invite(i: Omit<Invitation, 'createdAt'>): Promise<Invitation> {
    const rows = await this.q.query<InvitationRow>(
      `insert into invitations (id, item_id, owner_id, email, role, granted_by, expires_at)
       values ($1, $2, $3, $4, $5, $6, $7)
       on conflict (item_id, email) do update
         set role = excluded.role, granted_by = excluded.granted_by, expires_at = excluded.expires_at
       returning *`,
      [i.id, i.itemId, i.ownerId, i.email, i.role, i.grantedBy, i.expiresAt.toISOString()],
    );
    return toInvitation(rows[0] as InvitationRow);
  }

  async getInvitation(id: string): Promise<Invitation | undefined> {
    const rows = await this.q.query<InvitationRow>('select * from invitations where id = $1', [id]);
    return rows[0] ? toInvitation(rows[0]) : undefined;
  }

  async invitationsFor(itemId: string): Promise<Invitation[]> {
    const rows = await this.q.query<InvitationRow>(
      'select * from invitations where item_id = $1 and expires_at > now() order by created_at, id',
      [itemId],
    );
    return rows.map(toInvitation);
  }

  async deleteInvitation(id: string): Promise<void> {
    await this.q.query('delete from invitations where id = $1', [id]);
  }

  async takeInvitations(email: string): Promise<Invitation[]> {
    const rows = await this.q.query<InvitationRow>('delete from invitations where email = $1 returning *', [
      email,
    ]);
    const now = Date.now();
    return rows
      .map(toInvitation)
      .filter((i) => i.expiresAt.getTime() > now)
      .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.id.localeCompare(b.id));
  }
}
