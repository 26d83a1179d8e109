/**
 * One read of an uploaded object: its SHA-256, each part's SHA-256, the content hash, the first
 * bytes for the type check, and the malware scan, all fed by the same stream.
 *
 * A resumable inspection can stop before the end and continue in a later run from a checkpoint.
 * The background verifier in AWS needs that: one Lambda run lasts 15 minutes at most, and a file of
 * a few hundred GB takes longer to read. Node's own SHA-256 cannot hand over its state, so a
 * resumable inspection keeps the whole-file SHA-256 (and the content hash's outer SHA-256, fed 32
 * bytes per 4 MiB) in a resumable SHA-256 (the ResumableSha256 port; hash-wasm), whose state can be
 * saved and loaded. It is slower than Node's (about 200–400 MB/s here, against 1.7 GB/s), near
 * what one S3 stream delivers to a Lambda, so only background verifications with a run limit use it.
 *
 * A checkpoint falls where a part and a content-hash block both end, so the part and block
 * hashers in flight (plain Node hashes) start empty on resume. The part digests done so far are
 * not in the checkpoint (10,000 of them would pass DynamoDB's 400 KB item limit): they are handed
 * to `onParts` as they complete, and given back whole at the end.
 */

import { createHash, type Hash } from 'node:crypto';
import { CONTENT_HASH_BLOCK } from '../domain/content-hash.ts';
import type { ScanState } from '../domain/model.ts';
import type { VerifyCheckpoint as InspectionCheckpoint } from '../domain/upload-session.ts';
import type { ResumableHash, ResumableSha256 } from '../ports/resumable-hash.ts';
import type { Scanner, ScanSession } from '../ports/scanner.ts';

export type { InspectionCheckpoint };

/** A checkpoint this inspection cannot go on from (the settings or the scanner changed): start over. */
export class CannotResume extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CannotResume';
  }
}

export const SNIFF_BYTES = 4096;

export interface Inspected {
  sha256: string;
  contentHash: string;
  partHashes: string[];
  head: Buffer;
  /** The scan's verdict; `scanning` when the scanner could not answer (the version stays quarantined). */
  scan: { state: ScanState; signature?: string } | { state: 'scanning'; error: unknown };
}

/** A hash that will not be checkpointed: Node's, the fastest. */
function nodeHash(): ResumableHash {
  let h = createHash('sha256');
  return {
    update: (b) => {
      h.update(b);
    },
    digest: () => h.digest(),
    save: () => {
      throw new Error('a Node hash cannot be checkpointed');
    },
    reset: () => {
      h = createHash('sha256');
    },
  };
}

/**
 * Stops fall where a part and a content block both end, if that comes at least every 64 MiB;
 * otherwise (a part size that is not a multiple of 4 MiB, say) at every block end, with the part
 * in flight kept in a resumable hash too.
 */
const MAX_STOP_INTERVAL = 64 * 1024 * 1024;

const lcm = (a: number, b: number) => {
  let [x, y] = [a, b];
  while (y) [x, y] = [y, x % y];
  return (a / x) * b;
};

export interface InspectionRun {
  /** Epoch ms after which the run stops at the next checkpoint; never stops when absent. */
  stopAfter?: number;
  /** Bytes inspected so far (across runs). */
  onProgress?: (bytesRead: number) => void;
}

export class Inspection {
  /** Part digests completed in this run, by part number, until handed to `onParts`. */
  private readonly newParts = new Map<number, string>();
  private readonly headChunks: Buffer[] = [];
  private headLen = 0;
  private offset: number;
  private readonly part: ResumableHash;
  private inPart = 0;
  /** Parts complete; a checkpoint falls on a part boundary. */
  private partsDone: number;
  private block: Hash = createHash('sha256');
  private inBlock = 0;
  private readonly stopEvery: number;

  private readonly size: number;
  private readonly partSize: number;
  private readonly sha: ResumableHash;
  private readonly content: ResumableHash;
  private readonly scan: ScanSession | undefined;
  private readonly feedsScan: boolean;
  private readonly resumable: boolean;
  private readonly runsBefore: number;
  private readonly scannerName: string | undefined;

  private constructor(o: {
    size: number;
    partSize: number;
    sha: ResumableHash;
    content: ResumableHash;
    part: ResumableHash;
    stopEvery: number;
    scan: ScanSession | undefined;
    scannerName: string | undefined;
    feedsScan: boolean;
    resumable: boolean;
    from: InspectionCheckpoint | undefined;
  }) {
    this.size = o.size;
    this.partSize = o.partSize;
    this.sha = o.sha;
    this.content = o.content;
    this.scan = o.scan;
    this.feedsScan = o.feedsScan;
    this.resumable = o.resumable;
    this.runsBefore = o.from?.runs ?? 0;
    this.offset = o.from?.offset ?? 0;
    this.partsDone = Math.floor(this.offset / o.partSize);
    this.inPart = this.offset % o.partSize;
    this.part = o.part;
    this.stopEvery = o.stopEvery;
    this.scannerName = o.scannerName;
    if (o.from?.head) {
      const head = Buffer.from(o.from.head, 'base64');
      this.headChunks.push(head);
      this.headLen = head.length;
    }
  }

  /**
   * An inspection of `size` bytes in parts of `partSize`. `resumable` makes it able to stop (and
   * slower); `from` continues a stopped one. A scanner that reads bytes but cannot checkpoint makes
   * the inspection unable to stop: it runs to the end.
   */
  static async open(o: {
    size: number;
    partSize: number;
    scanner: Scanner | undefined;
    target: { nodeId: string; key: string };
    /** The resumable SHA-256 a resumable inspection keeps its running hashes in. */
    resumable: ResumableSha256 | false;
    from?: InspectionCheckpoint;
  }): Promise<Inspection> {
    const sha256 = o.resumable && !(o.scanner?.needsBytes && !o.scanner.resume) ? o.resumable : undefined;
    if (o.from && !sha256) throw new CannotResume('this inspection cannot stop, so it cannot resume');
    // A checkpoint another scanner made does not say what this one would have seen.
    if (o.from && (o.from.scanner ?? undefined) !== o.scanner?.name)
      throw new CannotResume(
        `checkpoint of scanner ${o.from.scanner ?? 'none'}, now ${o.scanner?.name ?? 'none'}`,
      );
    const resumable = sha256 !== undefined;
    const partSize = Math.max(1, o.partSize);
    const aligned = lcm(partSize, CONTENT_HASH_BLOCK);
    const stopEvery = aligned <= MAX_STOP_INTERVAL ? aligned : CONTENT_HASH_BLOCK;
    const sha = sha256 ? await sha256(o.from?.sha256State) : nodeHash();
    const content = sha256 ? await sha256(o.from?.contentState) : nodeHash();
    // The part in flight needs saving only when stops can fall inside a part.
    const part = sha256 && stopEvery % partSize !== 0 ? await sha256(o.from?.partState) : nodeHash();
    if (o.from && (o.from.offset % partSize !== 0) !== (o.from.partState !== undefined))
      throw new CannotResume('checkpoint inside a part without its state');
    const scan =
      o.from?.scan !== undefined && o.scanner?.resume
        ? o.scanner.resume(o.target, o.from.scan)
        : o.scanner?.start(o.target);
    if (o.from && o.scanner?.needsBytes && o.from.scan === undefined && o.from.offset > 0)
      throw new CannotResume('checkpoint without the scan state');
    return new Inspection({
      size: o.size,
      partSize,
      sha,
      content,
      part,
      stopEvery,
      scan,
      scannerName: o.scanner?.name,
      feedsScan: scan !== undefined && o.scanner?.needsBytes !== false,
      resumable,
      from: o.from,
    });
  }

  /** Where the next run starts. */
  get position(): number {
    return this.offset;
  }

  /**
   * Feeds the bytes from `position` on (a stream of the object from that offset) until the end,
   * or until `run.stopAfter` has passed at a checkpoint. Returns whether it reached the end.
   */
  async feed(stream: AsyncIterable<Buffer>, run: InspectionRun = {}): Promise<'done' | 'stopped'> {
    for await (const chunk of stream) {
      let off = 0;
      while (off < chunk.length) {
        // Up to the next checkpoint boundary, so a stop falls exactly on one.
        const toBoundary = this.stopEvery - (this.offset % this.stopEvery);
        const take = Math.min(toBoundary, chunk.length - off, this.size - this.offset);
        if (take <= 0) break;
        const piece = chunk.subarray(off, off + take);
        this.sha.update(piece);
        if (this.feedsScan) this.scan?.update(piece);
        this.hashParts(piece);
        this.hashBlocks(piece);
        if (this.headLen < SNIFF_BYTES) {
          const h = piece.subarray(0, SNIFF_BYTES - this.headLen);
          this.headChunks.push(Buffer.from(h));
          this.headLen += h.length;
        }
        this.offset += take;
        off += take;
        run.onProgress?.(this.offset);
        const atBoundary = this.offset % this.stopEvery === 0 && this.offset < this.size;
        if (this.resumable && atBoundary && run.stopAfter !== undefined && Date.now() >= run.stopAfter)
          return 'stopped';
      }
    }
    // A stream that ends short is not a stop: resuming from there would misalign the part hashes.
    if (this.offset < this.size) throw new Error(`the object ended at byte ${this.offset} of ${this.size}`);
    return 'done';
  }

  private hashParts(piece: Buffer) {
    for (let off = 0; off < piece.length; ) {
      const take = Math.min(this.partSize - this.inPart, piece.length - off);
      this.part.update(piece.subarray(off, off + take));
      this.inPart += take;
      off += take;
      if (this.inPart === this.partSize) this.endPart();
    }
  }

  private endPart() {
    this.partsDone++;
    this.newParts.set(this.partsDone, this.part.digest().toString('hex'));
    this.part.reset();
    this.inPart = 0;
  }

  private hashBlocks(piece: Buffer) {
    for (let off = 0; off < piece.length; ) {
      const take = Math.min(CONTENT_HASH_BLOCK - this.inBlock, piece.length - off);
      this.block.update(piece.subarray(off, off + take));
      this.inBlock += take;
      off += take;
      if (this.inBlock === CONTENT_HASH_BLOCK) {
        this.content.update(this.block.digest());
        this.block = createHash('sha256');
        this.inBlock = 0;
      }
    }
  }

  /** Part digests completed since the last call, by part number. */
  takeParts(): Map<number, string> {
    const out = new Map(this.newParts);
    this.newParts.clear();
    return out;
  }

  /** The state to continue from. Only at a stop of a resumable inspection. */
  checkpoint(): InspectionCheckpoint {
    if (!this.resumable) throw new Error('this inspection cannot stop');
    const scan = this.scan?.checkpoint?.();
    return {
      offset: this.offset,
      sha256State: this.sha.save(),
      contentState: this.content.save(),
      ...(this.inPart > 0 ? { partState: this.part.save() } : {}),
      ...(this.scannerName !== undefined ? { scanner: this.scannerName } : {}),
      head: Buffer.concat(this.headChunks).toString('base64'),
      ...(scan !== undefined ? { scan } : {}),
      runs: this.runsBefore + 1,
    };
  }

  /**
   * The results, once every byte went through. `earlierParts` are the digests of the parts done
   * in earlier runs (those handed out by `takeParts`), by part number.
   */
  async finish(earlierParts: Map<number, string> = new Map()): Promise<Inspected> {
    if (this.inPart > 0 || this.size === 0) this.endPart();
    if (this.inBlock > 0) this.content.update(this.block.digest());
    const parts = new Map([...earlierParts, ...this.newParts]);
    const count = Math.max(1, Math.ceil(this.size / this.partSize));
    const partHashes: string[] = [];
    for (let n = 1; n <= count; n++) {
      const h = parts.get(n);
      if (!h) throw new Error(`part ${n} was never inspected`);
      partHashes.push(h);
    }
    let scan: Inspected['scan'] = { state: 'clean' };
    if (this.scan) {
      try {
        const r = await this.scan.finish();
        scan = { state: r.verdict, ...(r.signature ? { signature: r.signature } : {}) };
      } catch (err) {
        scan = { state: 'scanning', error: err };
      }
    }
    return {
      sha256: this.sha.digest().toString('hex'),
      // Dropbox's content hash is the SHA-256 of the block digests' concatenation: what `content` was fed.
      contentHash: this.content.digest().toString('hex'),
      partHashes,
      head: Buffer.concat(this.headChunks),
      scan,
    };
  }
}
