/**
 * Completing an upload: the session moves uploading -> completing under a lease (a request that
 * dies mid-way lets another take over once the lease passes), storage assembles the parts, the
 * bytes are verified, the version is committed, and the session ends committed; a refused
 * verification ends it aborted instead, and a refusal the client can fix puts it back to uploading.
 */

import { ConditionFailedError, errors } from '../domain/errors.ts';
import type { Item, Principal } from '../domain/model.ts';
import type { UploadSession } from '../domain/upload-session.ts';
import type { Logger } from '../observability/logger.ts';
import type { ReservationStore } from '../ports/metadata.ts';
import type { FolderService } from './folder-service.ts';
import type { UploadCommit } from './upload-commit.ts';
import {
  COMPLETION_LEASE_MS,
  CompletionLease,
  mayStillWrite,
  type OnConflict,
  type SessionRecords,
  TOMBSTONE_SECONDS,
  uploadingAgain,
} from './upload-state.ts';
import type { UploadStorage } from './upload-storage.ts';
import type { UploadVerification } from './upload-verification.ts';

export class UploadCompletion {
  private readonly records: SessionRecords;
  private readonly storage: UploadStorage;
  private readonly verification: Pick<UploadVerification, 'verify'>;
  private readonly committer: UploadCommit;
  private readonly reservations: ReservationStore;
  private readonly folders: Pick<FolderService, 'folder'>;
  private readonly log: Logger;

  constructor(deps: {
    records: SessionRecords;
    storage: UploadStorage;
    verification: Pick<UploadVerification, 'verify'>;
    committer: UploadCommit;
    reservations: ReservationStore;
    folders: Pick<FolderService, 'folder'>;
    log: Logger;
  }) {
    this.records = deps.records;
    this.storage = deps.storage;
    this.verification = deps.verification;
    this.committer = deps.committer;
    this.reservations = deps.reservations;
    this.folders = deps.folders;
    this.log = deps.log;
  }

  async completeUpload(
    p: Principal,
    uploadId: string,
    parts: { partNumber: number; etag: string }[],
    onConflict?: OnConflict,
  ) {
    const first = await this.records.owned(p, uploadId);
    const replay = (d: UploadSession) =>
      d.state === 'committed' && d.result
        ? { ...d.result, size: d.size, sha256: d.sha256, replayed: true as const }
        : undefined;
    const done = replay(first.data);
    if (done) return done;
    const now = Date.now();
    const held = first.data.state === 'completing' ? (first.data.completingUntil ?? 0) - now : 0;
    if (held > 0) throw errors.uploadInProgress(Math.ceil(held / 1000));
    // `completing` with its lease passed: the request completing it died; this one takes over.
    if (first.data.state !== 'uploading' && first.data.state !== 'completing') {
      throw errors.conflict(`the upload is ${first.data.state}`, { state: first.data.state });
    }
    await mayStillWrite(this.folders, p, first.data);
    const s: UploadSession = {
      ...first.data,
      ...(onConflict ? { onConflict } : {}),
      state: 'completing',
      completingUntil: now + COMPLETION_LEASE_MS,
    };
    let lease: CompletionLease;
    try {
      lease = new CompletionLease(await this.records.save(first, s), (rec, data, expiresAt) =>
        this.records.save(rec, data, expiresAt),
      );
    } catch (err) {
      if (!(err instanceof ConditionFailedError)) throw err;
      // Another request moved it first: answer what it did, or that it is still at it.
      const now2 = await this.records.get(uploadId);
      const theirs = now2 && replay(now2.data);
      if (theirs) return theirs;
      throw errors.uploadInProgress(1);
    }
    try {
      return await this.finishCompletion(p, uploadId, parts, s, lease);
    } finally {
      lease.stop();
    }
  }

  /** The work of a complete, done while holding the session's lease. */
  private async finishCompletion(
    p: Principal,
    uploadId: string,
    parts: { partNumber: number; etag: string }[],
    s: UploadSession,
    lease: CompletionLease,
  ) {
    const backToUploading = () => lease.write(uploadingAgain(s)).catch(() => undefined);

    await this.storage.assemble(s, parts, backToUploading);
    const verdict = await this.verification.verify(s);
    if (verdict.kind === 'missing') {
      await backToUploading();
      throw errors.uploadIncomplete('no data has been uploaded');
    }
    if (verdict.kind === 'refused') {
      await this.discard(lease, s, verdict.reason);
      throw verdict.error;
    }
    const { verified } = verdict;

    // A request that lost its lease (it stalled past it and another took over) commits nothing.
    if (lease.lost) throw errors.uploadInProgress(1);
    // Verification may have taken a while: the right to write here is checked once more.
    try {
      await mayStillWrite(this.folders, p, s);
    } catch (err) {
      await backToUploading();
      throw err;
    }
    // Resolved before the transaction: PGlite has one connection, so no query may run beside one.
    const copyName = s.onConflict === 'copy' ? await this.committer.conflictCopyName(s.name, p) : s.name;
    let committed: { file: Item };
    try {
      // The version (and so every download) carries the type verification settled on.
      committed = await this.committer.commit({ ...s, contentType: verified.contentType }, copyName, {
        contentHash: verified.contentHash,
        partSize: s.mode === 'multipart' ? s.partSize : s.size,
        partHashes: verified.partHashes,
        scanState: verified.scanState,
      });
    } catch (err) {
      // Nothing was committed; the client may fix the cause (quota, conflict) and complete again.
      await backToUploading();
      throw err;
    }
    await this.committer.planReplicas(s);
    const result = { fileId: committed.file.id, versionId: s.versionId, name: committed.file.name };
    const { completingUntil: _held, ...settled } = s;
    await lease.write({ ...settled, state: 'committed', result }).catch((err: unknown) => {
      if (!(err instanceof ConditionFailedError)) throw err;
    });
    await this.committer.settle(committed.file, s.parentId);
    this.log.info('upload committed', {
      uploadId,
      fileId: committed.file.id,
      versionId: s.versionId,
      size: s.size,
      scan: verified.scanState,
    });
    return {
      ...result,
      size: s.size,
      sha256: s.sha256,
      contentHash: verified.contentHash,
      scanState: verified.scanState,
      replayed: false,
    };
  }

  /** A failed verification aborts the session and removes its bytes: nothing half-written stays. */
  private async discard(lease: CompletionLease, s: UploadSession, reason: string) {
    await this.reservations.release(s.uploadId);
    await this.storage.release(s);
    const { completingUntil: _held, ...settled } = s;
    await lease
      .write({ ...settled, state: 'aborted' }, Math.floor(Date.now() / 1000) + TOMBSTONE_SECONDS)
      .catch(() => undefined);
    this.log.warn('upload discarded', { uploadId: s.uploadId, reason });
  }
}
