/**
 * Token buckets: `capacity` tokens, refilled at `refillPerSecond`; each request takes one. Redis in
 * AWS and in tests (one atomic Lua script), memory locally.
 */
export interface BucketPolicy {
  capacity: number;
  refillPerSecond: number;
}

export interface TakeResult {
  allowed: boolean;
  /** Tokens left after this request (0 when refused). */
  remaining: number;
  /** Seconds until one token is back (0 when allowed). */
  retryAfterSeconds: number;
  /** Seconds until the bucket is full again. */
  resetSeconds: number;
}

export interface RateLimiter {
  take(key: string, policy: BucketPolicy): Promise<TakeResult>;
}
