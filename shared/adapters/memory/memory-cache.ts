/** In-memory Cache: the local profile's and the unit tests'. Bounded, oldest entries evicted first. */
import type { Cache } from '../../ports/cache.ts';

export class MemoryCache implements Cache {
  private readonly entries = new Map<string, { value: string; until: number }>();
  private readonly now: () => number;
  private readonly maxEntries: number;

  constructor(maxEntries = 10_000, now: () => number = () => Date.now()) {
    this.maxEntries = maxEntries;
    this.now = now;
  }

  async get(key: string) {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.until <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  async set(key: string, value: string, ttlSeconds: number) {
    this.entries.delete(key);
    this.entries.set(key, { value, until: this.now() + ttlSeconds * 1000 });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  async setIfAbsent(key: string, value: string, ttlSeconds: number) {
    const existing = await this.get(key);
    if (existing !== undefined) return existing;
    await this.set(key, value, ttlSeconds);
    return value;
  }

  async del(keys: readonly string[]) {
    for (const k of keys) this.entries.delete(k);
  }
}
