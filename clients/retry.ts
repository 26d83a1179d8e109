/**
 * When and how long the clients wait before trying a request again (CLI and dashboard alike; no Node
 * built-ins). The service answers 429 when a rate-limit bucket is empty and 503 when a dependency is
 * down, both with `Retry-After` when it knows how long; storage answers 503 (S3's SlowDown) or 5xx.
 *
 * - `Retry-After` wins: delta-seconds or an HTTP-date, plus a little jitter upward so that clients
 *   told the same second do not all come back in the same millisecond.
 * - Without it: exponential back-off with jitter (`base * 2^(n-1)`, capped, each wait drawn from the
 *   upper half of that step so a bound on attempts is also a bound on time spent).
 * - Bounded twice: `maxAttempts` in all, and `maxTotalWaitMs` of waiting per request. A server asking
 *   for more than `maxDelayMs` (or more than the budget left) gets the error now, not a silent hang.
 * - Only what is safe to repeat: a 429 means nothing was done (the limiter runs before the handler),
 *   so every request may be repeated after one, except a login lock-out (`too-many-attempts`, where
 *   retrying a wrong password achieves nothing). 502/503/504 may follow partial work, so only
 *   idempotent requests (RFC 9110 methods, or a POST the service replays, such as completing an
 *   upload) are repeated after those.
 */

export interface RetryPolicy {
  /** Attempts in all, the first one included (1: never retry). */
  maxAttempts: number;
  /** The most time one request may spend waiting between its attempts. */
  maxTotalWaitMs: number;
  /** The first back-off step when the server gives no `Retry-After`; it doubles per attempt. */
  baseDelayMs: number;
  /** The longest single wait; a longer `Retry-After` fails the request at once. */
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 12,
  maxTotalWaitMs: 120_000,
  baseDelayMs: 250,
  maxDelayMs: 30_000,
};

/** Time and chance, injectable so the policy can be tested without waiting. */
export interface RetryClock {
  now(): number;
  /** A number in [0, 1). */
  random(): number;
  /** Resolves after `ms`; rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: RetryClock = {
  now: () => Date.now(),
  random: () => Math.random(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const done = () => {
        signal?.removeEventListener('abort', abort);
        resolve();
      };
      const t = setTimeout(done, ms);
      const abort = () => {
        clearTimeout(t);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', abort, { once: true });
    }),
};

/** `Retry-After` as milliseconds from `now`: delta-seconds or an HTTP-date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  const v = value?.trim();
  if (!v) return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // HTTP-date (IMF-fixdate, or the obsolete forms Date.parse also reads). A date in the past: now.
  if (!/[a-z]/i.test(v)) return undefined;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Whether an answer with this status (0: no answer) may be repeated, for a request that is or is not idempotent. */
export function isRetryable(status: number, idempotent: boolean, slug?: string): boolean {
  if (status === 429) return slug !== 'too-many-attempts';
  if (status === 502 || status === 503 || status === 504) return idempotent;
  return false;
}

/** RFC 9110's idempotent methods. */
export const idempotentMethod = (method: string) =>
  ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'].includes(method.toUpperCase());

/** The retry budget of one request: ask `next()` after each failed attempt how long to wait, if at all. */
export class Backoff {
  private readonly policy: RetryPolicy;
  private readonly clock: RetryClock;
  /** Attempts made so far (the first counts once `next` is asked about it). */
  attempts = 1;
  /** Milliseconds of waiting handed out so far. */
  waitedMs = 0;

  constructor(policy: Partial<RetryPolicy> = {}, clock: RetryClock = systemClock) {
    this.policy = { ...DEFAULT_RETRY_POLICY, ...policy };
    this.clock = clock;
  }

  /**
   * The wait before the next attempt, or undefined when the budget is spent (attempts, total wait,
   * or a `Retry-After` longer than the policy accepts). `retryAfter` is the raw header value.
   */
  next(retryAfter?: string | null): number | undefined {
    const p = this.policy;
    if (this.attempts >= p.maxAttempts) return undefined;
    const asked = parseRetryAfter(retryAfter, this.clock.now());
    let delay: number;
    if (asked !== undefined) {
      if (asked > p.maxDelayMs) return undefined;
      // Never earlier than asked; up to 20% (at least 50 ms, at most 1 s) later.
      delay = asked + this.clock.random() * Math.min(1000, Math.max(50, asked * 0.2));
    } else {
      const step = Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** (this.attempts - 1));
      delay = step / 2 + (this.clock.random() * step) / 2;
    }
    delay = Math.round(delay);
    if (this.waitedMs + delay > p.maxTotalWaitMs) return undefined;
    this.attempts++;
    this.waitedMs += delay;
    return delay;
  }
}

export interface RetryEvent {
  method: string;
  url: string;
  status: number;
  /** The attempt about to be made (2 for the first retry). */
  attempt: number;
  delayMs: number;
}

export interface RetryOptions {
  policy?: Partial<RetryPolicy> | undefined;
  clock?: RetryClock | undefined;
  /** Ends a back-off wait early (the wait rejects with the signal's reason). */
  signal?: AbortSignal | undefined;
  /** Told before each wait (a UI can say "server busy, retrying"). */
  onRetry?: ((e: RetryEvent) => void) | undefined;
  /** Overrides the method's RFC 9110 idempotency. */
  idempotent?: boolean | undefined;
}

/** The problem type slug of a 429 (read from a copy; the caller still gets the whole body). */
async function slugOf(res: Response): Promise<string | undefined> {
  if (res.status !== 429) return undefined;
  try {
    const type = ((await res.clone().json()) as { type?: unknown }).type;
    return typeof type === 'string' ? type.replace(/^urn:stratus:problem:/, '') : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `fetch` that waits and repeats on the answers the policy allows (for the paths that do not go
 * through `StratusApi`: signed download URLs, the public share page). The body must be resendable
 * (a string or bytes, not a stream). The last answer is returned as it is, retried or not.
 */
export async function fetchWithRetry(
  doFetch: typeof fetch,
  url: string | URL,
  init: RequestInit = {},
  o: RetryOptions = {},
): Promise<Response> {
  const method = init.method ?? 'GET';
  const idempotent = o.idempotent ?? idempotentMethod(method);
  const clock = o.clock ?? systemClock;
  const backoff = new Backoff(o.policy, clock);
  for (;;) {
    const res = await doFetch(url, init);
    if (!isRetryable(res.status, idempotent, await slugOf(res))) return res;
    const delayMs = backoff.next(res.headers.get('retry-after'));
    if (delayMs === undefined) return res;
    await res.body?.cancel().catch(() => undefined);
    o.onRetry?.({ method, url: String(url), status: res.status, attempt: backoff.attempts, delayMs });
    await clock.sleep(delayMs, o.signal ?? init.signal ?? undefined);
  }
}
