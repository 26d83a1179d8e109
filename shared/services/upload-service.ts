/**
 * Uploads and downloads. Clients move bytes straight to storage through signed URLs; this service
 * plans parts, signs, reuses unchanged parts of the previous version server-side (delta), verifies
 * (per-part and whole-file SHA-256, content hash, magic bytes, malware scan) in a single read of
 * the object, and commits the version with its file row, usage and audit record in one transaction.
 *
 * Session states: uploading -> completing -> committed, or -> aborted (client, or a failed
 * verification), or -> expired (the session store's TTL; cleaned up from its change stream).
 */

import { createHash, randomUUID } from 'node:crypto';
import { ContentHasher } from '../domain/content-hash.ts';
import {
  ConditionFailedError,
  DomainError,
  errors,
  NotFoundError,
  UnavailableError,
  UniqueViolationError,
} from '../domain/errors.ts';
import { checkContent, checkDeclaredType, type TypePolicy } from '../domain/file-type.ts';
import type { Item, Principal, ScanState, Version } from '../domain/model.ts';
import { nameKey, normaliseName } from '../domain/names.ts';
import {
  MAX_PARTS,
  type PartPlan,
  partLength,
  planParts,
  type UploadSession,
} from '../domain/upload-session.ts';
import type { Logger } from '../observability/logger.ts';
import type { BlobStore, UploadedPart } from '../ports/blob-store.ts';
import type { Database } from '../ports/database.ts';
import type { AuditLog, ItemStore, ReservationStore, UserStore } from '../ports/metadata.ts';
import type { Scanner } from '../ports/scanner.ts';
import type { StateItem, StateStore } from '../ports/state-store.ts';
import type { DownloadLinks } from './download-links.ts';
import type { FolderService } from './folder-service.ts';
import type { MetadataCache } from './metadata-cache.ts';
import type { NodeRegistry } from './node-registry.ts';
import type { ReplicaLedger } from './replica-ledger.ts';
import type { VersionService } from './version-service.ts';

export interface UploadServiceOptions {
  /** Uploads one user may have open at once. */
  maxOpenUploads: number;
  partSizeBytes: number;
  maxFileBytes: number;
  urlTtlSeconds: number;
  uploadTtlSeconds: number;
  typePolicy: TypePolicy;
}

export interface PartUrl {
  partNumber: number;
  url: string;
  headers: Record<string, string>;
  expiresAt: string;
}

export type OnConflict = 'fail' | 'copy';

const MAX_URLS_PER_RESPONSE = 1000;
const SNIFF_BYTES = 4096;
/** How long an expired or aborted session's tombstone answers GET before it is forgotten. */
export const TOMBSTONE_SECONDS = 7 * 86_400;

export const sessionKey = (uploadId: string) => ({ pk: `upload#${uploadId}`, sk: 's' });

/** How long a complete holds its upload before another may take over; renewed every third of it. */
export const COMPLETION_LEASE_MS = 15_000;

const uploadingAgain = (s: UploadSession): UploadSession => {
  const { completingUntil: _held, ...rest } = s;
  return { ...rest, state: 'uploading' };
};

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
class CompletionLease {
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

export class UploadService {
  private readonly db: Database;
  private readonly items: ItemStore;
  private readonly users: UserStore;
  private readonly audit: AuditLog;
  private readonly sessions: StateStore;
  private readonly nodes: NodeRegistry;
  private readonly ledger: ReplicaLedger;
  private readonly scanner: Scanner | undefined;
  private readonly folders: Pick<FolderService, 'folder' | 'item' | 'freeName'>;
  private readonly versions: Pick<VersionService, 'applyRetention'>;
  private readonly cache: MetadataCache;
  private readonly downloads: DownloadLinks;
  private readonly reservations: ReservationStore;
  private readonly log: Logger;
  private readonly opts: UploadServiceOptions;

  constructor(deps: {
    db: Database;
    items: ItemStore;
    users: UserStore;
    audit: AuditLog;
    reservations: ReservationStore;
    sessions: StateStore;
    nodes: NodeRegistry;
    ledger: ReplicaLedger;
    scanner: Scanner | undefined;
    folders: Pick<FolderService, 'folder' | 'item' | 'freeName'>;
    versions: Pick<VersionService, 'applyRetention'>;
    cache: MetadataCache;
    downloads: DownloadLinks;
    log: Logger;
    opts: UploadServiceOptions;
  }) {
    this.db = deps.db;
    this.items = deps.items;
    this.users = deps.users;
    this.audit = deps.audit;
    this.sessions = deps.sessions;
    this.nodes = deps.nodes;
    this.ledger = deps.ledger;
    this.scanner = deps.scanner;
    this.folders = deps.folders;
    this.versions = deps.versions;
    this.cache = deps.cache;
    this.downloads = deps.downloads;
    this.reservations = deps.reservations;
    this.log = deps.log;
    this.opts = deps.opts;
  }

  /** The store of a node this deployment knows; 503 when it is gone from the configuration. */
  private node(nodeId: string): BlobStore {
    const store = this.nodes.store(nodeId);
    if (!store) throw errors.unavailable(`storage node ${nodeId}`);
    return store;
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
    if (input.size > this.opts.maxFileBytes) throw errors.payloadTooLarge(this.opts.maxFileBytes);
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
    const partChecksums = plan.mode === 'multipart' && declared.size === plan.partCount;
    // The first placed node that answers takes the upload; the ledger copies it to the others. A
    // new version that can reuse parts prefers a placed node already holding the current version,
    // so unchanged parts are copied inside that node (delta) instead of sent again.
    const prev =
      plan.mode === 'multipart' && existing?.kind === 'file' && existing.currentVersionId && declared.size
        ? await this.items.getVersion(existing.currentVersionId)
        : undefined;
    const holders = prev?.partHashes ? await this.holdersOf(prev) : new Set<string>();
    await this.nodes.fresh();
    const placed = this.nodes.placement(versionId);
    const candidates = [
      ...placed.filter((n) => holders.has(n.id)),
      ...placed.filter((n) => !holders.has(n.id)),
    ];
    let primary: { id: string; store: BlobStore } | undefined;
    let storageUploadId: string | undefined;
    for (const candidate of candidates) {
      try {
        if (plan.mode === 'multipart')
          storageUploadId = await candidate.store.createMultipartUpload(blobKey, { partChecksums });
        primary = candidate;
        break;
      } catch (err) {
        if (!(err instanceof UnavailableError)) throw err;
        this.nodes.setHealth(candidate.id, 'degraded');
        this.log.warn('storage node failed to start an upload; trying the next', { nodeId: candidate.id });
      }
    }
    if (!primary) throw errors.unavailable('storage');
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
      nodeId: primary.id,
      blobKey,
      ...(storageUploadId ? { storageUploadId } : {}),
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
    if (prev) session.reused = await this.reuseParts(session, plan, declared, prev);
    await this.sessions.put({ ...sessionKey(uploadId), data: session, expiresAt }, { kind: 'absent' });
    const wanted = declared.size
      ? [...declared.keys()].sort((a, b) => a - b)
      : Array.from({ length: plan.partCount }, (_, i) => i + 1);
    const numbers = wanted.filter((n) => !session.reused[n]).slice(0, MAX_URLS_PER_RESPONSE);
    const parts = await this.partUrls(session, numbers);
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

  /** The nodes holding a verified copy of a version (its first node always does). */
  private async holdersOf(v: Version): Promise<Set<string>> {
    const held = new Set([v.nodeId]);
    for (const r of await this.ledger.forVersion(v.id))
      if (r.data.state === 'verified') held.add(r.data.nodeId);
    return held;
  }

  private async reuseParts(s: UploadSession, plan: PartPlan, declared: Map<number, string>, prev: Version) {
    const reused: Record<number, { etag: string; sha256: string }> = {};
    if (prev.partSize !== plan.partSize || !prev.partHashes || !s.storageUploadId) return reused;
    // Parts are copied within a node: the previous version must be held by the upload's node.
    if (!(await this.holdersOf(prev)).has(s.nodeId)) return reused;
    const prevPlan: PartPlan = {
      mode: 'multipart',
      partSize: prev.partSize,
      partCount: prev.partHashes.length,
    };
    for (const [n, sha] of declared) {
      const length = partLength(s.size, plan, n);
      if (
        n > prevPlan.partCount ||
        prev.partHashes[n - 1] !== sha ||
        partLength(prev.size, prevPlan, n) !== length
      )
        continue;
      const start = (n - 1) * plan.partSize;
      const copied: UploadedPart = await this.node(s.nodeId).copyPart({
        key: s.blobKey,
        storageUploadId: s.storageUploadId,
        partNumber: n,
        sourceKey: prev.blobKey,
        start,
        end: start + length - 1,
      });
      reused[n] = { etag: copied.etag, sha256: sha };
    }
    return reused;
  }

  private async partUrls(s: UploadSession, numbers: number[]): Promise<PartUrl[]> {
    const plan = { mode: s.mode, partSize: s.partSize, partCount: s.partCount };
    return Promise.all(
      numbers.map(async (n) => {
        const contentLength = partLength(s.size, plan, n);
        const sha256 = s.mode === 'single' ? s.sha256 : s.partHashes[n];
        const req =
          s.mode === 'single'
            ? await this.node(s.nodeId).presignPut({
                key: s.blobKey,
                contentLength,
                sha256: s.sha256,
                expiresInSeconds: this.opts.urlTtlSeconds,
              })
            : await this.node(s.nodeId).presignUploadPart({
                key: s.blobKey,
                storageUploadId: s.storageUploadId as string,
                partNumber: n,
                contentLength,
                // S3 accepts per-part checksums only on uploads created with a checksum algorithm.
                ...(sha256 && (s.partChecksums || s.nodeId.startsWith('local')) ? { sha256 } : {}),
                expiresInSeconds: this.opts.urlTtlSeconds,
              });
        return { partNumber: n, url: req.url, headers: req.headers, expiresAt: req.expiresAt.toISOString() };
      }),
    );
  }

  private async session(p: Principal, uploadId: string): Promise<StateItem<UploadSession>> {
    const s = await this.sessions.get<UploadSession>(sessionKey(uploadId).pk, 's');
    if (!s || (s.data.createdBy !== p.userId && p.role !== 'admin')) throw errors.notFound('upload');
    return s;
  }

  /**
   * The caller's right to write into the upload's folder, checked again at every step that acts
   * (renew, complete, commit): a grant revoked or downgraded after the upload began, or a folder
   * moved to the trash, stops the upload there (404 or 403, as a new upload would get).
   */
  private async mayStillWrite(p: Principal, s: UploadSession): Promise<void> {
    await this.folders.folder(p, s.parentId, 'write');
  }

  private async save(rec: StateItem<UploadSession>, data: UploadSession, expiresAt = rec.expiresAt) {
    return this.sessions.put(
      { ...sessionKey(data.uploadId), data, ...(expiresAt ? { expiresAt } : {}) },
      { kind: 'version', version: rec.version },
    );
  }

  /** What a client that lost its state needs to resume: the state and the parts that arrived. */
  async getUpload(p: Principal, uploadId: string) {
    const rec = await this.session(p, uploadId);
    const s = rec.data;
    let received: UploadedPart[] = [];
    if (s.state === 'uploading' || s.state === 'completing') received = await this.receivedParts(s);
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
    };
  }

  private async receivedParts(s: UploadSession): Promise<UploadedPart[]> {
    if (s.mode === 'single') {
      const stat = await this.node(s.nodeId).stat(s.blobKey);
      return stat ? [{ partNumber: 1, etag: `"${s.sha256}"`, size: stat.size, sha256: s.sha256 }] : [];
    }
    try {
      return await this.node(s.nodeId).listParts(s.blobKey, s.storageUploadId as string);
    } catch (err) {
      if (err instanceof NotFoundError) return [];
      throw err;
    }
  }

  /** Fresh URLs for the given parts (renewable while the session lives). */
  async renewParts(
    p: Principal,
    uploadId: string,
    parts: { partNumber: number; sha256?: string | undefined }[],
  ) {
    const rec = await this.session(p, uploadId);
    const s = rec.data;
    if (s.state !== 'uploading') throw errors.conflict(`the upload is ${s.state}`, { state: s.state });
    await this.mayStillWrite(p, s);
    const plan = { mode: s.mode, partSize: s.partSize, partCount: s.partCount };
    const declared = this.declaredHashes(
      parts.filter((x): x is { partNumber: number; sha256: string } => typeof x.sha256 === 'string'),
      plan,
    );
    for (const x of parts) {
      if (x.partNumber < 1 || x.partNumber > s.partCount)
        throw errors.validation(`part ${x.partNumber} is outside 1..${s.partCount}`);
    }
    if (declared.size) {
      const next = { ...s, partHashes: { ...s.partHashes, ...Object.fromEntries(declared) } };
      await this.save(rec, next).catch((err: unknown) => {
        if (err instanceof ConditionFailedError) throw errors.conflict('the upload changed; try again');
        throw err;
      });
      return {
        parts: await this.partUrls(
          next,
          parts.map((x) => x.partNumber),
        ),
      };
    }
    return {
      parts: await this.partUrls(
        s,
        parts.map((x) => x.partNumber),
      ),
    };
  }

  /** Client abort: nothing is committed and the stored parts are deleted. Idempotent. */
  async abortUpload(p: Principal, uploadId: string): Promise<void> {
    const rec = await this.session(p, uploadId);
    const s = rec.data;
    if (s.state === 'aborted' || s.state === 'expired') return;
    // A completing upload's bytes may be committed any moment: deleting them would leave a version
    // with no data. Only an upload still uploading can be aborted.
    if (s.state !== 'uploading')
      throw errors.conflict(`the upload is ${s.state}; it can no longer be aborted`, { state: s.state });
    await this.save(rec, { ...s, state: 'aborted' }, Math.floor(Date.now() / 1000) + TOMBSTONE_SECONDS).catch(
      (err: unknown) => {
        if (err instanceof ConditionFailedError)
          throw errors.conflict('the upload changed while aborting; look at its state', {});
        throw err;
      },
    );
    await this.reservations.release(s.uploadId);
    await this.releaseStorage(s);
    this.log.info('upload aborted', { uploadId, userId: p.userId });
  }

  /** Frees what a session holds in storage: the multipart upload and any assembled object. */
  async releaseStorage(s: UploadSession): Promise<void> {
    const store = this.nodes.store(s.nodeId);
    if (!store) return; // the node left the configuration; the reconciler owns what it held
    if (s.storageUploadId) await store.abortMultipartUpload(s.blobKey, s.storageUploadId);
    // Only if no version was committed with this blob (a committed session keeps its object).
    if (!(await this.items.getVersion(s.versionId))) await store.delete(s.blobKey);
  }

  async completeUpload(
    p: Principal,
    uploadId: string,
    parts: { partNumber: number; etag: string }[],
    onConflict?: OnConflict,
  ) {
    const first = await this.session(p, uploadId);
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
    await this.mayStillWrite(p, first.data);
    const s: UploadSession = {
      ...first.data,
      ...(onConflict ? { onConflict } : {}),
      state: 'completing',
      completingUntil: now + COMPLETION_LEASE_MS,
    };
    let lease: CompletionLease;
    try {
      lease = new CompletionLease(await this.save(first, s), (rec, data, expiresAt) =>
        this.save(rec, data, expiresAt),
      );
    } catch (err) {
      if (!(err instanceof ConditionFailedError)) throw err;
      // Another request moved it first: answer what it did, or that it is still at it.
      const now2 = await this.sessions.get<UploadSession>(sessionKey(uploadId).pk, 's');
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

    if (s.mode === 'multipart') {
      const given = new Map(parts.map((x) => [x.partNumber, x.etag]));
      for (const [n, r] of Object.entries(s.reused)) given.set(Number(n), r.etag);
      const list = Array.from({ length: s.partCount }, (_, i) => ({
        partNumber: i + 1,
        etag: given.get(i + 1),
      }));
      const missing = list.filter((x) => !x.etag).map((x) => x.partNumber);
      if (missing.length) {
        await backToUploading();
        throw errors.uploadIncomplete(
          `parts not listed: ${missing.slice(0, 20).join(', ')}${missing.length > 20 ? ', …' : ''}`,
        );
      }
      try {
        await this.node(s.nodeId).completeMultipartUpload(
          s.blobKey,
          s.storageUploadId as string,
          list.map((x) => ({
            partNumber: x.partNumber,
            etag: x.etag as string,
            ...(s.partChecksums && s.partHashes[x.partNumber] ? { sha256: s.partHashes[x.partNumber] } : {}),
          })),
        );
      } catch (err) {
        // A retry after a crash (or a refused commit) finds the object already assembled.
        const alreadyDone = err instanceof NotFoundError && (await this.node(s.nodeId).stat(s.blobKey));
        if (!alreadyDone) {
          if (err instanceof DomainError && !(err instanceof UnavailableError)) await backToUploading();
          throw err;
        }
      }
    }

    const stat = await this.node(s.nodeId).stat(s.blobKey);
    if (!stat) {
      await backToUploading();
      throw errors.uploadIncomplete('no data has been uploaded');
    }
    if (stat.size !== s.size) {
      await this.discard(lease, s, 'size mismatch');
      throw errors.checksumMismatch(`uploaded ${stat.size} bytes, declared ${s.size}`);
    }
    const verified = await this.inspect(s);
    try {
      checkContent(this.opts.typePolicy, { name: s.name, declared: s.contentType, head: verified.head });
    } catch (err) {
      await this.discard(lease, s, 'type refused');
      throw err;
    }
    // Per-part integrity, computed here rather than trusted from storage (emulators and some
    // S3-compatible stores do not enforce part checksums).
    const badPart = verified.partHashes.findIndex(
      (h, i) => s.partHashes[i + 1] !== undefined && s.partHashes[i + 1] !== h,
    );
    if (badPart >= 0) {
      await this.discard(lease, s, `part ${badPart + 1} sha256 mismatch`);
      throw errors.checksumMismatch(`part ${badPart + 1} does not match its declared SHA-256`);
    }
    if (verified.sha256 !== s.sha256) {
      await this.discard(lease, s, 'sha256 mismatch');
      throw errors.checksumMismatch('the uploaded data does not match the declared SHA-256');
    }

    // A request that lost its lease (it stalled past it and another took over) commits nothing.
    if (lease.lost) throw errors.uploadInProgress(1);
    // Verification may have taken a while: the right to write here is checked once more.
    try {
      await this.mayStillWrite(p, s);
    } catch (err) {
      await backToUploading();
      throw err;
    }
    // Resolved before the transaction: PGlite has one connection, so no query may run beside one.
    const copyName = s.onConflict === 'copy' ? await this.conflictCopyName(s.name, p) : s.name;
    let committed: { file: Item };
    try {
      committed = await this.commit(s, copyName, {
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
    // Where the other replicas go; the replicator copies them from the change stream.
    const others = this.nodes
      .placement(s.versionId)
      .map((n) => n.id)
      .filter((id) => id !== s.nodeId)
      .slice(0, this.nodes.replicationFactor - 1);
    await this.ledger.plan(
      { versionId: s.versionId, blobKey: s.blobKey, size: s.size, sha256: s.sha256 },
      s.nodeId,
      others,
    );
    const result = { fileId: committed.file.id, versionId: s.versionId, name: committed.file.name };
    const { completingUntil: _held, ...settled } = s;
    await lease.write({ ...settled, state: 'committed', result }).catch((err: unknown) => {
      if (!(err instanceof ConditionFailedError)) throw err;
    });
    await this.cache.invalidate([committed.file.id], [s.parentId]);
    await this.versions.applyRetention(committed.file);
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

  /**
   * One read of the object: SHA-256, each part's SHA-256, the content hash, the head for sniffing,
   * and the malware scan.
   */
  private async inspect(s: UploadSession) {
    const sha = createHash('sha256');
    const content = new ContentHasher();
    const scan = this.scanner?.start();
    const head: Buffer[] = [];
    let headLen = 0;
    const partSize = s.mode === 'multipart' ? s.partSize : Math.max(1, s.size);
    const partHashes: string[] = [];
    let part = createHash('sha256');
    let inPart = 0;
    for await (const whole of (await this.node(s.nodeId).read(s.blobKey)) as AsyncIterable<Buffer>) {
      sha.update(whole);
      content.update(whole);
      scan?.update(whole);
      for (let off = 0; off < whole.length; ) {
        const take = Math.min(partSize - inPart, whole.length - off);
        part.update(whole.subarray(off, off + take));
        inPart += take;
        off += take;
        if (inPart === partSize) {
          partHashes.push(part.digest('hex'));
          part = createHash('sha256');
          inPart = 0;
        }
      }
      if (headLen < SNIFF_BYTES) {
        head.push(whole.subarray(0, SNIFF_BYTES - headLen));
        headLen += Math.min(whole.length, SNIFF_BYTES - headLen);
      }
    }
    let scanState: ScanState = 'clean';
    if (scan) {
      try {
        const r = await scan.finish();
        scanState = r.verdict;
        if (r.verdict === 'infected')
          this.log.warn('upload infected; quarantined', { uploadId: s.uploadId, signature: r.signature });
      } catch (err) {
        scanState = 'scanning';
        this.log.warn('scanner unavailable; version stays quarantined', {
          uploadId: s.uploadId,
          err: String(err),
        });
      }
    }
    if (inPart > 0 || partHashes.length === 0) partHashes.push(part.digest('hex'));
    return {
      sha256: sha.digest('hex'),
      contentHash: content.digest(),
      partHashes,
      head: Buffer.concat(head),
      scanState,
    };
  }

  /** Rescans versions whose scan could not finish; returns how many got a verdict. */
  async rescanPending(limit = 100): Promise<number> {
    if (!this.scanner) return 0;
    let done = 0;
    for (const v of await this.items.versionsAwaitingScan(limit)) {
      const scan = this.scanner.start();
      try {
        for await (const chunk of (await this.node(v.nodeId).read(v.blobKey)) as AsyncIterable<Buffer>)
          scan.update(chunk);
        const r = await scan.finish();
        await this.items.setScanState(v.id, r.verdict);
        await this.cache.invalidate([v.fileId], []);
        done++;
      } catch (err) {
        this.log.warn('rescan failed; still quarantined', { versionId: v.id, err: String(err) });
      }
    }
    return done;
  }

  /**
   * The metadata commit. Conflicts: a folder at the name, or a file whose current version is not the
   * base the client named, either fail (409, the session stays open so the client can retry with a
   * conflict copy) or commit as "name (conflicted copy <user> <date>).ext".
   */
  private async commit(
    s: UploadSession,
    copyName: string,
    extra: { contentHash: string; partSize: number; partHashes: string[] | null; scanState: ScanState },
  ): Promise<{ file: Item }> {
    return this.db.transaction(async (tx) => {
      const items = this.items.with(tx);
      const already = await items.getVersion(s.versionId);
      if (already) return { file: (await items.get(already.fileId)) as Item }; // committed before a crash
      // The folder and every ancestor must still be live; their rows stay locked until the commit,
      // so a concurrent trash of any of them waits for it (or, on DSQL, conflicts and is retried).
      await items.lockTree(s.ownerId); // first, as every chain-locking transaction does
      const chain = await items.lockChain(s.parentId);
      if (chain.length === 0 || chain.some((a) => a.deletedAt) || chain[chain.length - 1]?.parentId !== null)
        throw errors.notFound('folder');
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
        name = await this.folders.freeName(tx, s.parentId, copyName);
        existing = undefined;
      } else if (!existing && s.baseVersionId) {
        throw errors.conflict('the file this upload is based on no longer exists here', { current: null });
      }
      // The reservation becomes usage: the quota was checked when it was made.
      await this.reservations.with(tx).release(s.uploadId);
      if (!(await items.chargeUsage(s.ownerId, s.size))) throw errors.quotaExceeded();
      const version = {
        id: s.versionId,
        nodeId: s.nodeId,
        blobKey: s.blobKey,
        size: s.size,
        sha256: s.sha256,
        contentType: s.contentType,
        createdBy: s.createdBy,
        ...extra,
      };
      let file: Item;
      if (existing) {
        await items.insertVersion({ ...version, fileId: existing.id });
        file = await items.setCurrentVersion(existing.id, {
          versionId: s.versionId,
          size: s.size,
          contentType: s.contentType,
          scanState: extra.scanState,
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
            scanState: extra.scanState,
          });
        } catch (err) {
          if (err instanceof UniqueViolationError) throw errors.nameConflict(name);
          throw err;
        }
        await items.insertVersion({ ...version, fileId: file.id });
      }
      await this.audit.with(tx).record({
        actorId: s.createdBy,
        ownerId: s.ownerId,
        itemId: file.id,
        action: 'file.commit',
        detail: { versionId: s.versionId, size: s.size, name, scan: extra.scanState },
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

  /** A failed verification aborts the session and removes its bytes: nothing half-written stays. */
  private async discard(lease: CompletionLease, s: UploadSession, reason: string) {
    await this.reservations.release(s.uploadId);
    await this.releaseStorage(s);
    const { completingUntil: _held, ...settled } = s;
    await lease
      .write({ ...settled, state: 'aborted' }, Math.floor(Date.now() / 1000) + TOMBSTONE_SECONDS)
      .catch(() => undefined);
    this.log.warn('upload discarded', { uploadId: s.uploadId, reason });
  }

  async downloadUrl(
    p: Principal,
    fileId: string,
    versionId?: string,
  ): Promise<{ url: string; expiresAt: string }> {
    const { item: file } = await this.folders.item(p, fileId, 'file');
    const wanted = versionId ?? file.currentVersionId;
    const v = wanted ? await this.items.getVersion(wanted) : undefined;
    if (!v || v.fileId !== file.id) throw errors.notFound(versionId ? 'version' : 'file');
    if (v.scanState === 'scanning' || v.scanState === 'infected') throw errors.quarantined(v.scanState);
    const signed = await this.downloads.sign(v, {
      expiresInSeconds: this.opts.urlTtlSeconds,
      fileName: file.name,
    });
    return { url: signed.url, expiresAt: signed.expiresAt.toISOString() };
  }
}
