/**
 * Upload sessions. Clients move bytes straight to storage through signed URLs; this service opens
 * a session (quota reserved, parts planned and signed, unchanged parts of the previous version
 * reused in storage), answers what a resuming client needs, renews part URLs, aborts, and hands a
 * complete to `UploadCompletion` (verify and commit, upload-completion.ts).
 *
 * Session states: uploading -> completing -> committed, or -> aborted (client, or a failed
 * verification), or -> expired (the session store's TTL; cleaned up from its change stream).
 */

import { randomUUID } from 'node:crypto';
import { ConditionFailedError, errors } from '../domain/errors.ts';
import { checkDeclaredType, type TypePolicy } from '../domain/file-type.ts';
import type { Item, Principal } from '../domain/model.ts';
import { nameKey, normaliseName } from '../domain/names.ts';
import {
  MAX_PARTS,
  PARTS_PER_REQUEST,
  type PartPlan,
  partLength,
  planParts,
  type UploadSession,
} from '../domain/upload-session.ts';
import type { Logger } from '../observability/logger.ts';
import type { UploadedPart } from '../ports/blob-store.ts';
import type { Database } from '../ports/database.ts';
import type { ItemStore, ReservationStore, UserStore } from '../ports/metadata.ts';
import type { FolderService } from './folder-service.ts';
import type { PartHashRecords } from './part-hash-records.ts';
import type { UploadCompletion } from './upload-completion.ts';
import { mayStillWrite, type OnConflict, type SessionRecords, TOMBSTONE_SECONDS } from './upload-state.ts';
import type { UploadStorage } from './upload-storage.ts';

// The session-record names, where the session cleanup (session-cleanup.ts) has always found them.

export interface UploadServiceOptions {
  /** Uploads one user may have open at once. */
  maxOpenUploads: number;
  partSizeBytes: number;
  maxFileBytes: number;
  uploadTtlSeconds: number;
  typePolicy: TypePolicy;
}

export class UploadService {
  private readonly db: Database;
  private readonly items: ItemStore;
  private readonly users: UserStore;
  private readonly reservations: ReservationStore;
  private readonly records: SessionRecords;
  private readonly partHashes: PartHashRecords;
  private readonly storage: UploadStorage;
  private readonly completion: Pick<UploadCompletion, 'completeUpload'>;
  private readonly folders: Pick<FolderService, 'folder'>;
  private readonly log: Logger;
  private readonly opts: UploadServiceOptions;

  constructor(deps: {
    db: Database;
    items: ItemStore;
    users: UserStore;
    reservations: ReservationStore;
    records: SessionRecords;
    partHashes: PartHashRecords;
    storage: UploadStorage;
    completion: Pick<UploadCompletion, 'completeUpload'>;
    folders: Pick<FolderService, 'folder'>;
    log: Logger;
    opts: UploadServiceOptions;
  }) {
    this.db = deps.db;
    this.items = deps.items;
    this.users = deps.users;
    this.reservations = deps.reservations;
    this.records = deps.records;
    this.partHashes = deps.partHashes;
    this.storage = deps.storage;
    this.completion = deps.completion;
    this.folders = deps.folders;
    this.log = deps.log;
    this.opts = deps.opts;
  }

  async createUpload(
    p: Principal,
    input: {
      parentId: string;
      name: string;
      size: number;
      sha256: string;
      contentType: string;
      baseVersionId?: string | null | undefined;
      onConflict?: OnConflict | undefined;
      partSize?: number | undefined;
      parts?: { partNumber: number; sha256: string }[] | undefined;
    },
  ) {
    const { item: parent } = await this.folders.folder(p, input.parentId, 'write');
    const name = normaliseName(input.name);
    if (input.size > this.opts.maxFileBytes) throw errors.fileTooLarge(this.opts.maxFileBytes);
    checkDeclaredType(this.opts.typePolicy, input.contentType);
    const owner = await this.users.get(parent.ownerId);
    if (!owner) throw errors.notFound('folder');
    if (owner.usedBytes + input.size > owner.quotaBytes) throw errors.quotaExceeded();
    const existing = await this.items.findLiveChild(parent.id, nameKey(name));
    if (existing?.kind === 'folder' && input.onConflict !== 'copy') throw errors.nameConflict(name);

    const plan = planParts(input.size, input.partSize ?? this.opts.partSizeBytes);
    if (input.partSize !== undefined && plan.mode === 'multipart' && plan.partSize !== input.partSize) {
      throw errors.validation(
        `partSize must be at least ${plan.partSize} bytes for a ${input.size}-byte file (at most ${MAX_PARTS} parts)`,
      );
    }
    if ((input.parts?.length ?? 0) > PARTS_PER_REQUEST) {
      throw errors.validation(
        `at most ${PARTS_PER_REQUEST} part hashes at create; declare the rest with POST /v1/uploads/{id}/parts`,
        [{ path: 'body.parts', message: 'too many' }],
      );
    }
    const declared = this.declaredHashes(input.parts ?? [], plan);
    const uploadId = randomUUID();
    const versionId = randomUUID();
    const expiresAt = Math.floor(Date.now() / 1000) + this.opts.uploadTtlSeconds;
    // The size goes inside the owner's quota now, not at the commit: open sessions cannot hold
    // bytes past it. The reservation lapses with the session if nothing settles it.
    const reserved = await this.db.transaction((tx) =>
      this.reservations.with(tx).reserve({
        uploadId,
        ownerId: parent.ownerId,
        createdBy: p.userId,
        size: input.size,
        blobKey: `v/${versionId}`,
        expiresAt: new Date(expiresAt * 1000),
        maxOpen: this.opts.maxOpenUploads,
      }),
    );
    if (reserved === 'quota') throw errors.quotaExceeded();
    if (reserved === 'too-many-open') throw errors.tooManyOpenUploads(this.opts.maxOpenUploads);
    try {
      return await this.openSession(p, input, {
        parent,
        name,
        plan,
        declared,
        existing,
        uploadId,
        versionId,
        expiresAt,
      });
    } catch (err) {
      await this.reservations.release(uploadId).catch(() => undefined);
      throw err;
    }
  }

  /** The storage side and the session of an upload whose quota is reserved. */
  private async openSession(
    p: Principal,
    input: Parameters<UploadService['createUpload']>[1],
    c: {
      parent: Item;
      name: string;
      plan: PartPlan;
      declared: Map<number, string>;
      existing: Item | undefined;
      uploadId: string;
      versionId: string;
      expiresAt: number;
    },
  ) {
    const { parent, name, plan, declared, existing, uploadId, versionId, expiresAt } = c;
    const blobKey = `v/${versionId}`;
    // Declaring part hashes binds every part (S3: the multipart upload takes SHA-256 checksums, so
    // each part must carry one); those past the first batch are declared with renewParts.
    const partChecksums = plan.mode === 'multipart' && declared.size > 0;
    // A new version that can reuse parts goes to a node holding the current one (delta).
    const prev =
      plan.mode === 'multipart' && existing?.kind === 'file' && existing.currentVersionId && declared.size
        ? await this.items.getVersion(existing.currentVersionId)
        : undefined;
    const primary = await this.storage.start(versionId, blobKey, plan, partChecksums, prev);
    const session: UploadSession = {
      uploadId,
      ownerId: parent.ownerId,
      createdBy: p.userId,
      parentId: parent.id,
      name,
      size: input.size,
      sha256: input.sha256,
      contentType: input.contentType,
      mode: plan.mode,
      partSize: plan.partSize,
      partCount: plan.partCount,
      nodeId: primary.nodeId,
      blobKey,
      ...(primary.storageUploadId ? { storageUploadId: primary.storageUploadId } : {}),
      versionId,
      fileId: randomUUID(),
      ...(input.baseVersionId !== undefined ? { baseVersionId: input.baseVersionId } : {}),
      onConflict: input.onConflict ?? 'fail',
      partHashes: Object.fromEntries(declared),
      partChecksums,
      reused: {},
      state: 'uploading',
      createdAt: new Date().toISOString(),
    };
    // Delta: parts whose hash matches the same part of the current version are copied in storage.
    if (prev) session.reused = await this.storage.reuseParts(session, plan, declared, prev);
    await this.records.create(session, expiresAt);
    const wanted = declared.size
      ? [...declared.keys()].sort((a, b) => a - b)
      : Array.from({ length: plan.partCount }, (_, i) => i + 1);
    const numbers = wanted.filter((n) => !session.reused[n]).slice(0, PARTS_PER_REQUEST);
    const parts = await this.storage.partUrls(session, numbers);
    const reusedParts = Object.keys(session.reused)
      .map(Number)
      .sort((a, b) => a - b);
    const bytesSkipped = reusedParts.reduce((sum, n) => sum + partLength(session.size, plan, n), 0);
    this.log.info('upload created', {
      uploadId,
      userId: p.userId,
      size: input.size,
      parts: plan.partCount,
      reused: reusedParts.length,
    });
    return {
      uploadId,
      state: session.state,
      partSize: plan.partSize,
      partCount: plan.partCount,
      parts,
      reusedParts,
      bytesSkipped,
      expiresAt: new Date(expiresAt * 1000).toISOString(),
    };
  }

  private declaredHashes(
    parts: { partNumber: number; sha256: string }[],
    plan: PartPlan,
  ): Map<number, string> {
    const map = new Map<number, string>();
    for (const part of parts) {
      if (part.partNumber < 1 || part.partNumber > plan.partCount) {
        throw errors.validation(`part ${part.partNumber} is outside 1..${plan.partCount}`, [
          { path: 'body.parts', message: 'no such part' },
        ]);
      }
      if (map.has(part.partNumber)) throw errors.validation(`part ${part.partNumber} is listed twice`);
      map.set(part.partNumber, part.sha256);
    }
    return map;
  }

  /** What a client that lost its state needs to resume: the state and the parts that arrived. */
  async getUpload(p: Principal, uploadId: string) {
    const rec = await this.records.owned(p, uploadId);
    const s = rec.data;
    let received: UploadedPart[] = [];
    if (s.state === 'uploading' || s.state === 'completing') received = await this.storage.receivedParts(s);
    return {
      uploadId: s.uploadId,
      state: s.state,
      name: s.name,
      size: s.size,
      partSize: s.partSize,
      partCount: s.partCount,
      receivedParts: received.map((r) => ({
        partNumber: r.partNumber,
        etag: r.etag,
        ...(r.sha256 ? { sha256: r.sha256 } : {}),
        size: r.size,
      })),
      expiresAt: new Date((rec.expiresAt ?? 0) * 1000).toISOString(),
      ...(s.result ? { fileId: s.result.fileId, versionId: s.result.versionId } : {}),
      ...(s.state === 'verifying' ? { verifiedBytes: s.verifiedBytes ?? 0 } : {}),
      ...(s.state === 'committed' && s.result
        ? { result: { ...s.result, size: s.size, sha256: s.sha256 } }
        : {}),
      ...(s.error ? { error: s.error } : {}),
    };
  }

  /**
   * Fresh URLs for the given parts (renewable while the session lives). A `sha256` binds its part
   * to that hash, as declaring it at create does: an upload that declared part hashes at create
   * declares the rest here, in batches, and every URL it gets is bound to its part's hash.
   */
  async renewParts(
    p: Principal,
    uploadId: string,
    parts: { partNumber: number; sha256?: string | undefined }[],
  ) {
    const rec = await this.records.owned(p, uploadId);
    const s = rec.data;
    if (s.state !== 'uploading') throw errors.conflict(`the upload is ${s.state}`, { state: s.state });
    await mayStillWrite(this.folders, p, s);
    const plan = { mode: s.mode, partSize: s.partSize, partCount: s.partCount };
    const declared = this.declaredHashes(
      parts.filter((x): x is { partNumber: number; sha256: string } => typeof x.sha256 === 'string'),
      plan,
    );
    for (const x of parts) {
      if (x.partNumber < 1 || x.partNumber > s.partCount)
        throw errors.validation(`part ${x.partNumber} is outside 1..${s.partCount}`);
    }
    const numbers = parts.map((x) => x.partNumber);
    if (s.mode === 'single') {
      // The one part is the whole file, bound to its SHA-256 since the create.
      const other = declared.get(1);
      if (other !== undefined && other !== s.sha256)
        throw errors.conflict(
          `part 1 is the whole file, bound to SHA-256 ${s.sha256}; a part's hash cannot change (abort and start a new upload to send other bytes)`,
          { partNumber: 1, sha256: s.sha256 },
        );
      return { parts: await this.storage.partUrls(s, numbers) };
    }
    // An upload created without part hashes still records those declared now, and local nodes
    // sign them; an S3 multipart upload takes part checksums only if it was created for them.
    await this.partHashes.bind(s.uploadId, declared, rec.expiresAt, s.partHashes);
    const hashes = await this.boundHashes(s, numbers);
    if (s.partChecksums) {
      const unbound = numbers.filter((n) => !hashes.has(n) && !s.reused[n]);
      if (unbound.length)
        throw errors.validation(
          `parts without a declared SHA-256: ${unbound.slice(0, 20).join(', ')}${unbound.length > 20 ? ', …' : ''}; this upload binds every part to its hash, so send each part's sha256`,
          [{ path: 'body.parts', message: 'sha256 missing' }],
        );
    }
    return { parts: await this.storage.partUrls(s, numbers, hashes) };
  }

  /** The hashes parts `numbers` are bound to: declared at create (the session) or since. */
  private async boundHashes(s: UploadSession, numbers: number[]): Promise<Map<number, string>> {
    const out = await this.partHashes.get(
      s.uploadId,
      numbers.filter((n) => s.partHashes[n] === undefined),
    );
    for (const n of numbers) {
      const sha = s.partHashes[n];
      if (sha !== undefined) out.set(n, sha);
    }
    return out;
  }

  /** Client abort: nothing is committed and the stored parts are deleted. Idempotent. */
  async abortUpload(p: Principal, uploadId: string): Promise<void> {
    const rec = await this.records.owned(p, uploadId);
    const s = rec.data;
    if (s.state === 'aborted' || s.state === 'expired') return;
    // A completing upload's bytes may be committed any moment: deleting them would leave a version
    // with no data. Only an upload still uploading can be aborted.
    if (s.state !== 'uploading')
      throw errors.conflict(`the upload is ${s.state}; it can no longer be aborted`, { state: s.state });
    await this.records
      .save(rec, { ...s, state: 'aborted' }, Math.floor(Date.now() / 1000) + TOMBSTONE_SECONDS)
      .catch((err: unknown) => {
        if (err instanceof ConditionFailedError)
          throw errors.conflict('the upload changed while aborting; look at its state', {});
        throw err;
      });
    await this.reservations.release(s.uploadId);
    await this.releaseStorage(s);
    this.log.info('upload aborted', { uploadId, userId: p.userId });
  }

  /** Frees what a session holds in storage: the multipart upload and any assembled object. */
  releaseStorage(s: UploadSession): Promise<void> {
    return this.storage.release(s);
  }

  /** Verifies and commits the upload (upload-completion.ts). */
  completeUpload(
    p: Principal,
    uploadId: string,
    parts: { partNumber: number; etag: string }[],
    onConflict?: OnConflict,
  ) {
    return this.completion.completeUpload(p, uploadId, parts, onConflict);
  }
}
