/**
 * Verification of an upload's bytes, in a single read of the object (upload-inspection.ts): its
 * size, SHA-256 and each part's SHA-256 against what the client declared, the content hash, the
 * magic bytes against the type policy, and the malware scan; and the later rescans of versions
 * whose scan could not finish.
 */

import type { Readable } from 'node:stream';
import { errors } from '../domain/errors.ts';
import { checkContent, type TypePolicy } from '../domain/file-type.ts';
import type { ScanState } from '../domain/model.ts';
import type { UploadSession } from '../domain/upload-session.ts';
import type { Logger } from '../observability/logger.ts';
import type { ItemStore } from '../ports/metadata.ts';
import type { ResumableSha256 } from '../ports/resumable-hash.ts';
import type { Scanner } from '../ports/scanner.ts';
import type { MetadataCache } from './metadata-cache.ts';
import { CannotResume, Inspection, type InspectionCheckpoint, SNIFF_BYTES } from './upload-inspection.ts';
import type { UploadStorage } from './upload-storage.ts';

/** How a verification runs: see `UploadVerification.verify`. */
export interface VerifyRun {
  onProgress?: (bytesRead: number) => void;
  resumable?: boolean;
  stopAfter?: number;
  from?: InspectionCheckpoint;
  earlierParts?: () => Promise<Map<number, string>>;
}

/** A resumable verification that ran out of time: where to go on from, and this run's part digests. */
export interface Stopped {
  kind: 'stopped';
  checkpoint: InspectionCheckpoint;
  parts: Map<number, string>;
}

/** The first of `parts` whose digest is not the one the session declared for it, as a refusal. */
function badPart(s: UploadSession, parts: Map<number, string>): Verdict | undefined {
  for (const [n, h] of [...parts].sort((a, b) => a[0] - b[0])) {
    const declared = s.partHashes[n];
    if (declared !== undefined && declared !== h)
      return {
        kind: 'refused',
        reason: `part ${n} sha256 mismatch`,
        error: errors.checksumMismatch(`part ${n} does not match its declared SHA-256`),
      };
  }
  return undefined;
}

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
  private readonly resumableSha256: ResumableSha256 | undefined;
  private readonly typePolicy: TypePolicy;
  private readonly log: Logger;

  constructor(deps: {
    storage: Pick<UploadStorage, 'node'>;
    items: ItemStore;
    cache: MetadataCache;
    scanner: Scanner | undefined;
    /** Lets background runs stop at checkpoints; without it every verification reads to the end. */
    resumableSha256?: ResumableSha256;
    typePolicy: TypePolicy;
    log: Logger;
  }) {
    this.storage = deps.storage;
    this.items = deps.items;
    this.cache = deps.cache;
    this.scanner = deps.scanner;
    this.resumableSha256 = deps.resumableSha256;
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
   * The session's assembled object checked against its declaration, in one read. A `resumable`
   * run may stop once `stopAfter` (epoch ms) has passed: it answers `stopped` with the checkpoint
   * and the part digests of this run, which the caller keeps and hands back (`from`,
   * `earlierParts`) to the next run. `onProgress` hears how many bytes have been read in all.
   */
  async verify(s: UploadSession, run?: VerifyRun & { resumable?: false }): Promise<Verdict>;
  async verify(s: UploadSession, run: VerifyRun): Promise<Verdict | Stopped>;
  async verify(s: UploadSession, run: VerifyRun = {}): Promise<Verdict | Stopped> {
    const stat = await this.storage.node(s.nodeId).stat(s.blobKey);
    if (!stat) return { kind: 'missing' };
    if (stat.size !== s.size) {
      return {
        kind: 'refused',
        reason: 'size mismatch',
        error: errors.checksumMismatch(`uploaded ${stat.size} bytes, declared ${s.size}`),
      };
    }
    const open = (from: InspectionCheckpoint | undefined) =>
      Inspection.open({
        size: s.size,
        partSize: s.mode === 'multipart' ? s.partSize : s.size,
        scanner: this.scanner,
        target: { nodeId: s.nodeId, key: s.blobKey },
        resumable: (run.resumable && this.resumableSha256) || false,
        ...(from ? { from } : {}),
      });
    let inspection: Inspection;
    try {
      inspection = await open(run.from);
    } catch (err) {
      // The settings or the scanner changed since the checkpoint: the verification starts over.
      if (!(err instanceof CannotResume)) throw err;
      this.log.warn('verification checkpoint not resumable; starting over', {
        uploadId: s.uploadId,
        reason: err.message,
      });
      inspection = await open(undefined);
    }
    const from = inspection.position;
    if (from < s.size) {
      const stream = (await this.storage
        .node(s.nodeId)
        .read(s.blobKey, from > 0 ? { start: from, end: s.size - 1 } : undefined)) as Readable;
      try {
        const fed = await inspection.feed(stream, {
          ...(run.stopAfter !== undefined ? { stopAfter: run.stopAfter } : {}),
          ...(run.onProgress ? { onProgress: run.onProgress } : {}),
        });
        if (fed === 'stopped') {
          const parts = inspection.takeParts();
          // A part that already shows it is not what was declared ends the upload now.
          const bad = badPart(s, parts);
          if (bad) return bad;
          return { kind: 'stopped', checkpoint: inspection.checkpoint(), parts };
        }
      } finally {
        stream.destroy();
      }
    }
    const inspected = await inspection.finish((await run.earlierParts?.()) ?? new Map());
    let scanState: ScanState;
    if (inspected.scan.state === 'scanning') {
      scanState = 'scanning';
      this.log.warn('scanner unavailable; version stays quarantined', {
        uploadId: s.uploadId,
        err: String('error' in inspected.scan ? inspected.scan.error : ''),
      });
    } else {
      scanState = inspected.scan.state;
      if (scanState === 'infected')
        this.log.warn('upload infected; quarantined', {
          uploadId: s.uploadId,
          signature: 'signature' in inspected.scan ? inspected.scan.signature : undefined,
        });
    }
    let verified: Verified;
    try {
      const { contentType } = checkContent(this.typePolicy, {
        name: s.name,
        declared: s.contentType,
        head: inspected.head,
      });
      verified = {
        contentType,
        sha256: inspected.sha256,
        contentHash: inspected.contentHash,
        partHashes: inspected.partHashes,
        head: inspected.head,
        scanState,
      };
    } catch (err) {
      return { kind: 'refused', reason: 'type refused', error: err };
    }
    // Per-part integrity, computed here rather than trusted from storage (emulators and some
    // S3-compatible stores do not enforce part checksums).
    const bad = badPart(s, new Map(verified.partHashes.map((h, i) => [i + 1, h])));
    if (bad) return bad;
    if (verified.sha256 !== s.sha256) {
      return {
        kind: 'refused',
        reason: 'sha256 mismatch',
        error: errors.checksumMismatch('the uploaded data does not match the declared SHA-256'),
      };
    }
    return { kind: 'verified', verified };
  }

  /** Rescans versions whose scan could not finish; returns how many got a verdict. */
  async rescanPending(limit = 100): Promise<number> {
    if (!this.scanner) return 0;
    let done = 0;
    for (const v of await this.items.versionsAwaitingScan(limit)) {
      const scan = this.scanner.start({ nodeId: v.nodeId, key: v.blobKey });
      try {
        if (this.scanner.needsBytes)
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
