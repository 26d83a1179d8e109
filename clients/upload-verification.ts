/**
 * Waiting for an upload the service verifies in the background (CLI and dashboard alike; no Node
 * built-ins). Completing a big upload answers 202 once its parts are assembled: the new version is
 * `verifying` (not served, not shared) until the verifier has read every byte, then `committed`
 * with the result a 201 would have carried, or `failed` with the problem it found (a whole-file
 * SHA-256 that does not match the declared one, a refused type, malware).
 *
 * The client polls the session (the 202's Location) from 250 ms, doubling to 2 s, or as the
 * service's `Retry-After` says (never longer than the retry policy's longest wait), and reports the
 * verifier's progress as bytes of the file. There is no overall deadline: a file of terabytes takes
 * a while to read, and the session says whether it is still at work. Dropped connections are
 * tolerated a few times in a row; 429s and gateway errors are already waited out by the API client.
 */
// Types only: the API client imports this module, and nothing here needs its classes at run time.
import type { Committed, StratusApi, UploadStatus } from './api.ts';
import { DEFAULT_RETRY_POLICY, parseRetryAfter } from './retry.ts';

export const POLL_FIRST_MS = 250;
export const POLL_MAX_MS = 2000;
/** Polls in a row that may get no answer at all (status 0) before the wait gives up. */
const UNREACHABLE_POLLS = 5;

/** The background verifier refused the upload; `type` and `detail` are the service's problem. */
export class UploadVerificationFailed extends Error {
  readonly uploadId: string;
  /** The problem type, e.g. `urn:stratus:problem:checksum-mismatch`. */
  readonly type: string;
  /** The type's slug, e.g. `checksum-mismatch`. */
  readonly slug: string;
  readonly detail: string;

  constructor(uploadId: string, error: { type: string; detail: string }) {
    super(`verification failed: ${error.detail}`);
    this.name = 'UploadVerificationFailed';
    this.uploadId = uploadId;
    this.type = error.type;
    this.slug = error.type.replace(/^urn:stratus:problem:/, '');
    this.detail = error.detail;
  }
}

/** Thrown when the wait is cancelled (Ctrl-C, Pause): the session goes on; wait for it again later. */
export class VerificationWaitAborted extends Error {
  readonly uploadId: string;
  constructor(uploadId: string) {
    super('stopped waiting for verification');
    this.name = 'VerificationWaitAborted';
    this.uploadId = uploadId;
  }
}

/** The wait before poll `n` (0-based): the server's Retry-After when it gives one, else 250 ms doubling to 2 s. */
export function pollDelay(n: number, retryAfter: string | null | undefined, now: number, maxMs: number) {
  const asked = parseRetryAfter(retryAfter, now);
  if (asked !== undefined) return Math.min(asked, maxMs);
  return Math.min(POLL_MAX_MS, POLL_FIRST_MS * 2 ** n);
}

export interface VerificationWait {
  /** Bytes the verifier has read, of the file's size. */
  onProgress?: ((verifiedBytes: number, size: number) => void) | undefined;
  signal?: AbortSignal | undefined;
  /** The whole-file SHA-256 the upload declared (for a service that commits without a `result`). */
  sha256?: string | undefined;
}

/**
 * Polls a `verifying` session until it is committed (its result) or refused (throws
 * `UploadVerificationFailed`). `first` is the session as last seen (the 202's body), `statusPath`
 * where to ask again.
 */
export async function awaitVerification(
  api: StratusApi,
  first: UploadStatus,
  statusPath: string,
  firstRetryAfter: string | null,
  o: VerificationWait = {},
): Promise<Committed> {
  const id = first.uploadId;
  const maxMs = api.retry.maxDelayMs ?? DEFAULT_RETRY_POLICY.maxDelayMs;
  let s = first;
  let retryAfter = firstRetryAfter;
  let unanswered = 0;
  for (let n = 0; ; n++) {
    const settled = outcome(s, o.sha256);
    if (settled) return settled;
    o.onProgress?.(Math.min(s.verifiedBytes ?? 0, s.size), s.size);
    try {
      await api.clock.sleep(pollDelay(n, retryAfter, api.clock.now(), maxMs), o.signal);
    } catch {
      throw new VerificationWaitAborted(id);
    }
    try {
      ({ upload: s, retryAfter } = await api.uploadAt(statusPath));
      unanswered = 0;
    } catch (err) {
      if (o.signal?.aborted) throw new VerificationWaitAborted(id);
      if (!noAnswer(err) || ++unanswered >= UNREACHABLE_POLLS) throw err;
      retryAfter = null;
    }
  }
}

/** The committed result, a thrown refusal, or undefined while the session is still at work. */
function outcome(s: UploadStatus, sha256: string | undefined): Committed | undefined {
  switch (s.state) {
    case 'verifying':
    case 'completing':
      return undefined;
    case 'committed':
      if (s.result) return s.result;
      if (s.fileId && s.versionId && sha256)
        return { fileId: s.fileId, versionId: s.versionId, name: s.name, size: s.size, sha256 };
      throw new Error(`upload ${s.uploadId} is committed but the service did not say as what`);
    case 'failed':
    case 'aborted':
      if (s.error) throw new UploadVerificationFailed(s.uploadId, s.error);
      throw new Error(`upload ${s.uploadId} was ${s.state} while it was being verified`);
    default:
      throw new Error(`upload ${s.uploadId} is ${s.state}, not being verified`);
  }
}

/** An `ApiError` with status 0: the request got no answer (connection refused or reset). */
const noAnswer = (err: unknown) => err instanceof Error && (err as { status?: unknown }).status === 0;
