/**
 * The HTTP face of local storage nodes: what S3's endpoint is to a bucket. It verifies its own
 * HMAC signatures (never trusting the caller), streams request bodies through SHA-256 into a
 * temporary file in constant memory, enforces the signed length and hash, and only then moves the
 * data into place. Answers carry an ETag as S3 does, and CORS headers for browser uploads.
 *
 * A GET URL is multi-use and honours a single byte Range (resume), as S3's does, unless it carries
 * a nonce: then it is single-use. The first GET spends the nonce in the ledger before a byte goes
 * out and gets the whole object (Range ignored, as RFC 9110 allows: a part would spend the one
 * download); every later GET answers 410 `download-url-used`. A HEAD spends nothing.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DomainError, errors } from '../../domain/errors.ts';
import { problemBody, problemHeaders, statusOf } from '../../http/problem.ts';
import { type Metrics, noMetrics } from '../../ports/metrics.ts';
import {
  etagOf,
  type LocalFsBlobStore,
  type PartMeta,
  syncDir,
  writeFileDurably,
} from './localfs-blob-store.ts';
import type { UrlNonceLedger } from './url-nonce-ledger.ts';
import { type SignedFields, UrlSigner } from './url-signer.ts';

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, PUT, HEAD, OPTIONS',
  'access-control-allow-headers': 'content-type, content-length, range, x-amz-checksum-sha256',
  'access-control-expose-headers': 'etag, x-amz-checksum-sha256, accept-ranges, content-range',
  'access-control-max-age': '600',
};

export type NodeServerLog = (entry: Record<string, unknown>) => void;

export class LocalStorageNodeServer {
  /** Read on every request: nodes added at run time are served at once. */
  private readonly nodes: readonly LocalFsBlobStore[];

  private readonly log: NodeServerLog;

  private readonly metrics: Metrics;

  /** Where single-use URLs are spent; without one, a single-use URL is refused (503), never served twice. */
  private readonly nonces: UrlNonceLedger | undefined;

  constructor(
    nodes: readonly LocalFsBlobStore[],
    log: NodeServerLog = () => undefined,
    metrics: Metrics = noMetrics,
    nonces?: UrlNonceLedger,
  ) {
    this.nonces = nonces;
    this.metrics = metrics;
    this.log = log;
    this.nodes = nodes;
  }

  /** Handles /storage/<nodeId>/<op>?…; returns false when the path is not a storage path. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    const m = /^\/storage\/([A-Za-z0-9_-]{1,64})\/(put|part|get)$/.exec(url.pathname);
    if (!m) return false;
    try {
      if (req.method === 'OPTIONS') {
        res.writeHead(204, CORS).end();
        return true;
      }
      const node = this.nodes.find((n) => n.nodeId === m[1]);
      if (!node) throw errors.notFound('storage node');
      // Strict: a repeated, unknown or misplaced parameter is no signed URL (see UrlSigner.parse);
      // the path's node and op must be the signed ones.
      const parsed = UrlSigner.parse(url.searchParams);
      const nowS = Math.floor(Date.now() / 1000);
      if (!parsed || parsed.fields.node !== node.nodeId || parsed.fields.op !== m[2])
        throw errors.signatureInvalid();
      if (!node.signer.verify(parsed.fields, parsed.sig, nowS)) throw errors.signatureInvalid();
      const f = parsed.fields;
      const expectedMethod = f.op === 'get' ? ['GET', 'HEAD'] : ['PUT'];
      if (!expectedMethod.includes(req.method ?? ''))
        throw errors.signatureInvalid('the signed URL is for another method');
      if (f.op === 'get') await this.serveGet(node, f, req, res);
      else await this.receive(node, f, req, res);
    } catch (err) {
      const e = err instanceof DomainError ? err : undefined;
      if (!e)
        this.log({ level: 'error', msg: 'storage node failure', err: String((err as Error)?.stack ?? err) });
      const status = statusOf(e);
      if (!res.headersSent) {
        res.writeHead(status, {
          ...CORS,
          ...problemHeaders(e),
          'content-type': 'application/problem+json',
          connection: 'close',
        });
        res.end(JSON.stringify(problemBody(e ?? errors.unavailable('storage'), url.pathname)));
      } else {
        res.destroy();
      }
      req.resume();
    }
    return true;
  }

  private async receive(
    node: LocalFsBlobStore,
    f: NonNullable<ReturnType<typeof UrlSigner.parse>>['fields'],
    req: IncomingMessage,
    res: ServerResponse,
  ) {
    const declared = req.headers['content-length'];
    if (f.len !== undefined && (declared === undefined || Number(declared) !== f.len)) {
      throw errors.validation(`Content-Length must be ${f.len}, as the URL was signed for`);
    }
    // Destination checks before reading a byte.
    let uploadDir: string | undefined;
    if (f.op === 'part') {
      if (!f.upload || !f.part || f.part < 1 || f.part > 10_000) throw errors.signatureInvalid();
      // The upload must exist and be for the signed key (the key is signed, so it must mean something).
      uploadDir = await node.openUpload(f.key, f.upload);
    }
    const limit = f.len ?? Number.POSITIVE_INFINITY;
    const hash = createHash('sha256');
    let received = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        received += chunk.length;
        if (received > limit) return cb(errors.validation('body is longer than the signed length'));
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    const tmp = node.tmpPath();
    let placed = false;
    try {
      // Durability: the 200 below promises the part survives a crash, so its bytes reach the disk
      // first (`flush`: an fsync before the stream closes, on the handle that wrote them), then its
      // name and record (writeFileDurably, syncDir). One sync per part, not per write. Writes are
      // the socket's 64 KiB chunks batched by the stream into 1 MiB writev calls.
      await pipeline(req, meter, createWriteStream(tmp, { highWaterMark: 1024 * 1024, flush: true }));
      if (received !== limit && f.len !== undefined)
        throw errors.validation('body is shorter than the signed length');
      const sha = hash.digest('hex');
      if (f.sha !== undefined && sha !== f.sha) {
        throw errors.checksumMismatch('the body does not match the SHA-256 the URL was signed for');
      }
      if (f.op === 'part' && uploadDir && f.part) {
        const meta: PartMeta = { partNumber: f.part, size: received, sha256: sha };
        await fs.rename(tmp, path.join(uploadDir, `part.${f.part}`));
        placed = true;
        await writeFileDurably(path.join(uploadDir, `part.${f.part}.json`), JSON.stringify(meta));
        await syncDir(uploadDir);
      } else {
        const dir = node.tmpPath();
        await fs.mkdir(dir);
        await fs.rename(tmp, path.join(dir, 'part.1'));
        placed = true;
        await writeFileDurably(
          path.join(dir, 'manifest.json'),
          JSON.stringify({ size: received, parts: [{ partNumber: 1, size: received }] }),
        );
        await syncDir(dir);
        await node.moveIntoPlace(dir, f.key);
      }
      this.metrics.count('stratus_storage_bytes_in_total', { node: node.nodeId }, received);
      res.writeHead(200, {
        ...CORS,
        etag: etagOf(sha),
        'x-amz-checksum-sha256': Buffer.from(sha, 'hex').toString('base64'),
        'content-length': '0',
      });
      res.end();
    } finally {
      if (!placed) await fs.rm(tmp, { force: true });
    }
  }

  private async serveGet(node: LocalFsBlobStore, f: SignedFields, req: IncomingMessage, res: ServerResponse) {
    const stat = await node.stat(f.key);
    if (!stat) throw errors.notFound('object');
    const head = req.method === 'HEAD';
    if (f.nonce !== undefined) {
      if (!this.nonces) throw errors.unavailable('single-use URL ledger');
      const fresh = head
        ? !(await this.nonces.spent(f.nonce))
        : await this.nonces.consume(f.nonce, node.nodeId, f.exp);
      if (!fresh) throw errors.downloadUrlUsed();
    }
    const range = f.nonce === undefined ? byteRange(req.headers.range, stat.size) : undefined;
    const length = range ? range.end - range.start + 1 : stat.size;
    res.writeHead(range ? 206 : 200, {
      ...CORS,
      'content-type': f.type ?? 'application/octet-stream',
      'content-length': String(length),
      'content-disposition': `attachment; filename*=UTF-8''${encodeURIComponent(f.name ?? 'download')}`,
      'x-content-type-options': 'nosniff',
      'cache-control': 'private, no-store',
      'accept-ranges': f.nonce === undefined ? 'bytes' : 'none',
      ...(range ? { 'content-range': `bytes ${range.start}-${range.end}/${stat.size}` } : {}),
    });
    if (head) {
      res.end();
      return;
    }
    await node.sendTo(f.key, res, range);
    this.metrics.count('stratus_storage_bytes_out_total', { node: node.nodeId }, length);
  }
}

/**
 * The one byte range a `Range` header asks for (RFC 9110 §14.1.2: `bytes=a-b`, `bytes=a-`,
 * `bytes=-n`), clamped to the object; undefined (serve it whole) for no header, another unit, a
 * malformed value or several ranges; 416 when the one range lies wholly outside the object.
 */
export function byteRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | undefined {
  const m = header === undefined ? null : /^bytes=[ \t]*(\d*)-(\d*)[ \t]*$/.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) throw errors.rangeNotSatisfiable(size);
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? Number.POSITIVE_INFINITY : Number(m[2]);
  if (end < start) return undefined;
  if (start >= size) throw errors.rangeNotSatisfiable(size);
  return { start, end: Math.min(end, size - 1) };
}
