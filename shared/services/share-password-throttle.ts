/**
 * Guards the password check of share links against guessing and against CPU exhaustion.
 *
 * Guessing: wrong passwords are counted per link (from any address) and per source address (across
 * links), as LoginThrottle counts logins: in a fixed window that starts at the first failure; from
 * the threshold on, each further failure locks the key for twice as long as the last, up to a cap.
 * Exponential rather than a fixed lock: a recipient's typo or two costs a minute, while a patient
 * guesser gets some 30 guesses a day at one link (5, then one per lock of 1, 2, 4 … 60 minutes)
 * instead of 5 every lock period. While either key is locked every attempt, the right password too,
 * answers 429 `too-many-attempts` with Retry-After and runs no KDF; locks always expire, so a
 * guesser can delay a link's recipients but never shut them out for good.
 *
 * CPU: the KDF (scrypt at the login cost, 128 MiB at the default) runs through a bounded queue, at
 * most `concurrency` checks at once per process and at most `maxWaiting` waiting; more answer 429
 * `rate-limited` without running it. Chosen over a cheaper KDF, which keeps a flood's cost linear
 * in its size and weakens the stored hashes against offline guessing, and over a per-address cap,
 * which many addresses get around: the queue bounds the threads and memory that share-password
 * checks can hold whatever the number of guessers, so logins (the same scrypt, on the same libuv
 * pool) and file I/O keep the rest. A queued check looks at the locks again just before it runs, so
 * a burst of parallel guesses at one link reaches the KDF only as often as the threshold allows.
 * The queue is per process: in AWS each Lambda instance serves one request at a time, and logins
 * run in Cognito, not beside share checks.
 */
import { errors } from '../domain/errors.ts';
import type { ThrottleStore } from '../ports/throttle-store.ts';
import { assertUnlocked, recordFailures } from './lockout.ts';

export interface SharePasswordPolicy {
  /** Failures at one link, from anywhere, that lock the link. */
  linkThreshold: number;
  /** Failures from one address, across links, that lock the address. */
  ipThreshold: number;
  windowSeconds: number;
  baseLockSeconds: number;
  maxLockSeconds: number;
  /** Share-password KDF runs at once, per process. */
  concurrency: number;
  /** Checks that may wait for a run; beyond them, 429 at once. */
  maxWaiting: number;
}

export const DEFAULT_SHARE_PASSWORD_POLICY: SharePasswordPolicy = {
  linkThreshold: 5,
  ipThreshold: 10,
  windowSeconds: 86_400,
  baseLockSeconds: 60,
  maxLockSeconds: 3600,
  concurrency: 1,
  maxWaiting: 16,
};

/** A semaphore with a bounded waiting line: `run` refuses rather than queue without end. */
export class BoundedQueue {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly concurrency: number;
  private readonly maxWaiting: number;

  constructor(concurrency: number, maxWaiting: number) {
    this.concurrency = Math.max(1, concurrency);
    this.maxWaiting = Math.max(0, maxWaiting);
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.running < this.concurrency) this.running++;
    else if (this.waiting.length >= this.maxWaiting) throw errors.rateLimited(1);
    // A finishing run hands its slot straight to the first waiter, so `running` stays counted.
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}

export class SharePasswordThrottle {
  private readonly store: ThrottleStore;
  private readonly policy: SharePasswordPolicy;
  private readonly queue: BoundedQueue;

  constructor(store: ThrottleStore, policy: Partial<SharePasswordPolicy> = {}) {
    this.store = store;
    this.policy = { ...DEFAULT_SHARE_PASSWORD_POLICY, ...policy };
    this.queue = new BoundedQueue(this.policy.concurrency, this.policy.maxWaiting);
  }

  private keys(linkId: string, ip: string) {
    return [
      { key: `share:${linkId}`, threshold: this.policy.linkThreshold },
      { key: `share-ip:${ip}`, threshold: this.policy.ipThreshold },
    ];
  }

  /** Throws 429 `too-many-attempts` with Retry-After while the link or the address is locked. */
  async assertAllowed(linkId: string, ip: string): Promise<void> {
    await assertUnlocked(this.store, this.keys(linkId, ip));
  }

  /** Records a wrong password; returns the lock, in seconds, that it caused (0 for none). */
  async recordFailure(linkId: string, ip: string): Promise<number> {
    return recordFailures(this.store, this.policy, this.keys(linkId, ip));
  }

  /**
   * Runs `check` (the KDF) for an attempt at a link, unless a lock or a full queue refuses it first
   * (429, `check` not run), and counts a wrong password. Success clears nothing: a link's password
   * is shared by all its recipients, and one of them getting it right says nothing about the others'
   * guesses.
   */
  async verify(
    linkId: string,
    ip: string,
    check: () => Promise<boolean>,
  ): Promise<{ ok: boolean; lockedFor: number }> {
    await this.assertAllowed(linkId, ip);
    return this.queue.run(async () => {
      // A lock may have been set while this attempt waited (by the guesses queued before it).
      await this.assertAllowed(linkId, ip);
      if (await check()) return { ok: true, lockedFor: 0 };
      return { ok: false, lockedFor: await this.recordFailure(linkId, ip) };
    });
  }
}
