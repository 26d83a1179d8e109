/**
 * SharePasswordThrottle: lockout per link and per address, exponential locks that expire, and the
 * bounded queue that keeps the KDF from being used to exhaust the CPU. The KDF is a stand-in that
 * counts its calls and how many run at once; nothing here is timed.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryThrottleStore } from '../../shared/adapters/memory/memory-throttle-store.ts';
import { DomainError } from '../../shared/domain/errors.ts';
import { problemHeaders, statusOf } from '../../shared/http/problem.ts';
import {
  BoundedQueue,
  DEFAULT_SHARE_PASSWORD_POLICY as P,
  SharePasswordThrottle,
} from '../../shared/services/share-password-throttle.ts';

let clock = 0;
const advance = (s: number) => {
  clock += s * 1000;
};

/** A KDF stand-in: resolves when released (or at once), counting calls and the most at once. */
function fakeKdf(opts: { hold?: boolean } = {}) {
  const k = {
    calls: 0,
    inFlight: 0,
    maxInFlight: 0,
    pending: [] as (() => void)[],
    check(right: boolean) {
      return async () => {
        k.calls++;
        k.inFlight++;
        k.maxInFlight = Math.max(k.maxInFlight, k.inFlight);
        if (opts.hold) await new Promise<void>((r) => k.pending.push(r));
        else await Promise.resolve();
        k.inFlight--;
        return right;
      };
    },
    /** Releases held runs until every attempt has settled. */
    async drain(all: Promise<unknown>) {
      let done = false;
      void all.finally(() => {
        done = true;
      });
      while (!done) {
        k.pending.shift()?.();
        await new Promise((r) => setImmediate(r));
      }
    },
  };
  return k;
}

type Outcome = { status: number; slug?: string; retryAfter?: number; ok?: boolean };
async function attempt(t: SharePasswordThrottle, link: string, ip: string, check: () => Promise<boolean>) {
  try {
    const r = await t.verify(link, ip, check);
    return { status: r.ok ? 200 : 401, ok: r.ok } as Outcome;
  } catch (e) {
    if (!(e instanceof DomainError)) throw e;
    return { status: statusOf(e), slug: e.slug, retryAfter: Number(problemHeaders(e)['retry-after']) };
  }
}

describe('share-password lockout', () => {
  let t: SharePasswordThrottle;
  beforeEach(() => {
    clock = 1_000_000;
    t = new SharePasswordThrottle(new MemoryThrottleStore(() => clock));
  });

  it('locks a link after 5 wrong passwords from anywhere, and then runs no KDF, right password or not', async () => {
    const kdf = fakeKdf();
    for (let i = 0; i < P.linkThreshold; i++)
      expect((await attempt(t, 'L', `10.0.0.${i}`, kdf.check(false))).status).toBe(401);
    const wrong = await attempt(t, 'L', '10.9.9.9', kdf.check(false));
    const right = await attempt(t, 'L', '10.9.9.8', kdf.check(true));
    for (const r of [wrong, right]) {
      expect(r).toMatchObject({ status: 429, slug: 'too-many-attempts', retryAfter: P.baseLockSeconds });
    }
    expect(kdf.calls).toBe(P.linkThreshold);
    // Another link is not locked for these addresses.
    expect((await attempt(t, 'M', '10.9.9.9', kdf.check(true))).status).toBe(200);
  });

  it('locks an address after 10 wrong passwords across links, for every link', async () => {
    const kdf = fakeKdf();
    for (let i = 0; i < P.ipThreshold; i++)
      expect((await attempt(t, `link-${i % 4}`, '6.6.6.6', kdf.check(false))).status).toBe(401);
    expect(await attempt(t, 'fresh', '6.6.6.6', kdf.check(true))).toMatchObject({
      status: 429,
      slug: 'too-many-attempts',
    });
    expect((await attempt(t, 'fresh', '7.7.7.7', kdf.check(true))).status).toBe(200);
    expect(kdf.calls).toBe(P.ipThreshold + 1);
  });

  it('doubles the lock with each failure after it ends, up to the cap, and lets the right password in after', async () => {
    const kdf = fakeKdf();
    for (let i = 0; i < P.linkThreshold - 1; i++) await attempt(t, 'L', `10.0.1.${i}`, kdf.check(false));
    const locks: number[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await t.verify('L', `10.0.2.${i}`, kdf.check(false));
      locks.push(r.lockedFor);
      const blocked = await attempt(t, 'L', '10.0.3.1', kdf.check(true));
      expect(blocked).toMatchObject({ status: 429, retryAfter: r.lockedFor });
      advance(r.lockedFor);
    }
    expect(locks).toEqual([60, 120, 240, 480, 960, 1920, 3600, 3600]);
    expect((await attempt(t, 'L', '10.0.3.1', kdf.check(true))).status).toBe(200);
  });

  it('never locks for good: locks and counts expire', async () => {
    const kdf = fakeKdf();
    for (let i = 0; i < P.linkThreshold; i++) await attempt(t, 'L', `10.0.4.${i}`, kdf.check(false));
    advance(P.windowSeconds + P.maxLockSeconds);
    const r = await t.verify('L', '10.0.5.1', kdf.check(false));
    expect(r).toEqual({ ok: false, lockedFor: 0 });
  });
});

describe('share-password checks under a flood', () => {
  it('40 parallel wrong guesses at one link reach the KDF 5 times; the rest are refused before it', async () => {
    const t = new SharePasswordThrottle(new MemoryThrottleStore());
    const kdf = fakeKdf({ hold: true });
    const all = Promise.all(
      Array.from({ length: 40 }, (_, i) => attempt(t, 'L', `10.1.0.${i}`, kdf.check(false))),
    );
    await kdf.drain(all);
    const outcomes = await all;
    expect(kdf.calls).toBe(P.linkThreshold);
    expect(kdf.maxInFlight).toBe(1);
    expect(outcomes.filter((o) => o.status === 401)).toHaveLength(P.linkThreshold);
    expect(outcomes.filter((o) => o.status === 429)).toHaveLength(40 - P.linkThreshold);
  });

  it('40 parallel guesses at 40 links from 40 addresses (no lock applies): one KDF at a time, a bounded line, the rest 429', async () => {
    const t = new SharePasswordThrottle(new MemoryThrottleStore());
    const kdf = fakeKdf({ hold: true });
    const all = Promise.all(
      Array.from({ length: 40 }, (_, i) => attempt(t, `link-${i}`, `10.2.0.${i}`, kdf.check(false))),
    );
    await kdf.drain(all);
    const outcomes = await all;
    expect(kdf.maxInFlight).toBe(P.concurrency);
    expect(kdf.calls).toBe(P.concurrency + P.maxWaiting);
    const refused = outcomes.filter((o) => o.status === 429);
    expect(refused).toHaveLength(40 - P.concurrency - P.maxWaiting);
    expect(refused.every((o) => o.slug === 'rate-limited' && o.retryAfter === 1)).toBe(true);
  });

  it('a refused or failed run frees its slot, so the queue never jams', async () => {
    const q = new BoundedQueue(1, 1);
    await expect(q.run(() => Promise.reject(new Error('kdf broke')))).rejects.toThrow('kdf broke');
    let release = () => {};
    const first = q.run(() => new Promise<void>((r) => (release = r)));
    const second = q.run(async () => 'second');
    await expect(q.run(async () => 'third')).rejects.toMatchObject({ slug: 'rate-limited' });
    release();
    await first;
    expect(await second).toBe('second');
    expect(await q.run(async () => 'after')).toBe('after');
  });
});
