/**
 * Use cases of files and folders: create and list folders, upload through presigned URLs, commit
 * versions, and sign downloads. Bytes never pass through here except to verify a whole-file hash.
 * Authorisation: the owner, or an admin; anyone else gets 404, so existence never leaks.
 */
import { createHash, randomUUID } from 'node:crypto';
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

export interface FileServiceOptions {
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

const MAX_URLS_PER_RESPONSE = 1000;

export class FileService {
  private readonly db: Database;
  private readonly items: ItemRepository;
  private readonly users: UserRepository;
  private readonly sessions: StateStore;
  private readonly blobs: BlobStore;
  private readonly log: Logger;
  private readonly opts: FileServiceOptions;

  constructor(
    db: Database,
    items: ItemRepository,
    users: UserRepository,
    sessions: StateStore,
    blobs: BlobStore,
    log: Logger,
    opts: FileServiceOptions,
  ) {
    this.db = db;
    this.items = items;
    this.users = users;
    this.sessions = sessions;
    this.blobs = blobs;
    this.log = log;
    this.opts = opts;
  }

  private async visible(p: Principal, id: string): Promise<Item> {
    const item = await this.items.get(id);
    if (!item || item.deletedAt || (item.ownerId !== p.userId && p.role !== 'admin')) throw errors.notFound();
    return item;
  }

  private async folder(p: Principal, id: string): Promise<Item> {
    const folderId = id === 'root' ? (await this.users.get(p.userId))?.rootFolderId : id;
    if (!folderId) throw errors.notFound('folder');
    const f = await this.visible(p, folderId).catch(() => {
      throw errors.notFound('folder');
    });
    if (f.kind !== 'folder') throw errors.notFound('folder');
    return f;
  }

  async createFolder(p: Principal, parentId: string, rawName: string): Promise<Item> {
    const parent = await this.folder(p, parentId);
    const name = normaliseName(rawName);
    try {
      return await this.items.insertFolder({
        id: randomUUID(),
        ownerId: parent.ownerId,
        parentId: parent.id,
        name,
        nameKey: nameKey(name),
      });
    } catch (err) {
      if (err instanceof UniqueViolationError) throw errors.nameConflict(name);
      throw err;
    }
  }

  async listChildren(p: Principal, folderId: string, cursor: string | undefined, limit: number) {
    const folder = await this.folder(p, folderId);
    const after = cursor === undefined ? undefined : decodeCursor(cursor);
    const rows = await this.items.listChildren(folder.id, after, limit + 1);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      folder,
      items: page.map((r) => r.item),
      nextCursor:
        rows.length > limit && last ? encodeCursor({ nameKey: last.nameKey, id: last.item.id }) : null,
    };
  }

  async getFile(p: Principal, id: string): Promise<Item> {
    const item = await this.visible(p, id);
    if (item.kind !== 'file') throw errors.notFound('file');
    return item;
  }

  async createUpload(
    p: Principal,
    input: { parentId: string; name: string; size: number; sha256: string; contentType: string },
  ) {
    const parent = await this.folder(p, input.parentId);
    const name = normaliseName(input.name);
    if (input.size > this.opts.maxFileBytes) throw errors.payloadTooLarge(this.opts.maxFileBytes);
    const existing = await this.items.findLiveChild(parent.id, nameKey(name));
    if (existing?.kind === 'folder') throw errors.nameConflict(name);
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
      fileId: existing?.id ?? randomUUID(),
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
    if (!s || (s.data.ownerId !== p.userId && p.role !== 'admin')) throw errors.notFound('upload');
    return s;
  }

  async completeUpload(p: Principal, uploadId: string, parts: { partNumber: number; etag: string }[]) {
    const rec = await this.session(p, uploadId);
    const s = rec.data;
    if (s.state === 'committed' && s.result)
      return { ...s.result, name: s.name, size: s.size, sha256: s.sha256, replayed: true };
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
        // A retry after a crash between storage completion and commit finds the object already whole.
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
    const fileId = await this.commit(s);
    const result = { fileId, versionId: s.versionId };
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
    this.log.info('upload committed', { uploadId, fileId, versionId: s.versionId, size: s.size });
    return { ...result, name: s.name, size: s.size, sha256: s.sha256, replayed: false };
  }

  /** Metadata commit: the version row, the file's current version and the owner's usage, atomically. */
  private async commit(s: UploadSession): Promise<string> {
    return this.db.transaction(async (tx) => {
      const items = this.items.with(tx);
      const existingVersion = await items.getVersion(s.versionId);
      if (existingVersion) return existingVersion.fileId; // committed before a crash; idempotent
      const parent = await items.get(s.parentId);
      if (!parent || parent.deletedAt) throw errors.notFound('folder');
      const key = nameKey(s.name);
      const existing = await items.findLiveChild(s.parentId, key);
      if (existing?.kind === 'folder') throw errors.nameConflict(s.name);
      let fileId: string;
      if (existing) {
        fileId = existing.id;
        await items.insertVersion(this.versionRow(s, fileId));
        await items.setCurrentVersion(fileId, {
          versionId: s.versionId,
          size: s.size,
          contentType: s.contentType,
        });
      } else {
        fileId = s.fileId;
        await items.insertFile({
          id: fileId,
          ownerId: s.ownerId,
          parentId: s.parentId,
          name: s.name,
          nameKey: key,
          contentType: s.contentType,
          size: s.size,
          versionId: s.versionId,
        });
        await items.insertVersion(this.versionRow(s, fileId));
      }
      await items.addUsage(s.ownerId, s.size);
      return fileId;
    });
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
      createdBy: s.ownerId,
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

  async downloadUrl(p: Principal, fileId: string): Promise<{ url: string; expiresAt: string }> {
    const file = await this.getFile(p, fileId);
    if (!file.currentVersionId) throw errors.notFound('file');
    const v = await this.items.getVersion(file.currentVersionId);
    if (!v) throw errors.notFound('file');
    const req = await this.blobs.presignGet({
      key: v.blobKey,
      expiresInSeconds: this.opts.urlTtlSeconds,
      fileName: file.name,
      contentType: v.contentType,
    });
    return { url: req.url, expiresAt: req.expiresAt.toISOString() };
  }

  async currentVersion(p: Principal, fileId: string) {
    const file = await this.getFile(p, fileId);
    return file.currentVersionId ? this.items.getVersion(file.currentVersionId) : undefined;
  }
}

async function sha256Of(stream: AsyncIterable<Buffer>): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of stream) h.update(chunk);
  return h.digest('hex');
}

function encodeCursor(c: { nameKey: string; id: string }): string {
  return Buffer.from(JSON.stringify([c.nameKey, c.id])).toString('base64url');
}

function decodeCursor(raw: string): { nameKey: string; id: string } {
  try {
    const v = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as unknown;
    if (
      Array.isArray(v) &&
      typeof v[0] === 'string' &&
      typeof v[1] === 'string' &&
      /^[0-9a-f-]{36}$/.test(v[1])
    ) {
      return { nameKey: v[0], id: v[1] };
    }
  } catch {
    // fall through
  }
  throw errors.validation('invalid cursor', [
    { path: 'query.cursor', message: 'not a cursor this API issued' },
  ]);
}
