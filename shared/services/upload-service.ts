/**
 * Uploads and downloads. Clients move bytes straight to storage through signed URLs; this service
 * plans the parts, signs, verifies the whole-file hash and commits the version (with the file row,
 * usage and the audit record in one transaction). Bytes pass through only to be hashed.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { AuditRepository } from '../adapters/postgres/audit-repository.ts';
import type { Item, ItemRepository } from '../adapters/postgres/item-repository.ts';
import type { UserRepository } from '../adapters/postgres/user-repository.ts';
import { ConditionFailedError, DomainError, errors, UniqueViolationError } from '../domain/errors.ts';
import { nameKey, normaliseName } from '../domain/names.ts';
import { partLength, planParts, type UploadSession } from '../domain/upload-session.ts';
import type { Principal } from '../http/api-handler.ts';
import type { Logger } from '../observability/logger.ts';
import type { BlobStore } from '../ports/blob-store.ts';
import type { Database } from '../ports/database.ts';
import type { StateStore } from '../ports/state-store.ts';
import type { MetadataCache } from './metadata-cache.ts';
import type { TreeService } from './tree-service.ts';

export interface UploadServiceOptions {
  partSizeBytes: number;
  maxFileBytes: number;
  urlTtlSeconds: number;
  uploadTtlSeconds: number;
}

export interface PartUrl {
  partNumber: number;
  url: string;
  headers: Record<string, string>;
  expiresAt: string;
}

export type OnConflict = 'fail' | 'copy';

const MAX_URLS_PER_RESPONSE = 1000;

export class UploadService {
  private readonly db: Database;
  private readonly items: ItemRepository;
  private readonly users: UserRepository;
  private readonly audit: AuditRepository;
  private readonly sessions: StateStore;
  private readonly blobs: BlobStore;
  private readonly tree: TreeService;
  private readonly cache: MetadataCache;
  private readonly log: Logger;
  private readonly opts: UploadServiceOptions;

  constructor(deps: {
    db: Database;
    items: ItemRepository;
    users: UserRepository;
    audit: AuditRepository;
    sessions: StateStore;
    blobs: BlobStore;
    tree: TreeService;
    cache: MetadataCache;
    log: Logger;
    opts: UploadServiceOptions;
  }) {
    this.db = deps.db;
    this.items = deps.items;
    this.users = deps.users;
    this.audit = deps.audit;
    this.sessions = deps.sessions;
    this.blobs = deps.blobs;
    this.tree = deps.tree;
    this.cache = deps.cache;
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
    },
  ) {
    const { item: parent } = await this.tree.folder(p, input.parentId, 'write');
    const name = normaliseName(input.name);
    if (input.size > this.opts.maxFileBytes) throw errors.payloadTooLarge(this.opts.maxFileBytes);
    const owner = await this.users.get(parent.ownerId);
    if (!owner) throw errors.notFound('folder');
    if (owner.usedBytes + input.size > owner.quotaBytes) throw errors.quotaExceeded();
    const existing = await this.items.findLiveChild(parent.id, nameKey(name));
    if (existing?.kind === 'folder' && input.onConflict !== 'copy') throw errors.nameConflict(name);
    const plan = planParts(input.size, this.opts.partSizeBytes);
    const uploadId = randomUUID();
    const versionId = randomUUID();
    const blobKey = `v/${versionId}`;
    const storageUploadId =
      plan.mode === 'multipart'
        ? await this.blobs.createMultipartUpload(blobKey, { partChecksums: false })
        : undefined;
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
      nodeId: this.blobs.nodeId,
      blobKey,
      ...(storageUploadId ? { storageUploadId } : {}),
      versionId,
      fileId: randomUUID(),
      ...(input.baseVersionId !== undefined ? { baseVersionId: input.baseVersionId } : {}),
      onConflict: input.onConflict ?? 'fail',
      state: 'uploading',
      createdAt: new Date().toISOString(),
    };
    const expiresAt = Math.floor(Date.now() / 1000) + this.opts.uploadTtlSeconds;
    await this.sessions.put(
      { pk: `upload#${uploadId}`, sk: 's', data: session, expiresAt },
      { kind: 'absent' },
    );
    const numbers = Array.from({ length: Math.min(plan.partCount, MAX_URLS_PER_RESPONSE) }, (_, i) => i + 1);
    const parts = await this.partUrls(session, numbers);
    this.log.info('upload created', { uploadId, userId: p.userId, size: input.size, parts: plan.partCount });
    return {
      uploadId,
      partSize: plan.partSize,
      partCount: plan.partCount,
      parts,
      expiresAt: new Date(expiresAt * 1000).toISOString(),
    };
  }

  private async partUrls(s: UploadSession, numbers: number[]): Promise<PartUrl[]> {
    const plan = { mode: s.mode, partSize: s.partSize, partCount: s.partCount };
    return Promise.all(
      numbers.map(async (n) => {
        const contentLength = partLength(s.size, plan, n);
        const req =
          s.mode === 'single'
            ? await this.blobs.presignPut({
                key: s.blobKey,
                contentLength,
                sha256: s.sha256,
                expiresInSeconds: this.opts.urlTtlSeconds,
              })
            : await this.blobs.presignUploadPart({
                key: s.blobKey,
                storageUploadId: s.storageUploadId as string,
                partNumber: n,
                contentLength,
                expiresInSeconds: this.opts.urlTtlSeconds,
              });
        return { partNumber: n, url: req.url, headers: req.headers, expiresAt: req.expiresAt.toISOString() };
      }),
    );
  }

  private async session(p: Principal, uploadId: string) {
    const s = await this.sessions.get<UploadSession>(`upload#${uploadId}`, 's');
    if (!s || (s.data.createdBy !== p.userId && p.role !== 'admin')) throw errors.notFound('upload');
    return s;
  }

  async completeUpload(
    p: Principal,
    uploadId: string,
    parts: { partNumber: number; etag: string }[],
    onConflict?: OnConflict,
  ) {
    const rec = await this.session(p, uploadId);
    const s = onConflict ? { ...rec.data, onConflict } : rec.data;
    if (s.state === 'committed' && s.result)
      return { ...s.result, size: s.size, sha256: s.sha256, replayed: true };
    if (s.state !== 'uploading') throw errors.conflict(`the upload is ${s.state}`, { state: s.state });

    if (s.mode === 'multipart') {
      const expected = Array.from({ length: s.partCount }, (_, i) => i + 1);
      const sorted = [...parts].sort((a, b) => a.partNumber - b.partNumber);
      if (sorted.length !== expected.length || sorted.some((x, i) => x.partNumber !== expected[i])) {
        throw errors.uploadIncomplete(`complete needs every part from 1 to ${s.partCount}, each once`);
      }
      try {
        await this.blobs.completeMultipartUpload(s.blobKey, s.storageUploadId as string, sorted);
      } catch (err) {
        // A retry after a crash (or a refused commit) finds the object already assembled.
        const alreadyDone =
          err instanceof DomainError && err.status === 404 && (await this.blobs.stat(s.blobKey));
        if (!alreadyDone) throw err;
      }
    }
    const stat = await this.blobs.stat(s.blobKey);
    if (!stat) throw errors.uploadIncomplete('no data has been uploaded');
    if (stat.size !== s.size) {
      await this.discard(rec.version, s, 'size mismatch');
      throw errors.checksumMismatch(`uploaded ${stat.size} bytes, declared ${s.size}`);
    }
    const actual = await sha256Of(await this.blobs.read(s.blobKey));
    if (actual !== s.sha256) {
      await this.discard(rec.version, s, 'sha256 mismatch');
      throw errors.checksumMismatch('the uploaded data does not match the declared SHA-256');
    }
    // Resolved before the transaction: PGlite has one connection, so no query may run beside one.
    const copyName = s.onConflict === 'copy' ? await this.conflictCopyName(s.name, p) : s.name;
    const committed = await this.commit(s, copyName);
    const result = { fileId: committed.file.id, versionId: s.versionId, name: committed.file.name };
    try {
      await this.sessions.put(
        {
          pk: rec.pk,
          sk: rec.sk,
          data: { ...s, state: 'committed', result },
          ...(rec.expiresAt ? { expiresAt: rec.expiresAt } : {}),
        },
        { kind: 'version', version: rec.version },
      );
    } catch (err) {
      if (!(err instanceof ConditionFailedError)) throw err; // a concurrent complete recorded the same result
    }
    await this.cache.invalidate([committed.file.id], [s.parentId]);
    await this.tree.applyRetention(committed.file);
    this.log.info('upload committed', {
      uploadId,
      fileId: committed.file.id,
      versionId: s.versionId,
      size: s.size,
    });
    return { ...result, size: s.size, sha256: s.sha256, replayed: false };
  }

  /**
   * The metadata commit. Conflicts: a folder at the name, or a file whose current version is not the
   * base the client named, either fail (409, the session stays open so the client can retry with a
   * conflict copy) or commit as "name (conflicted copy <user> <date>).ext".
   */
  private async commit(s: UploadSession, copyName: string): Promise<{ file: Item }> {
    return this.db.transaction(async (tx) => {
      const items = this.items.with(tx);
      const already = await items.getVersion(s.versionId);
      if (already) return { file: (await items.get(already.fileId)) as Item }; // committed before a crash
      const parent = await items.get(s.parentId);
      if (!parent || parent.deletedAt) throw errors.notFound('folder');
      let name = s.name;
      let existing = await items.findLiveChild(s.parentId, nameKey(name));
      const clash =
        existing &&
        (existing.kind === 'folder' ||
          (s.baseVersionId !== undefined && existing.currentVersionId !== s.baseVersionId));
      if (existing && clash) {
        if (s.onConflict !== 'copy') {
          throw errors.conflict('the file changed since the version this upload is based on', {
            current: {
              fileId: existing.id,
              kind: existing.kind,
              versionId: existing.currentVersionId,
              revision: existing.revision,
            },
          });
        }
        name = await this.tree.freeName(tx, s.parentId, copyName);
        existing = undefined;
      } else if (!existing && s.baseVersionId) {
        throw errors.conflict('the file this upload is based on no longer exists here', { current: null });
      }
      if (!(await items.chargeUsage(s.ownerId, s.size))) throw errors.quotaExceeded();
      let file: Item;
      if (existing) {
        await items.insertVersion(this.versionRow(s, existing.id));
        file = await items.setCurrentVersion(existing.id, {
          versionId: s.versionId,
          size: s.size,
          contentType: s.contentType,
        });
      } else {
        try {
          file = await items.insertFile({
            id: s.fileId,
            ownerId: s.ownerId,
            parentId: s.parentId,
            name,
            nameKey: nameKey(name),
            contentType: s.contentType,
            size: s.size,
            versionId: s.versionId,
          });
        } catch (err) {
          if (err instanceof UniqueViolationError) throw errors.nameConflict(name);
          throw err;
        }
        await items.insertVersion(this.versionRow(s, file.id));
      }
      await this.audit.with(tx).record({
        actorId: s.createdBy,
        ownerId: s.ownerId,
        itemId: file.id,
        action: 'file.commit',
        detail: { versionId: s.versionId, size: s.size, name },
      });
      return { file };
    });
  }

  private async conflictCopyName(name: string, p: Principal): Promise<string> {
    const who = ((await this.users.get(p.userId))?.email ?? 'someone').split('@')[0] ?? 'someone';
    const date = new Date().toISOString().slice(0, 10);
    const dot = name.lastIndexOf('.');
    const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ''];
    return normaliseName(`${stem} (conflicted copy ${who.replace(/[^\p{L}\p{N}._-]/gu, '')} ${date})${ext}`);
  }

  private versionRow(s: UploadSession, fileId: string) {
    return {
      id: s.versionId,
      fileId,
      nodeId: s.nodeId,
      blobKey: s.blobKey,
      size: s.size,
      sha256: s.sha256,
      contentType: s.contentType,
      createdBy: s.createdBy,
    };
  }

  /** A failed verification aborts the session and removes its bytes: nothing half-written stays. */
  private async discard(version: number, s: UploadSession, reason: string) {
    await this.blobs.delete(s.blobKey);
    await this.sessions
      .put(
        { pk: `upload#${s.uploadId}`, sk: 's', data: { ...s, state: 'aborted' } },
        { kind: 'version', version },
      )
      .catch(() => undefined);
    this.log.warn('upload discarded', { uploadId: s.uploadId, reason });
  }

  async downloadUrl(
    p: Principal,
    fileId: string,
    versionId?: string,
  ): Promise<{ url: string; expiresAt: string }> {
    const { item: file } = await this.tree.item(p, fileId, 'file');
    const wanted = versionId ?? file.currentVersionId;
    const v = wanted ? await this.items.getVersion(wanted) : undefined;
    if (!v || v.fileId !== file.id) throw errors.notFound(versionId ? 'version' : 'file');
    const req = await this.blobs.presignGet({
      key: v.blobKey,
      expiresInSeconds: this.opts.urlTtlSeconds,
      fileName: file.name,
      contentType: v.contentType,
    });
    return { url: req.url, expiresAt: req.expiresAt.toISOString() };
  }

  async fileWithVersion(p: Principal, fileId: string) {
    const { item: file, role } = await this.tree.item(p, fileId, 'file');
    const version = file.currentVersionId ? await this.items.getVersion(file.currentVersionId) : undefined;
    if (!version) throw errors.notFound('file');
    return { file, version, role };
  }
}

async function sha256Of(stream: AsyncIterable<Buffer>): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of stream) h.update(chunk);
  return h.digest('hex');
}
