/**
 * Counters and locks with expiry, for throttling (failed logins now, rate limits later).
 * Redis in AWS (ElastiCache) and in tests; in-memory in the local profile. Never the only copy of
 * anything that matters: losing it only forgets recent failures.
 */
export interface ThrottleStore {
  /** Adds one to the counter (creating it with the window as its lifetime) and returns the count. */
  increment(key: string, windowSeconds: number): Promise<number>;
  /** Sets a lock that expires after `seconds`. */
  lock(key: string, seconds: number): Promise<void>;
  /** Seconds left on the lock, or 0 when unlocked. */
  lockedFor(key: string): Promise<number>;
  clear(key: string): Promise<void>;
}
