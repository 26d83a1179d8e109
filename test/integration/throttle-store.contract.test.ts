/** One contract for ThrottleStore: Redis (real server) and memory; plus login throttling on Redis. */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { MemoryThrottleStore } from '../../shared/adapters/memory/memory-throttle-store.ts';
import { openRedis } from '../../shared/adapters/redis/redis-client.ts';
import { RedisThrottleStore } from '../../shared/adapters/redis/redis-throttle-store.ts';
import { DomainError } from '../../shared/domain/errors.ts';
import { problemHeaders, statusOf } from '../../shared/http/problem.ts';
import type { ThrottleStore } from '../../shared/ports/throttle-store.ts';
import { LoginThrottle } from '../../shared/services/login-throttle.ts';
import { uid } from '../support/fixtures.ts';

const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: 1 });
// ElastiCache Serverless is cluster-mode only: the same contract through the cluster client.
const clustered = openRedis(inject('redisClusterUrl'), 'cluster');
beforeAll(() => clustered.connect());
afterAll(() => {
  redis.disconnect();
  clustered.disconnect();
});

const backends: { name: string; make(): ThrottleStore }[] = [
  { name: 'redis', make: () => new RedisThrottleStore(redis, `${uid('test:')}:`) },
  { name: 'redis (cluster mode)', make: () => new RedisThrottleStore(clustered, `${uid('test:')}:`) },
  { name: 'memory', make: () => new MemoryThrottleStore() },
];

describe.each(backends)('ThrottleStore contract: $name', (backend) => {
  let store: ThrottleStore;
  beforeEach(() => {
    store = backend.make();
  });

  it('counts within a window and forgets after it', async () => {
    expect(await store.increment('k', 1)).toBe(1);
    expect(await store.increment('k', 1)).toBe(2);
    expect(await store.increment('other', 1)).toBe(1);
    await new Promise((r) => setTimeout(r, 1100));
    expect(await store.increment('k', 1)).toBe(1);
  });

  it('locks for a time and reports what is left', async () => {
    expect(await store.lockedFor('k')).toBe(0);
    await store.lock('k', 30);
    const left = await store.lockedFor('k');
    expect(left).toBeGreaterThan(25);
    expect(left).toBeLessThanOrEqual(30);
    await store.clear('k');
    expect(await store.lockedFor('k')).toBe(0);
  });

  it('drives login throttling: locked after the threshold, with Retry-After', async () => {
    const throttle = new LoginThrottle(store, {
      accountThreshold: 3,
      ipThreshold: 100,
      windowSeconds: 60,
      baseLockSeconds: 10,
      maxLockSeconds: 60,
    });
    await throttle.assertAllowed('a@x.io', '10.0.0.1');
    for (let i = 0; i < 3; i++) await throttle.recordFailure('a@x.io', '10.0.0.1');
    const err = await throttle.assertAllowed('a@x.io', '10.0.0.1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DomainError);
    expect(statusOf(err)).toBe(429);
    expect(Number(problemHeaders(err)['retry-after'])).toBeGreaterThan(0);
    // Another account from another address is not affected.
    await throttle.assertAllowed('b@x.io', '10.0.0.2');
  });
});
