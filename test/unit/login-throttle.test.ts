import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryThrottleStore } from '../../shared/adapters/memory/memory-throttle-store.ts';
import { DomainError } from '../../shared/domain/errors.ts';
import { problemHeaders, statusOf } from '../../shared/http/problem.ts';
import { DEFAULT_THROTTLE, LoginThrottle } from '../../shared/services/login-throttle.ts';

let clock = 0;
const advance = (s: number) => {
  clock += s * 1000;
};

async function blocked(t: LoginThrottle, email: string, ip: string): Promise<number> {
  try {
    await t.assertAllowed(email, ip);
    return 0;
  } catch (e) {
    if (e instanceof DomainError && statusOf(e) === 429) return Number(problemHeaders(e)['retry-after']);
    throw e;
  }
}

describe('login throttling', () => {
  let t: LoginThrottle;
  beforeEach(() => {
    clock = 1_000_000;
    t = new LoginThrottle(new MemoryThrottleStore(() => clock));
  });

  it('allows a few mistakes, then locks the account', async () => {
    for (let i = 0; i < DEFAULT_THROTTLE.accountThreshold - 1; i++) await t.recordFailure('a', '1.1.1.1');
    expect(await blocked(t, 'a', '1.1.1.1')).toBe(0);
    await t.recordFailure('a', '1.1.1.1');
    expect(await blocked(t, 'a', '9.9.9.9')).toBe(DEFAULT_THROTTLE.baseLockSeconds);
  });

  it('doubles the lock with each further failure, up to the cap', async () => {
    const locks: number[] = [];
    for (let i = 0; i < 12; i++) locks.push(await t.recordFailure('a', `10.0.0.${i}`));
    const growing = locks.slice(DEFAULT_THROTTLE.accountThreshold - 1);
    expect(growing.slice(0, 4)).toEqual([15, 30, 60, 120]);
    expect(Math.max(...locks)).toBe(DEFAULT_THROTTLE.maxLockSeconds);
  });

  it('never locks for good: locks and counts expire', async () => {
    for (let i = 0; i < 20; i++) await t.recordFailure('a', `10.0.1.${i}`);
    expect(await blocked(t, 'a', '2.2.2.2')).toBeGreaterThan(0);
    advance(DEFAULT_THROTTLE.maxLockSeconds + 1);
    expect(await blocked(t, 'a', '2.2.2.2')).toBe(0);
    advance(DEFAULT_THROTTLE.windowSeconds);
    expect(await t.recordFailure('a', '2.2.2.2')).toBe(0);
  });

  it('locks an address that guesses across many accounts', async () => {
    for (let i = 0; i < DEFAULT_THROTTLE.ipThreshold; i++) await t.recordFailure(`user${i}`, '6.6.6.6');
    expect(await blocked(t, 'fresh-account', '6.6.6.6')).toBeGreaterThan(0);
    expect(await blocked(t, 'fresh-account', '7.7.7.7')).toBe(0);
  });

  it('forgets an account\u2019s failures after a successful login', async () => {
    for (let i = 0; i < DEFAULT_THROTTLE.accountThreshold - 1; i++) await t.recordFailure('a', `10.0.2.${i}`);
    await t.recordSuccess('a');
    expect(await t.recordFailure('a', '3.3.3.3')).toBe(0);
  });
});
