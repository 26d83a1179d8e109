/**
 * The in-memory PermissionStore, ShareStore, AuditLog and ReservationStore, with the semantics of
 * their PostgreSQL repositories in shared/adapters/postgres (the SQL is the reference).
 */
import { randomUUID } from 'node:crypto';
import { UniqueViolationError } from '../../domain/errors.ts';
import type { AuditEvent, Grant, Invitation, ShareLink } from '../../domain/model.ts';
import type { SqlExecutor } from '../../ports/database.ts';
import type {
  AuditLog,
  PermissionStore,
  ReservationStore,
  ReserveResult,
  ShareStore,
} from '../../ports/metadata.ts';
import {
  type AuditRow,
  type GrantRow,
  type InvitationRow,
  type LinkRow,
  MemoryStore,
} from './memory-metadata-state.ts';
import {
  compareNumber,
  compareUuid,
  dateOf,
  dateOrNull,
  int4OrNull,
  int8,
  int8OrNull,
  limitOf,
  micros,
  timestampOf,
  timestampText,
  uuid,
  uuidOrNull,
} from './memory-metadata-values.ts';

const toGrant = (r: GrantRow): Grant => ({
  id: r.id,
  itemId: r.itemId,
  ownerId: r.ownerId,
  granteeId: r.granteeId,
  role: r.role === 'editor' ? 'editor' : 'viewer',
  grantedBy: r.grantedBy,
  createdAt: dateOf(r.createdAt),
});

const toInvitation = (r: InvitationRow): Invitation => ({
  id: r.id,
  itemId: r.itemId,
  ownerId: r.ownerId,
  email: r.email,
  role: r.role === 'editor' ? 'editor' : 'viewer',
  grantedBy: r.grantedBy,
  createdAt: dateOf(r.createdAt),
  expiresAt: dateOf(r.expiresAt),
});

/** `order by created_at, id`. */
const byCreation = (a: InvitationRow, b: InvitationRow) =>
  compareNumber(a.createdAt, b.createdAt) || compareUuid(a.id, b.id);

export class MemoryPermissionStore extends MemoryStore implements PermissionStore {
  with(tx: SqlExecutor): MemoryPermissionStore {
    return new MemoryPermissionStore(this.db, this.db.txOf(tx));
  }

  grantsOn(granteeId: string, itemIds: readonly string[]) {
    return this.run((t) => {
      if (itemIds.length === 0) return [];
      const grantee = uuid(granteeId);
      const ids = new Set(itemIds.map(uuid));
      return [...t.permissions.values()]
        .filter((g) => g.granteeId === grantee && ids.has(g.itemId))
        .map(toGrant);
    });
  }

  /** `on conflict (item_id, grantee_id) do update set role, granted_by`: the existing row keeps its id. */
  upsert(g: Omit<Grant, 'createdAt'>) {
    return this.run((t, now) => {
      const row: GrantRow = {
        id: uuid(g.id),
        itemId: uuid(g.itemId),
        ownerId: uuid(g.ownerId),
        granteeId: uuid(g.granteeId),
        role: g.role,
        grantedBy: uuid(g.grantedBy),
        createdAt: now,
      };
      for (const existing of t.permissions.values())
        if (existing.itemId === row.itemId && existing.granteeId === row.granteeId) {
          existing.role = row.role;
          existing.grantedBy = row.grantedBy;
          return toGrant(existing);
        }
      if (t.permissions.has(row.id)) throw new UniqueViolationError('permissions_pkey');
      t.permissions.set(row.id, row);
      return toGrant(row);
    });
  }

  get(id: string) {
    return this.run((t) => {
      const r = t.permissions.get(uuid(id));
      return r ? toGrant(r) : undefined;
    });
  }

  /** `order by created_at`. */
  forItem(itemId: string) {
    return this.run((t) => {
      const item = uuid(itemId);
      return [...t.permissions.values()]
        .filter((g) => g.itemId === item)
        .sort((a, b) => compareNumber(a.createdAt, b.createdAt))
        .map(toGrant);
    });
  }

  /** `order by created_at desc limit $2`. */
  forGrantee(granteeId: string, limit: number) {
    return this.run((t) => {
      const grantee = uuid(granteeId);
      return [...t.permissions.values()]
        .filter((g) => g.granteeId === grantee)
        .sort((a, b) => compareNumber(b.createdAt, a.createdAt))
        .slice(0, limitOf(limit))
        .map(toGrant);
    });
  }

  async delete(id: string): Promise<void> {
    await this.run((t) => t.permissions.delete(uuid(id)));
  }

  async deleteForItems(itemIds: readonly string[]): Promise<void> {
    await this.run((t) => {
      const ids = new Set(itemIds.map(uuid));
      for (const [id, g] of t.permissions) if (ids.has(g.itemId)) t.permissions.delete(id);
      for (const [id, i] of t.invitations) if (ids.has(i.itemId)) t.invitations.delete(id);
    });
  }

  /** `on conflict (item_id, email) do update set role, granted_by, expires_at`: the row keeps its id. */
  invite(i: Omit<Invitation, 'createdAt'>) {
    return this.run((t, now) => {
      const row: InvitationRow = {
        id: uuid(i.id),
        itemId: uuid(i.itemId),
        ownerId: uuid(i.ownerId),
        email: i.email,
        role: i.role,
        grantedBy: uuid(i.grantedBy),
        createdAt: now,
        expiresAt: micros(i.expiresAt),
      };
      for (const existing of t.invitations.values())
        if (existing.itemId === row.itemId && existing.email === row.email) {
          existing.role = row.role;
          existing.grantedBy = row.grantedBy;
          existing.expiresAt = row.expiresAt;
          return toInvitation(existing);
        }
      if (t.invitations.has(row.id)) throw new UniqueViolationError('invitations_pkey');
      t.invitations.set(row.id, row);
      return toInvitation(row);
    });
  }

  getInvitation(id: string) {
    return this.run((t) => {
      const r = t.invitations.get(uuid(id));
      return r ? toInvitation(r) : undefined;
    });
  }

  /** `where item_id = $1 and expires_at > now() order by created_at, id`. */
  invitationsFor(itemId: string) {
    return this.run((t, now) => {
      const item = uuid(itemId);
      return [...t.invitations.values()]
        .filter((i) => i.itemId === item && i.expiresAt > now)
        .sort(byCreation)
        .map(toInvitation);
    });
  }

  async deleteInvitation(id: string): Promise<void> {
    await this.run((t) => t.invitations.delete(uuid(id)));
  }

  /** `delete from invitations where email = $1 returning *`, the live ones oldest first. */
  takeInvitations(email: string) {
    return this.run((t, now) => {
      const taken = [...t.invitations.values()].filter((i) => i.email === email);
      for (const i of taken) t.invitations.delete(i.id);
      return taken
        .filter((i) => i.expiresAt > now)
        .sort(byCreation)
        .map(toInvitation);
    });
  }
}

const toLink = (r: LinkRow): ShareLink => ({
  id: r.id,
  tokenHash: r.tokenHash,
  itemId: r.itemId,
  ownerId: r.ownerId,
  createdBy: r.createdBy,
  createdAt: dateOf(r.createdAt),
  expiresAt: dateOf(r.expiresAt),
  passwordHash: r.passwordHash,
  maxDownloads: r.maxDownloads,
  maxBytes: r.maxBytes,
  downloads: r.downloads,
  bytesServed: r.bytesServed,
  revokedAt: dateOrNull(r.revokedAt),
});

export class MemoryShareStore extends MemoryStore implements ShareStore {
  with(tx: SqlExecutor): MemoryShareStore {
    return new MemoryShareStore(this.db, this.db.txOf(tx));
  }

  insert(l: Omit<ShareLink, 'createdAt' | 'downloads' | 'bytesServed' | 'revokedAt'>) {
    return this.run((t, now) => {
      const row: LinkRow = {
        id: uuid(l.id),
        tokenHash: l.tokenHash,
        itemId: uuid(l.itemId),
        ownerId: uuid(l.ownerId),
        createdBy: uuid(l.createdBy),
        createdAt: now,
        expiresAt: micros(l.expiresAt),
        passwordHash: l.passwordHash ?? null,
        maxDownloads: int4OrNull(l.maxDownloads),
        maxBytes: int8OrNull(l.maxBytes),
        downloads: 0,
        bytesServed: 0,
        revokedAt: null,
      };
      if (t.shareLinks.has(row.id)) throw new UniqueViolationError('share_links_pkey');
      for (const other of t.shareLinks.values())
        if (other.tokenHash === row.tokenHash) throw new UniqueViolationError('share_links_token_unique');
      t.shareLinks.set(row.id, row);
      return toLink(row);
    });
  }

  byTokenHash(hash: string) {
    return this.run((t) => {
      for (const r of t.shareLinks.values()) if (r.tokenHash === hash) return toLink(r);
      return undefined;
    });
  }

  get(id: string) {
    return this.run((t) => {
      const r = t.shareLinks.get(uuid(id));
      return r ? toLink(r) : undefined;
    });
  }

  /** `order by created_at desc`. */
  forItem(itemId: string) {
    return this.run((t) => {
      const item = uuid(itemId);
      return [...t.shareLinks.values()]
        .filter((r) => r.itemId === item)
        .sort((a, b) => compareNumber(b.createdAt, a.createdAt))
        .map(toLink);
    });
  }

  /** `set revoked_at = now() where id = $1 and revoked_at is null`: the first revocation's time stays. */
  async revoke(id: string): Promise<void> {
    await this.run((t, now) => {
      const r = t.shareLinks.get(uuid(id));
      if (r && r.revokedAt === null) r.revokedAt = now;
    });
  }

  spend(id: string, bytes: number) {
    return this.run((t, now) => {
      const b = int8(bytes);
      const r = t.shareLinks.get(uuid(id));
      if (!r || r.revokedAt !== null || !(r.expiresAt > now)) return undefined;
      if (r.maxDownloads !== null && !(r.downloads < r.maxDownloads)) return undefined;
      if (r.maxBytes !== null && !(r.bytesServed + b <= r.maxBytes)) return undefined;
      r.downloads += 1;
      r.bytesServed += b;
      return toLink(r);
    });
  }
}

const toEvent = (r: AuditRow): AuditEvent => ({
  id: r.id,
  at: dateOf(r.at),
  actorId: r.actorId,
  ownerId: r.ownerId,
  itemId: r.itemId,
  action: r.action,
  detail: JSON.parse(r.detail) as Record<string, unknown>,
});

export class MemoryAuditLog extends MemoryStore implements AuditLog {
  with(tx: SqlExecutor): MemoryAuditLog {
    return new MemoryAuditLog(this.db, this.db.txOf(tx));
  }

  async record(e: {
    actorId: string | null;
    ownerId: string | null;
    itemId: string | null;
    action: string;
    detail?: Record<string, unknown>;
  }): Promise<void> {
    await this.run((t, now) => {
      const row: AuditRow = {
        id: randomUUID(),
        at: now,
        actorId: uuidOrNull(e.actorId),
        ownerId: uuidOrNull(e.ownerId),
        itemId: uuidOrNull(e.itemId),
        action: e.action,
        detail: JSON.stringify(e.detail ?? {}),
      };
      t.auditEvents.set(row.id, row);
    });
  }

  /** Filters apply when truthy (an empty string filters nothing); `(at, id) < before`, `order by at desc, id desc`. */
  list(
    filter: { ownerId?: string; itemId?: string; action?: string; before?: { at: string; id: string } },
    limit: number,
  ) {
    return this.run((t) => {
      const owner = filter.ownerId ? uuid(filter.ownerId) : undefined;
      const item = filter.itemId ? uuid(filter.itemId) : undefined;
      const before = filter.before
        ? { at: timestampOf(filter.before.at), id: uuid(filter.before.id) }
        : undefined;
      const n = limitOf(limit);
      return [...t.auditEvents.values()]
        .filter(
          (r) =>
            (owner === undefined || r.ownerId === owner) &&
            (item === undefined || r.itemId === item) &&
            (!filter.action || r.action === filter.action) &&
            (before === undefined || (compareNumber(r.at, before.at) || compareUuid(r.id, before.id)) < 0),
        )
        .sort((a, b) => compareNumber(b.at, a.at) || compareUuid(b.id, a.id))
        .slice(0, n)
        .map((r) => ({ event: toEvent(r), cursor: { at: timestampText(r.at), id: r.id } }));
    });
  }
}

export class MemoryReservationStore extends MemoryStore implements ReservationStore {
  with(tx: SqlExecutor): MemoryReservationStore {
    return new MemoryReservationStore(this.db, this.db.txOf(tx));
  }

  /**
   * As the SQL: no owner is 'quota'; the owner's lapsed reservations are dropped (even when the
   * reservation is then refused); used + held + size must fit the quota; then the creator's open
   * reservations (every owner's) must be fewer than `maxOpen`.
   */
  reserve(input: {
    uploadId: string;
    ownerId: string;
    createdBy: string;
    size: number;
    blobKey: string;
    expiresAt: Date;
    maxOpen: number;
  }): Promise<ReserveResult> {
    return this.run((t, now) => {
      const ownerId = uuid(input.ownerId);
      const owner = t.users.get(ownerId);
      if (!owner) return 'quota';
      for (const [id, r] of t.reservations)
        if (r.ownerId === ownerId && r.expiresAt <= now) t.reservations.delete(id);
      let held = 0;
      for (const r of t.reservations.values()) if (r.ownerId === ownerId && r.expiresAt > now) held += r.size;
      if (owner.usedBytes + held + input.size > owner.quotaBytes) return 'quota';
      const createdBy = uuid(input.createdBy);
      let open = 0;
      for (const r of t.reservations.values()) if (r.createdBy === createdBy && r.expiresAt > now) open++;
      if (open >= input.maxOpen) return 'too-many-open';
      const row = {
        uploadId: uuid(input.uploadId),
        ownerId,
        createdBy,
        size: int8(input.size),
        blobKey: input.blobKey,
        expiresAt: micros(input.expiresAt),
      };
      if (t.reservations.has(row.uploadId)) throw new UniqueViolationError('upload_reservations_pkey');
      t.reservations.set(row.uploadId, row);
      return 'reserved';
    });
  }

  async release(uploadId: string): Promise<void> {
    await this.run((t) => t.reservations.delete(uuid(uploadId)));
  }

  async extend(uploadId: string, until: Date): Promise<void> {
    await this.run((t, now) => {
      const r = t.reservations.get(uuid(uploadId));
      const to = micros(until);
      if (r && r.expiresAt > now && r.expiresAt < to) r.expiresAt = to;
    });
  }

  heldByOpenUpload(blobKey: string) {
    return this.run((t, now) =>
      [...t.reservations.values()].some((r) => r.blobKey === blobKey && r.expiresAt > now),
    );
  }

  reservedBytes(ownerId: string) {
    return this.run((t, now) => {
      const owner = uuid(ownerId);
      let bytes = 0;
      for (const r of t.reservations.values()) if (r.ownerId === owner && r.expiresAt > now) bytes += r.size;
      return bytes;
    });
  }
}
