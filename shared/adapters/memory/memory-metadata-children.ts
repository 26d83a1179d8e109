/**
 * Folder pages of the in-memory ItemStore: live children in the keyset orders of
 * shared/adapters/postgres/item-repository.ts `listChildren`, and the Item rows hand out.
 */
import type { ChildCursor, ChildSort, Item } from '../../domain/model.ts';
import type { ItemRow, Tables } from './memory-metadata-state.ts';
import {
  bigintText,
  compareNumber,
  compareText,
  compareUuid,
  dateOf,
  dateOrNull,
  limitOf,
  timestampOf,
  timestampText,
  uuid,
} from './memory-metadata-values.ts';
import { scanState } from './memory-metadata-versions.ts';

/** A copy of the row as the port's Item: Dates fresh, nothing shared with the store. */
export const toItem = (r: ItemRow): Item => ({
  id: r.id,
  ownerId: r.ownerId,
  parentId: r.parentId,
  kind: r.kind,
  name: r.name,
  contentType: r.contentType,
  size: r.size,
  currentVersionId: r.currentVersionId,
  revision: r.revision,
  createdAt: dateOf(r.createdAt),
  updatedAt: dateOf(r.updatedAt),
  deletedAt: dateOrNull(r.deletedAt),
  originalParentId: r.originalParentId,
  scanState: scanState(r.scanState),
});

/** The sort column of a folder page: name_key, size or updated_at. */
const KEY: Record<ChildSort['by'], (r: ItemRow) => string | number | null> = {
  name: (r) => r.nameKey,
  size: (r) => r.size,
  modified: (r) => r.updatedAt,
};

const compareKeys = (by: ChildSort['by'], a: string | number, b: string | number) =>
  by === 'name' ? compareText(String(a), String(b)) : compareNumber(Number(a), Number(b));

/** A row's key against the cursor's value, cast as the SQL casts it (`$3::text|bigint|timestamptz`). */
function againstCursor(by: ChildSort['by'], value: string): (k: string | number) => number {
  if (by === 'name') return (k) => compareText(String(k), value);
  if (by === 'size') {
    const v = bigintText(value);
    return (k) => {
      const b = BigInt(k);
      return b < v ? -1 : b > v ? 1 : 0;
    };
  }
  const v = timestampOf(value);
  return (k) => compareNumber(Number(k), v);
}

/**
 * `where parent_id = $1 and deleted_at is null and (col, id) > ($3, $4) order by col, id`, with
 * col name_key, size or updated_at and the cursor's value cast to its type; `<` and `desc` for
 * descending. The cursor value is `col::text`.
 */
export function listChildren(
  t: Tables,
  parentId: string,
  sort: ChildSort,
  after: ChildCursor | undefined,
  limit: number,
): { item: Item; cursor: ChildCursor }[] {
  const p = uuid(parentId);
  const n = limitOf(limit);
  const key = KEY[sort.by];
  const sign = sort.dir === 'desc' ? -1 : 1;
  let rows = [...t.items.values()].filter((r) => r.parentId === p && r.deletedAt === null);
  if (after) {
    const cmp = againstCursor(sort.by, after.value);
    const id = uuid(after.id);
    rows = rows.filter((r) => {
      const k = key(r);
      if (k === null) return false; // a row comparison with a NULL is not true
      return sign * (cmp(k) || compareUuid(r.id, id)) > 0;
    });
  }
  // NULLs sort as larger than any value: last ascending, first descending.
  const order = (a: ItemRow, b: ItemRow) => {
    const ka = key(a);
    const kb = key(b);
    const byKey =
      ka === null || kb === null ? (ka === kb ? 0 : ka === null ? 1 : -1) : compareKeys(sort.by, ka, kb);
    return sign * (byKey || compareUuid(a.id, b.id));
  };
  return rows
    .sort(order)
    .slice(0, n)
    .map((r) => {
      const k = key(r);
      // `col::text`: NULL stays NULL, as the SQL adapter hands it on.
      const value = k === null ? null : sort.by === 'modified' ? timestampText(Number(k)) : String(k);
      return { item: toItem(r), cursor: { value: value as string, id: r.id } };
    });
}
