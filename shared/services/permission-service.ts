/**
 * Sharing with accounts: grants on an item (inherited down the tree), their revocation, and the
 * items shared with the principal. Each change commits with its audit record.
 */

import { randomUUID } from 'node:crypto';
import { errors } from '../domain/errors.ts';
import type { GrantRole, Item, Principal } from '../domain/model.ts';
import type { Database } from '../ports/database.ts';
import type { AuditLog, PermissionStore, UserStore } from '../ports/metadata.ts';
import type { AccessControl } from './access-control.ts';

export class PermissionService {
  private readonly db: Database;
  private readonly users: UserStore;
  private readonly permissions: PermissionStore;
  private readonly audit: AuditLog;
  private readonly access: AccessControl;

  constructor(deps: {
    db: Database;
    users: UserStore;
    permissions: PermissionStore;
    audit: AuditLog;
    access: AccessControl;
  }) {
    this.db = deps.db;
    this.users = deps.users;
    this.permissions = deps.permissions;
    this.audit = deps.audit;
    this.access = deps.access;
  }

  async grant(p: Principal, itemId: string, email: string, role: GrantRole) {
    const { item } = await this.access.require(p, itemId, 'manage');
    const grantee = await this.users.byEmail(email);
    if (!grantee) throw errors.notFound('user');
    if (grantee.id === item.ownerId) throw errors.validation('the owner already has every right on the item');
    const grant = await this.db.transaction(async (tx) => {
      const g = await this.permissions.with(tx).upsert({
        id: randomUUID(),
        itemId: item.id,
        ownerId: item.ownerId,
        granteeId: grantee.id,
        role,
        grantedBy: p.userId,
      });
      await this.audit.with(tx).record({
        actorId: p.userId,
        ownerId: item.ownerId,
        itemId: item.id,
        action: 'permission.grant',
        detail: { granteeId: grantee.id, role },
      });
      return g;
    });
    return { grant, email: grantee.email };
  }

  async revoke(p: Principal, grantId: string) {
    const grant = await this.permissions.get(grantId);
    if (!grant) throw errors.notFound('permission');
    // The owner, an admin, or the grantee leaving the share.
    if (grant.granteeId !== p.userId)
      await this.access.require(p, grant.itemId, 'manage', 'permission').catch(() => {
        throw errors.notFound('permission');
      });
    await this.db.transaction(async (tx) => {
      await this.permissions.with(tx).delete(grant.id);
      await this.audit.with(tx).record({
        actorId: p.userId,
        ownerId: grant.ownerId,
        itemId: grant.itemId,
        action: 'permission.revoke',
        detail: { granteeId: grant.granteeId },
      });
    });
  }

  async listGrants(p: Principal, itemId: string) {
    const { item } = await this.access.require(p, itemId, 'manage');
    return this.permissions.forItem(item.id);
  }

  /** Items shared with the principal that are still live. */
  async sharedWithMe(p: Principal) {
    const grants = await this.permissions.forGrantee(p.userId, 500);
    const out: { item: Item; role: GrantRole }[] = [];
    for (const g of grants) {
      const access = await this.access.resolve(p, g.itemId);
      if (access) out.push({ item: access.item, role: g.role });
    }
    return out;
  }
}
