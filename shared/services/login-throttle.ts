/**
 * Throttles password guessing per account and per source IP. Failures are counted in a window;
 * past a threshold each further failure locks the key for twice as long as the last, up to a cap.
 * Locks always expire, so an attacker can slow a victim's login down but never lock them out for good.
 */
import type { ThrottleStore } from '../ports/throttle-store.ts';
import { assertUnlocked, recordFailures } from './lockout.ts';

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
    await assertUnlocked(this.store, this.keys(email, ip));
  }

  /** Records a failure; returns the lock, in seconds, that it caused (0 for none). */
  async recordFailure(email: string, ip: string): Promise<number> {
    return recordFailures(this.store, this.policy, this.keys(email, ip));
  }

  async recordSuccess(email: string): Promise<void> {
    await this.store.clear(`acct:${email}`);
  }
}
