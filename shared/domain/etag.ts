/**
 * Entity tags for items: `"<id>:<revision>"`. Every mutation bumps the revision, so If-Match with
 * an old tag names a stale base.
 */
import { errors } from './errors.ts';

export const etagFor = (item: { id: string; revision: number }) => `"${item.id}:${item.revision}"`;

/** The revision an If-Match header names for this item; throws 400 when it is not one of our tags. */
export function revisionFromIfMatch(header: string | undefined, itemId: string): number | undefined {
  if (header === undefined) return undefined;
  const m = /^(?:W\/)?"([0-9a-f-]{36}):(\d{1,9})"$/.exec(header.trim());
  if (!m)
    throw errors.validation('If-Match must be an ETag this API issued', [
      { path: 'header.if-match', message: 'not an ETag of ours' },
    ]);
  // A tag of another item can never match this one: treat it as a stale base.
  return m[1] === itemId ? Number(m[2]) : -1;
}
