/**
 * A cache for hot reads (item rows, folder pages): Redis/Valkey in AWS and in tests, memory
 * locally. Never the only copy of anything: every value can be rebuilt from the database, and
 * callers treat a failing cache as a miss.
 */
export interface Cache {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, ttlSeconds: number): Promise<void>;
  /** Sets only when the key is absent; returns the value now stored. */
  setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<string>;
  del(keys: readonly string[]): Promise<void>;
}
