import { describe, expect, it } from 'vitest';
import { MemoryRateLimiter } from '../../shared/adapters/memory/memory-rate-limiter.ts';
import { DomainError, errors } from '../../shared/domain/errors.ts';
import { problemHeaders, statusOf } from '../../shared/http/problem.ts';
import { createLogger } from '../../shared/observability/logger.ts';
import type { RateLimiter } from '../../shared/ports/rate-limiter.ts';
import { RequestLimits } from '../../shared/services/request-limits.ts';

const log = createLogger('silent');
const refusal = async (p: Promise<unknown>) => {
  try {
    await p;
    return undefined;
  } catch (e) {
    if (e instanceof DomainError) return e;
    throw e;
  }
};

describe('request limits', () => {
  it('allows a burst up to capacity, then 429 with Retry-After and RateLimit-* headers, then refills', async () => {
    let now = 1_000_000;
    const rejected: string[] = [];
    const limits = new RequestLimits(new MemoryRateLimiter(() => now), log, {
      policies: { auth: { perIp: { capacity: 3, refillPerSecond: 0.5 } } },
      onReject: (r) => rejected.push(r),
    });
    const ask = () => limits.check({ routeId: 'login', cls: 'auth', ip: '1.1.1.1' });
    const first = await ask();
    expect(first.headers).toMatchObject({ 'ratelimit-limit': '3', 'ratelimit-remaining': '2' });
    await ask();
    expect((await ask()).headers['ratelimit-remaining']).toBe('0');
    const e = await refusal(ask());
    expect(statusOf(e)).toBe(429);
    expect(problemHeaders(e)['retry-after']).toBe('2');
    expect(problemHeaders(e)['ratelimit-remaining']).toBe('0');
    expect(rejected).toEqual(['login']);
    expect(await refusal(limits.check({ routeId: 'login', cls: 'auth', ip: '2.2.2.2' }))).toBeUndefined();
    now += 2000;
    expect((await ask()).headers['ratelimit-remaining']).toBe('0');
  });

  it('keeps a bucket per user as well as per address', async () => {
    const limits = new RequestLimits(new MemoryRateLimiter(), log, {
      policies: {
        write: {
          perIp: { capacity: 100, refillPerSecond: 1 },
          perUser: { capacity: 2, refillPerSecond: 0.01 },
        },
      },
    });
    const ask = (ip: string) => limits.check({ routeId: 'createFolder', cls: 'write', ip, userId: 'u1' });
    await ask('1.1.1.1');
    await ask('2.2.2.2');
    expect(statusOf(await refusal(ask('3.3.3.3')))).toBe(429);
    expect(
      await refusal(limits.check({ routeId: 'createFolder', cls: 'write', ip: '3.3.3.3', userId: 'u2' })),
    ).toBeUndefined();
  });

  it('lets a route override its class', async () => {
    const limits = new RequestLimits(new MemoryRateLimiter(), log, {
      overrides: { createUpload: { perIp: { capacity: 1, refillPerSecond: 0.001 } } },
    });
    await limits.check({ routeId: 'createUpload', cls: 'write', ip: 'x' });
    expect(statusOf(await refusal(limits.check({ routeId: 'createUpload', cls: 'write', ip: 'x' })))).toBe(
      429,
    );
    expect(await refusal(limits.check({ routeId: 'createFolder', cls: 'write', ip: 'x' }))).toBeUndefined();
  });

  it('fails open for reads and closed for auth and writes when the limiter is down', async () => {
    const down: RateLimiter = { take: () => Promise.reject(errors.unavailable('rate limiter')) };
    const limits = new RequestLimits(down, log);
    expect(await refusal(limits.check({ routeId: 'listChildren', cls: 'read', ip: 'x' }))).toBeUndefined();
    expect(await refusal(limits.check({ routeId: 'openShare', cls: 'public', ip: 'x' }))).toBeUndefined();
    expect(statusOf(await refusal(limits.check({ routeId: 'login', cls: 'auth', ip: 'x' })))).toBe(503);
    expect(statusOf(await refusal(limits.check({ routeId: 'createFolder', cls: 'write', ip: 'x' })))).toBe(
      503,
    );
  });
});
