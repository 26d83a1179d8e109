/**
 * Throttles password guessing per account and per source IP. Failures are counted in a window;
 * past a threshold each further failure locks the key for twice as long as the last, up to a cap.
 * Locks always expire, so an attacker can slow a victim's login down but never lock them out for good.
 */
import { errors } from '../domain/errors.ts';
import type { ThrottleStore } from '../ports/throttle-store.ts';

export interface ThrottlePolicy {
  accountThreshold: number;
  ipThreshold: number;
  windowSeconds: number;
  baseLockSeconds: number;
  maxLockSeconds: number;
}

export const DEFAULT_THROTTLE: ThrottlePolicy = {
  accountThreshold: 5,
  ipThreshold: 20,
  windowSeconds: 3600,
  baseLockSeconds: 15,
  maxLockSeconds: 900,
};

export class LoginThrottle {
  private readonly store: ThrottleStore;
  private readonly policy: ThrottlePolicy;

  constructor(store: ThrottleStore, policy: ThrottlePolicy = DEFAULT_THROTTLE) {
    this.store = store;
    this.policy = policy;
  }

  private keys(email: string, ip: string) {
    return [
      { key: `acct:${email}`, threshold: this.policy.accountThreshold },
      { key: `ip:${ip}`, threshold: this.policy.ipThreshold },
    ];
  }

  /** Throws 429 with Retry-After while either key is locked. */
  async assertAllowed(email: string, ip: string): Promise<void> {
    const waits = await Promise.all(this.keys(email, ip).map((k) => this.store.lockedFor(k.key)));
    const wait = Math.max(...waits);
    if (wait > 0) throw errors.tooManyAttempts(wait);
  }

  /** Records a failure; returns the lock, in seconds, that it caused (0 for none). */
  async recordFailure(email: string, ip: string): Promise<number> {
    let longest = 0;
    for (const k of this.keys(email, ip)) {
      const count = await this.store.increment(k.key, this.policy.windowSeconds);
      if (count >= k.threshold) {
        const seconds = Math.min(
          this.policy.maxLockSeconds,
          this.policy.baseLockSeconds * 2 ** (count - k.threshold),
        );
        await this.store.lock(k.key, seconds);
        longest = Math.max(longest, seconds);
      }
    }
    return longest;
  }

  async recordSuccess(email: string): Promise<void> {
    await this.store.clear(`acct:${email}`);
  }
}
