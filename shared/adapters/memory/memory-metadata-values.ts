/**
 * Values as the PostgreSQL schema checks and compares them, for the in-memory metadata adapters:
 * uuid, integer and timestamptz parameters (malformed ones refused with the server's SQLSTATE),
 * C-collation text order, and timestamps as integer microseconds with `timestamptz::text` output.
 */
import { UniqueViolationError } from '../../domain/errors.ts';

/** Microseconds since the epoch, as PostgreSQL keeps timestamptz. */
export type Micros = number;

// --- SQL-level errors -----------------------------------------------------------------------

/** An error PostgreSQL would raise (and the SQL adapters pass through untranslated), with its SQLSTATE. */
export class MemorySqlError extends Error {
  override readonly name = 'MemorySqlError';
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** Errors a statement raises; in a transaction they abort it, as on PostgreSQL. */
export const isStatementError = (err: unknown) =>
  err instanceof MemorySqlError || err instanceof UniqueViolationError;

export const NO_SQL = 'the memory database runs no SQL: use the memory stores (memory-metadata.ts)';

// --- Values, checked and compared as PostgreSQL does --------------------------------------

const UUID_BODY = /^[0-9a-f]{4}(?:-?[0-9a-f]{4}){7}$/i;

/** A uuid parameter in canonical form; PostgreSQL accepts braces, missing hyphens and upper case. */
export function uuid(v: string): string {
  const body = typeof v === 'string' && v.startsWith('{') && v.endsWith('}') ? v.slice(1, -1) : v;
  if (typeof body !== 'string' || !UUID_BODY.test(body))
    throw new MemorySqlError('22P02', `invalid input syntax for type uuid: "${String(v)}"`);
  const h = body.replaceAll('-', '').toLowerCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export const uuidOrNull = (v: string | null | undefined) => (v === null || v === undefined ? null : uuid(v));

const intOf = (v: number, type: 'integer' | 'bigint', max: number): number => {
  if (typeof v !== 'number' || !Number.isInteger(v))
    throw new MemorySqlError('22P02', `invalid input syntax for type ${type}: "${String(v)}"`);
  if (v > max || v < -max - 1)
    throw new MemorySqlError('22003', `value "${v}" is out of range for type ${type}`);
  return v;
};

/** A bigint parameter (sizes, quotas, byte counts). */
export const int8 = (v: number) => intOf(v, 'bigint', Number.MAX_SAFE_INTEGER);
/** An integer parameter (revisions, day counts, download budgets). */
export const int4 = (v: number) => intOf(v, 'integer', 2 ** 31 - 1);
export const int4OrNull = (v: number | null | undefined) => (v === null || v === undefined ? null : int4(v));
export const int8OrNull = (v: number | null | undefined) => (v === null || v === undefined ? null : int8(v));

/** A LIMIT: a non-negative integer. */
export function limitOf(n: number): number {
  int8(n);
  if (n < 0) throw new MemorySqlError('2201W', 'LIMIT must not be negative');
  return n;
}

/** A bigint given as text (a size cursor), compared exactly. */
export function bigintText(v: string): bigint {
  if (!/^\s*[+-]?\d+\s*$/.test(v))
    throw new MemorySqlError('22P02', `invalid input syntax for type bigint: "${v}"`);
  const n = BigInt(v.trim());
  if (n > 2n ** 63n - 1n || n < -(2n ** 63n))
    throw new MemorySqlError('22003', `value "${v}" is out of range for type bigint`);
  return n;
}

/**
 * Text order of the databases' collation (C / C.UTF-8): by code point, i.e. UTF-8 byte order.
 * JavaScript's `<` compares UTF-16 units and puts U+10000 and above before U+E000..U+FFFF.
 */
export function compareText(a: string, b: string): number {
  let i = 0;
  let j = 0;
  for (;;) {
    if (i >= a.length) return j >= b.length ? 0 : -1;
    if (j >= b.length) return 1;
    const ca = a.codePointAt(i) ?? 0;
    const cb = b.codePointAt(j) ?? 0;
    if (ca !== cb) return ca < cb ? -1 : 1;
    i += ca > 0xffff ? 2 : 1;
    j += cb > 0xffff ? 2 : 1;
  }
}

/** uuid order is byte order, which is the order of the canonical lower-case text. */
export const compareUuid = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export const compareNumber = (a: number, b: number) => (a < b ? -1 : a > b ? 1 : 0);

/** A Date parameter as microseconds. */
export const micros = (d: Date): Micros => {
  const ms = d instanceof Date ? d.getTime() : Number.NaN;
  if (Number.isNaN(ms))
    throw new MemorySqlError('22007', 'invalid input syntax for type timestamp with time zone');
  return ms * 1000;
};

/** A stored timestamp as the drivers return it: a Date, truncated to the millisecond. */
export const dateOf = (us: Micros): Date => new Date(Math.floor(us / 1000));
export const dateOrNull = (us: Micros | null): Date | null => (us === null ? null : dateOf(us));

/** `timestamptz::text` with TimeZone UTC and DateStyle ISO: `2024-05-01 10:00:00.12+00`. */
export function timestampText(us: Micros): string {
  const seconds = Math.floor(us / 1_000_000);
  const fraction = us - seconds * 1_000_000;
  const base = new Date(seconds * 1000).toISOString().slice(0, 19).replace('T', ' ');
  const frac = fraction === 0 ? '' : `.${String(fraction).padStart(6, '0').replace(/0+$/, '')}`;
  return `${base}${frac}+00`;
}

const TIMESTAMP =
  /^\s*(\d{4,})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?\s*(Z|[+-]\d{1,2}(?::?\d{2})?)?\s*$/i;

/** A timestamptz given as text (a cursor): ISO forms with up to microseconds; no zone means UTC. */
export function timestampOf(v: string): Micros {
  const m = typeof v === 'string' ? TIMESTAMP.exec(v) : null;
  if (!m) {
    const ms = typeof v === 'string' ? Date.parse(v) : Number.NaN;
    if (Number.isNaN(ms))
      throw new MemorySqlError(
        '22007',
        `invalid input syntax for type timestamp with time zone: "${String(v)}"`,
      );
    return ms * 1000;
  }
  const [, y, mo, d, h = '0', mi = '0', s = '0', f = '', zone] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  // Microseconds, rounded at the seventh digit as PostgreSQL does.
  const digits = `${f}0000000`;
  const frac = Number(digits.slice(0, 6)) + (Number(digits[6]) >= 5 ? 1 : 0);
  let offsetMinutes = 0;
  if (zone && zone.toUpperCase() !== 'Z') {
    const zm = /^([+-])(\d{1,2}):?(\d{2})?$/.exec(zone);
    offsetMinutes = (zm?.[1] === '-' ? -1 : 1) * (Number(zm?.[2] ?? 0) * 60 + Number(zm?.[3] ?? 0));
  }
  return (ms - offsetMinutes * 60_000) * 1000 + frac;
}

export const DAY_US = 86_400_000_000;
