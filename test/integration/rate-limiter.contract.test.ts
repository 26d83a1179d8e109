/** One contract for RateLimiter: Redis (atomic Lua) and memory; and what happens when Redis is down. */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MemoryRateLimiter } from '../../shared/adapters/memory/memory-rate-limiter.ts';
import { openRedis } from '../../shared/adapters/redis/redis-client.ts';
import { RedisRateLimiter } from '../../shared/adapters/redis/redis-rate-limiter.ts';
import { createLogger } from '../../shared/observability/logger.ts';
import type { RateLimiter } from '../../shared/ports/rate-limiter.ts';
import { RequestLimits } from '../../shared/services/request-limits.ts';
import { uid } from '../support/fixtures.ts';

const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: 1 });
// ElastiCache Serverless is cluster-mode only: the same contract through the cluster client.
const clustered = openRedis(inject('redisClusterUrl'), 'cluster');
beforeAll(() => clustered.connect());
afterAll(() => {
  redis.disconnect();
  clustered.disconnect();
});

const backends: { name: string; make(): RateLimiter }[] = [
  { name: 'redis', make: () => new RedisRateLimiter(redis, `${uid('test:rl:')}:`) },
  { name: 'redis (cluster mode)', make: () => new RedisRateLimiter(clustered, `${uid('test:rl:')}:`) },
  { name: 'memory', make: () => new MemoryRateLimiter() },
];

describe.each(backends)('RateLimiter contract: $name', (backend) => {
  it('never lets concurrent requests spend more tokens than the bucket holds', async () => {
    const rl = backend.make();
    const results = await Promise.all(
      Array.from({ length: 50 }, () => rl.take('k', { capacity: 10, refillPerSecond: 0.001 })),
    );
    expect(results.filter((r) => r.allowed)).toHaveLength(10);
    const refused = results.filter((r) => !r.allowed);
    expect(refused.every((r) => r.retryAfterSeconds > 0 && r.remaining === 0)).toBe(true);
  });

  it('refills over time', async () => {
    const rl = backend.make();
    const policy = { capacity: 2, refillPerSecond: 5 };
    await rl.take('r', policy);
    await rl.take('r', policy);
    expect((await rl.take('r', policy)).allowed).toBe(false);
    await new Promise((r) => setTimeout(r, 450));
    expect((await rl.take('r', policy)).allowed).toBe(true);
  });

  it('keeps keys apart', async () => {
    const rl = backend.make();
    const policy = { capacity: 1, refillPerSecond: 0.001 };
    expect((await rl.take('a', policy)).allowed).toBe(true);
    expect((await rl.take('b', policy)).allowed).toBe(true);
    expect((await rl.take('a', policy)).allowed).toBe(false);
  });
});

describe('with Redis down', () => {
  it('fails open for reads and closed for auth', async () => {
    const dead = new Redis({
      port: 1,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    const limits = new RequestLimits(new RedisRateLimiter(dead), createLogger('silent'));
    await expect(
      limits.check({ routeId: 'listChildren', cls: 'read', ip: 'x', userId: 'u' }),
    ).resolves.toEqual({ headers: {} });
    await expect(limits.check({ routeId: 'login', cls: 'auth', ip: 'x' })).rejects.toMatchObject({
      name: 'UnavailableError',
    });
    dead.disconnect();
  });
});
