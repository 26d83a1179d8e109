/** In-memory ThrottleStore: the local profile's (one process) and the unit tests'. */
import type { ThrottleStore } from '../../ports/throttle-store.ts';

export class MemoryThrottleStore implements ThrottleStore {
  private readonly counters = new Map<string, { count: number; until: number }>();
  private readonly locks = new Map<string, number>();
  private readonly now: () => number;

  constructor(now: () => number = () => Date.now()) {
    this.now = now;
  }

  async increment(key: string, windowSeconds: number) {
    const t = this.now();
    const c = this.counters.get(key);
    if (!c || c.until <= t) {
      this.counters.set(key, { count: 1, until: t + windowSeconds * 1000 });
      return 1;
    }
    c.count++;
    return c.count;
  }

  async lock(key: string, seconds: number) {
    this.locks.set(key, this.now() + Math.max(1, Math.ceil(seconds)) * 1000);
  }

  async lockedFor(key: string) {
    const until = this.locks.get(key);
    if (until === undefined) return 0;
    const left = Math.ceil((until - this.now()) / 1000);
    if (left <= 0) this.locks.delete(key);
    return Math.max(0, left);
  }

  async clear(key: string) {
    this.counters.delete(key);
    this.locks.delete(key);
  }
}
