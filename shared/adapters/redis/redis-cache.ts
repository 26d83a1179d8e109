/** The Redis/Valkey adapter of the Cache port. */
import type { Redis } from 'ioredis';
import type { Cache } from '../../ports/cache.ts';
import { redisCall } from './redis-call.ts';

export class RedisCache implements Cache {
  private readonly redis: Redis;
  private readonly prefix: string;

  constructor(redis: Redis, prefix = 'stratus:cache:') {
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
    if (keys.length) await redisCall('cache', () => this.redis.del(...keys.map((k) => this.prefix + k)));
  }
}
