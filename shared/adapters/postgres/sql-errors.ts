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
  }
  const sys = err as { code?: string } | null;
  if (sys && (sys.code === 'ECONNREFUSED' || sys.code === 'ECONNRESET' || sys.code === 'ETIMEDOUT')) {
    return errors.unavailable('database');
  }
  return err;
}
