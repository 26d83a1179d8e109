/**
 * Quota reservations of open uploads. Creating an upload reserves its size against the owner's
 * quota, so bytes sitting in open sessions are inside the quota too; the commit turns the
 * reservation into usage in its transaction, an abort or a refused verification releases it, and
 * one that is never settled (an expired session, a crash) stops counting when the session would
 * have expired: nothing has to run for a lost reservation to heal.
 */

import type { SqlExecutor } from '../../ports/database.ts';
import type { ReservationStore, ReserveResult } from '../../ports/metadata.ts';

export class ReservationRepository implements ReservationStore {
  private readonly q: SqlExecutor;

  constructor(q: SqlExecutor) {
    this.q = q;
  }

  with(tx: SqlExecutor): ReservationRepository {
    return new ReservationRepository(tx);
  }

  /**
   * Reserves `size` bytes of the owner's quota for an upload; run inside a transaction. The owner's
   * row is locked first, so concurrent reservations against one quota take turns (on DSQL they
   * conflict at commit and are retried).
   */
  async reserve(input: {
    uploadId: string;
    ownerId: string;
    createdBy: string;
    size: number;
    blobKey: string;
    expiresAt: Date;
    maxOpen: number;
  }): Promise<ReserveResult> {
    const [owner] = await this.q.query<{ used_bytes: number | string; quota_bytes: number | string }>(
      'select used_bytes, quota_bytes from users where id = $1 for update',
      [input.ownerId],
    );
    if (!owner) return 'quota';
    // Lapsed reservations count for nothing; drop the owner's, so the table does not grow.
    await this.q.query('delete from upload_reservations where owner_id = $1 and expires_at <= now()', [
      input.ownerId,
    ]);
    const [held] = await this.q.query<{ bytes: number | string }>(
      'select coalesce(sum(size), 0)::bigint as bytes from upload_reservations where owner_id = $1 and expires_at > now()',
      [input.ownerId],
    );
    if (Number(owner.used_bytes) + Number(held?.bytes ?? 0) + input.size > Number(owner.quota_bytes))
      return 'quota';
    const [open] = await this.q.query<{ n: number | string }>(
      'select count(*)::int as n from upload_reservations where created_by = $1 and expires_at > now()',
      [input.createdBy],
    );
    if (Number(open?.n ?? 0) >= input.maxOpen) return 'too-many-open';
    await this.q.query(
      `insert into upload_reservations (upload_id, owner_id, created_by, size, blob_key, expires_at)
       values ($1, $2, $3, $4::bigint, $5, $6)`,
      [input.uploadId, input.ownerId, input.createdBy, input.size, input.blobKey, input.expiresAt],
    );
    return 'reserved';
  }

  /** Ends a reservation (commit, abort, refusal). Idempotent. */
  async release(uploadId: string): Promise<void> {
    await this.q.query('delete from upload_reservations where upload_id = $1', [uploadId]);
  }

  async extend(uploadId: string, until: Date): Promise<void> {
    await this.q.query(
      'update upload_reservations set expires_at = $2 where upload_id = $1 and expires_at < $2 and expires_at > now()',
      [uploadId, until],
    );
  }

  /** Whether an upload that is still open will write (or has written) this object. */
  async heldByOpenUpload(blobKey: string): Promise<boolean> {
    const rows = await this.q.query(
      'select 1 from upload_reservations where blob_key = $1 and expires_at > now() limit 1',
      [blobKey],
    );
    return rows.length > 0;
  }

  /** Bytes an owner has reserved in open uploads. */
  async reservedBytes(ownerId: string): Promise<number> {
    const [row] = await this.q.query<{ bytes: number | string }>(
      'select coalesce(sum(size), 0)::bigint as bytes from upload_reservations where owner_id = $1 and expires_at > now()',
      [ownerId],
    );
    return Number(row?.bytes ?? 0);
  }
}
