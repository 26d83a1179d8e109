/** In-memory RateLimiter: the local profile's (one process). Same arithmetic as the Redis script. */
import type { BucketPolicy, RateLimiter } from '../../ports/rate-limiter.ts';
import { outcome } from '../redis/redis-rate-limiter.ts';

export class MemoryRateLimiter implements RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly now: () => number;

  constructor(now: () => number = () => Date.now()) {
    this.now = now;
  }

  async take(key: string, policy: BucketPolicy) {
    const now = this.now() / 1000;
    const b = this.buckets.get(key) ?? { tokens: policy.capacity, at: now };
    const tokens = Math.min(policy.capacity, b.tokens + (now - b.at) * policy.refillPerSecond);
    const allowed = tokens >= 1;
    const left = allowed ? tokens - 1 : tokens;
    this.buckets.set(key, { tokens: left, at: now });
    if (this.buckets.size > 100_000) this.buckets.delete(this.buckets.keys().next().value ?? '');
    return outcome(allowed, left, policy);
  }
}
