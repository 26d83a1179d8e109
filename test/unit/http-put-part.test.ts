/**
 * The CLI's part PUT over node:http (clients/node-io.ts), against a real server on loopback: what
 * it sends, what it reports back, keep-alive reuse, and the failures the upload engine retries.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpPutPart } from '../../clients/node-io.ts';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  socket: number;
}
const seen: Seen[] = [];
const part = (n: number, url: string, headers: Record<string, string> = {}) => ({
  partNumber: n,
  url,
  headers,
  expiresAt: new Date(Date.now() + 60_000).toISOString(),
});
let answer: (res: http.ServerResponse) => void = (res) => res.writeHead(200, { etag: '"e1"' }).end();
let server: http.Server;
let base: string;
const sockets = new WeakMap<object, number>();
let socketCount = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (!sockets.has(req.socket)) sockets.set(req.socket, ++socketCount);
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
        socket: sockets.get(req.socket) ?? 0,
      });
      answer(res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe('httpPutPart', () => {
  it('PUTs the body with the part headers and reports status, ETag and progress', async () => {
    seen.length = 0;
    const put = httpPutPart();
    const body = randomBytes(3 * 1024 * 1024 + 5);
    const progress: number[] = [];
    const res = await put(
      part(1, `${base}/p/1?sig=abc`, { 'x-amz-checksum-sha256': 'c2hh' }),
      body,
      (n) => progress.push(n),
      undefined,
    );
    expect(res).toEqual({ status: 200, etag: '"e1"', retryAfter: null });
    expect(progress).toEqual([body.length]);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: 'PUT', url: '/p/1?sig=abc' });
    expect(seen[0]?.headers['x-amz-checksum-sha256']).toBe('c2hh');
    expect(seen[0]?.headers['content-length']).toBe(String(body.length));
    expect(seen[0]?.body.equals(body)).toBe(true);
  });

  it('sends the parts of one upload over kept-alive sockets', async () => {
    seen.length = 0;
    const put = httpPutPart();
    for (let n = 1; n <= 3; n++)
      await put(part(n, `${base}/p/${n}`), randomBytes(1000), () => undefined, undefined);
    expect(new Set(seen.map((s) => s.socket)).size).toBe(1);
  });

  it('hands back a refusal with its Retry-After and reports no progress', async () => {
    answer = (res) => res.writeHead(503, { 'retry-after': '2' }).end('busy');
    try {
      const progress: number[] = [];
      const res = await httpPutPart()(
        part(1, `${base}/p/1`),
        randomBytes(10),
        (n) => progress.push(n),
        undefined,
      );
      expect(res).toEqual({ status: 503, etag: null, retryAfter: '2' });
      expect(progress).toEqual([]);
    } finally {
      answer = (res) => res.writeHead(200, { etag: '"e1"' }).end();
    }
  });

  it('rejects when nothing answers, and when aborted', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const put = httpPutPart();
    await expect(
      put(part(1, `http://127.0.0.1:${port}/p/1`), randomBytes(10), () => undefined, undefined),
    ).rejects.toThrow(/ECONNREFUSED/);

    answer = () => undefined; // never answers
    try {
      const ac = new AbortController();
      const pending = put(part(1, `${base}/p/1`), randomBytes(10), () => undefined, ac.signal);
      setTimeout(() => ac.abort(), 50);
      await expect(pending).rejects.toThrow(/abort/i);
    } finally {
      answer = (res) => res.writeHead(200, { etag: '"e1"' }).end();
    }
  });
});
