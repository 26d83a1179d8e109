/**
 * GET /metrics, over HTTP, as an attacker would try it (#18 item 6): the local runtime's Prometheus
 * endpoint answers only an admin's bearer token (checked as every API route's: signature, expiry,
 * revocation, the role in the users table now), carries no user id (usage is one aggregate), and
 * is rate-limited through RequestLimits: the `read` class by default, its own buckets under the
 * route id `metrics` when STRATUS_RATE_LIMITS names it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, type Runtime, startRuntime } from '../support/local-runtime.ts';

const kind = (json: Record<string, unknown>) => String(json.type).replace('urn:stratus:problem:', '');
const generous = {
  perIp: { capacity: 1e6, refillPerSecond: 1e6 },
  perUser: { capacity: 1e6, refillPerSecond: 1e6 },
};
const limits = (over: Record<string, unknown>) =>
  JSON.stringify({ auth: generous, read: generous, write: generous, public: generous, ...over });

/** Every account the suites create, to look for in the metrics. */
const accountIds: string[] = [];

/** Registers, makes the account an admin in the users table (not in any token), then logs in. */
async function admin(rt: Runtime, email: string): Promise<Client> {
  const c = new Client(rt.url);
  const reg = await c.call('POST', '/v1/auth/register', { email, password: 'correct horse battery' });
  expect(reg.status).toBe(201);
  accountIds.push(reg.json.id as string);
  expect(await rt.container.users.update(reg.json.id as string, { role: 'admin' })).toMatchObject({
    user: { role: 'admin' },
  });
  await c.login(email);
  return c;
}

const scrape = async (rt: Runtime, authorization?: string) => {
  const res = await fetch(`${rt.url}/metrics`, authorization ? { headers: { authorization } } : {});
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    text,
    json: (text.startsWith('{') ? JSON.parse(text) : {}) as Record<string, unknown>,
  };
};
const bearer = (c: Client) => `Bearer ${c.accessToken}`;

describe('GET /metrics', () => {
  let rt: Runtime;
  let root: Client;
  let user: Client;
  const uploaded = [1000, 2345] as const;

  beforeAll(async () => {
    // Metrics get their own buckets here: plenty per address, 5 per user (hardly refilling).
    rt = await startRuntime({
      STRATUS_RATE_LIMITS: limits({
        metrics: { perIp: generous.perIp, perUser: { capacity: 5, refillPerSecond: 0.001 } },
      }),
    });
    root = await admin(rt, 'metrics-admin@example.com');
    user = new Client(rt.url);
    accountIds.push((await user.signUp('metrics-user@example.com')).id);
    const other = new Client(rt.url);
    accountIds.push((await other.signUp('metrics-other@example.com')).id);
    for (const [c, size] of [
      [user, uploaded[0]],
      [other, uploaded[1]],
    ] as const) {
      expect((await c.upload('root', 'bytes.bin', Buffer.alloc(size, 1))).complete?.status).toBe(201);
    }
  });
  afterAll(async () => {
    await rt?.stop();
  });

  const expectProblem = (res: Awaited<ReturnType<typeof scrape>>, status: number, type: string) => {
    expect(res.status, res.text.slice(0, 200)).toBe(status);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(kind(res.json)).toBe(type);
    expect(res.text).not.toContain('stratus_');
  };

  it.each([
    ['no authorization header', undefined],
    ['an empty bearer', 'Bearer '],
    ['not a token', 'Bearer not-a-token-at-all'],
    ['basic auth', `Basic ${Buffer.from('admin:admin').toString('base64')}`],
  ])('anonymous (%s): 401 unauthorized, no metrics', async (_what, authorization) => {
    const res = await scrape(rt, authorization);
    expectProblem(res, 401, 'unauthorized');
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
  });

  it("an admin's token with its signature changed: 401", async () => {
    const token = root.accessToken as string;
    const last = token.at(-2) === 'A' ? 'B' : 'A';
    expectProblem(
      await scrape(rt, `Bearer ${token.slice(0, -2)}${last}${token.at(-1)}`),
      401,
      'unauthorized',
    );
  });

  it("an ordinary user's token: 403 forbidden, no metrics", async () => {
    expectProblem(await scrape(rt, bearer(user)), 403, 'forbidden');
  });

  it('an admin: 200, Prometheus text, usage as one aggregate and no user id anywhere', async () => {
    const res = await scrape(rt, bearer(root));
    expect(res.status, res.text.slice(0, 200)).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('ratelimit-limit')).toBe('5');
    expect(res.text).toMatch(/^stratus_http_requests_total\{route="POST \/v1\/uploads",status="201"\} \d+$/m);
    const used = /^stratus_storage_used_bytes (\d+)$/m.exec(res.text);
    expect(Number(used?.[1])).toBe(uploaded[0] + uploaded[1]);
    expect(res.text).toMatch(/^stratus_users 3$/m);
    expect(res.text).not.toMatch(/user="/);
    expect(accountIds).toHaveLength(3);
    for (const id of accountIds) expect(res.text).not.toContain(id);
    expect(res.text).not.toContain('@example.com');
  });

  it("a token revoked by logout, even an admin's: 401", async () => {
    const leaving = await admin(rt, 'metrics-leaving@example.com');
    const token = bearer(leaving);
    expect((await scrape(rt, token)).status).toBe(200);
    expect((await leaving.call('POST', '/v1/auth/logout', {})).status).toBe(204);
    expectProblem(await scrape(rt, token), 401, 'unauthorized');
  });

  it('an admin hammering it: 429 rate-limited with Retry-After once the bucket is empty; others unaffected', async () => {
    const hammer = await admin(rt, 'metrics-hammer@example.com');
    const results = await Promise.all(Array.from({ length: 20 }, () => scrape(rt, bearer(hammer))));
    expect(results.filter((r) => r.status === 200)).toHaveLength(5);
    const refused = results.filter((r) => r.status !== 200);
    expect(refused).toHaveLength(15);
    for (const r of refused) {
      expectProblem(r, 429, 'rate-limited');
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(r.headers.get('ratelimit-remaining')).toBe('0');
    }
    // Its own buckets: the admin's API reads go on, and another admin still scrapes.
    expect((await hammer.call('GET', '/v1/folders/root/children')).status).toBe(200);
    expect((await scrape(rt, bearer(root))).status).toBe(200);
  });
});

describe('GET /metrics without its own limits', () => {
  it('spends from the read class: once those buckets are empty, a scrape is 429 like any read', async () => {
    const rt = await startRuntime({
      STRATUS_RATE_LIMITS: limits({
        read: {
          perIp: { capacity: 1e6, refillPerSecond: 1e6 },
          perUser: { capacity: 4, refillPerSecond: 0.001 },
        },
      }),
    });
    try {
      const c = await admin(rt, 'metrics-read-class@example.com');
      for (let i = 0; i < 3; i++) expect((await scrape(rt, bearer(c))).status).toBe(200);
      expect((await c.call('GET', '/v1/folders/root/children')).status).toBe(200);
      const res = await scrape(rt, bearer(c));
      expect(res.status).toBe(429);
      expect(kind(res.json)).toBe('rate-limited');
      expect((await c.call('GET', '/v1/folders/root/children')).status).toBe(429);
    } finally {
      await rt.stop();
    }
  });
});
