/**
 * Opaque page cursors: what the last row of a page said about its place, as base64url JSON. The
 * API hands them out and takes them back; a cursor it did not issue is a validation error naming
 * `query.cursor`, before anything reaches a store.
 *
 * Parsing is strict rather than signed (no secret reaches the services today): a cursor is taken
 * back only in exactly the form this module writes, canonical base64url of UTF-8 JSON with exactly
 * the expected fields in the expected order, and every field is checked as the database will cast
 * it: ids are canonical lower-case UUIDs, sizes decimal safe integers >= 0, times valid
 * `timestamptz::text` (ISO, as PostgreSQL and the memory adapter write it), names well-formed text
 * without control characters. A cursor names the sort it was made for; another sort is refused.
 * So a crafted cursor can neither make a cast fail in SQL (a 500) nor mint cache keys for pages
 * that differ only in spelling.
 */

import { errors } from '../domain/errors.ts';
import type { ChildCursor, ChildSort } from '../domain/model.ts';

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** What the audit trail's cursor holds: the last event's time (`at::text`) and id. */
export interface AuditCursor {
  at: string;
  id: string;
}

const MAX_CURSOR_CHARS = 1024;
const MAX_NAME_CHARS = 1024;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SIZE = /^(0|[1-9][0-9]{0,15})$/;
/** `timestamptz::text` with DateStyle ISO: `2026-01-02 03:04:05.123456+00`, offsets as `+05:30`. */
const TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?[+-](\d{2})(?::(\d{2})(?::(\d{2}))?)?$/;
const SORTS: readonly ChildSort['by'][] = ['name', 'size', 'modified'];
const DIRS: readonly ChildSort['dir'][] = ['asc', 'desc'];

const invalid = (message: string, why: string) =>
  errors.validation(message, [{ path: 'query.cursor', message: why }]);
const notOurs = (why: string) => invalid('invalid cursor', why);

const encode = (v: Record<string, string>) => Buffer.from(JSON.stringify(v), 'utf8').toString('base64url');

/** The JSON object inside a cursor, with exactly `keys` (in that order) and no other. */
function unwrap(raw: unknown, keys: readonly string[]): Record<string, unknown> {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > MAX_CURSOR_CHARS || !BASE64URL.test(raw))
    throw notOurs('not a cursor this API issued');
  const bytes = Buffer.from(raw, 'base64url');
  // Node's decoder skips stray characters and ignores trailing bits; only the canonical spelling.
  if (bytes.toString('base64url') !== raw) throw notOurs('not a cursor this API issued');
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw notOurs('not a cursor this API issued');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw notOurs('not a cursor this API issued');
  const got = Object.keys(v);
  if (got.length !== keys.length || got.some((k, i) => k !== keys[i]))
    throw notOurs('not a cursor this API issued');
  return v as Record<string, unknown>;
}

export const isUuid = (v: unknown): v is string => typeof v === 'string' && UUID.test(v);

/** A size as the database writes `size::text`: decimal, no sign, no padding, a safe integer. */
export const isSizeText = (v: unknown): v is string =>
  typeof v === 'string' && SIZE.test(v) && Number.isSafeInteger(Number(v));

/** A `timestamptz::text` (ISO DateStyle) naming a real instant: no 30 February, no hour 24. */
export function isTimestampText(v: unknown): v is string {
  const m = typeof v === 'string' ? TIMESTAMP.exec(v) : null;
  if (!m) return false;
  const at = (i: number) => Number(m[i] ?? 0);
  const [y, mo, d, h, mi, s, oh, om, os] = [at(1), at(2), at(3), at(4), at(5), at(6), at(8), at(9), at(10)];
  if (!y || !mo || mo > 12 || !d || h > 23 || mi > 59 || s > 59) return false;
  if (oh > 15 || om > 59 || os > 59) return false;
  // The day exists in that month (a Date rolls 30 February over to March).
  const day = new Date(0);
  day.setUTCFullYear(y, mo - 1, d);
  return day.getUTCMonth() === mo - 1 && day.getUTCDate() === d;
}

/** A name key as a position in the name order: well-formed text, no NUL or other control character. */
export function isNameText(v: unknown): v is string {
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_NAME_CHARS) return false;
  for (let i = 0; i < v.length; i++) {
    const u = v.charCodeAt(i);
    if (u <= 0x1f || (u >= 0x7f && u <= 0x9f)) return false;
    if (u >= 0xd800 && u <= 0xdbff) {
      const next = v.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false; // a lone high surrogate
      i++;
    } else if (u >= 0xdc00 && u <= 0xdfff) return false; // a lone low surrogate
  }
  return true;
}

const VALUE_OK: Record<ChildSort['by'], (v: unknown) => v is string> = {
  name: isNameText,
  size: isSizeText,
  modified: isTimestampText,
};

/** The next-page cursor of a folder listing: the last row's sort value and id, and the sort. */
export const encodeChildCursor = (last: ChildCursor, sort: ChildSort) =>
  encode({ value: last.value, id: last.id, by: sort.by, dir: sort.dir });

/** Takes back a folder listing's cursor for a request sorted by `sort`; throws a 400 otherwise. */
export function decodeChildCursor(raw: string, sort: ChildSort): ChildCursor {
  const v = unwrap(raw, ['value', 'id', 'by', 'dir']);
  if (!SORTS.includes(v.by as ChildSort['by']) || !DIRS.includes(v.dir as ChildSort['dir']))
    throw notOurs('not a cursor this API issued');
  if (v.by !== sort.by || v.dir !== sort.dir)
    throw invalid('the cursor belongs to another sort order', 'sort changed');
  if (!isUuid(v.id)) throw notOurs('the cursor names no valid id');
  if (!VALUE_OK[sort.by](v.value)) throw notOurs(`the cursor holds no valid ${sort.by}`);
  const cursor = { value: v.value, id: v.id };
  if (encodeChildCursor(cursor, sort) !== raw) throw notOurs('not a cursor this API issued');
  return cursor;
}

/** The next-page cursor of the audit trail. */
export const encodeAuditCursor = (last: AuditCursor) => encode({ at: last.at, id: last.id });

/** Takes back an audit-trail cursor; throws a 400 otherwise. */
export function decodeAuditCursor(raw: string): AuditCursor {
  const v = unwrap(raw, ['at', 'id']);
  if (!isUuid(v.id)) throw notOurs('the cursor names no valid id');
  if (!isTimestampText(v.at)) throw notOurs('the cursor holds no valid time');
  const cursor = { at: v.at, id: v.id };
  if (encodeAuditCursor(cursor) !== raw) throw notOurs('not a cursor this API issued');
  return cursor;
}
