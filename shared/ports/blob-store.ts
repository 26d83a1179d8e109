/**
 * A storage node: an S3 bucket, an S3-compatible endpoint or a local directory. Clients move bytes
 * to and from a node directly through presigned (S3) or HMAC-signed (local) URLs; the service only
 * signs, verifies and commits. Keys are opaque to the node.
 */
import type { Readable } from 'node:stream';

export interface PresignedRequest {
  url: string;
  method: 'PUT' | 'GET';
  /** Headers the client must send exactly as given (they are part of the signature). */
  headers: Record<string, string>;
  expiresAt: Date;
}

export interface UploadedPart {
  partNumber: number;
  etag: string;
  size: number;
  /** Hex SHA-256 of the part when the node knows it. */
  sha256?: string;
}

export interface BlobStat {
  size: number;
}

export interface PutTarget {
  key: string;
  contentLength: number;
  /** Hex SHA-256 the node must enforce, when the client declared it. */
  sha256?: string;
  expiresInSeconds: number;
}

/**
 * Something a node wrote that is not (or no longer) an object: an open or abandoned multipart
 * upload, a temp file of an interrupted write, an object pushed aside by a replacing write.
 */
export interface Leftover {
  /** Opaque to callers; hand it back to `removeLeftover`. */
  id: string;
  kind: 'multipart' | 'temp' | 'replaced';
  /** The object key a multipart upload will complete to, when the node knows it. */
  key?: string;
  modifiedAt: Date;
}

export interface BlobStore {
  readonly nodeId: string;
  /**
   * How a full sweep learns what this node holds: `'listing'` pages through `listPage` (one request
   * per 1,000 keys) and merge-joins the keys against versions in id order, confirming only what the
   * listing says is missing with a `stat`; `'stat'` (the default) asks once per replica. Listing
   * where each stat is a priced request with its own rate limit (S3: a HEAD per replica costs 80×
   * the LISTs); stat where it is a local system call.
   */
  readonly sweepBy?: 'listing' | 'stat';

  /** A URL for a single PUT of a whole object (small files). */
  presignPut(target: PutTarget): Promise<PresignedRequest>;

  createMultipartUpload(key: string, opts: { partChecksums: boolean }): Promise<string>;
  presignUploadPart(
    target: PutTarget & { storageUploadId: string; partNumber: number },
  ): Promise<PresignedRequest>;
  listParts(key: string, storageUploadId: string): Promise<UploadedPart[]>;
  completeMultipartUpload(
    key: string,
    storageUploadId: string,
    parts: readonly { partNumber: number; etag: string; sha256?: string }[],
  ): Promise<void>;
  abortMultipartUpload(key: string, storageUploadId: string): Promise<void>;

  /**
   * A URL for downloading the object. Multi-use by default: a client may fetch it again, resume
   * with Range, until it expires. With `singleUse` (downloads that spend a budget), a node that can
   * serves the URL once, whole, and answers every later fetch 410 `download-url-used` (local
   * nodes: a nonce inside the signature, consumed durably on the first fetch). A node that cannot
   * (S3: a presigned URL is valid for any number of requests until it expires) caps the URL's
   * lifetime instead, so that a spent download can be repeated only briefly.
   */
  presignGet(input: {
    key: string;
    expiresInSeconds: number;
    fileName: string;
    contentType: string;
    singleUse?: boolean;
  }): Promise<PresignedRequest>;

  /**
   * Fills part `partNumber` of a multipart upload server-side from a byte range of an existing
   * object (S3 UploadPartCopy), so unchanged parts of a new version never travel again.
   */
  copyPart(input: {
    key: string;
    storageUploadId: string;
    partNumber: number;
    sourceKey: string;
    /** Inclusive byte range of the source. */
    start: number;
    end: number;
  }): Promise<UploadedPart>;

  /** undefined when the object does not exist. */
  stat(key: string): Promise<BlobStat | undefined>;
  /** Streams the object (or an inclusive byte range of it); throws a not-found DomainError when absent. */
  read(key: string, range?: { start: number; end: number }): Promise<Readable>;
  write(key: string, body: Buffer): Promise<void>;
  /** Streams `size` bytes into the object (replication); answers the SHA-256 of what was stored. */
  writeStream(key: string, body: Readable, size: number): Promise<{ sha256: string }>;
  delete(key: string): Promise<void>;
  /**
   * One page of the objects whose keys start with `prefix`, in key order (see `compareBlobKeys`),
   * after `startAfter` when given (any string: it need not be a key that exists), at most `limit`
   * (default and cap `MAX_LIST_PAGE`). `next` is there exactly when more keys follow; pass it back
   * as `startAfter`. The cursor is a key, so a caller may delete what it listed before asking for
   * the next page, and may seek (`startAfter: 'v/<versionId>'` to merge-join against versions in
   * id order).
   */
  listPage(prefix: string, opts?: { startAfter?: string; limit?: number }): Promise<BlobPage>;
  /** Leftovers last touched before `olderThan` (for the orphan sweep). */
  leftovers(olderThan: Date, limit?: number): Promise<Leftover[]>;
  /** Removes a leftover (aborts a multipart upload); idempotent. */
  removeLeftover(leftover: Leftover): Promise<void>;
  ping(): Promise<void>;

  /**
   * Copies `key` from `source`, another node, without its bytes passing through this process: S3
   * CopyObject or UploadPartCopy between buckets one client can reach, a file copy between local
   * nodes. Refuses (not found, or invalid input) when the source does not hold `size` bytes under
   * `key`. Answers how the copy is vouched for, or undefined when this node cannot copy from that
   * source server-side (the caller streams the bytes instead). Nodes that never can omit it.
   */
  copyFrom?(source: BlobStore, key: string, size: number): Promise<CopyCheck | undefined>;
}

export interface ListedBlob {
  key: string;
  size: number;
  /** When the object was last written. */
  modifiedAt: Date;
}

export interface BlobPage {
  items: ListedBlob[];
  /** The last key of `items`, present exactly when more keys follow. */
  next?: string;
}

/** The largest page `listPage` answers (S3's ListObjectsV2 caps MaxKeys at 1,000). */
export const MAX_LIST_PAGE = 1000;

/**
 * What vouches for a server-side copy, so that the caller need not read it back:
 * - `sha256`: the SHA-256 of the whole stored copy, computed by the storage itself (S3's
 *   full-object checksum of a CopyObject); the caller compares it with the version's.
 * - `same-as-source`: the storage checked the copy against the source object's own checksums,
 *   computed by the storage (`part-sha256`: the SHA-256 of every part, the copy laid out as the
 *   source; `crc64nvme`: the full-object CRC-64/NVME of both), or copied the files in the kernel
 *   (`file-copy`). The copy is then exactly as good as the source replica it came from.
 * - `none`: nothing vouches for it; the caller must read it back.
 */
export type CopyCheck =
  | { kind: 'sha256'; sha256: string }
  | { kind: 'same-as-source'; by: 'part-sha256' | 'crc64nvme' | 'file-copy' }
  | { kind: 'none' };

/**
 * The order every node lists keys in: by Unicode code point, which is the byte order of their UTF-8
 * (S3's order). JavaScript's `<` compares UTF-16 code units, which differs for characters past
 * U+FFFF against U+E000..U+FFFF.
 */
export function compareBlobKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    // A surrogate starts a character past U+FFFF, above every other in code point order.
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/** A page size callers may ask for, capped: S3 never answers more than 1,000 keys at a time. */
export function listPageLimit(limit: number | undefined): number {
  if (limit === undefined) return MAX_LIST_PAGE;
  if (!Number.isInteger(limit) || limit < 1)
    throw new RangeError(`list page limit ${limit} is not a positive integer`);
  return Math.min(limit, MAX_LIST_PAGE);
}
