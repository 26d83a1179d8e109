/**
 * The version half of the in-memory ItemStore (memory-metadata-items.ts delegates here): each
 * function is one statement over the tables, with the semantics of the version queries in
 * shared/adapters/postgres/item-repository.ts.
 */

import { shardOf, shardRange, VERSION_SHARDS } from '../../domain/counter-shards.ts';
import { UniqueViolationError } from '../../domain/errors.ts';
import type { ScanState, Version, VersionRef } from '../../domain/model.ts';
import type { Tables, VersionRow } from './memory-metadata-state.ts';
import {
  compareNumber,
  compareText,
  compareUuid,
  DAY_US,
  dateOf,
  int8,
  int8OrNull,
  limitOf,
  type Micros,
  micros,
  timestampOf,
  timestampText,
  uuid,
} from './memory-metadata-values.ts';

export const scanState = (v: string | null): ScanState | null =>
  v === 'scanning' || v === 'clean' || v === 'infected' ? v : null;

const toVersion = (r: VersionRow): Version => ({
  id: r.id,
  fileId: r.fileId,
  nodeId: r.nodeId,
  blobKey: r.blobKey,
  size: r.size,
  sha256: r.sha256,
  contentType: r.contentType,
  createdBy: r.createdBy,
  createdAt: dateOf(r.createdAt),
  contentHash: r.contentHash,
  partSize: r.partSize,
  partHashes: r.partHashes ? (JSON.parse(r.partHashes) as string[]) : null,
  scanState: scanState(r.scanState),
});

export function insertVersion(t: Tables, now: Micros, v: Omit<Version, 'createdAt'>): Version {
  const row: VersionRow = {
    id: uuid(v.id),
    fileId: uuid(v.fileId),
    nodeId: v.nodeId,
    blobKey: v.blobKey,
    size: int8(v.size),
    sha256: v.sha256,
    contentType: v.contentType,
    createdBy: uuid(v.createdBy),
    createdAt: now,
    contentHash: v.contentHash ?? null,
    partSize: int8OrNull(v.partSize),
    partHashes: v.partHashes ? JSON.stringify(v.partHashes) : null,
    scanState: v.scanState ?? null,
  };
  if (t.versions.has(row.id)) throw new UniqueViolationError('versions_pkey');
  t.versions.set(row.id, row);
  addToCounters(t, row, 1);
  return toVersion(row);
}

/** `insert into version_counters … on conflict do update set versions = versions + …, bytes = bytes + …`. */
function addToCounters(t: Tables, v: VersionRow, sign: 1 | -1): void {
  const shard = shardOf(v.id);
  const key = `${shard}\u0000${v.nodeId}`;
  const row = t.versionCounters.get(key) ?? { shard, nodeId: v.nodeId, versions: 0, bytes: 0 };
  row.versions += sign;
  row.bytes += sign * v.size;
  t.versionCounters.set(key, row);
}

/** `select node_id, sum(bytes), sum(versions) from version_counters group by node_id having sum(versions) <> 0`. */
export function countersByNode(t: Tables): { nodeId: string; bytes: number; versions: number }[] {
  const by = new Map<string, { nodeId: string; bytes: number; versions: number }>();
  for (const c of t.versionCounters.values()) {
    const n = by.get(c.nodeId) ?? { nodeId: c.nodeId, bytes: 0, versions: 0 };
    n.bytes += c.bytes;
    n.versions += c.versions;
    by.set(c.nodeId, n);
  }
  return [...by.values()].filter((n) => n.versions !== 0).sort((a, b) => compareText(a.nodeId, b.nodeId));
}

export const uncountedShards = (t: Tables): string[] => VERSION_SHARDS.filter((s) => !t.countedShards.has(s));

/**
 * The shard's counter rows set to what its versions add up to, the shard marked counted; returns
 * counters minus versions before. (One statement here: the mutex is the lock the SQL takes.)
 */
export function recountShard(t: Tables, now: Micros, shard: string): { versions: number; bytes: number } {
  const { first, last } = shardRange(shard);
  const exact = new Map<string, { versions: number; bytes: number }>();
  for (const v of t.versions.values())
    if (v.id >= first && v.id <= last) {
      const n = exact.get(v.nodeId) ?? { versions: 0, bytes: 0 };
      n.versions += 1;
      n.bytes += v.size;
      exact.set(v.nodeId, n);
    }
  const drift = { versions: 0, bytes: 0 };
  for (const nodeId of exact.keys())
    if (!t.versionCounters.has(`${shard}\u0000${nodeId}`))
      t.versionCounters.set(`${shard}\u0000${nodeId}`, { shard, nodeId, versions: 0, bytes: 0 });
  for (const row of t.versionCounters.values()) {
    if (row.shard !== shard) continue;
    const want = exact.get(row.nodeId) ?? { versions: 0, bytes: 0 };
    drift.versions += row.versions - want.versions;
    drift.bytes += row.bytes - want.bytes;
    row.versions = want.versions;
    row.bytes = want.bytes;
  }
  t.countedShards.set(shard, now);
  return drift;
}

/** On the version, and on every item whose current version it is (revision and updated_at stay). */
export function setScanState(t: Tables, versionId: string, state: ScanState): void {
  const id = uuid(versionId);
  const v = t.versions.get(id);
  if (v) v.scanState = state;
  for (const r of t.items.values()) if (r.currentVersionId === id) r.scanState = state;
}

/** `where scan_state = 'scanning' order by created_at limit $1`. */
export const versionsAwaitingScan = (t: Tables, limit: number): Version[] =>
  [...t.versions.values()]
    .filter((v) => v.scanState === 'scanning')
    .sort((a, b) => compareNumber(a.createdAt, b.createdAt))
    .slice(0, limitOf(limit))
    .map(toVersion);

export function getVersion(t: Tables, id: string): Version | undefined {
  const v = t.versions.get(uuid(id));
  return v ? toVersion(v) : undefined;
}

/** `order by created_at desc, id desc`. */
export function listVersions(t: Tables, fileId: string, limit: number): Version[] {
  const f = uuid(fileId);
  return [...t.versions.values()]
    .filter((v) => v.fileId === f)
    .sort((a, b) => compareNumber(b.createdAt, a.createdAt) || compareUuid(b.id, a.id))
    .slice(0, limitOf(limit))
    .map(toVersion);
}

/** No order, as the SQL gives none. */
export function versionsOfFiles(t: Tables, fileIds: readonly string[], limit: number): Version[] {
  if (fileIds.length === 0) return [];
  const ids = new Set(fileIds.map(uuid));
  const n = limitOf(limit);
  return [...t.versions.values()]
    .filter((v) => ids.has(v.fileId))
    .slice(0, n)
    .map(toVersion);
}

/** `where id > $1 [and id <= $3] order by id` (uuid order). */
export function versionsAfter(t: Tables, afterId: string, limit: number, upTo?: string): VersionRef[] {
  const after = uuid(afterId);
  const last = upTo === undefined ? undefined : uuid(upTo);
  return [...t.versions.values()]
    .filter((v) => compareUuid(v.id, after) > 0 && (last === undefined || compareUuid(v.id, last) <= 0))
    .sort((a, b) => compareUuid(a.id, b.id))
    .slice(0, limitOf(limit))
    .map((v) => ({ id: v.id, nodeId: v.nodeId, blobKey: v.blobKey, size: v.size, sha256: v.sha256 }));
}

/** `where created_at >= $since and (created_at, id) > $after order by created_at, id limit $n`. */
export function versionsCreatedSince(
  t: Tables,
  since: Date,
  after: { at: string; id: string } | undefined,
  limit: number,
  ids?: { after: string; upTo: string },
): (VersionRef & { at: string })[] {
  const from = micros(since);
  const lo = ids ? uuid(ids.after) : undefined;
  const hi = ids ? uuid(ids.upTo) : undefined;
  const afterAt = after ? timestampOf(after.at) : undefined;
  const afterId = after ? uuid(after.id) : undefined;
  return [...t.versions.values()]
    .filter(
      (v) =>
        v.createdAt >= from &&
        (lo === undefined || compareUuid(v.id, lo) > 0) &&
        (hi === undefined || compareUuid(v.id, hi) <= 0) &&
        (afterAt === undefined ||
          v.createdAt > afterAt ||
          (v.createdAt === afterAt && compareUuid(v.id, afterId as string) > 0)),
    )
    .sort((a, b) => compareNumber(a.createdAt, b.createdAt) || compareUuid(a.id, b.id))
    .slice(0, limitOf(limit))
    .map((v) => ({
      id: v.id,
      nodeId: v.nodeId,
      blobKey: v.blobKey,
      size: v.size,
      sha256: v.sha256,
      at: timestampText(v.createdAt),
    }));
}

/** The ids it deleted (`returning id`): ones already gone are not in it. */
export function deleteVersions(t: Tables, ids: readonly string[]): Set<string> {
  const deleted = new Set<string>();
  for (const id of ids.map(uuid)) {
    const row = t.versions.get(id);
    if (!row) continue;
    t.versions.delete(id);
    addToCounters(t, row, -1);
    deleted.add(id);
  }
  return deleted;
}

export const blobReferenced = (t: Tables, nodeId: string, blobKey: string): boolean =>
  [...t.versions.values()].some((v) => v.nodeId === nodeId && v.blobKey === blobKey);

export const blobKeyInUse = (t: Tables, blobKey: string): boolean =>
  [...t.versions.values()].some((v) => v.blobKey === blobKey);

/** Versions joined to their files: a version whose file row is gone counts for nobody. */
export function sumVersionSizes(t: Tables, ownerId: string): number {
  const owner = uuid(ownerId);
  let total = 0;
  for (const v of t.versions.values()) if (t.items.get(v.fileId)?.ownerId === owner) total += v.size;
  return total;
}

/**
 * Versions joined to files and owners with `keep_days`; `v.id <> i.current_version_id` is not
 * true when the file has no current version. Distinct file ids, no order.
 */
export function filesPastKeepDays(t: Tables, now: Date, limit: number): string[] {
  const at = micros(now);
  const n = limitOf(limit);
  const out = new Set<string>();
  for (const v of t.versions.values()) {
    if (out.size >= n) break;
    const i = t.items.get(v.fileId);
    const u = i && t.users.get(i.ownerId);
    if (!i || !u || u.keepDays === null || i.currentVersionId === null) continue;
    if (v.id !== i.currentVersionId && v.createdAt < at - u.keepDays * DAY_US) out.add(i.id);
  }
  return [...out];
}
