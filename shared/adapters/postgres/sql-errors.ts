import { errors, UniqueViolationError } from '../../domain/errors.ts';

interface PgLikeError {
  code?: string;
  constraint?: string;
}

/** Translate a driver error (pg or PGlite share the wire protocol's fields) into a domain error. */
export function translateSqlError(err: unknown): unknown {
  const e = err as PgLikeError | null;
  if (e && typeof e === 'object' && typeof e.code === 'string') {
    if (e.code === '23505') return new UniqueViolationError(e.constraint ?? 'unknown');
    // Connection-level failures: the store is unavailable rather than the request being wrong.
    if (e.code.startsWith('08') || e.code === '57P01' || e.code === '57P03')
      return errors.unavailable('database');
    // Out of connections (53300; Aurora DSQL also says 53400 when new connections come too fast),
    // or a write conflict that outlived the retries: busy, not broken, so say when to come back.
    if (e.code === '53300' || e.code === '53400' || isSerializationFailure(err))
      return errors.unavailable('database', 1);
  }
  const sys = err as { code?: string } | null;
  if (sys && (sys.code === 'ECONNREFUSED' || sys.code === 'ECONNRESET' || sys.code === 'ETIMEDOUT')) {
    return errors.unavailable('database');
  }
  return err;
}

/**
 * A conflict the client is expected to retry: SQLSTATE 40001 (PostgreSQL's serialization failure;
 * Aurora DSQL's optimistic-concurrency conflicts OC000 on data and OC001 on schema) or 40P01
 * (deadlock). The transaction was rolled back whole, so running it again is safe.
 */
export function isSerializationFailure(err: unknown): boolean {
  const code = (err as PgLikeError | null)?.code;
  return code === '40001' || code === '40P01';
}
