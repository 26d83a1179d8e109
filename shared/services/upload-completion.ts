/**
 * Completing an upload: the session moves uploading -> completing under a lease (a request that dies
 * mid-way lets another take over once it passes) and storage assembles the parts. Up to
 * `inlineVerifyBytes` the bytes are verified in the request and committed (201); a refusal aborts the
 * session, or puts it back to uploading when the client can fix it. A larger upload is checked as far
 * as its size and first bytes allow and answers 202 (`verifying`): `verifyInBackground` (driven by the
 * state change stream) reads it whole and commits it, or fails it with the reason. Until then the
 * file's current version is what it was: an unverified version is neither served nor shared.
 */
import { ConditionFailedError, errors } from '../domain/errors.ts';
import type { Item, Principal } from '../domain/model.ts';
import type { UploadSession } from '../domain/upload-session.ts';
import type { Logger } from '../observability/logger.ts';
import type { ReservationStore, UserStore } from '../ports/metadata.ts';
import type { FolderService } from './folder-service.ts';
import type { UploadCommit } from './upload-commit.ts';
import {
  type BackgroundOutcome,
  type CompleteOutcome,
  discardUpload,
  PROGRESS_EVERY_BYTES,
  sleep,
  VERIFY_RUN_KEEPS_SECONDS,
} from './upload-outcomes.ts';
import {
  COMPLETION_LEASE_MS,
  CompletionLease,
  mayStillWrite,
  type OnConflict,
  type SessionRecords,
  uploadingAgain,
} from './upload-state.ts';
import type { UploadStorage } from './upload-storage.ts';
import type { Stopped, UploadVerification, Verified } from './upload-verification.ts';

export class UploadCompletion {
  private readonly records: SessionRecords;
  private readonly storage: UploadStorage;
  private readonly verification: Pick<UploadVerification, 'verify' | 'quickCheck'>;
  private readonly committer: UploadCommit;
  private readonly reservations: ReservationStore;
  private readonly folders: Pick<FolderService, 'folder'>;
  private readonly users: Pick<UserStore, 'get'>;
  private readonly log: Logger;
  /** What ending a refused upload touches (`discardUpload`). */
  private readonly ending: Parameters<typeof discardUpload>[0];
  /** Uploads up to this many bytes are verified inside the complete request. */
  private readonly inlineVerifyBytes: number;
  /**
   * How long one background verification run may read before it stops at a checkpoint and hands
   * over to the next run; 0 is no limit (the local runtime). The AWS verifier's 15-minute timeout
   * sets it.
   */
  private readonly verifyRunMs: number;

  constructor(deps: {
    records: SessionRecords;
    storage: UploadStorage;
    verification: Pick<UploadVerification, 'verify' | 'quickCheck'>;
    committer: UploadCommit;
    reservations: ReservationStore;
    folders: Pick<FolderService, 'folder'>;
    users: Pick<UserStore, 'get'>;
    log: Logger;
    inlineVerifyBytes: number;
    verifyRunMs?: number;
  }) {
    this.records = deps.records;
    this.storage = deps.storage;
    this.verification = deps.verification;
    this.committer = deps.committer;
    this.reservations = deps.reservations;
    this.folders = deps.folders;
    this.users = deps.users;
    this.log = deps.log;
    this.ending = {
      reservations: this.reservations,
      storage: this.storage,
      records: this.records,
      log: this.log,
    };
    this.inlineVerifyBytes = deps.inlineVerifyBytes;
    this.verifyRunMs = deps.verifyRunMs ?? 0;
  }

  async completeUpload(
    p: Principal,
    uploadId: string,
    parts: { partNumber: number; etag: string }[],
    onConflict?: OnConflict,
  ): Promise<CompleteOutcome> {
    const first = await this.records.owned(p, uploadId);
    const replay = (d: UploadSession): CompleteOutcome | undefined =>
      d.state === 'committed' && d.result
        ? { status: 'committed', ...d.result, size: d.size, sha256: d.sha256, replayed: true }
        : d.state === 'verifying'
          ? { status: 'verifying' }
          : undefined;
    const done = replay(first.data);
    if (done?.status === 'verifying' && (first.data.completingUntil ?? 0) < Date.now())
      // Asked again while no verifier holds it: hand it over again (a verifier that died, a
      // trigger the stream lost).
      await this.records.awaitVerification(uploadId, first.expiresAt);
    if (done) return done;
    if (first.data.state === 'failed')
      throw errors.conflict(`the upload failed verification: ${first.data.error?.detail ?? 'refused'}`, {
        state: 'failed',
      });
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
      return await this.finishCompletion(p, parts, s, lease);
    } finally {
      lease.stop();
    }
  }

  /** The work of a complete, done while holding the session's lease. */
  private async finishCompletion(
    p: Principal,
    parts: { partNumber: number; etag: string }[],
    s: UploadSession,
    lease: CompletionLease,
  ): Promise<CompleteOutcome> {
    const backToUploading = () => lease.write(uploadingAgain(s)).catch(() => undefined);

    await this.storage.assemble(s, parts, backToUploading);
    if (s.size > this.inlineVerifyBytes) return this.defer(s, lease, backToUploading);
    const verdict = await this.verification.verify(s);
    if (verdict.kind === 'missing') {
      await backToUploading();
      throw errors.uploadIncomplete('no data has been uploaded');
    }
    if (verdict.kind === 'refused') {
      await discardUpload(this.ending, lease, s, verdict.reason, verdict.error, 'aborted');
      throw verdict.error;
    }
    // A request that lost its lease (it stalled past it and another took over) commits nothing.
    if (lease.lost) throw errors.uploadInProgress(1);
    // Verification may have taken a while: the right to write here is checked once more.
    try {
      await mayStillWrite(this.folders, p, s);
    } catch (err) {
      await backToUploading();
      throw err;
    }
    const committed = await this.commitVerified(p, s, verdict.verified, lease, async (err) => {
      // Nothing was committed; the client may fix the cause (quota, conflict) and complete again.
      await backToUploading();
      throw err;
    });
    return { status: 'committed', ...committed, replayed: false };
  }

  /**
   * An upload too big to verify in the request: refused now if its size or first bytes give it
   * away (one ranged read, nothing more), else handed to the background verifier.
   */
  private async defer(
    s: UploadSession,
    lease: CompletionLease,
    backToUploading: () => Promise<unknown>,
  ): Promise<CompleteOutcome> {
    const quick = await this.verification.quickCheck(s);
    if (quick.kind === 'missing') {
      await backToUploading();
      throw errors.uploadIncomplete('no data has been uploaded');
    }
    if (quick.kind === 'refused') {
      await discardUpload(this.ending, lease, s, quick.reason, quick.error, 'aborted');
      throw quick.error;
    }
    if (lease.lost) throw errors.uploadInProgress(1);
    const { completingUntil: _held, ...settled } = s;
    await lease.write({ ...settled, state: 'verifying', verifiedBytes: 0 });
    await this.records.awaitVerification(s.uploadId, lease.expiresAt);
    this.log.info('upload assembled; verifying in the background', { uploadId: s.uploadId, size: s.size });
    return { status: 'verifying' };
  }

  /**
   * The background verifier's run for one upload in `verifying`: it takes the session's lease (or,
   * while another verifier holds it, waits for that lease to be renewed or lapse), reads the object
   * whole, commits the version and ends the session `committed`, or `failed` with the reason (the
   * bytes removed, the quota released). Idempotent: a run for a session that left `verifying` only
   * tidies its trigger.
   */
  async verifyInBackground(uploadId: string): Promise<BackgroundOutcome> {
    let rec = await this.records.get(uploadId);
    const deadline = Date.now() + COMPLETION_LEASE_MS + 5_000;
    for (;;) {
      if (rec?.data.state !== 'verifying') {
        await this.records.verificationDone(uploadId);
        return 'done';
      }
      if ((rec.data.completingUntil ?? 0) <= Date.now()) break;
      // Another verifier holds it: it is alive while it renews; one that died stops renewing.
      if (Date.now() > deadline) return 'busy';
      await sleep(1_000);
      rec = await this.records.get(uploadId);
    }
    let lease: CompletionLease;
    try {
      lease = new CompletionLease(
        await this.records.save(rec, { ...rec.data, completingUntil: Date.now() + COMPLETION_LEASE_MS }),
        (r, data, expiresAt) => this.records.save(r, data, expiresAt),
      );
    } catch (err) {
      if (err instanceof ConditionFailedError) return 'busy';
      throw err;
    }
    try {
      return await this.verifyAndCommit(rec.data, lease);
    } finally {
      lease.stop();
    }
  }

  /**
   * Uploads left in `verifying` with no verifier holding them (it died; the stream lost the
   * trigger): handed to the verifier again. Returns how many. The maintenance sweep runs it.
   */
  async resumeStalled(): Promise<number> {
    let resumed = 0;
    for (const uploadId of await this.records.awaitingVerification()) {
      const rec = await this.records.get(uploadId);
      if (rec?.data.state !== 'verifying') {
        await this.records.verificationDone(uploadId);
        continue;
      }
      if ((rec.data.completingUntil ?? 0) > Date.now()) continue;
      await this.records.awaitVerification(uploadId, rec.expiresAt);
      resumed++;
    }
    if (resumed) this.log.warn('stalled verifications handed over again', { resumed });
    return resumed;
  }

  private async verifyAndCommit(s: UploadSession, lease: CompletionLease): Promise<BackgroundOutcome> {
    // The creator's right to write there decides, as it would have inside their request.
    const creator = await this.users.get(s.createdBy);
    const p: Principal = {
      userId: s.createdBy,
      role: creator?.role ?? 'user',
      tokenId: `verifier:${s.uploadId}`,
      expiresAt: Math.floor(Date.now() / 1000) + 3600,
    };
    let reported = s.verifiedBytes ?? 0;
    const resumable = this.verifyRunMs > 0;
    const verdict = await this.verification.verify(s, {
      resumable,
      ...(resumable ? { stopAfter: Date.now() + this.verifyRunMs } : {}),
      ...(s.verifyCheckpoint ? { from: s.verifyCheckpoint } : {}),
      earlierParts: () => this.records.verifiedParts(s.uploadId),
      onProgress: (bytesRead) => {
        if (bytesRead - reported < PROGRESS_EVERY_BYTES) return;
        reported = bytesRead;
        lease.write({ ...lease.current, verifiedBytes: bytesRead }).catch(() => undefined);
      },
    });
    if (verdict.kind === 'stopped') return this.continueLater(s, lease, verdict);
    if (verdict.kind !== 'verified') {
      const refusal =
        verdict.kind === 'missing'
          ? { reason: 'object missing', error: errors.uploadIncomplete('the uploaded data is gone') }
          : verdict;
      await discardUpload(this.ending, lease, s, refusal.reason, refusal.error, 'failed');
      return 'failed';
    }
    if (lease.lost) return 'busy';
    try {
      await mayStillWrite(this.folders, p, s);
      await this.commitVerified(p, s, verdict.verified, lease, (err) => Promise.reject(err));
    } catch (err) {
      if (lease.lost) return 'busy';
      await discardUpload(this.ending, lease, s, 'commit refused', err, 'failed');
      return 'failed';
    }
    await this.records.verificationDone(s.uploadId);
    return 'committed';
  }

  /**
   * A run that stopped before the end (its time is up) keeps its checkpoint and this run's part
   * digests, lets go of the lease and triggers the next run. Each run moves the session's expiry
   * on, so a verification of many runs never outlives its session.
   */
  private async continueLater(
    s: UploadSession,
    lease: CompletionLease,
    stopped: Stopped,
  ): Promise<BackgroundOutcome> {
    lease.stop();
    if (lease.lost) return 'busy';
    const expiresAt = Math.max(
      lease.expiresAt ?? 0,
      Math.floor(Date.now() / 1000) + VERIFY_RUN_KEEPS_SECONDS,
    );
    // The quota reservation holds the object against the orphan sweep: it lives as long.
    await this.reservations.extend(s.uploadId, new Date(expiresAt * 1000));
    await this.records.keepVerifiedParts(s.uploadId, stopped.parts, expiresAt);
    const { completingUntil: _held, ...rest } = lease.current;
    try {
      await lease.write(
        { ...rest, verifiedBytes: stopped.checkpoint.offset, verifyCheckpoint: stopped.checkpoint },
        expiresAt,
      );
    } catch (err) {
      if (err instanceof ConditionFailedError) return 'busy';
      throw err;
    }
    await this.records.awaitVerification(s.uploadId, expiresAt);
    this.log.info('verification continues in another run', {
      uploadId: s.uploadId,
      verifiedBytes: stopped.checkpoint.offset,
      size: s.size,
      runs: stopped.checkpoint.runs,
    });
    return 'continued';
  }

  /**
   * Commits verified bytes as the new version and ends the session committed. `refused` decides
   * what a refused commit (quota, a name taken meanwhile) leaves behind; it must throw.
   */
  private async commitVerified(
    p: Principal,
    s: UploadSession,
    verified: Verified,
    lease: CompletionLease,
    refused: (err: unknown) => Promise<never>,
  ) {
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
      return refused(err);
    }
    await this.committer.planReplicas(s);
    const result = {
      fileId: committed.file.id,
      versionId: s.versionId,
      name: committed.file.name,
      contentHash: verified.contentHash,
      scanState: verified.scanState,
    };
    const { completingUntil: _held, verifiedBytes: _read, verifyCheckpoint: _at, ...settled } = s;
    await lease.write({ ...settled, state: 'committed', result }).catch((err: unknown) => {
      if (!(err instanceof ConditionFailedError)) throw err;
    });
    await this.committer.settle(committed.file, s.parentId);
    this.log.info('upload committed', {
      uploadId: s.uploadId,
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
    };
  }
}
