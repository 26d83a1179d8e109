/**
 * An upload session. States and the only transitions, each a conditional write on the session:
 *   uploading -> completing (one complete wins; others get 409 upload-in-progress)
 *   completing -> committed | uploading (a refusal the client can fix) | aborted (bad bytes)
 *   completing -> verifying (an upload too big to verify inside the request: 202)
 *   verifying -> committed | failed (the background verifier: bad bytes, a refused type)
 *   uploading -> aborted (client) | expired (TTL)
 * An abort of a completing or committed upload is refused: a commit may reference its bytes. The part plan follows
 * S3's rules ("Amazon S3 multipart upload limits", S3 User Guide): parts of 5 MiB to 5 GiB, at
 * most 10,000 of them, so objects up to 10,000 x 5 GiB (the guide's "48.8 TiB"); an object that
 * fits in one part is sent with a single PUT.
 */
export const MiB = 1024 * 1024;
export const MIN_PART = 5 * MiB;
export const MAX_PART = 5 * 1024 * MiB;
export const MAX_PARTS = 10_000;
/** 53,687,091,200,000 bytes (48.83 TiB): the largest object 10,000 parts of 5 GiB make. */
export const MAX_OBJECT = MAX_PARTS * MAX_PART;
/**
 * Part hashes one request may declare, and part URLs one response carries: a full batch (about
 * 97 KB of JSON) fits the smallest allowed request body, and the hashes declared at create stay
 * small enough to live in the session record. A 10,000-part upload declares the rest in batches
 * (`POST /v1/uploads/{id}/parts`).
 */
export const PARTS_PER_REQUEST = 1000;

export type UploadState =
  | 'uploading'
  | 'completing'
  | 'verifying'
  | 'committed'
  | 'failed'
  | 'aborted'
  | 'expired';

/** Why verification refused an upload: the problem type and detail the client is told. */
export interface UploadError {
  type: string;
  detail: string;
}

export interface UploadSession {
  uploadId: string;
  /** Owner of the destination folder (whose quota pays). */
  ownerId: string;
  /** Who started the upload (an owner, or an editor of a shared folder). */
  createdBy: string;
  parentId: string;
  name: string;
  size: number;
  sha256: string;
  contentType: string;
  mode: 'single' | 'multipart';
  partSize: number;
  partCount: number;
  nodeId: string;
  blobKey: string;
  storageUploadId?: string;
  versionId: string;
  fileId: string;
  /** The version the client based this upload on; null means "I expect no file here". */
  baseVersionId?: string | null;
  onConflict: 'fail' | 'copy';
  /** SHA-256 (hex) the client declared per part number. */
  partHashes: Record<number, string>;
  /** Whether the storage multipart upload enforces per-part SHA-256 (all parts declared up front). */
  partChecksums: boolean;
  /** Parts filled server-side from the previous version (delta re-upload). */
  reused: Record<number, { etag: string; sha256: string }>;
  state: UploadState;
  /**
   * While `completing`: epoch milliseconds until which the request completing it holds the upload.
   * It renews the lease as it works; a completer that died (process killed, function timed out)
   * stops renewing, and once the lease has passed another complete may take over.
   */
  completingUntil?: number;
  createdAt: string;
  result?: {
    fileId: string;
    versionId: string;
    name: string;
    contentHash?: string;
    scanState?: 'scanning' | 'clean' | 'infected';
  };
  /** Set when verification refused the bytes (`failed`, or `aborted` by an inline refusal). */
  error?: UploadError;
  /** While `verifying`: bytes the background verifier has read so far. */
  verifiedBytes?: number;
  /** While `verifying`, after a run that stopped before the end: where the next run goes on. */
  verifyCheckpoint?: VerifyCheckpoint;
}

/**
 * Where a resumable verification stopped (services/upload-inspection.ts); small enough to ride on
 * the session record.
 */
export interface VerifyCheckpoint {
  /** Bytes inspected: the next run reads from here. */
  offset: number;
  /** hash-wasm states (base64) of the whole-file SHA-256 and of the content hash's outer SHA-256. */
  sha256State: string;
  contentState: string;
  /** The part in flight (when stops can fall inside a part): its hash-wasm state. */
  partState?: string;
  /** The scanner whose state `scan` is (a checkpoint of another scanner is not resumed). */
  scanner?: string;
  /** The first bytes of the object (base64), for the type check at the end. */
  head: string;
  /** The scan session's checkpoint, when a scanner reads bytes. */
  scan?: string;
  /** Runs so far. */
  runs: number;
}

export interface PartPlan {
  mode: 'single' | 'multipart';
  partSize: number;
  partCount: number;
}

/** Chooses single PUT or multipart, growing the part size so no upload needs over 10,000 parts. */
export function planParts(size: number, preferredPartSize: number): PartPlan {
  if (!Number.isSafeInteger(size) || size < 0 || size > MAX_OBJECT) throw new RangeError('size out of range');
  let partSize = Math.min(MAX_PART, Math.max(MIN_PART, preferredPartSize));
  if (Math.ceil(size / partSize) > MAX_PARTS) partSize = Math.ceil(size / MAX_PARTS / MiB) * MiB;
  if (size <= partSize) return { mode: 'single', partSize: Math.max(size, 0), partCount: 1 };
  return { mode: 'multipart', partSize, partCount: Math.ceil(size / partSize) };
}

/** Byte length of part `n` (1-based) under a plan. */
export function partLength(size: number, plan: PartPlan, n: number): number {
  if (plan.mode === 'single') return size;
  return n < plan.partCount ? plan.partSize : size - plan.partSize * (plan.partCount - 1);
}
