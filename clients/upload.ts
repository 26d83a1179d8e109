/**
 * The client side of a resumable upload, shared by the CLI and the web dashboard:
 * 1. hash the source once (whole-file SHA-256 and one SHA-256 per part);
 * 2. create the session declaring the part hashes, so unchanged parts of the current version are
 *    copied server-side (delta re-upload) and every part URL is bound to its checksum;
 * 3. PUT the remaining parts straight to storage, several at a time, renewing expired URLs and
 *    retrying transient failures (429, 5xx, no answer: Retry-After or jittered back-off, bounded by
 *    the API client's retry policy);
 * 4. complete; a big upload answers 202 and is verified in the background: wait for it, with the
 *    verifier's progress (`clients/upload-verification.ts`). An interrupted upload resumes from its
 *    upload id: the session reports the parts storage already holds, and only the others are sent
 *    (or, once it is being verified, the wait takes up where it stopped).
 * Reading, hashing and the PUT itself are injected: Node uses file handles, node:crypto and fetch;
 * the browser uses Blob slices, hash-wasm and XMLHttpRequest (for upload progress).
 */
import { PARTS_PER_REQUEST, planParts } from '../shared/domain/upload-session.ts';
import {
  ApiError,
  type Committed,
  type CompleteAnswer,
  type PartUrl,
  type StratusApi,
  type UploadStatus,
} from './api.ts';
import { Backoff } from './retry.ts';
import { awaitVerification, VerificationWaitAborted } from './upload-verification.ts';

/** The part size clients ask for. Stable, so a new version lines up with the old one's parts. */
export const CLIENT_PART_SIZE = 8 * 1024 * 1024;

export interface UploadSource {
  size: number;
  read(start: number, end: number): Promise<Uint8Array>;
}
export interface Hasher {
  update(bytes: Uint8Array): void;
  digest(): string;
}
export type PutPart = (
  part: PartUrl,
  body: Uint8Array,
  onProgress: (loaded: number) => void,
  signal: AbortSignal | undefined,
) => Promise<{ status: number; etag: string | null; retryAfter?: string | null }>;

export interface Hashes {
  sha256: string;
  parts: string[];
  partSize: number;
}

export interface Progress {
  phase: 'hashing' | 'uploading' | 'completing' | 'verifying' | 'done';
  /** Bytes hashed, sent or (verifying) read back by the service's verifier so far in this phase. */
  done: number;
  /**
   * Bytes this phase has to process (uploading: the file minus what is reused or already stored;
   * verifying: the file's size).
   */
  total: number;
}

export interface UploadOptions {
  api: StratusApi;
  source: UploadSource;
  parentId: string;
  name: string;
  contentType?: string | undefined;
  baseVersionId?: string | null | undefined;
  newHasher: () => Hasher | Promise<Hasher>;
  putPart: PutPart;
  concurrency?: number;
  partSize?: number;
  /** A session to resume; when it is gone or does not match, a new one is started. */
  resumeUploadId?: string | undefined;
  /** Called once the session exists (persist the id to resume after a crash or Ctrl-C). */
  onSession?: (uploadId: string) => void | Promise<void>;
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal | undefined;
  hashes?: Hashes | undefined;
}

export interface UploadResult extends Committed {
  uploadId: string;
  bytesSent: number;
  bytesSkipped: number;
  resumed: boolean;
}

export class UploadInterrupted extends Error {
  readonly uploadId: string | undefined;
  constructor(uploadId: string | undefined) {
    super('upload interrupted');
    this.name = 'UploadInterrupted';
    this.uploadId = uploadId;
  }
}

const READ_CHUNK = 4 * 1024 * 1024;

/** One pass over the source: the whole-file hash and the hash of every part. */
export async function hashSource(
  source: UploadSource,
  newHasher: () => Hasher | Promise<Hasher>,
  partSize = CLIENT_PART_SIZE,
  onProgress?: (p: Progress) => void,
  signal?: AbortSignal,
): Promise<Hashes> {
  const plan = planParts(source.size, partSize);
  const whole = await newHasher();
  const parts: string[] = [];
  for (let n = 1; n <= plan.partCount; n++) {
    const start = (n - 1) * plan.partSize;
    const end = Math.min(source.size, start + plan.partSize);
    const part = await newHasher();
    for (let at = start; at < end; at += READ_CHUNK) {
      if (signal?.aborted) throw new UploadInterrupted(undefined);
      const bytes = await source.read(at, Math.min(end, at + READ_CHUNK));
      whole.update(bytes);
      part.update(bytes);
      onProgress?.({ phase: 'hashing', done: Math.min(end, at + READ_CHUNK), total: source.size });
    }
    parts.push(part.digest());
  }
  return { sha256: whole.digest(), parts, partSize: plan.partSize };
}

export async function uploadFile(o: UploadOptions): Promise<UploadResult> {
  const partSize = o.partSize ?? CLIENT_PART_SIZE;
  const hashes = o.hashes ?? (await hashSource(o.source, o.newHasher, partSize, o.onProgress, o.signal));
  const plan = planParts(o.source.size, hashes.partSize);
  const multipart = plan.mode === 'multipart';
  const declared = hashes.parts.map((sha256, i) => ({ partNumber: i + 1, sha256 }));

  let uploadId: string | undefined;
  let resumed = false;
  const stored = new Map<number, string>();
  let urls: PartUrl[] = [];
  let bytesSkipped = 0;

  if (o.resumeUploadId) {
    try {
      const s = await o.api.upload(o.resumeUploadId);
      const same = s.size === o.source.size && s.partSize === plan.partSize && s.partCount === plan.partCount;
      if (same && s.state === 'committed' && s.fileId && s.versionId) {
        return {
          fileId: s.fileId,
          versionId: s.versionId,
          name: s.name,
          size: s.size,
          sha256: hashes.sha256,
          uploadId: s.uploadId,
          bytesSent: 0,
          bytesSkipped: s.size,
          resumed: true,
        };
      }
      if (same && (s.state === 'verifying' || s.state === 'failed')) {
        // Its parts are in; what is left is the verifier's answer (or its refusal, told again).
        const committed = await waitForVerdict(o, s, `/v1/uploads/${s.uploadId}`, null, hashes.sha256);
        return { ...committed, uploadId: s.uploadId, bytesSent: 0, bytesSkipped: s.size, resumed: true };
      }
      if (same && (s.state === 'uploading' || s.state === 'completing')) {
        uploadId = s.uploadId;
        resumed = true;
        for (const p of s.receivedParts) {
          const want = hashes.parts[p.partNumber - 1];
          if (!p.sha256 || p.sha256 === want) stored.set(p.partNumber, p.etag);
        }
        bytesSkipped = [...stored.keys()].reduce((sum, n) => sum + partBytes(o.source.size, plan, n), 0);
      }
    } catch (err) {
      if (!(err instanceof ApiError) || (err.status !== 404 && err.status !== 410)) throw err;
    }
  }

  if (!uploadId) {
    const created = await o.api.createUpload({
      parentId: o.parentId,
      name: o.name,
      size: o.source.size,
      sha256: hashes.sha256,
      ...(o.contentType ? { contentType: o.contentType } : {}),
      // At most a batch of hashes at create; the rest go up with the renewals of their URLs,
      // which carry each part's hash (the service refuses more than a batch in one body).
      ...(multipart ? { partSize: plan.partSize, parts: declared.slice(0, PARTS_PER_REQUEST) } : {}),
      ...(o.baseVersionId !== undefined ? { baseVersionId: o.baseVersionId } : {}),
    });
    uploadId = created.uploadId;
    urls = created.parts;
    bytesSkipped = created.bytesSkipped;
    for (const n of created.reusedParts) stored.set(n, '');
  }
  await o.onSession?.(uploadId);
  const id = uploadId;

  const pending = Array.from({ length: plan.partCount }, (_, i) => i + 1).filter((n) => !stored.has(n));
  const total = pending.reduce((sum, n) => sum + partBytes(o.source.size, plan, n), 0);
  const inFlight = new Map<number, number>();
  let sent = 0;
  const report = () => {
    let live = sent;
    for (const v of inFlight.values()) live += v;
    o.onProgress?.({ phase: 'uploading', done: Math.min(live, total), total });
  };
  report();

  const known = new Map(urls.map((u) => [u.partNumber, u]));
  const urlFor = async (n: number, fresh: boolean): Promise<PartUrl> => {
    const have = known.get(n);
    if (!fresh && have && Date.parse(have.expiresAt) - Date.now() > 30_000) return have;
    // Renew a batch at once: the next parts in line need URLs too.
    const batch = pending.filter((m) => m >= n && (fresh ? m === n : !known.has(m))).slice(0, 100);
    if (!batch.includes(n)) batch.unshift(n);
    const renewed = await o.api.renewParts(
      id,
      batch.map((m) => ({ partNumber: m, ...(multipart ? { sha256: hashes.parts[m - 1] as string } : {}) })),
    );
    for (const u of renewed) known.set(u.partNumber, u);
    const got = known.get(n);
    if (!got) throw new Error(`no URL came back for part ${n}`);
    return got;
  };

  const sendPart = async (n: number) => {
    const start = (n - 1) * plan.partSize;
    const body = await o.source.read(start, start + partBytes(o.source.size, plan, n));
    // PUTting the same bytes to the same part again is idempotent: every transient answer is retried.
    const backoff = new Backoff(o.api.retry, o.api.clock);
    let renewals = 0;
    let fresh = false;
    for (;;) {
      if (o.signal?.aborted) throw new UploadInterrupted(id);
      const url = await urlFor(n, fresh);
      fresh = false;
      let status = 0;
      let retryAfter: string | null | undefined;
      let failure: unknown;
      try {
        const res = await o.putPart(
          url,
          body,
          (loaded) => {
            inFlight.set(n, loaded);
            report();
          },
          o.signal,
        );
        inFlight.delete(n);
        if (res.status >= 200 && res.status < 300) {
          stored.set(n, res.etag ?? '');
          sent += body.length;
          report();
          return;
        }
        status = res.status;
        retryAfter = res.retryAfter;
      } catch (err) {
        inFlight.delete(n);
        if (o.signal?.aborted) throw new UploadInterrupted(id);
        failure = err; // no answer (connection reset, refused): status 0
      }
      const refused = () =>
        new ApiError(status, {
          type: 'urn:stratus:problem:part-rejected',
          detail: `storage refused part ${n} (HTTP ${status}${backoff.attempts > 1 ? ` after ${backoff.attempts} attempts` : ''})`,
        });
      // 403: the URL expired or no longer verifies; a fresh one is signed (twice at most).
      // 408, 429, 5xx and no answer: transient. Anything else (400, 409, 413…) will not change.
      const transient = status === 0 || status === 408 || status === 429 || (status >= 500 && status !== 501);
      if (status === 403 && renewals < 2) {
        renewals++;
        fresh = true;
      } else if (!transient) throw refused();
      const wait = backoff.next(retryAfter);
      if (wait === undefined) {
        if (status) throw refused();
        throw new Error(
          `part ${n} failed after ${backoff.attempts} attempts: ${(failure as Error)?.message}`,
        );
      }
      try {
        await o.api.clock.sleep(wait, o.signal);
      } catch {
        throw new UploadInterrupted(id);
      }
    }
  };

  const queue = [...pending];
  const workers = Array.from(
    { length: Math.min(o.concurrency ?? 4, Math.max(1, queue.length)) },
    async () => {
      for (let n = queue.shift(); n !== undefined; n = queue.shift()) await sendPart(n);
    },
  );
  try {
    await Promise.all(workers);
  } catch (err) {
    queue.length = 0;
    throw err;
  }
  if (o.signal?.aborted) throw new UploadInterrupted(id);

  o.onProgress?.({ phase: 'completing', done: total, total });
  const parts = [...stored.entries()]
    .filter(([, etag]) => etag !== '')
    .map(([partNumber, etag]) => ({ partNumber, etag }))
    .sort((a, b) => a.partNumber - b.partNumber);
  const committed = await complete(o, id, parts, hashes.sha256);
  o.onProgress?.({ phase: 'done', done: total, total });
  return { ...committed, uploadId: id, bytesSent: sent, bytesSkipped, resumed };
}

/** Waits out background verification, reporting it as the `verifying` phase. */
async function waitForVerdict(
  o: Pick<UploadOptions, 'api' | 'onProgress' | 'signal'>,
  upload: UploadStatus,
  statusPath: string,
  retryAfter: string | null,
  sha256: string,
): Promise<Committed> {
  try {
    const committed = await awaitVerification(o.api, upload, statusPath, retryAfter, {
      onProgress: (done, total) => o.onProgress?.({ phase: 'verifying', done, total }),
      signal: o.signal,
      sha256,
    });
    o.onProgress?.({ phase: 'verifying', done: upload.size, total: upload.size });
    return committed;
  } catch (err) {
    if (err instanceof VerificationWaitAborted) throw new UploadInterrupted(upload.uploadId);
    throw err;
  }
}

/**
 * Completes the session. Completing is replayed by the service (a committed session answers with its
 * result again), so the API client repeats it after a 503 or a gateway error; a 409 "being completed
 * by another request" means an earlier attempt whose answer was lost is still at work: wait for it.
 * A 202 (or a session found verifying) means the bytes are in and the verifier has them: wait for
 * its verdict.
 */
async function complete(
  o: UploadOptions,
  id: string,
  parts: { partNumber: number; etag: string }[],
  sha256: string,
): Promise<Committed> {
  const { api, signal } = o;
  const backoff = new Backoff(api.retry, api.clock);
  for (;;) {
    let answer: CompleteAnswer;
    try {
      answer = await api.requestComplete(id, parts);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 409)) throw err;
      const s = await api.upload(id);
      if (s.state === 'committed' && s.result) return s.result;
      if (s.state === 'committed' && s.fileId && s.versionId)
        return { fileId: s.fileId, versionId: s.versionId, name: s.name, size: s.size, sha256 };
      if (s.state === 'verifying' || s.state === 'failed')
        return await waitForVerdict(o, s, `/v1/uploads/${id}`, null, sha256);
      const wait = s.state === 'completing' ? backoff.next() : undefined;
      if (wait === undefined) throw err;
      try {
        await api.clock.sleep(wait, signal);
      } catch {
        throw new UploadInterrupted(id);
      }
      continue;
    }
    if (answer.state === 'committed') return answer.result;
    return waitForVerdict(o, answer.upload, answer.statusPath, answer.retryAfter, sha256);
  }
}

function partBytes(size: number, plan: { mode: string; partSize: number; partCount: number }, n: number) {
  if (plan.mode === 'single') return size;
  return n < plan.partCount ? plan.partSize : size - plan.partSize * (plan.partCount - 1);
}

/** A `PutPart` over fetch (Node, or a browser that does not need progress events). */
export const fetchPutPart =
  (doFetch: typeof fetch = fetch): PutPart =>
  async (part, body, onProgress, signal) => {
    const res = await doFetch(part.url, {
      method: 'PUT',
      headers: part.headers,
      body: body as Uint8Array<ArrayBuffer>,
      ...(signal ? { signal } : {}),
    });
    await res.arrayBuffer().catch(() => undefined);
    if (res.ok) onProgress(body.length);
    return { status: res.status, etag: res.headers.get('etag'), retryAfter: res.headers.get('retry-after') };
  };
