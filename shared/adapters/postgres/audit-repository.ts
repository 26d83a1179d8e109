/** The audit trail: who did what to which item, written in the same transaction as the change. */

import { randomUUID } from 'node:crypto';
import type { AuditEvent } from '../../domain/model.ts';
import type { SqlExecutor } from '../../ports/database.ts';
import type { AuditLog } from '../../ports/metadata.ts';

interface Row {
  id: string;
  at: Date | string;
  actor_id: string | null;
  owner_id: string | null;
  item_id: string | null;
  action: string;
  detail: string;
}

const toEvent = (r: Row): AuditEvent => ({
  id: r.id,
  at: r.at instanceof Date ? r.at : new Date(r.at),
  actorId: r.actor_id,
  ownerId: r.owner_id,
  itemId: r.item_id,
  action: r.action,
  detail: JSON.parse(r.detail) as Record<string, unknown>,
});

export class AuditRepository implements AuditLog {
  private readonly q: SqlExecutor;

  constructor(q: SqlExecutor) {
    this.q = q;
  }

  with(tx: SqlExecutor): AuditRepository {
    return new AuditRepository(tx);
  }

  async record(e: {
    actorId: string | null;
    ownerId: string | null;
    itemId: string | null;
    action: string;
    detail?: Record<string, unknown>;
  }) {
    await this.q.query(
      'insert into audit_events (id, actor_id, owner_id, item_id, action, detail) values ($1, $2, $3, $4, $5, $6)',
      [randomUUID(), e.actorId, e.ownerId, e.itemId, e.action, JSON.stringify(e.detail ?? {})],
    );
  }

  /** Newest first; `ownerId` undefined means every owner (admins). */
  async list(
    filter: { ownerId?: string; itemId?: string; action?: string; before?: { at: string; id: string } },
    limit: number,
  ) {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (filter.ownerId) {
      params.push(filter.ownerId);
      where.push(`owner_id = $${params.length}`);
    }
    if (filter.itemId) {
      params.push(filter.itemId);
      where.push(`item_id = $${params.length}`);
    }
    if (filter.action) {
      params.push(filter.action);
      where.push(`action = $${params.length}`);
    }
    if (filter.before) {
      params.push(filter.before.at, filter.before.id);
      where.push(`(at, id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
    }
    params.push(limit);
    const rows = await this.q.query<Row & { at_text: string }>(
      `select *, at::text as at_text from audit_events ${where.length ? `where ${where.join(' and ')}` : ''}
       order by at desc, id desc limit $${params.length}`,
      params,
    );
    return rows.map((r) => ({ event: toEvent(r), cursor: { at: r.at_text, id: r.id } }));
  }
}
