/**
 * The Redis adapter of the RateLimiter port. One Lua script reads the bucket, refills it for the
 * time passed, takes a token if there is one and writes it back, atomically: concurrent requests
 * from many Lambdas can never spend the same token twice. Time comes from Redis (TIME), so clock
 * skew between callers does not matter.
 */

import type { BucketPolicy, RateLimiter, TakeResult } from '../../ports/rate-limiter.ts';
import { redisCall } from './redis-call.ts';
import type { RedisClient } from './redis-client.ts';

const TAKE = `
local key = KEYS[1]
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', key, 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil then tokens = capacity; at = now end
tokens = math.min(capacity, tokens + (now - at) * rate)
local allowed = 0
if tokens >= 1 then tokens = tokens - 1; allowed = 1 end
redis.call('HSET', key, 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', key, math.ceil(capacity / rate) + 1)
return { allowed, tostring(tokens) }
`;

export class RedisRateLimiter implements RateLimiter {
  private readonly redis: RedisClient;
  private readonly prefix: string;

  constructor(redis: RedisClient, prefix = 'stratus:rl:') {
    this.redis = redis;
    this.prefix = prefix;
  }

  async take(key: string, policy: BucketPolicy): Promise<TakeResult> {
    const res = await redisCall(
      'rate limiter',
      async () =>
        (await this.redis.eval(TAKE, 1, this.prefix + key, policy.capacity, policy.refillPerSecond)) as [
          number,
          string,
        ],
    );
    return outcome(res[0] === 1, Number(res[1]), policy);
  }
}

export function outcome(allowed: boolean, tokens: number, policy: BucketPolicy): TakeResult {
  return {
    allowed,
    remaining: Math.max(0, Math.floor(tokens)),
    retryAfterSeconds: allowed ? 0 : Math.max(1, Math.ceil((1 - tokens) / policy.refillPerSecond)),
    resetSeconds: Math.ceil((policy.capacity - tokens) / policy.refillPerSecond),
  };
}
