/**
 * Sharing with accounts: grants on an item (inherited down the tree), invitations of addresses that
 * have no account yet, their revocation, and the items shared with the principal. Each change
 * commits with its audit record.
 */

import { randomUUID } from 'node:crypto';
import { errors } from '../domain/errors.ts';
import type { GrantRole, Item, Principal } from '../domain/model.ts';
import type { Database } from '../ports/database.ts';
import type { AuditLog, PermissionStore, UserStore } from '../ports/metadata.ts';
import type { AccessControl } from './access-control.ts';

/** A grant or an invitation, as the API shows either (the same shape: no account oracle). */
export interface Sharing {
  id: string;
  itemId: string;
  email: string;
  role: GrantRole;
  createdAt: Date;
}

/** How long an invitation to an address without an account waits for it to register. */
export const DEFAULT_INVITATION_TTL_SECONDS = 30 * 86_400;

export class PermissionService {
  private readonly db: Database;
  private readonly invitationTtlSeconds: number;
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
    invitationTtlSeconds?: number;
  }) {
    this.db = deps.db;
    this.invitationTtlSeconds = deps.invitationTtlSeconds ?? DEFAULT_INVITATION_TTL_SECONDS;
    this.users = deps.users;
    this.permissions = deps.permissions;
    this.audit = deps.audit;
    this.access = deps.access;
  }

  /**
   * Shares the item with the account that holds `email`, or, when none does, invites the address:
   * the invitation becomes a grant when the address registers (`acceptInvitations`). Both answer
   * the same shape, and both commit one row and its audit record, so the answer says nothing about
   * whether the address has an account.
   */
  async grant(p: Principal, itemId: string, email: string, role: GrantRole): Promise<Sharing> {
    const { item } = await this.access.require(p, itemId, 'manage');
    const grantee = await this.users.byEmail(email);
    if (grantee?.id === item.ownerId)
      throw errors.validation('the owner already has every right on the item');
    return this.db.transaction(async (tx) => {
      if (!grantee) {
        const invitation = await this.permissions.with(tx).invite({
          id: randomUUID(),
          itemId: item.id,
          ownerId: item.ownerId,
          email,
          role,
          grantedBy: p.userId,
          expiresAt: new Date(Date.now() + this.invitationTtlSeconds * 1000),
        });
        await this.audit.with(tx).record({
          actorId: p.userId,
          ownerId: item.ownerId,
          itemId: item.id,
          action: 'permission.invite',
          detail: { invitationId: invitation.id, role },
        });
        return { id: invitation.id, itemId: item.id, email, role, createdAt: invitation.createdAt };
      }
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
      return { id: g.id, itemId: item.id, email: grantee.email, role: g.role, createdAt: g.createdAt };
    });
  }

  /**
   * A new account takes the invitations to its address that have not expired: each becomes a grant
   * (on an item that still exists), in one transaction with its audit record.
   */
  async acceptInvitations(user: { id: string; email: string }): Promise<number> {
    return this.db.transaction(async (tx) => {
      let accepted = 0;
      for (const inv of await this.permissions.with(tx).takeInvitations(user.email)) {
        if (inv.ownerId === user.id) continue;
        await this.permissions.with(tx).upsert({
          id: randomUUID(),
          itemId: inv.itemId,
          ownerId: inv.ownerId,
          granteeId: user.id,
          role: inv.role,
          grantedBy: inv.grantedBy,
        });
        await this.audit.with(tx).record({
          actorId: inv.grantedBy,
          ownerId: inv.ownerId,
          itemId: inv.itemId,
          action: 'permission.grant',
          detail: { granteeId: user.id, role: inv.role, invitationId: inv.id },
        });
        accepted++;
      }
      return accepted;
    });
  }

  async revoke(p: Principal, grantId: string) {
    const grant = await this.permissions.get(grantId);
    if (!grant) return this.revokeInvitation(p, grantId);
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

  /** An invitation withdrawn by whoever may manage the item; answered like a grant's revocation. */
  private async revokeInvitation(p: Principal, id: string) {
    const inv = await this.permissions.getInvitation(id);
    if (!inv) throw errors.notFound('permission');
    await this.access.require(p, inv.itemId, 'manage', 'permission').catch(() => {
      throw errors.notFound('permission');
    });
    await this.db.transaction(async (tx) => {
      await this.permissions.with(tx).deleteInvitation(inv.id);
      await this.audit.with(tx).record({
        actorId: p.userId,
        ownerId: inv.ownerId,
        itemId: inv.itemId,
        action: 'permission.revoke',
        detail: { invitationId: inv.id },
      });
    });
  }

  /** Who the item is shared with: grants and live invitations alike, oldest first. */
  async listGrants(p: Principal, itemId: string): Promise<Sharing[]> {
    const { item } = await this.access.require(p, itemId, 'manage');
    const grants = await this.permissions.forItem(item.id);
    const out: Sharing[] = [];
    for (const g of grants) {
      const user = await this.users.get(g.granteeId);
      if (user)
        out.push({ id: g.id, itemId: g.itemId, email: user.email, role: g.role, createdAt: g.createdAt });
    }
    for (const i of await this.permissions.invitationsFor(item.id))
      out.push({ id: i.id, itemId: i.itemId, email: i.email, role: i.role, createdAt: i.createdAt });
    return out.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
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
