/**
 * The CLI's resumable download (cli/resumable-download.ts) against a fake storage endpoint over
 * real HTTP: a connection dropped mid-body is resumed in the same run with `Range` (and `If-Range`
 * carrying storage's ETag), a storage that ignores Range (200) restarts the file from byte 0, and a
 * Content-Range that is not the rest of this version starts over too. The e2e suite does the same
 * against real local nodes across runs (test/e2e/cli.test.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { partialPath, resumableDownload, sidecarPath } from '../../cli/resumable-download.ts';
import type { RetryClock } from '../../clients/retry.ts';

const data = randomBytes(3 * 1024 * 1024 + 17);
const hashOf = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sha = hashOf(data);
const want = { versionId: 'v1', size: data.length, sha256: sha };
const ETAG = '"abc123"';

/** How the fake storage answers, and what it was asked. */
const storage = {
  /** Answer the first GET with this many bytes of a 200 and then drop the connection. */
  dropAfter: 0,
  honourRange: true,
  /** A wrong Content-Range start for a 206 (a storage answering another range). */
  skewRange: 0,
  asked: [] as { range?: string; ifRange?: string }[],
};

let server: http.Server;
let url = '';
let dir: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const range = req.headers.range;
    storage.asked.push({
      ...(range ? { range } : {}),
      ...(req.headers['if-range'] ? { ifRange: req.headers['if-range'] as string } : {}),
    });
    const m = range ? /^bytes=(\d+)-$/.exec(range) : null;
    if (m && storage.honourRange) {
      const start = Number(m[1]);
      const from = start + storage.skewRange;
      res.writeHead(206, {
        etag: ETAG,
        'content-length': String(data.length - from),
        'content-range': `bytes ${from}-${data.length - 1}/${data.length}`,
      });
      res.end(data.subarray(from));
      return;
    }
    res.writeHead(200, { etag: ETAG, 'content-length': String(data.length) });
    if (storage.dropAfter && storage.asked.length === 1) {
      res.write(data.subarray(0, storage.dropAfter), () => setTimeout(() => res.destroy(), 50));
      return;
    }
    res.end(data);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/blob`;
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-resume-'));
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await fs.rm(dir, { recursive: true, force: true });
});

afterEach(() => {
  Object.assign(storage, { dropAfter: 0, honourRange: true, skewRange: 0, asked: [] });
});

const clock: RetryClock = { now: () => Date.now(), random: () => 0, sleep: async () => undefined };
let n = 0;
const dest = () => path.join(dir, `out-${++n}.bin`);
const download = (to: string) =>
  resumableDownload({ dest: to, want, url: async () => url, clock, signal: new AbortController().signal });

describe('resumable download', () => {
  it('a connection dropped mid-body is resumed in the same run from where the bytes stopped', async () => {
    storage.dropAfter = 1024 * 1024;
    const to = dest();
    const r = await download(to);
    expect(storage.asked).toHaveLength(2);
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(storage.asked[1]?.range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(storage.dropAfter);
    // The ETag of the first answer came back as the validator of the second.
    expect(storage.asked[1]?.ifRange).toBe(ETAG);
    expect(r).toMatchObject({ size: data.length, sha256: sha, resumedFrom: 0 });
    // What the first answer delivered (some of it perhaps not yet on disk when it broke), then the rest.
    const first = r.bytesFetched - (data.length - resumedAt);
    expect(first).toBeGreaterThanOrEqual(resumedAt);
    expect(first).toBeLessThanOrEqual(storage.dropAfter);
    expect(hashOf(await fs.readFile(to))).toBe(sha);
    await expect(fs.stat(sidecarPath(to))).rejects.toThrow();
  });

  it('a partial left by an earlier run is continued with Range', async () => {
    const to = dest();
    await fs.writeFile(partialPath(to), data.subarray(0, 1000));
    await fs.writeFile(sidecarPath(to), JSON.stringify({ ...want, etag: ETAG }));
    const r = await download(to);
    expect(storage.asked).toEqual([{ range: 'bytes=1000-', ifRange: ETAG }]);
    expect(r).toMatchObject({ resumedFrom: 1000, bytesFetched: data.length - 1000 });
    expect(hashOf(await fs.readFile(to))).toBe(sha);
  });

  it('storage that ignores Range (200) gets the partial rewritten from byte 0', async () => {
    storage.honourRange = false;
    const to = dest();
    await fs.writeFile(partialPath(to), data.subarray(0, 5000));
    await fs.writeFile(sidecarPath(to), JSON.stringify(want));
    const r = await download(to);
    expect(storage.asked).toEqual([{ range: 'bytes=5000-' }]);
    expect(r).toMatchObject({ resumedFrom: 5000, bytesFetched: data.length });
    expect(hashOf(await fs.readFile(to))).toBe(sha);
  });

  it('a 206 that is not the rest of this version starts over without Range', async () => {
    storage.skewRange = 10;
    const to = dest();
    await fs.writeFile(partialPath(to), data.subarray(0, 5000));
    await fs.writeFile(sidecarPath(to), JSON.stringify(want));
    const r = await download(to);
    expect(storage.asked).toEqual([{ range: 'bytes=5000-' }, {}]);
    expect(r.bytesFetched).toBe(data.length);
    expect(hashOf(await fs.readFile(to))).toBe(sha);
  });

  it('a partial of another version is dropped, not continued', async () => {
    const to = dest();
    await fs.writeFile(partialPath(to), data.subarray(0, 5000));
    await fs.writeFile(sidecarPath(to), JSON.stringify({ ...want, versionId: 'v0' }));
    const r = await download(to);
    expect(storage.asked).toEqual([{}]);
    expect(r).toMatchObject({ resumedFrom: 0, bytesFetched: data.length });
  });
});
