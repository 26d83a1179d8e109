/**
 * Which buckets a request spends from. Every route belongs to a class (auth, read, write, public);
 * each class has a per-IP and a per-user bucket, and a route may override its class's policy.
 * When the limiter itself is unavailable, reads fail open (a cache outage must not take the service
 * down) and auth fails closed (brute force must not get through because Redis is down).
 */
import { DomainError, errors } from '../domain/errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { BucketPolicy, RateLimiter, TakeResult } from '../ports/rate-limiter.ts';

export type LimitClass = 'auth' | 'read' | 'write' | 'public';

export interface LimitPolicy {
  perIp: BucketPolicy;
  perUser?: BucketPolicy;
}

export const DEFAULT_LIMITS: Record<LimitClass, LimitPolicy> = {
  auth: { perIp: { capacity: 20, refillPerSecond: 20 / 60 } },
  read: { perIp: { capacity: 600, refillPerSecond: 20 }, perUser: { capacity: 600, refillPerSecond: 20 } },
  write: { perIp: { capacity: 300, refillPerSecond: 10 }, perUser: { capacity: 300, refillPerSecond: 10 } },
  public: { perIp: { capacity: 120, refillPerSecond: 2 } },
};

export interface LimitDecision {
  headers: Record<string, string>;
}

export class RequestLimits {
  private readonly limiter: RateLimiter;
  private readonly policies: Record<LimitClass, LimitPolicy>;
  private readonly overrides: Record<string, LimitPolicy>;
  private readonly log: Logger;
  private readonly onReject: (routeId: string) => void;

  constructor(
    limiter: RateLimiter,
    log: Logger,
    opts: {
      policies?: Partial<Record<LimitClass, LimitPolicy>>;
      overrides?: Record<string, LimitPolicy>;
      onReject?: (routeId: string) => void;
    } = {},
  ) {
    this.limiter = limiter;
    this.policies = { ...DEFAULT_LIMITS, ...opts.policies };
    this.overrides = opts.overrides ?? {};
    this.log = log;
    this.onReject = opts.onReject ?? (() => undefined);
  }

  /** Spends a token from each bucket; throws 429 (with Retry-After and RateLimit-*) when one is empty. */
  async check(input: {
    routeId: string;
    cls: LimitClass;
    ip: string;
    userId?: string | undefined;
  }): Promise<LimitDecision> {
    // A route with its own policy has its own buckets; other routes share their class's.
    const own = this.overrides[input.routeId];
    const policy = own ?? this.overrides[input.cls] ?? this.policies[input.cls];
    const scope = own ? `route:${input.routeId}` : input.cls;
    const takes: [string, BucketPolicy][] = [[`ip:${scope}:${input.ip}`, policy.perIp]];
    if (input.userId && policy.perUser) takes.push([`user:${scope}:${input.userId}`, policy.perUser]);
    let results: { r: TakeResult; p: BucketPolicy }[];
    try {
      results = await Promise.all(takes.map(async ([k, p]) => ({ r: await this.limiter.take(k, p), p })));
    } catch (err) {
      if (input.cls === 'auth' || input.cls === 'write') {
        this.log.warn('rate limiter unavailable: failing closed', { route: input.routeId });
        throw err instanceof DomainError ? err : errors.unavailable('rate limiter');
      }
      this.log.warn('rate limiter unavailable: failing open', { route: input.routeId });
      return { headers: {} };
    }
    // Report the tightest bucket, as the RateLimit header fields draft asks.
    const tightest = results.reduce((a, b) =>
      b.r.remaining / b.p.capacity < a.r.remaining / a.p.capacity ? b : a,
    );
    const headers = {
      'ratelimit-limit': String(tightest.p.capacity),
      'ratelimit-remaining': String(tightest.r.remaining),
      'ratelimit-reset': String(tightest.r.resetSeconds),
      'ratelimit-policy': `${tightest.p.capacity};w=${Math.ceil(tightest.p.capacity / tightest.p.refillPerSecond)}`,
    };
    const refused = results.filter((x) => !x.r.allowed);
    if (refused.length) {
      const wait = Math.max(...refused.map((x) => x.r.retryAfterSeconds));
      this.onReject(input.routeId);
      throw errors.rateLimited(wait, {
        capacity: tightest.p.capacity,
        remaining: tightest.r.remaining,
        resetSeconds: tightest.r.resetSeconds,
        windowSeconds: Math.ceil(tightest.p.capacity / tightest.p.refillPerSecond),
      });
    }
    return { headers };
  }
}
