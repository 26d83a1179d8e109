/**
 * An upload session's record in the state store (`upload#<id>`): its key, the tombstone an ended
 * session leaves, the writes (each conditional on the version it read, so of two requests racing
 * for one transition exactly one wins), and the completing request's lease on it.
 */

import { errors } from '../domain/errors.ts';
import type { Principal } from '../domain/model.ts';
import type { UploadSession } from '../domain/upload-session.ts';
import type { StateItem, StateStore } from '../ports/state-store.ts';
import type { FolderService } from './folder-service.ts';

export type OnConflict = 'fail' | 'copy';

/** How long an expired or aborted session's tombstone answers GET before it is forgotten. */
export const TOMBSTONE_SECONDS = 7 * 86_400;

export const sessionKey = (uploadId: string) => ({ pk: `upload#${uploadId}`, sk: 's' });

/**
 * An upload waiting for the background verifier, twice: the trigger (`verify#<id>`, one partition
 * per upload, so the change stream spreads verifications over its shards) that the stream or the
 * local feed hands to the verifier, and an entry in one of 16 index partitions (`verifying#<hex>`)
 * that the maintenance sweep reads to resume a verification whose verifier died.
 */
export const VERIFY_TRIGGER_PREFIX = 'verify#';
export const verifyTriggerKey = (uploadId: string) => ({
  pk: `${VERIFY_TRIGGER_PREFIX}${uploadId}`,
  sk: 'v',
});
const verifyIndexKey = (uploadId: string) => ({ pk: `verifying#${uploadId.slice(0, 1)}`, sk: uploadId });
const VERIFY_INDEX_PARTITIONS = '0123456789abcdef'.split('');

/**
 * The part digests a resumable verification computed in its earlier runs
 * (`verifiedparts#<uploadId>`, 1,000 parts per record, as raw digests in base64: about 43 KB an
 * item), kept apart from the session so it stays small.
 */
const verifiedPartsPk = (uploadId: string) => `verifiedparts#${uploadId}`;
const VERIFIED_PARTS_PER_RECORD = 1000;

/** How long a complete holds its upload before another may take over; renewed every third of it. */
export const COMPLETION_LEASE_MS = 15_000;

export const uploadingAgain = (s: UploadSession): UploadSession => {
  const { completingUntil: _held, ...rest } = s;
  return { ...rest, state: 'uploading' };
};

/** The session records of uploads. */
export class SessionRecords {
  private readonly store: StateStore;

  constructor(store: StateStore) {
    this.store = store;
  }

  get(uploadId: string): Promise<StateItem<UploadSession> | undefined> {
    return this.store.get<UploadSession>(sessionKey(uploadId).pk, 's');
  }

  /** The session, if the principal started it (or is an admin); else 404. */
  async owned(p: Principal, uploadId: string): Promise<StateItem<UploadSession>> {
    const s = await this.get(uploadId);
    if (!s || (s.data.createdBy !== p.userId && p.role !== 'admin')) throw errors.notFound('upload');
    return s;
  }

  /** A new session; fails if one exists under its id. */
  async create(data: UploadSession, expiresAt: number): Promise<void> {
    await this.store.put({ ...sessionKey(data.uploadId), data, expiresAt }, { kind: 'absent' });
  }

  /**
   * Hands the upload to the background verifier (again, to nudge one that stalled): the index entry
   * first, so a trigger never exists without it.
   */
  async awaitVerification(uploadId: string, expiresAt: number | undefined): Promise<void> {
    const ttl = expiresAt ? { expiresAt } : {};
    await this.store.put({ ...verifyIndexKey(uploadId), data: { uploadId }, ...ttl });
    await this.store.put({ ...verifyTriggerKey(uploadId), data: { uploadId, at: Date.now() }, ...ttl });
  }

  /** The upload left `verifying` (committed or failed): its trigger, index entry and parts go. */
  async verificationDone(uploadId: string): Promise<void> {
    await this.store.delete(verifyTriggerKey(uploadId).pk, 'v');
    const { pk, sk } = verifyIndexKey(uploadId);
    await this.store.delete(pk, sk);
    for (const r of await this.store.query(verifiedPartsPk(uploadId))) await this.store.delete(r.pk, r.sk);
  }

  /**
   * Keeps part digests (hex, by part number) a verification run computed, until `expiresAt`; the
   * records earlier runs wrote move to the same expiry, so none lapses before the session.
   */
  async keepVerifiedParts(uploadId: string, parts: Map<number, string>, expiresAt: number): Promise<void> {
    for (const r of await this.store.query<{ first: number; digests: string }>(verifiedPartsPk(uploadId)))
      if ((r.expiresAt ?? 0) < expiresAt)
        await this.store.put({ pk: r.pk, sk: r.sk, data: r.data, expiresAt });
    const byRecord = new Map<number, [number, string][]>();
    for (const [n, h] of parts) {
      const r = Math.floor((n - 1) / VERIFIED_PARTS_PER_RECORD);
      byRecord.set(r, [...(byRecord.get(r) ?? []), [n, h]]);
    }
    for (const [r, entries] of byRecord) {
      const sk = String(r).padStart(2, '0');
      const old = await this.store.get<{ first: number; digests: string }>(verifiedPartsPk(uploadId), sk);
      const first = r * VERIFIED_PARTS_PER_RECORD + 1;
      const digests = Buffer.alloc(32 * VERIFIED_PARTS_PER_RECORD);
      if (old) Buffer.from(old.data.digests, 'base64').copy(digests);
      let used = old ? Buffer.from(old.data.digests, 'base64').length / 32 : 0;
      for (const [n, h] of entries) {
        Buffer.from(h, 'hex').copy(digests, (n - first) * 32);
        used = Math.max(used, n - first + 1);
      }
      await this.store.put({
        pk: verifiedPartsPk(uploadId),
        sk,
        data: { first, digests: digests.subarray(0, used * 32).toString('base64') },
        expiresAt,
      });
    }
  }

  /** The part digests kept by `keepVerifiedParts`. */
  async verifiedParts(uploadId: string): Promise<Map<number, string>> {
    const out = new Map<number, string>();
    const empty = Buffer.alloc(32).toString('hex');
    for (const r of await this.store.query<{ first: number; digests: string }>(verifiedPartsPk(uploadId))) {
      const raw = Buffer.from(r.data.digests, 'base64');
      for (let i = 0; i * 32 < raw.length; i++) {
        const h = raw.subarray(i * 32, i * 32 + 32).toString('hex');
        if (h !== empty) out.set(r.data.first + i, h);
      }
    }
    return out;
  }

  /** Uploads waiting for the verifier, from the index (at most `limit` per partition). */
  async awaitingVerification(limit = 100): Promise<string[]> {
    const out: string[] = [];
    for (const hex of VERIFY_INDEX_PARTITIONS)
      for (const item of await this.store.query<{ uploadId: string }>(`verifying#${hex}`, { limit }))
        out.push(item.sk);
    return out;
  }

  /** The next state of a session, written only if it is still at the version `rec` read. */
  save(rec: StateItem<UploadSession>, data: UploadSession, expiresAt = rec.expiresAt) {
    return this.store.put(
      { ...sessionKey(data.uploadId), data, ...(expiresAt ? { expiresAt } : {}) },
      { kind: 'version', version: rec.version },
    );
  }
}

/**
 * The caller's right to write into the upload's folder, checked again at every step that acts
 * (renew, complete, commit): a grant revoked or downgraded after the upload began, or a folder
 * moved to the trash, stops the upload there (404 or 403, as a new upload would get).
 */
export async function mayStillWrite(
  folders: Pick<FolderService, 'folder'>,
  p: Principal,
  s: UploadSession,
): Promise<void> {
  await folders.folder(p, s.parentId, 'write');
}

type SaveSession = (
  rec: StateItem<UploadSession>,
  data: UploadSession,
  expiresAt?: number,
) => Promise<StateItem<UploadSession>>;

/**
 * The completing request's hold on its session. Renewals and the final transition go through one
 * queue of conditional writes on the latest version, so they never race each other; a renewal
 * that loses means another request took the upload over, and this one must not commit.
 */
export class CompletionLease {
  lost = false;
  private rec: StateItem<UploadSession>;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly save: SaveSession;

  constructor(rec: StateItem<UploadSession>, save: SaveSession) {
    this.rec = rec;
    this.save = save;
    this.timer = setInterval(() => {
      this.write({ ...this.rec.data, completingUntil: Date.now() + COMPLETION_LEASE_MS }).catch(() => {
        this.lost = true;
      });
    }, COMPLETION_LEASE_MS / 3);
    this.timer.unref();
  }

  /** The session as last written through the lease. */
  get current(): UploadSession {
    return this.rec.data;
  }

  /** The session record's expiry, as last written. */
  get expiresAt(): number | undefined {
    return this.rec.expiresAt;
  }

  write(data: UploadSession, expiresAt?: number): Promise<StateItem<UploadSession>> {
    const next = this.queue.then(() =>
      this.save(this.rec, data, expiresAt).then((r) => {
        this.rec = r;
        return r;
      }),
    );
    this.queue = next.catch(() => undefined);
    return next;
  }

  stop() {
    clearInterval(this.timer);
  }
}
