/**
 * Verification of an upload's bytes, in a single read of the object: its size, SHA-256 and each
 * part's SHA-256 against what the client declared, the content hash, the magic bytes against the
 * type policy, and the malware scan; and the later rescans of versions whose scan could not finish.
 */

import { createHash } from 'node:crypto';
import { ContentHasher } from '../domain/content-hash.ts';
import { errors } from '../domain/errors.ts';
import { checkContent, type TypePolicy } from '../domain/file-type.ts';
import type { ScanState } from '../domain/model.ts';
import type { UploadSession } from '../domain/upload-session.ts';
import type { Logger } from '../observability/logger.ts';
import type { ItemStore } from '../ports/metadata.ts';
import type { Scanner } from '../ports/scanner.ts';
import type { MetadataCache } from './metadata-cache.ts';
import type { UploadStorage } from './upload-storage.ts';

const SNIFF_BYTES = 4096;

export interface Verified {
  /** The type to store and serve: the declared one when the bytes agree, else what they show. */
  contentType: string;
  sha256: string;
  contentHash: string;
  partHashes: string[];
  head: Buffer;
  scanState: ScanState;
}

/**
 * What the bytes in storage turned out to be: not there yet (the session can go back to
 * uploading), refused (the session is discarded, and `error` answers the client), or verified.
 */
export type Verdict =
  | { kind: 'missing' }
  | { kind: 'refused'; reason: string; error: unknown }
  | { kind: 'verified'; verified: Verified };

export class UploadVerification {
  private readonly storage: Pick<UploadStorage, 'node'>;
  private readonly items: ItemStore;
  private readonly cache: MetadataCache;
  private readonly scanner: Scanner | undefined;
  private readonly typePolicy: TypePolicy;
  private readonly log: Logger;

  constructor(deps: {
    storage: Pick<UploadStorage, 'node'>;
    items: ItemStore;
    cache: MetadataCache;
    scanner: Scanner | undefined;
    typePolicy: TypePolicy;
    log: Logger;
  }) {
    this.storage = deps.storage;
    this.items = deps.items;
    this.cache = deps.cache;
    this.scanner = deps.scanner;
    this.typePolicy = deps.typePolicy;
    this.log = deps.log;
  }

  /**
   * What can be checked without reading the object: its size, and its first bytes (one ranged
   * read) against the type policy. An upload verified in the background is refused here, inside
   * the complete request, when its type gives it away.
   */
  async quickCheck(s: UploadSession): Promise<Verdict | { kind: 'plausible' }> {
    const node = this.storage.node(s.nodeId);
    const stat = await node.stat(s.blobKey);
    if (!stat) return { kind: 'missing' };
    if (stat.size !== s.size) {
      return {
        kind: 'refused',
        reason: 'size mismatch',
        error: errors.checksumMismatch(`uploaded ${stat.size} bytes, declared ${s.size}`),
      };
    }
    const head: Buffer[] = [];
    if (s.size > 0)
      for await (const chunk of (await node.read(s.blobKey, {
        start: 0,
        end: Math.min(SNIFF_BYTES, s.size) - 1,
      })) as AsyncIterable<Buffer>)
        head.push(chunk);
    try {
      checkContent(this.typePolicy, { name: s.name, declared: s.contentType, head: Buffer.concat(head) });
    } catch (err) {
      return { kind: 'refused', reason: 'type refused', error: err };
    }
    return { kind: 'plausible' };
  }

  /**
   * The session's assembled object checked against its declaration. `onProgress` hears how many
   * bytes have been read (the background verifier reports it on the session).
   */
  async verify(s: UploadSession, onProgress?: (bytesRead: number) => void): Promise<Verdict> {
    const stat = await this.storage.node(s.nodeId).stat(s.blobKey);
    if (!stat) return { kind: 'missing' };
    if (stat.size !== s.size) {
      return {
        kind: 'refused',
        reason: 'size mismatch',
        error: errors.checksumMismatch(`uploaded ${stat.size} bytes, declared ${s.size}`),
      };
    }
    const inspected = await this.inspect(s, onProgress);
    let verified: Verified;
    try {
      const { contentType } = checkContent(this.typePolicy, {
        name: s.name,
        declared: s.contentType,
        head: inspected.head,
      });
      verified = { ...inspected, contentType };
    } catch (err) {
      return { kind: 'refused', reason: 'type refused', error: err };
    }
    // Per-part integrity, computed here rather than trusted from storage (emulators and some
    // S3-compatible stores do not enforce part checksums).
    const badPart = verified.partHashes.findIndex(
      (h, i) => s.partHashes[i + 1] !== undefined && s.partHashes[i + 1] !== h,
    );
    if (badPart >= 0) {
      return {
        kind: 'refused',
        reason: `part ${badPart + 1} sha256 mismatch`,
        error: errors.checksumMismatch(`part ${badPart + 1} does not match its declared SHA-256`),
      };
    }
    if (verified.sha256 !== s.sha256) {
      return {
        kind: 'refused',
        reason: 'sha256 mismatch',
        error: errors.checksumMismatch('the uploaded data does not match the declared SHA-256'),
      };
    }
    return { kind: 'verified', verified };
  }

  /**
   * One read of the object: SHA-256, each part's SHA-256, the content hash, the head for sniffing,
   * and the malware scan.
   */
  private async inspect(
    s: UploadSession,
    onProgress?: (bytesRead: number) => void,
  ): Promise<Omit<Verified, 'contentType'>> {
    let bytesRead = 0;
    const sha = createHash('sha256');
    const content = new ContentHasher();
    const scan = this.scanner?.start();
    const head: Buffer[] = [];
    let headLen = 0;
    const partSize = s.mode === 'multipart' ? s.partSize : Math.max(1, s.size);
    const partHashes: string[] = [];
    let part = createHash('sha256');
    let inPart = 0;
    for await (const whole of (await this.storage.node(s.nodeId).read(s.blobKey)) as AsyncIterable<Buffer>) {
      sha.update(whole);
      content.update(whole);
      bytesRead += whole.length;
      onProgress?.(bytesRead);
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
        for await (const chunk of (await this.storage
          .node(v.nodeId)
          .read(v.blobKey)) as AsyncIterable<Buffer>)
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
}
