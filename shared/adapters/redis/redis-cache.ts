/** The Redis/Valkey adapter of the Cache port. */

import type { Cache } from '../../ports/cache.ts';
import { redisCall } from './redis-call.ts';
import type { RedisClient } from './redis-client.ts';

export class RedisCache implements Cache {
  private readonly redis: RedisClient;
  private readonly prefix: string;

  constructor(redis: RedisClient, prefix = 'stratus:cache:') {
    this.redis = redis;
    this.prefix = prefix;
  }

  async get(key: string) {
    return (await redisCall('cache', () => this.redis.get(this.prefix + key))) ?? undefined;
  }

  async set(key: string, value: string, ttlSeconds: number) {
    await redisCall('cache', () => this.redis.set(this.prefix + key, value, 'EX', ttlSeconds));
  }

  async setIfAbsent(key: string, value: string, ttlSeconds: number) {
    // SET NX GET (Redis 7): returns the old value when one existed.
    const old = await redisCall('cache', () =>
      this.redis.set(this.prefix + key, value, 'EX', ttlSeconds, 'NX', 'GET'),
    );
    return old ?? value;
  }

  async del(keys: readonly string[]) {
    // One DEL per key: keys of one call may live in different cluster slots (CROSSSLOT otherwise).
    if (keys.length)
      await redisCall('cache', () => Promise.all(keys.map((k) => this.redis.del(this.prefix + k))));
  }
}
