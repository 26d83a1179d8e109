/**
 * The part hashes an upload declared after its create (`POST /v1/uploads/{id}/parts`), beside the
 * session in the state store: 1,000 parts per record (`parthashes#<uploadId>`, sort key the record's
 * number), expiring with the session. The session itself keeps only the hashes declared at create
 * (at most 1,000): 10,000 hashes, about 700 KB as a DynamoDB map, would not fit in one item (the
 * 400 KB limit), and every write of the session would carry them.
 *
 * A part, once bound to a hash, stays bound to it: its signed URL (S3's x-amz-checksum-sha256, the
 * local node's `sha`) lets storage keep only bytes of that hash, and a different hash declared later
 * is refused (409). Declaring the same hash again is a no-op, so a client may resend its batches.
 */
import { ConditionFailedError, errors } from '../domain/errors.ts';
import type { StateItem, StateStore } from '../ports/state-store.ts';

/** Parts per record: about 70 KB as a DynamoDB item. */
export const PARTS_PER_RECORD = 1000;

const pk = (uploadId: string) => `parthashes#${uploadId}`;
const recordOf = (partNumber: number) => Math.floor((partNumber - 1) / PARTS_PER_RECORD);
const sk = (record: number) => String(record).padStart(2, '0');

interface Stored {
  /** Part number -> hex SHA-256. */
  hashes: Record<string, string>;
}

/** Writes that lose a race with another declaration are read again and retried this many times. */
const MAX_TRIES = 5;

export class PartHashRecords {
  private readonly store: StateStore;

  constructor(store: StateStore) {
    this.store = store;
  }

  /** Every hash declared through the records (not those the session holds). */
  async all(uploadId: string): Promise<Map<number, string>> {
    const out = new Map<number, string>();
    for (const item of await this.store.query<Stored>(pk(uploadId)))
      for (const [n, sha] of Object.entries(item.data.hashes)) out.set(Number(n), sha);
    return out;
  }

  /** The hashes of parts `numbers` that the records hold. */
  async get(uploadId: string, numbers: Iterable<number>): Promise<Map<number, string>> {
    const wanted = [...numbers];
    const records = await this.records(uploadId, wanted);
    const out = new Map<number, string>();
    for (const n of wanted) {
      const sha = records.get(recordOf(n))?.data.hashes[n];
      if (sha) out.set(n, sha);
    }
    return out;
  }

  /**
   * Binds each part in `hashes` to its hash until `expiresAt` (epoch seconds). `bound` are the
   * bindings the session already holds. A part bound to another hash refuses the whole batch
   * before anything is written (409); so does one a concurrent request bound in the meantime,
   * though by then the batch's other records may have been written.
   */
  async bind(
    uploadId: string,
    hashes: ReadonlyMap<number, string>,
    expiresAt: number | undefined,
    bound: Readonly<Record<number, string>>,
  ): Promise<void> {
    const byRecord = new Map<number, Map<number, string>>();
    for (const [n, sha] of hashes) {
      const had = bound[n];
      if (had !== undefined && had !== sha) throw conflict(n, had);
      if (had !== undefined) continue;
      const batch = byRecord.get(recordOf(n)) ?? new Map<number, string>();
      batch.set(n, sha);
      byRecord.set(recordOf(n), batch);
    }
    const current = await this.records(uploadId, hashes.keys());
    for (const [n, batch] of byRecord) check(current.get(n), batch);
    for (const [n, batch] of byRecord) {
      for (let tries = 1; ; tries++) {
        const item = current.get(n);
        const add = [...batch].filter(([m]) => item?.data.hashes[m] === undefined);
        if (add.length === 0) break;
        try {
          await this.store.put<Stored>(
            {
              pk: pk(uploadId),
              sk: sk(n),
              data: { hashes: { ...item?.data.hashes, ...Object.fromEntries(add) } },
              ...(expiresAt === undefined ? {} : { expiresAt }),
            },
            item ? { kind: 'version', version: item.version } : { kind: 'absent' },
          );
          break;
        } catch (err) {
          if (!(err instanceof ConditionFailedError)) throw err;
          // Another declaration wrote this record first: read it again and merge with it.
          if (tries >= MAX_TRIES)
            throw errors.conflict('part hashes are being declared concurrently; try again');
          current.set(n, await this.store.get<Stored>(pk(uploadId), sk(n)));
          check(current.get(n), batch);
        }
      }
    }
  }

  /** The records holding parts `numbers`, by record number (undefined where none exists yet). */
  private async records(uploadId: string, numbers: Iterable<number>) {
    const out = new Map<number, StateItem<Stored> | undefined>();
    for (const n of new Set([...numbers].map(recordOf)))
      out.set(n, await this.store.get<Stored>(pk(uploadId), sk(n)));
    return out;
  }
}

function check(item: StateItem<Stored> | undefined, batch: ReadonlyMap<number, string>) {
  for (const [n, sha] of batch) {
    const had = item?.data.hashes[n];
    if (had !== undefined && had !== sha) throw conflict(n, had);
  }
}

function conflict(partNumber: number, sha256: string) {
  return errors.conflict(
    `part ${partNumber} is already bound to SHA-256 ${sha256}; a part's hash cannot change (abort and start a new upload to send other bytes)`,
    { partNumber, sha256 },
  );
}
