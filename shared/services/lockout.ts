/**
 * The lockout arithmetic login and share-password throttles share: failures counted per key in a
 * window; past a key's threshold each further failure locks it twice as long as the last, up to a
 * cap. Locks always expire.
 */
import { errors } from '../domain/errors.ts';
import type { ThrottleStore } from '../ports/throttle-store.ts';

export interface ThrottleKey {
  key: string;
  threshold: number;
}

export interface LockPolicy {
  windowSeconds: number;
  baseLockSeconds: number;
  maxLockSeconds: number;
}

/** Throws 429 `too-many-attempts` with Retry-After while any of the keys is locked. */
export async function assertUnlocked(store: ThrottleStore, keys: readonly ThrottleKey[]): Promise<void> {
  const wait = Math.max(...(await Promise.all(keys.map((k) => store.lockedFor(k.key)))));
  if (wait > 0) throw errors.tooManyAttempts(wait);
}

/** Counts one failure on each key; returns the longest lock it caused, in seconds (0 for none). */
export async function recordFailures(
  store: ThrottleStore,
  policy: LockPolicy,
  keys: readonly ThrottleKey[],
): Promise<number> {
  let longest = 0;
  for (const k of keys) {
    const count = await store.increment(k.key, policy.windowSeconds);
    if (count < k.threshold) continue;
    const seconds = Math.min(policy.maxLockSeconds, policy.baseLockSeconds * 2 ** (count - k.threshold));
    await store.lock(k.key, seconds);
    longest = Math.max(longest, seconds);
  }
  return longest;
}
