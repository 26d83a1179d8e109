/**
 * Opaque page cursors: what the last row of a page said about its place, as base64url JSON. The
 * API hands them out and takes them back; a cursor it did not issue is a validation error.
 */

import { errors } from '../domain/errors.ts';
import type { ChildCursor } from '../domain/model.ts';

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export const encodeCursor = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

export function decodeCursor<T>(raw: string, check: (v: unknown) => v is T): T {
  try {
    const v = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as unknown;
    if (check(v)) return v;
  } catch {
    // fall through
  }
  throw errors.validation('invalid cursor', [
    { path: 'query.cursor', message: 'not a cursor this API issued' },
  ]);
}

const UUID = /^[0-9a-f-]{36}$/;

/** A folder listing's cursor, with the sort order it belongs to. */
export const isChildCursor = (v: unknown): v is ChildCursor & { by: string; dir: string } =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as ChildCursor).value === 'string' &&
  UUID.test(String((v as ChildCursor).id));

/** The audit trail's cursor: the last event's time and id. */
export const isAuditCursor = (v: unknown): v is { at: string; id: string } =>
  typeof (v as { at?: unknown })?.at === 'string' && UUID.test(String((v as { id?: unknown }).id));
