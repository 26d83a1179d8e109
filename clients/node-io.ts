/**
 * The Node side of the upload engine: a local file as an `UploadSource` (positional reads, nothing
 * buffered beyond the range asked for), SHA-256 through node:crypto and part PUTs over node:http. The CLI and the
 * benchmarks use these; the browser has its own (Blob slices, hash-wasm).
 */
import { createHash } from 'node:crypto';
import type fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { Hasher, PutPart, UploadSource } from './upload.ts';

/** The file shrank between hashing and sending: what was hashed is no longer what would be sent. */
export class SourceChangedError extends Error {
  constructor(file: string) {
    super(`${file} changed while uploading (it got shorter)`);
    this.name = 'SourceChangedError';
  }
}

export async function openFileSource(
  file: string,
): Promise<{ source: UploadSource; stat: fs.Stats; close(): Promise<void> }> {
  const handle = await fsp.open(file, 'r');
  const stat = await handle.stat();
  return {
    stat,
    close: () => handle.close(),
    source: {
      size: stat.size,
      async read(start, end) {
        const buf = Buffer.allocUnsafe(end - start);
        let off = 0;
        while (off < buf.length) {
          const { bytesRead } = await handle.read(buf, off, buf.length - off, start + off);
          if (bytesRead === 0) throw new SourceChangedError(file);
          off += bytesRead;
        }
        return buf;
      },
    },
  };
}

export const nodeHasher = (): Hasher => {
  const h = createHash('sha256');
  return { update: (b) => void h.update(b), digest: () => h.digest('hex') };
};

/**
 * A `PutPart` over node:http(s) with keep-alive sockets: what the CLI and the benchmarks send part
 * bodies with. undici's `fetch` spends 1.4–1.9 s of CPU per GiB sending bodies on this kind of
 * machine, node:http about 0.2 s (bench/README.md); tus-js-client uses node:http in Node too. The
 * body is written from the buffer the part was read into, no copy. No answer (a refused or reset
 * connection) rejects, as fetch does, and `signal` aborts the request.
 */
export function httpPutPart(o: { agents?: { http: http.Agent; https: https.Agent } } = {}): PutPart {
  const agents = o.agents ?? {
    http: new http.Agent({ keepAlive: true }),
    https: new https.Agent({ keepAlive: true }),
  };
  return (part, body, onProgress, signal) =>
    new Promise((resolve, reject) => {
      const url = new URL(part.url);
      const secure = url.protocol === 'https:';
      const req = (secure ? https : http).request(url, {
        method: 'PUT',
        agent: secure ? agents.https : agents.http,
        headers: { ...part.headers, 'content-length': String(body.length) },
        ...(signal ? { signal } : {}),
      });
      req.on('error', reject);
      req.on('response', (res) => {
        // The answer's body is drained (the socket goes back to the pool) before resolving.
        res.resume();
        res.on('error', reject);
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) onProgress(body.length);
          const header = (name: string) => {
            const v = res.headers[name];
            return (Array.isArray(v) ? v[0] : v) ?? null;
          };
          resolve({ status, etag: header('etag'), retryAfter: header('retry-after') });
        });
      });
      req.end(body);
    });
}
