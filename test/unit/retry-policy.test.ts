/**
 * The clients' retry policy (clients/retry.ts) with an injected clock, sleep and random: Retry-After
 * in seconds and as an HTTP-date, jittered exponential back-off without it, both bounds (attempts,
 * total wait), which answers are repeated for which requests, and the same policy inside the API
 * client, the upload engine's part PUTs and completion, and the plain-fetch helper.
 */
import { describe, expect, it } from 'vitest';
import { ApiError, StratusApi } from '../../clients/api.ts';
import {
  Backoff,
  DEFAULT_RETRY_POLICY,
  fetchWithRetry,
  isRetryable,
  parseRetryAfter,
  type RetryClock,
} from '../../clients/retry.ts';
import { type PutPart, uploadFile } from '../../clients/upload.ts';

/** A clock whose sleeps return at once and advance time; `random` is fixed or scripted. */
function fakeClock(random: number | (() => number) = 0.5, start = Date.parse('2026-03-01T12:00:00Z')) {
  let t = start;
  const sleeps: number[] = [];
  const clock: RetryClock & { sleeps: number[] } = {
    sleeps,
    now: () => t,
    random: typeof random === 'function' ? random : () => random,
    sleep: async (ms, signal) => {
      if (signal?.aborted) throw signal.reason;
      sleeps.push(ms);
      t += ms;
    },
  };
  return clock;
}

const problem = (status: number, slug: string, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ type: `urn:stratus:problem:${slug}`, title: 'x', status, detail: slug }), {
    status,
    headers: { 'content-type': 'application/problem+json', ...headers },
  });
const ok = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

/** A fetch that answers from a script and records each call's method and path. */
function scripted(...answers: (() => Response)[]) {
  const calls: string[] = [];
  const doFetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    calls.push(`${init?.method ?? 'GET'} ${url.pathname}`);
    const next = answers.shift();
    if (!next) throw new Error(`unexpected request ${init?.method} ${url.pathname}`);
    return next();
  }) as typeof fetch;
  return { doFetch, calls };
}

const tokens = { accessToken: 'a', refreshToken: 'r', expiresAt: Date.now() + 3_600_000 };

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-03-01T12:00:00Z');
  it('reads delta-seconds', () => {
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
  });
  it('reads an HTTP-date, relative to now; a past date means now', () => {
    expect(parseRetryAfter('Sun, 01 Mar 2026 12:00:07 GMT', now)).toBe(7000);
    expect(parseRetryAfter('Sun, 01 Mar 2026 11:59:00 GMT', now)).toBe(0);
  });
  it('ignores what is absent or unreadable', () => {
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter('', now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
    expect(parseRetryAfter('1.5', now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
  });
});

describe('Backoff', () => {
  it('waits what Retry-After asks, plus at most 20% (50 ms to 1 s) of jitter upward', () => {
    expect(new Backoff({}, fakeClock(0)).next('2')).toBe(2000);
    expect(new Backoff({}, fakeClock(0.999_999)).next('2')).toBe(2400);
    expect(new Backoff({}, fakeClock(0.999_999)).next('30')).toBe(31_000);
    expect(new Backoff({}, fakeClock(0.999_999)).next('0')).toBe(50);
    const clock = fakeClock(0);
    expect(new Backoff({}, clock).next(new Date(clock.now() + 4000).toUTCString())).toBe(4000);
  });

  it('backs off exponentially with jitter in the upper half of each step when there is no Retry-After', () => {
    const low = new Backoff({ baseDelayMs: 100, maxDelayMs: 1000, maxAttempts: 10 }, fakeClock(0));
    expect(Array.from({ length: 6 }, () => low.next())).toEqual([50, 100, 200, 400, 500, 500]);
    const high = new Backoff({ baseDelayMs: 100, maxDelayMs: 1000, maxAttempts: 10 }, fakeClock(0.999_999));
    expect(Array.from({ length: 6 }, () => high.next())).toEqual([100, 200, 400, 800, 1000, 1000]);
    // Really random: two clients with different draws do not wait the same.
    const draws = [0.1, 0.9];
    const a = new Backoff(
      {},
      fakeClock(() => draws[0] as number),
    ).next();
    const b = new Backoff(
      {},
      fakeClock(() => draws[1] as number),
    ).next();
    expect(a).not.toBe(b);
  });

  it('stops after maxAttempts attempts in all', () => {
    const b = new Backoff({ maxAttempts: 3 }, fakeClock());
    expect(b.next('1')).toBeDefined();
    expect(b.next('1')).toBeDefined();
    expect(b.next('1')).toBeUndefined();
    expect(b.attempts).toBe(3);
  });

  it('stops when the total wait would pass maxTotalWaitMs, and at once for a Retry-After beyond maxDelayMs', () => {
    const b = new Backoff({ maxTotalWaitMs: 5000, maxAttempts: 100 }, fakeClock(0));
    expect(b.next('2')).toBe(2000);
    expect(b.next('2')).toBe(2000);
    expect(b.next('2')).toBeUndefined();
    expect(b.waitedMs).toBe(4000);
    expect(new Backoff({ maxDelayMs: 10_000 }, fakeClock()).next('900')).toBeUndefined();
  });

  it('has bounded defaults', () => {
    expect(DEFAULT_RETRY_POLICY.maxAttempts).toBeLessThanOrEqual(20);
    expect(DEFAULT_RETRY_POLICY.maxTotalWaitMs).toBeLessThanOrEqual(300_000);
  });
});

describe('isRetryable', () => {
  it('repeats any request after a 429 (nothing was done) except a login lock-out', () => {
    expect(isRetryable(429, false, 'rate-limited')).toBe(true);
    expect(isRetryable(429, false, undefined)).toBe(true); // e.g. API Gateway's own throttle
    expect(isRetryable(429, true, 'too-many-attempts')).toBe(false);
  });
  it('repeats 502/503/504 only for idempotent requests, and nothing else', () => {
    for (const s of [502, 503, 504]) {
      expect(isRetryable(s, true)).toBe(true);
      expect(isRetryable(s, false)).toBe(false);
    }
    for (const s of [400, 401, 403, 404, 409, 413, 500, 507]) expect(isRetryable(s, true)).toBe(false);
  });
});

describe('StratusApi retries', () => {
  it('waits out a 429 with Retry-After, then succeeds (create-upload included: a 429 did nothing)', async () => {
    const clock = fakeClock(0);
    const { doFetch, calls } = scripted(
      () => problem(429, 'rate-limited', { 'retry-after': '1' }),
      () => problem(429, 'rate-limited', { 'retry-after': '2' }),
      () => ok({ uploadId: 'u1', parts: [] }, 201),
    );
    const api = new StratusApi({ endpoint: 'http://api.test', tokens, fetch: doFetch, clock });
    const created = await api.createUpload({ parentId: 'root', name: 'a', size: 1, sha256: 'x' });
    expect(created.uploadId).toBe('u1');
    expect(calls).toEqual(['POST /v1/uploads', 'POST /v1/uploads', 'POST /v1/uploads']);
    expect(clock.sleeps).toEqual([1000, 2000]);
  });

  it('reads an HTTP-date Retry-After and backs off exponentially without one', async () => {
    const clock = fakeClock(0);
    const at = new Date(clock.now() + 5000).toUTCString();
    const { doFetch } = scripted(
      () => problem(503, 'dependency-unavailable', { 'retry-after': at }),
      () => problem(503, 'dependency-unavailable'),
      () => problem(503, 'dependency-unavailable'),
      () => ok({ usedBytes: 1, quotaBytes: 2 }),
    );
    const api = new StratusApi({ endpoint: 'http://api.test', tokens, fetch: doFetch, clock });
    expect(await api.usage()).toEqual({ usedBytes: 1, quotaBytes: 2 });
    // The steps keep doubling with the attempt number (random 0: the lower half's bottom).
    const base = DEFAULT_RETRY_POLICY.baseDelayMs;
    expect(clock.sleeps).toEqual([5000, base, base * 2]);
  });

  it('does not repeat a non-idempotent POST after a 503, but does repeat completing an upload', async () => {
    const clock = fakeClock(0);
    const create = scripted(() => problem(503, 'dependency-unavailable', { 'retry-after': '1' }));
    const api = new StratusApi({ endpoint: 'http://api.test', tokens, fetch: create.doFetch, clock });
    await expect(api.createFolder('root', 'x')).rejects.toMatchObject({ status: 503 });
    expect(create.calls).toHaveLength(1);

    const complete = scripted(
      () => problem(503, 'dependency-unavailable', { 'retry-after': '1' }),
      () => ok({ fileId: 'f', versionId: 'v', name: 'a', size: 1, sha256: 'x' }),
    );
    const api2 = new StratusApi({ endpoint: 'http://api.test', tokens, fetch: complete.doFetch, clock });
    expect((await api2.completeUpload('u1', [])).fileId).toBe('f');
    expect(complete.calls).toEqual(['POST /v1/uploads/u1/complete', 'POST /v1/uploads/u1/complete']);
  });

  it('does not retry a login lock-out, and gives up with the 429 once the budget is spent', async () => {
    const clock = fakeClock(0);
    const locked = scripted(() => problem(429, 'too-many-attempts', { 'retry-after': '15' }));
    const api = new StratusApi({ endpoint: 'http://api.test', fetch: locked.doFetch, clock });
    await expect(api.login('a@b.c', 'wrong')).rejects.toMatchObject({
      status: 429,
      slug: 'too-many-attempts',
    });
    expect(locked.calls).toHaveLength(1);

    const always = scripted(
      ...Array.from({ length: 10 }, () => () => problem(429, 'rate-limited', { 'retry-after': '1' })),
    );
    const api2 = new StratusApi({
      endpoint: 'http://api.test',
      tokens,
      fetch: always.doFetch,
      clock,
      retry: { maxAttempts: 4 },
    });
    const err = await api2.usage().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(429);
    expect(always.calls).toHaveLength(4);
  });

  it('an abort during a back-off wait rejects at once', async () => {
    const controller = new AbortController();
    controller.abort(new Error('interrupted'));
    const { doFetch, calls } = scripted(() => problem(429, 'rate-limited', { 'retry-after': '5' }));
    const api = new StratusApi({
      endpoint: 'http://api.test',
      tokens,
      fetch: doFetch,
      clock: fakeClock(),
      signal: controller.signal,
    });
    await expect(api.usage()).rejects.toThrow('interrupted');
    expect(calls).toHaveLength(1);
  });
});

describe('upload engine retries', () => {
  const source = { size: 5, read: async (s: number, e: number) => new Uint8Array(5).subarray(s, e) };
  const newHasher = () => ({ update: () => undefined, digest: () => 'h' });
  const hashes = { sha256: 'h', parts: ['h'], partSize: 8 * 1024 * 1024 };
  const expires = new Date(Date.now() + 3_600_000).toISOString();
  const created = () =>
    ok(
      {
        uploadId: 'u1',
        parts: [{ partNumber: 1, url: 'http://storage.test/p1', headers: {}, expiresAt: expires }],
        reusedParts: [],
        bytesSkipped: 0,
      },
      201,
    );
  const committed = () => ok({ fileId: 'f', versionId: 'v', name: 'a', size: 5, sha256: 'h' });

  it('waits out a storage 503 (Retry-After) and a 429 (back-off) on a part PUT', async () => {
    const clock = fakeClock(0);
    const { doFetch } = scripted(created, committed);
    const api = new StratusApi({ endpoint: 'http://api.test', tokens, fetch: doFetch, clock });
    const answers = [
      { status: 503, etag: null, retryAfter: '3' },
      { status: 429, etag: null, retryAfter: null },
      { status: 200, etag: '"e1"' },
    ];
    const putPart: PutPart = async () => answers.shift() as { status: number; etag: string | null };
    const r = await uploadFile({ api, source, parentId: 'root', name: 'a', newHasher, putPart, hashes });
    expect(r.fileId).toBe('f');
    expect(answers).toHaveLength(0);
    expect(clock.sleeps).toEqual([3000, DEFAULT_RETRY_POLICY.baseDelayMs]);
  });

  it('fails at once on a part refusal that will not change (400)', async () => {
    const clock = fakeClock(0);
    const { doFetch } = scripted(created);
    const api = new StratusApi({ endpoint: 'http://api.test', tokens, fetch: doFetch, clock });
    let puts = 0;
    const putPart: PutPart = async () => {
      puts++;
      return { status: 400, etag: null };
    };
    await expect(
      uploadFile({ api, source, parentId: 'root', name: 'a', newHasher, putPart, hashes }),
    ).rejects.toMatchObject({ status: 400, slug: 'part-rejected' });
    expect(puts).toBe(1);
    expect(clock.sleeps).toEqual([]);
  });

  it('a part that keeps failing gives up within the policy', async () => {
    const clock = fakeClock(0);
    const { doFetch } = scripted(created);
    const api = new StratusApi({
      endpoint: 'http://api.test',
      tokens,
      fetch: doFetch,
      clock,
      retry: { maxAttempts: 3 },
    });
    let puts = 0;
    const putPart: PutPart = async () => {
      puts++;
      return { status: 503, etag: null, retryAfter: '1' };
    };
    await expect(
      uploadFile({ api, source, parentId: 'root', name: 'a', newHasher, putPart, hashes }),
    ).rejects.toMatchObject({ status: 503 });
    expect(puts).toBe(3);
  });

  it('a 409 "being completed" waits for the earlier completion and returns its commit', async () => {
    const clock = fakeClock(0);
    const status = (state: string) => () =>
      ok({ uploadId: 'u1', state, name: 'a', size: 5, fileId: 'f', versionId: 'v', receivedParts: [] });
    const { doFetch, calls } = scripted(
      created,
      () => problem(409, 'conflict'),
      status('completing'),
      () => problem(409, 'conflict'),
      status('committed'),
    );
    const api = new StratusApi({ endpoint: 'http://api.test', tokens, fetch: doFetch, clock });
    const putPart: PutPart = async () => ({ status: 200, etag: '"e1"' });
    const r = await uploadFile({ api, source, parentId: 'root', name: 'a', newHasher, putPart, hashes });
    expect(r).toMatchObject({ fileId: 'f', versionId: 'v' });
    expect(calls.filter((c) => c.endsWith('/complete'))).toHaveLength(2);
  });
});

describe('fetchWithRetry', () => {
  it('repeats a GET after 503 and returns the last answer when the budget is spent', async () => {
    const clock = fakeClock(0);
    const { doFetch, calls } = scripted(
      () => new Response('slow down', { status: 503, headers: { 'retry-after': '1' } }),
      () => new Response('data', { status: 200 }),
    );
    const res = await fetchWithRetry(doFetch, 'http://storage.test/blob', {}, { clock });
    expect(await res.text()).toBe('data');
    expect(calls).toHaveLength(2);
    expect(clock.sleeps).toEqual([1000]);

    const busy = scripted(...Array.from({ length: 3 }, () => () => new Response('', { status: 503 })));
    const last = await fetchWithRetry(
      busy.doFetch,
      'http://storage.test/blob',
      {},
      { clock, policy: { maxAttempts: 3 } },
    );
    expect(last.status).toBe(503);
    expect(busy.calls).toHaveLength(3);
  });

  it('does not repeat a 429 lock-out, and not a POST after 503', async () => {
    const clock = fakeClock(0);
    const lock = scripted(() => problem(429, 'too-many-attempts', { 'retry-after': '1' }));
    expect((await fetchWithRetry(lock.doFetch, 'http://x.test/s/t', {}, { clock })).status).toBe(429);
    const post = scripted(() => new Response('', { status: 503 }));
    expect(
      (await fetchWithRetry(post.doFetch, 'http://x.test/p', { method: 'POST' }, { clock })).status,
    ).toBe(503);
    expect(lock.calls.length + post.calls.length).toBe(2);
  });
});
