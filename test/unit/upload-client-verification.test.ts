/**
 * The shared upload client (clients/upload.ts, clients/upload-verification.ts) against a small fake
 * Stratus over real HTTP: complete answering 202 with a Location, the session polled there until
 * committed (the 201's result returned) or failed (the problem's type and detail thrown), the
 * verifier's progress reported, the poll's back-off and Retry-After, a resumed upload that is
 * already being verified, and part PUTs four at a time by default. The clock is injected: waits
 * are recorded, not slept.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StratusApi } from '../../clients/api.ts';
import type { RetryClock } from '../../clients/retry.ts';
import { fetchPutPart, type Progress, UploadInterrupted, uploadFile } from '../../clients/upload.ts';
import { pollDelay, UploadVerificationFailed } from '../../clients/upload-verification.ts';

const MiB = 1024 * 1024;
const SIZE = 40 * MiB; // five 8 MiB parts
const tokens = { accessToken: 'a', refreshToken: 'r', expiresAt: Date.now() + 3_600_000 };
const result = {
  fileId: 'f1',
  versionId: 'v1',
  name: 'big.bin',
  size: SIZE,
  sha256: 'h',
  scanState: 'clean',
};

interface Poll {
  status?: number;
  headers?: Record<string, string>;
  body: Record<string, unknown>;
}

/** What the fake service does and saw. */
const fake = {
  /** How complete answers: 201 with the result, or 202 and then the polls in order. */
  complete: 202 as 201 | 202,
  location: '/v1/uploads/u1?from=location',
  completeHeaders: {} as Record<string, string>,
  polls: [] as Poll[],
  seen: [] as string[],
  puts: 0,
  inFlight: 0,
  peakInFlight: 0,
};

let server: http.Server;
let base = '';

const session = (state: string, extra: Record<string, unknown> = {}) => ({
  uploadId: 'u1',
  state,
  name: 'big.bin',
  size: SIZE,
  partSize: 8 * MiB,
  partCount: 5,
  receivedParts: [],
  expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
  ...extra,
});

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', base);
    fake.seen.push(`${req.method} ${url.pathname}${url.search}`);
    if (req.method === 'PUT' && url.pathname.startsWith('/storage/')) {
      fake.puts++;
      fake.inFlight++;
      fake.peakInFlight = Math.max(fake.peakInFlight, fake.inFlight);
      req.resume();
      req.on('end', () =>
        // Held a moment, so parts sent at once overlap on the server.
        setTimeout(() => {
          fake.inFlight--;
          res.writeHead(200, { etag: `"${url.pathname.slice(-1)}"` });
          res.end();
        }, 60),
      );
      return;
    }
    req.resume();
    req.on('end', () => {
      if (req.method === 'POST' && url.pathname === '/v1/uploads') {
        const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
        const parts = [1, 2, 3, 4, 5].map((n) => ({
          partNumber: n,
          url: `${base}/storage/p${n}`,
          headers: {},
          expiresAt,
        }));
        return send(res, 201, { ...session('uploading'), parts, reusedParts: [], bytesSkipped: 0 });
      }
      if (req.method === 'POST' && url.pathname === '/v1/uploads/u1/complete') {
        if (fake.complete === 201) return send(res, 201, result);
        return send(res, 202, session('verifying', { verifiedBytes: 0 }), {
          location: fake.location,
          ...fake.completeHeaders,
        });
      }
      if (req.method === 'GET' && url.pathname === '/v1/uploads/u1') {
        // A resumed upload's first look and every poll alike, in order.
        const next = fake.polls.shift();
        if (!next) return send(res, 500, { type: 'urn:stratus:problem:internal', detail: 'no more polls' });
        return send(res, next.status ?? 200, next.body, next.headers);
      }
      send(res, 404, { type: 'urn:stratus:problem:not-found', detail: `${req.method} ${url.pathname}` });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

afterEach(() => {
  Object.assign(fake, {
    complete: 202,
    location: '/v1/uploads/u1?from=location',
    completeHeaders: {},
    polls: [],
    seen: [],
    puts: 0,
    inFlight: 0,
    peakInFlight: 0,
  });
});

/** Sleeps return at once and are recorded; time moves on by what was slept. */
function fakeClock() {
  let t = Date.parse('2026-03-01T12:00:00Z');
  const sleeps: number[] = [];
  const clock: RetryClock = {
    now: () => t,
    random: () => 0,
    sleep: async (ms, signal) => {
      if (signal?.aborted) throw signal.reason;
      sleeps.push(ms);
      t += ms;
    },
  };
  return { clock, sleeps };
}

const bytes = new Uint8Array(SIZE);
const source = { size: SIZE, read: async (s: number, e: number) => bytes.subarray(s, e) };
const hashes = { sha256: 'h', parts: ['1', '2', '3', '4', '5'], partSize: 8 * MiB };
const newHasher = () => ({ update: () => undefined, digest: () => 'h' });

function upload(
  o: {
    signal?: AbortSignal;
    resumeUploadId?: string;
    concurrency?: number;
    alsoOnProgress?: (p: Progress) => void;
  } = {},
) {
  const { alsoOnProgress, ...rest } = o;
  const { clock, sleeps } = fakeClock();
  const api = new StratusApi({ endpoint: base, tokens, clock });
  const progress: Progress[] = [];
  const run = uploadFile({
    api,
    source,
    parentId: 'root',
    name: 'big.bin',
    newHasher,
    putPart: fetchPutPart(),
    hashes,
    onProgress: (p) => {
      progress.push(p);
      alsoOnProgress?.(p);
    },
    ...rest,
  });
  return { run, progress, sleeps };
}

const verifying = (verifiedBytes: number, headers: Record<string, string> = {}): Poll => ({
  body: session('verifying', { verifiedBytes }),
  headers,
});

describe('complete answered 202: the client waits for the background verifier', () => {
  it('polls the Location until committed, reports the bytes verified, and returns the result', async () => {
    fake.polls = [
      verifying(0),
      verifying(16 * MiB, { 'retry-after': '3' }),
      verifying(32 * MiB),
      verifying(SIZE),
      { body: session('committed', { fileId: 'f1', versionId: 'v1', result }) },
    ];
    const { run, progress, sleeps } = upload();
    const r = await run;

    expect(r).toMatchObject({ ...result, uploadId: 'u1', bytesSent: SIZE });
    // Every poll went to the Location the 202 named.
    const polls = fake.seen.filter((s) => s.startsWith('GET'));
    expect(polls).toEqual(Array(5).fill('GET /v1/uploads/u1?from=location'));
    // 250 ms doubling, Retry-After (3 s) when the service gives one, then on to the 2 s cap.
    expect(sleeps).toEqual([250, 500, 3000, 2000, 2000]);
    // The verifier's progress, in bytes of the file, after the upload's own.
    const phases = progress.map((p) => p.phase);
    expect(phases.indexOf('verifying')).toBeGreaterThan(phases.lastIndexOf('uploading'));
    expect(progress.filter((p) => p.phase === 'verifying').map((p) => [p.done, p.total])).toEqual([
      [0, SIZE],
      [0, SIZE],
      [16 * MiB, SIZE],
      [32 * MiB, SIZE],
      [SIZE, SIZE],
      [SIZE, SIZE],
    ]);
    expect(phases.at(-1)).toBe('done');
  });

  it('a refusal (failed) is thrown with the service’s problem type and detail', async () => {
    const error = {
      type: 'urn:stratus:problem:checksum-mismatch',
      detail: 'the uploaded bytes hash to 9f86…, not the declared e3b0…',
    };
    fake.polls = [verifying(8 * MiB), { body: session('failed', { error }) }];
    const { run } = upload();
    const err = await run.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UploadVerificationFailed);
    expect(err).toMatchObject({ uploadId: 'u1', ...error, slug: 'checksum-mismatch' });
    expect((err as Error).message).toBe(`verification failed: ${error.detail}`);
  });

  it('a 201 needs no polling', async () => {
    fake.complete = 201;
    const { run, sleeps } = upload();
    expect(await run).toMatchObject(result);
    expect(fake.seen.filter((s) => s.startsWith('GET'))).toEqual([]);
    expect(sleeps).toEqual([]);
  });

  it('a Location outside the endpoint is not followed: the session itself is polled', async () => {
    fake.location = 'http://elsewhere.test/sessions/u1';
    fake.polls = [{ body: session('committed', { fileId: 'f1', versionId: 'v1', result }) }];
    const { run } = upload();
    expect(await run).toMatchObject(result);
    expect(fake.seen.filter((s) => s.startsWith('GET'))).toEqual(['GET /v1/uploads/u1']);
  });

  it('a resumed upload that is already verifying waits for the verdict and sends nothing', async () => {
    // The first look (is the session still there, and how far?) and then the wait's polls.
    fake.polls = [
      verifying(24 * MiB),
      { body: session('committed', { fileId: 'f1', versionId: 'v1', result }) },
    ];
    const { run, progress } = upload({ resumeUploadId: 'u1' });
    const r = await run;
    expect(r).toMatchObject({ ...result, resumed: true, bytesSent: 0 });
    expect(fake.puts).toBe(0);
    expect(fake.seen.some((s) => s.includes('/complete'))).toBe(false);
    expect(progress.find((p) => p.phase === 'verifying')).toEqual({
      phase: 'verifying',
      done: 24 * MiB,
      total: SIZE,
    });
  });

  it('an abort while waiting is an interruption of that upload (resume by running it again)', async () => {
    const controller = new AbortController();
    fake.polls = [verifying(MiB), verifying(2 * MiB), verifying(3 * MiB)];
    const { run } = upload({
      signal: controller.signal,
      alsoOnProgress: (p) => {
        if (p.phase === 'verifying' && p.done > 0) controller.abort();
      },
    });
    const err = await run.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UploadInterrupted);
    expect((err as UploadInterrupted).uploadId).toBe('u1');
    // Stopped at the first poll that showed progress: the session was not asked again.
    expect(fake.polls).toHaveLength(2);
  });
});

describe('part PUTs', () => {
  it('four parts are in flight at once by default', async () => {
    fake.complete = 201;
    await upload().run;
    expect(fake.puts).toBe(5);
    expect(fake.peakInFlight).toBe(4);
  });

  it('and as many as asked', async () => {
    fake.complete = 201;
    await upload({ concurrency: 2 }).run;
    expect(fake.peakInFlight).toBe(2);
  });
});

describe('pollDelay', () => {
  const now = Date.parse('2026-03-01T12:00:00Z');
  it('doubles from 250 ms to a 2 s cap; Retry-After wins, within the longest wait the policy allows', () => {
    expect([0, 1, 2, 3, 4, 9].map((n) => pollDelay(n, null, now, 30_000))).toEqual([
      250, 500, 1000, 2000, 2000, 2000,
    ]);
    expect(pollDelay(0, '5', now, 30_000)).toBe(5000);
    expect(pollDelay(7, new Date(now + 3000).toUTCString(), now, 30_000)).toBe(3000);
    expect(pollDelay(0, '3600', now, 30_000)).toBe(30_000);
  });
});
