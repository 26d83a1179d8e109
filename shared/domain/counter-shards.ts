/**
 * Counter shards by id. The version counters (how many versions, and their bytes, per node) are
 * kept in one row per (shard, node), where a version's shard is the first byte of its UUID: 256
 * shards. Two things follow. Writers spread over 256 rows instead of one, so concurrent commits
 * rarely touch the same counter row (a hot row is a write conflict on Aurora DSQL and a lock queue
 * on PostgreSQL). And a shard is an id range, so its exact figures can be recomputed from the
 * versions in that range alone: a bounded transaction (1/256 of the table) that can be run while
 * commits go on, which is how counters are backfilled and drift is repaired.
 */

/** Every shard, in id order: '00' … 'ff'. */
export const VERSION_SHARDS: readonly string[] = Array.from({ length: 256 }, (_, i) =>
  i.toString(16).padStart(2, '0'),
);

/** The shard of a UUID: its first byte, as two lower-case hex digits. */
export function shardOf(id: string): string {
  return id.slice(0, 2).toLowerCase();
}

/** The inclusive UUID range a shard covers (UUIDs compare as their bytes, like their hex text). */
export function shardRange(shard: string): { first: string; last: string } {
  if (!/^[0-9a-f]{2}$/.test(shard)) throw new Error(`not a counter shard: ${shard}`);
  return {
    first: `${shard}000000-0000-0000-0000-000000000000`,
    last: `${shard}ffffff-ffff-ffff-ffff-ffffffffffff`,
  };
}
