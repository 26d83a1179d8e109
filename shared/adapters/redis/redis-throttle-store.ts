/** The Redis/Valkey adapter of the ThrottleStore port (ElastiCache in AWS, real Redis in tests). */

import { errors } from '../../domain/errors.ts';
import type { ThrottleStore } from '../../ports/throttle-store.ts';
import { redisCall } from './redis-call.ts';
import type { RedisClient } from './redis-client.ts';

export class RedisThrottleStore implements ThrottleStore {
  private readonly redis: RedisClient;
  private readonly prefix: string;

  constructor(redis: RedisClient, prefix = 'stratus:throttle:') {
    this.redis = redis;
    this.prefix = prefix;
  }

  async increment(key: string, windowSeconds: number) {
    const k = this.prefix + key;
    // INCR and EXPIRE NX in one MULTI: the window starts at the first failure and is not extended.
    const res = await redisCall('cache', () =>
      this.redis.multi().incr(k).expire(k, windowSeconds, 'NX').exec(),
    );
    const first = res?.[0];
    if (!first || first[0]) throw errors.unavailable('cache');
    return Number(first[1]);
  }

  async lock(key: string, seconds: number) {
    await redisCall('cache', () =>
      this.redis.set(`${this.prefix}lock:${key}`, '1', 'EX', Math.max(1, Math.ceil(seconds))),
    );
  }

  async lockedFor(key: string) {
    const ttl = await redisCall('cache', () => this.redis.ttl(`${this.prefix}lock:${key}`));
    return Math.max(ttl, 0);
  }

  async clear(key: string) {
    // Two DELs: the counter and the lock may sit in different cluster slots (CROSSSLOT otherwise).
    await redisCall('cache', () =>
      Promise.all([this.redis.del(this.prefix + key), this.redis.del(`${this.prefix}lock:${key}`)]),
    );
  }
}
