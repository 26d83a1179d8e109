/**
 * Entity tags for items: `"<id>:<revision>"`. Every mutation bumps the revision, so If-Match with
 * an old tag names a stale base.
 */
import { errors } from './errors.ts';

export const etagFor = (item: { id: string; revision: number }) => `"${item.id}:${item.revision}"`;

/**
 * What an If-Match header asks for: absent (`undefined`), any current version (`'*'`), or the
 * revision the change is based on. RFC 9110 §13.1.1: the header is `*` or a list of entity tags
 * compared strongly, so a weak tag, a tag of another item or one this API never issued matches
 * nothing: that is a stale base (409 with the current state), not a malformed request. Only a
 * header that is not entity-tag syntax at all is refused with 400.
 */
export type BaseRevision = number | '*' | undefined;

/** A revision no item ever has: the base named by a tag that cannot match. */
export const NO_MATCH = -1;

const ENTITY_TAG = /^\s*(W\/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*$/;

export function revisionFromIfMatch(header: string | undefined, itemId: string): BaseRevision {
  if (header === undefined) return undefined;
  if (header.trim() === '*') return '*';
  let best = NO_MATCH;
  let tags = 0;
  for (const element of header.split(',')) {
    if (element.trim() === '') continue; // the list rule allows empty elements
    const m = ENTITY_TAG.exec(element);
    if (!m)
      throw errors.validation('If-Match must be "*" or a list of entity tags', [
        { path: 'header.if-match', message: 'not an entity tag' },
      ]);
    tags++;
    const [, weak, opaque = ''] = m;
    const ours = /^([0-9a-f-]{36}):(\d{1,9})$/.exec(opaque);
    if (!weak && ours && ours[1] === itemId.toLowerCase()) best = Math.max(best, Number(ours[2]));
  }
  if (tags === 0)
    throw errors.validation('If-Match must be "*" or a list of entity tags', [
      { path: 'header.if-match', message: 'empty' },
    ]);
  return best;
}

/** The revision to check against: `*` is satisfied by whatever revision the item has now. */
export const baseFor = (base: BaseRevision, current: number): number | undefined =>
  base === '*' ? current : base;
