/**
 * How a reconcile sweep is shared between workers: the version-id space (UUIDs, in byte order) is
 * cut into `count` ranges of equal width by the id's first 32 bits, and each range is swept on its
 * own, with its own cursor, lease and orphan sweep (`reconcile#sweep#<index>of<count>`). In AWS a
 * Step Functions Distributed Map runs one maintenance invocation per range at once; locally
 * `Reconciler.sweepAll` loops over them. Version ids are random (UUIDv4), so the ranges hold about
 * as many versions each.
 */
import { errors } from '../domain/errors.ts';

export interface SweepPartition {
  /** 0 ≤ index < count. */
  index: number;
  /** 1 ≤ count ≤ MAX_PARTITIONS. */
  count: number;
}

/** Below every version id: a full pass of the whole space starts after it. */
export const FIRST_ID = '00000000-0000-0000-0000-000000000000';
/** The last possible id: the end of the last range. */
export const LAST_ID = 'ffffffff-ffff-ffff-ffff-ffffffffffff';
/** Step Functions' Distributed Map would take more; past a few hundred the state items cost more than they save. */
export const MAX_PARTITIONS = 256;

export const WHOLE: SweepPartition = { index: 0, count: 1 };

/** The ids a partition covers: after `after`, up to and including `upTo`. */
export interface IdRange {
  after: string;
  upTo: string;
}

function boundary(i: number, count: number): string {
  if (i <= 0) return FIRST_ID;
  if (i >= count) return LAST_ID;
  const hi = Math.floor((i * 2 ** 32) / count);
  return `${hi.toString(16).padStart(8, '0')}-0000-0000-0000-000000000000`;
}

export function checkPartition(p: SweepPartition): SweepPartition {
  if (
    !Number.isInteger(p.count) ||
    !Number.isInteger(p.index) ||
    p.count < 1 ||
    p.count > MAX_PARTITIONS ||
    p.index < 0 ||
    p.index >= p.count
  )
    throw errors.validation(`a sweep partition is 0 ≤ index < count ≤ ${MAX_PARTITIONS}`);
  return p;
}

export function partitionRange(p: SweepPartition): IdRange {
  checkPartition(p);
  return { after: boundary(p.index, p.count), upTo: boundary(p.index + 1, p.count) };
}

/** The state item of a partition's sweep: the whole space keeps the key it always had. */
export function sweepStateKey(p: SweepPartition): { pk: string; sk: string } {
  return { pk: p.count === 1 ? 'reconcile#sweep' : `reconcile#sweep#${p.index}of${p.count}`, sk: 'state' };
}

/** Every partition of a sweep in `count` parts. */
export function allPartitions(count: number): SweepPartition[] {
  return Array.from({ length: count }, (_, index) => checkPartition({ index, count }));
}

/**
 * The blob keys (`v/<versionId>`) a partition's orphan sweep lists: those after `v/<after>` up to
 * `v/<upTo>`; the first range starts at `v/` and the last has no end, so keys that are not a
 * version id are swept too.
 */
export function keyRange(p: SweepPartition): { startAfter?: string; upTo?: string } {
  const r = partitionRange(p);
  return {
    ...(p.index > 0 ? { startAfter: `v/${r.after}` } : {}),
    ...(p.index < p.count - 1 ? { upTo: `v/${r.upTo}` } : {}),
  };
}
