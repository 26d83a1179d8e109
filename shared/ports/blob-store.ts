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
  /** Objects under a prefix, with when they were last written (for the orphan sweep). */
  list(prefix: string, limit?: number): Promise<{ key: string; size: number; modifiedAt: Date }[]>;
  /** Leftovers last touched before `olderThan` (for the orphan sweep). */
  leftovers(olderThan: Date, limit?: number): Promise<Leftover[]>;
  /** Removes a leftover (aborts a multipart upload); idempotent. */
  removeLeftover(leftover: Leftover): Promise<void>;
  ping(): Promise<void>;
}
