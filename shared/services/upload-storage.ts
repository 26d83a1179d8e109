/**
 * The storage side of an upload session: which node takes it, the parts reused from the previous
 * version inside that node (delta), the signed part URLs, what storage has received, the
 * multipart assembly, and releasing what an ended session holds.
 */

import { DomainError, errors, NotFoundError, UnavailableError } from '../domain/errors.ts';
import type { Version } from '../domain/model.ts';
import { type PartPlan, partLength, type UploadSession } from '../domain/upload-session.ts';
import type { Logger } from '../observability/logger.ts';
import type { BlobStore, UploadedPart } from '../ports/blob-store.ts';
import type { ItemStore } from '../ports/metadata.ts';
import type { NodeRegistry } from './node-registry.ts';
import type { PartHashRecords } from './part-hash-records.ts';
import type { ReplicaLedger } from './replica-ledger.ts';

export interface PartUrl {
  partNumber: number;
  url: string;
  headers: Record<string, string>;
  expiresAt: string;
}

export class UploadStorage {
  private readonly nodes: NodeRegistry;
  private readonly ledger: ReplicaLedger;
  private readonly items: ItemStore;
  private readonly partHashes: PartHashRecords;
  private readonly log: Logger;
  private readonly urlTtlSeconds: number;

  constructor(deps: {
    nodes: NodeRegistry;
    ledger: ReplicaLedger;
    items: ItemStore;
    partHashes: PartHashRecords;
    log: Logger;
    urlTtlSeconds: number;
  }) {
    this.nodes = deps.nodes;
    this.ledger = deps.ledger;
    this.items = deps.items;
    this.partHashes = deps.partHashes;
    this.log = deps.log;
    this.urlTtlSeconds = deps.urlTtlSeconds;
  }

  /** The store of a node this deployment knows; 503 when it is gone from the configuration. */
  node(nodeId: string): BlobStore {
    const store = this.nodes.store(nodeId);
    if (!store) throw errors.unavailable(`storage node ${nodeId}`);
    return store;
  }

  /**
   * The first placed node that answers takes the upload; the ledger copies it to the others. A
   * new version that can reuse parts (`prev`) prefers a placed node already holding the current
   * version, so unchanged parts are copied inside that node (delta) instead of sent again.
   */
  async start(
    versionId: string,
    blobKey: string,
    plan: PartPlan,
    partChecksums: boolean,
    prev: Version | undefined,
  ): Promise<{ nodeId: string; storageUploadId?: string }> {
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
    return { nodeId: primary.id, ...(storageUploadId ? { storageUploadId } : {}) };
  }

  /** The nodes holding a verified copy of a version (its first node always does). */
  private async holdersOf(v: Version): Promise<Set<string>> {
    const held = new Set([v.nodeId]);
    for (const r of await this.ledger.forVersion(v.id))
      if (r.data.state === 'verified') held.add(r.data.nodeId);
    return held;
  }

  /** Delta: parts whose hash matches the same part of `prev` are copied inside the node. */
  async reuseParts(s: UploadSession, plan: PartPlan, declared: Map<number, string>, prev: Version) {
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

  /**
   * Signed URLs for the given parts (renewable while the session lives), bound to the part hashes
   * in `hashes` (those declared since the create) or the session (those declared at create).
   */
  async partUrls(
    s: UploadSession,
    numbers: number[],
    hashes?: ReadonlyMap<number, string>,
  ): Promise<PartUrl[]> {
    const plan = { mode: s.mode, partSize: s.partSize, partCount: s.partCount };
    return Promise.all(
      numbers.map(async (n) => {
        const contentLength = partLength(s.size, plan, n);
        const sha256 = s.mode === 'single' ? s.sha256 : (s.partHashes[n] ?? hashes?.get(n));
        const req =
          s.mode === 'single'
            ? await this.node(s.nodeId).presignPut({
                key: s.blobKey,
                contentLength,
                sha256: s.sha256,
                expiresInSeconds: this.urlTtlSeconds,
              })
            : await this.node(s.nodeId).presignUploadPart({
                key: s.blobKey,
                storageUploadId: s.storageUploadId as string,
                partNumber: n,
                contentLength,
                // S3 accepts per-part checksums only on uploads created with a checksum algorithm.
                ...(sha256 && (s.partChecksums || s.nodeId.startsWith('local')) ? { sha256 } : {}),
                expiresInSeconds: this.urlTtlSeconds,
              });
        return { partNumber: n, url: req.url, headers: req.headers, expiresAt: req.expiresAt.toISOString() };
      }),
    );
  }

  /** The parts storage holds for a session, with their SHA-256 where storage reports it. */
  async receivedParts(s: UploadSession): Promise<UploadedPart[]> {
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

  /**
   * Assembles a multipart upload from the parts the client listed and those reused. A refusal the
   * client can fix (parts missing, storage refusing the list) first puts the session back to
   * uploading through `backToUploading`.
   */
  async assemble(
    s: UploadSession,
    parts: { partNumber: number; etag: string }[],
    backToUploading: () => Promise<unknown>,
  ): Promise<void> {
    if (s.mode !== 'multipart') return;
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
    // An upload that binds its parts hands storage each part's SHA-256 (S3 requires them of a
    // multipart upload created with a checksum algorithm).
    const later = s.partChecksums ? await this.partHashes.all(s.uploadId) : new Map<number, string>();
    const shaOf = (n: number) => s.partHashes[n] ?? later.get(n) ?? s.reused[n]?.sha256;
    try {
      await this.node(s.nodeId).completeMultipartUpload(
        s.blobKey,
        s.storageUploadId as string,
        list.map((x) => {
          const sha256 = s.partChecksums ? shaOf(x.partNumber) : undefined;
          return { partNumber: x.partNumber, etag: x.etag as string, ...(sha256 ? { sha256 } : {}) };
        }),
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

  /** Frees what a session holds in storage: the multipart upload and any assembled object. */
  async release(s: UploadSession): Promise<void> {
    const store = this.nodes.store(s.nodeId);
    if (!store) return; // the node left the configuration; the reconciler owns what it held
    if (s.storageUploadId) await store.abortMultipartUpload(s.blobKey, s.storageUploadId);
    // Only if no version was committed with this blob (a committed session keeps its object).
    if (!(await this.items.getVersion(s.versionId))) await store.delete(s.blobKey);
  }
}
