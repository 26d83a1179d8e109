/**
 * `stratus download` to a file, resumable. Bytes land in `<dest>.stratus-partial`; beside it a
 * small sidecar (`<dest>.stratus-partial.json`) names the version they belong to (id, size,
 * SHA-256, and storage's ETag once seen). Run again after an interruption (Ctrl-C, a killed
 * process, a dropped connection) and the download goes on from the partial's length with
 * `Range: bytes=<have>-` (and `If-Range` with the ETag where storage gave one), as local nodes and
 * S3 answer for signed GETs. The whole file's SHA-256 is checked before it is moved into place.
 *
 * Starting over from byte 0 instead: when the partial belongs to another version (the file changed
 * since, or `--version` asks for another), when storage answers 200 (the whole object, e.g. a
 * single-use URL that ignores Range) or a Content-Range that is not the rest of this version, and
 * once when a resumed download's hash does not match (the partial itself was bad). Within one run,
 * a connection dropped mid-body is resumed the same way, within the retry policy.
 */
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream } from 'node:stream/web';
import { Backoff, fetchWithRetry, type RetryClock, type RetryPolicy, systemClock } from '../clients/retry.ts';

export interface WantedVersion {
  versionId: string;
  size: number;
  sha256: string;
}

interface Sidecar extends WantedVersion {
  /** Storage's strong ETag for these bytes, sent back as If-Range. */
  etag?: string;
}

export interface ResumableDownloadOptions {
  /** Where the file goes once verified. */
  dest: string;
  want: WantedVersion;
  /** A fresh signed URL for exactly `want.versionId` (asked again for each request). */
  url: () => Promise<string>;
  fetch?: typeof fetch;
  retry?: Partial<RetryPolicy>;
  clock?: RetryClock;
  signal: AbortSignal;
  /** Caps the average speed (bytes per second). */
  bytesPerSecond?: number | undefined;
  onProgress?: (done: number, total: number) => void;
}

export interface DownloadOutcome {
  size: number;
  sha256: string;
  /** Bytes already on disk from an earlier run and kept (0: from the start). */
  resumedFrom: number;
  /** Bytes this run received from storage. */
  bytesFetched: number;
}

/** Stopped by the signal: the partial and its sidecar are kept for the next run. */
export class DownloadInterrupted extends Error {
  constructor() {
    super('download interrupted');
    this.name = 'DownloadInterrupted';
  }
}

/** The bytes received do not hash to the version's SHA-256 (nothing is left behind). */
export class DownloadMismatch extends Error {
  readonly expected: string;
  readonly got: string;
  constructor(expected: string, got: string) {
    super(`expected ${expected}, got ${got}`);
    this.name = 'DownloadMismatch';
    this.expected = expected;
    this.got = got;
  }
}

/** Storage refused (or answered something other than the bytes): the partial is kept. */
export class DownloadRefused extends Error {
  readonly status: number;
  constructor(status: number, detail: string) {
    super(`storage answered HTTP ${status}${detail ? `: ${detail}` : ''}`);
    this.name = 'DownloadRefused';
    this.status = status;
  }
}

export const partialPath = (dest: string) => `${dest}.stratus-partial`;
export const sidecarPath = (dest: string) => `${partialPath(dest)}.json`;

export async function resumableDownload(o: ResumableDownloadOptions): Promise<DownloadOutcome> {
  const partial = partialPath(o.dest);
  const sidecar = sidecarPath(o.dest);
  const doFetch = o.fetch ?? ((input, init) => fetch(input, init));
  const { size, sha256 } = o.want;
  const clock = o.clock ?? systemClock;

  let meta = await readSidecar(sidecar);
  let have = 0;
  if (meta && sameVersion(meta, o.want)) have = (await fsp.stat(partial).catch(() => undefined))?.size ?? 0;
  if (!meta || !sameVersion(meta, o.want) || have > size) {
    await fsp.rm(partial, { force: true });
    meta = { ...o.want };
    have = 0;
  }
  // Written before the first byte: a partial is never without the version it belongs to.
  await writeSidecar(sidecar, meta);
  const resumedFrom = have;
  let fetched = 0;
  let restartedAfterMismatch = false;
  const backoff = new Backoff(o.retry, clock);

  for (;;) {
    let hash = await hashPrefix(partial, have);
    while (have < size) {
      if (o.signal.aborted) throw new DownloadInterrupted();
      const headers: Record<string, string> = {};
      if (have > 0) {
        headers.range = `bytes=${have}-`;
        if (meta.etag) headers['if-range'] = meta.etag;
      }
      let res: Response;
      try {
        res = await fetchWithRetry(
          doFetch,
          await o.url(),
          { headers, signal: o.signal },
          { policy: o.retry, clock, signal: o.signal },
        );
      } catch (err) {
        if (o.signal.aborted) throw new DownloadInterrupted();
        throw err;
      }
      if (res.status === 206 && !continues(res.headers.get('content-range'), have, size)) {
        // Not the rest of this version: start over with the whole object.
        await res.body?.cancel().catch(() => undefined);
        ({ have, hash } = await restart(partial));
        continue;
      }
      if (res.status === 416) {
        await res.body?.cancel().catch(() => undefined);
        ({ have, hash } = await restart(partial));
        continue;
      }
      if (res.status !== 200 && res.status !== 206) {
        const detail = (await res.text().catch(() => '')).slice(0, 200);
        throw new DownloadRefused(res.status, detail);
      }
      if (res.status === 200 && have > 0) ({ have, hash } = await restart(partial)); // Range ignored: the whole
      const etag = strongEtag(res.headers.get('etag'));
      if (etag && etag !== meta.etag) {
        meta = { ...meta, etag };
        await writeSidecar(sidecar, meta);
      }
      if (!res.body) throw new DownloadRefused(res.status, 'no body');
      const body = Readable.fromWeb(res.body as ReadableStream<Uint8Array>);
      const counted = have;
      const tap = new Transform({
        transform(chunk: Buffer, _enc, done) {
          hash.update(chunk);
          fetched += chunk.length;
          have += chunk.length;
          o.onProgress?.(have, size);
          done(null, chunk);
        },
      });
      const sink = fs.createWriteStream(partial, { flags: counted > 0 ? 'a' : 'w', mode: 0o644 });
      try {
        await pipeline([body, tap, ...(o.bytesPerSecond ? [throttle(o.bytesPerSecond)] : []), sink]);
      } catch (err) {
        if (o.signal.aborted) throw new DownloadInterrupted();
        // A local file error (disk full, no permission) will not pass by waiting.
        if ((err as NodeJS.ErrnoException).syscall) throw err;
        // Dropped mid-body: go on from what reached the disk (hashed again: a chunk counted above
        // may not have been written).
        const wait = backoff.next();
        if (wait === undefined) throw err;
        await clock.sleep(wait, o.signal).catch(() => {
          throw new DownloadInterrupted();
        });
        have = Math.min(size, (await fsp.stat(partial)).size);
        hash = await hashPrefix(partial, have);
      }
    }
    const got = hash.digest('hex');
    if (got === sha256 && have === size) break;
    if (resumedFrom > 0 && !restartedAfterMismatch) {
      // The kept bytes were not what they claimed (edited, or torn by a crash): once more from 0.
      restartedAfterMismatch = true;
      ({ have } = await restart(partial));
      continue;
    }
    await Promise.all([fsp.rm(partial, { force: true }), fsp.rm(sidecar, { force: true })]);
    throw new DownloadMismatch(sha256, got);
  }
  if (size === 0) await fsp.writeFile(partial, '');
  await fsp.rename(partial, o.dest);
  await fsp.rm(sidecar, { force: true });
  return { size, sha256, resumedFrom: restartedAfterMismatch ? 0 : resumedFrom, bytesFetched: fetched };
}

const sameVersion = (a: WantedVersion, b: WantedVersion) =>
  a.versionId === b.versionId && a.size === b.size && a.sha256 === b.sha256;

async function readSidecar(file: string): Promise<Sidecar | undefined> {
  try {
    const v = JSON.parse(await fsp.readFile(file, 'utf8')) as Partial<Sidecar>;
    if (typeof v.versionId !== 'string' || typeof v.size !== 'number' || typeof v.sha256 !== 'string')
      return undefined;
    return {
      versionId: v.versionId,
      size: v.size,
      sha256: v.sha256,
      ...(typeof v.etag === 'string' ? { etag: v.etag } : {}),
    };
  } catch {
    return undefined; // none, or damaged: as good as none
  }
}

async function writeSidecar(file: string, meta: Sidecar) {
  const tmp = `${file}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, `${JSON.stringify(meta)}\n`, { mode: 0o644 });
  await fsp.rename(tmp, file);
}

async function restart(partial: string): Promise<{ have: number; hash: Hash }> {
  await fsp.rm(partial, { force: true });
  return { have: 0, hash: createHash('sha256') };
}

/** SHA-256 state after the first `length` bytes of the partial (empty when there are none). */
async function hashPrefix(partial: string, length: number): Promise<Hash> {
  const hash = createHash('sha256');
  if (length === 0) return hash;
  await pipeline(fs.createReadStream(partial, { start: 0, end: length - 1 }), async (source) => {
    for await (const chunk of source) hash.update(chunk as Buffer);
  });
  return hash;
}

/** Whether a 206's `Content-Range` is exactly the rest of an object of `size` from `have`. */
function continues(header: string | null, have: number, size: number): boolean {
  const m = header && /^bytes (\d+)-(\d+)\/(\d+)$/.exec(header.trim());
  return Boolean(m && Number(m[1]) === have && Number(m[2]) === size - 1 && Number(m[3]) === size);
}

/** If-Range needs a strong validator (RFC 9110 §13.1.5); a weak one is not sent. */
const strongEtag = (etag: string | null) => (etag && !etag.startsWith('W/') ? etag : undefined);

/** Holds chunks back so the average rate stays at or under `bytesPerSecond`. */
function throttle(bytesPerSecond: number): Transform {
  const start = Date.now();
  let passed = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      passed += chunk.length;
      const due = start + (passed / bytesPerSecond) * 1000 - Date.now();
      if (due > 0) setTimeout(() => done(null, chunk), due);
      else done(null, chunk);
    },
  });
}
