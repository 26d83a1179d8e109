/** The account's own view: its usage against the quota, and the audit trail of what was done. */

import { errors } from '../domain/errors.ts';
import type { Principal } from '../domain/model.ts';
import type { AuditLog, ReservationStore, UserStore } from '../ports/metadata.ts';
import type { AccessControl } from './access-control.ts';
import { decodeAuditCursor, encodeAuditCursor } from './cursors.ts';

export class AccountService {
  private readonly users: UserStore;
  private readonly reservations: ReservationStore;
  private readonly audit: AuditLog;
  private readonly access: AccessControl;

  constructor(deps: {
    users: UserStore;
    reservations: ReservationStore;
    audit: AuditLog;
    access: AccessControl;
  }) {
    this.users = deps.users;
    this.reservations = deps.reservations;
    this.audit = deps.audit;
    this.access = deps.access;
  }

  async usage(p: Principal) {
    const user = await this.users.get(p.userId);
    if (!user) throw errors.unauthorized();
    // Bytes of open uploads are inside the quota from the moment each upload is created.
    const reservedBytes = await this.reservations.reservedBytes(user.id);
    return { usedBytes: user.usedBytes, reservedBytes, quotaBytes: user.quotaBytes };
  }

  async auditTrail(
    p: Principal,
    filter: { itemId?: string; action?: string; cursor?: string; limit: number },
  ) {
    if (filter.itemId) await this.access.require(p, filter.itemId, 'manage');
    const before = filter.cursor === undefined ? undefined : decodeAuditCursor(filter.cursor);
    const rows = await this.audit.list(
      {
        ...(p.role === 'admin' ? {} : { ownerId: p.userId }),
        ...(filter.itemId ? { itemId: filter.itemId } : {}),
        ...(filter.action ? { action: filter.action } : {}),
        ...(before ? { before } : {}),
      },
      filter.limit + 1,
    );
    const shown = rows.slice(0, filter.limit);
    const last = shown[shown.length - 1];
    return {
      items: shown.map((r) => r.event),
      nextCursor: rows.length > filter.limit && last ? encodeAuditCursor(last.cursor) : null,
    };
  }
}
