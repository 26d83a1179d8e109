/** Share links, rate limits, headers, metrics, health, usage and the security audit, over HTTP. */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminEnv,
  Client,
  type Runtime,
  scrapeMetrics,
  sha256,
  startRuntime,
} from '../support/local-runtime.ts';

let rt: Runtime;
beforeAll(async () => {
  rt = await startRuntime(adminEnv('sec-admin@example.com'));
});
afterAll(async () => {
  await rt?.stop();
});

const kind = (json: Record<string, unknown>) => String(json.type).replace('urn:stratus:problem:', '');
const anon = async (url: string, headers: Record<string, string> = {}) => {
  const res = await fetch(url, { redirect: 'manual', headers });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    text,
    json: (text.startsWith('{') ? JSON.parse(text) : {}) as Record<string, unknown>,
  };
};

describe('share links', () => {
  let owner: Client;
  let fileId: string;
  const secretName = 'quarterly-secret-plan.txt';
  const content = Buffer.from('the plan');

  beforeAll(async () => {
    owner = new Client(rt.url);
    await owner.signUp('sharer@example.com');
    fileId = (await owner.upload('root', secretName, content, 'text/plain')).complete?.json.fileId as string;
  });

  const share = async (body: Record<string, unknown>) => {
    const res = await owner.call('POST', '/v1/shares', { itemId: fileId, expiresInSeconds: 3600, ...body });
    expect(res.status).toBe(201);
    return res.json as { id: string; token: string; url: string };
  };

  it('gives anyone with the link a short-lived download, counted and audited', async () => {
    const link = await share({});
    expect(link.token.length).toBeGreaterThanOrEqual(43); // 256 bits, base64url
    expect(link.url).toBe(`${rt.url}/s/${link.token}`);
    const res = await anon(link.url);
    expect(res.status).toBe(302);
    const body = Buffer.from(await (await fetch(res.headers.get('location') ?? '')).arrayBuffer());
    expect(body).toEqual(content);
    const listed = await owner.call('GET', `/v1/shares?itemId=${fileId}`);
    expect(
      (listed.json.items as { id: string; downloads: number; bytesServed: number }[]).find(
        (l) => l.id === link.id,
      ),
    ).toMatchObject({
      downloads: 1,
      bytesServed: content.length,
    });
    const audit = await owner.call('GET', `/v1/audit?itemId=${fileId}&action=share.download`);
    expect((audit.json.items as unknown[]).length).toBe(1);
  });

  it('enforces a download count and a byte budget', async () => {
    const twice = await share({ maxDownloads: 2 });
    expect((await anon(twice.url)).status).toBe(302);
    expect((await anon(twice.url)).status).toBe(302);
    const third = await anon(twice.url);
    expect(third.status).toBe(410);
    expect(kind(third.json)).toBe('share-exhausted');
    const budget = await share({ maxBytes: content.length * 2 + 1 });
    expect((await anon(budget.url)).status).toBe(302);
    expect((await anon(budget.url)).status).toBe(302);
    expect(kind((await anon(budget.url)).json)).toBe('share-exhausted');
  });

  it('asks for the password, refuses a wrong one, and accepts the right one', async () => {
    const link = await share({ password: 'open sesame' });
    const none = await anon(link.url);
    expect(none.status).toBe(401);
    expect(kind(none.json)).toBe('share-password-required');
    const wrong = await anon(link.url, { 'x-share-password': 'open says me' });
    expect(wrong.status).toBe(401);
    expect(kind(wrong.json)).toBe('share-password-invalid');
    expect((await anon(link.url, { 'x-share-password': 'open sesame' })).status).toBe(302);
  });

  it('answers expired, revoked and unknown links with a clear error that reveals nothing about the item', async () => {
    const revoked = await share({});
    expect((await owner.call('DELETE', `/v1/shares/${revoked.id}`)).status).toBe(204);
    const expired = await share({});
    await rt.container.db.query(
      "update share_links set expires_at = now() - interval '1 second' where id = $1",
      [expired.id],
    );
    const cases: [string, number, string][] = [
      [revoked.url, 410, 'share-revoked'],
      [expired.url, 410, 'share-expired'],
      [`${rt.url}/s/${randomBytes(32).toString('base64url')}`, 404, 'share-not-found'],
      [`${rt.url}/s/short`, 404, 'share-not-found'],
    ];
    for (const [url, status, type] of cases) {
      const res = await anon(url);
      expect(res.status, type).toBe(status);
      expect(kind(res.json), type).toBe(type);
      expect(res.text).not.toContain(secretName);
      expect(res.text).not.toContain(fileId);
    }
    const stranger = new Client(rt.url);
    await stranger.signUp('share-stranger@example.com');
    expect((await stranger.call('DELETE', `/v1/shares/${expired.id}`)).status).toBe(404);
    expect(
      (await stranger.call('POST', '/v1/shares', { itemId: fileId, expiresInSeconds: 3600 })).status,
    ).toBe(404);
  });

  it('lists a shared folder and serves items inside it, and nothing outside it', async () => {
    const folder = (await owner.call('POST', '/v1/folders', { parentId: 'root', name: 'Public' })).json
      .id as string;
    const sub = (await owner.call('POST', '/v1/folders', { parentId: folder, name: 'Sub' })).json
      .id as string;
    const inner = (await owner.upload(sub, 'inner.txt', Buffer.from('inside'), 'text/plain')).complete?.json
      .fileId as string;
    const link = (await owner.call('POST', '/v1/shares', { itemId: folder, expiresInSeconds: 600 })).json as {
      url: string;
    };
    const top = await anon(link.url);
    expect(top.status).toBe(200);
    expect(top.json.items).toEqual([expect.objectContaining({ id: sub, name: 'Sub', type: 'folder' })]);
    expect((await anon(`${link.url}/${sub}`)).json.items).toEqual([
      expect.objectContaining({ id: inner, name: 'inner.txt' }),
    ]);
    const got = await anon(`${link.url}/${inner}`);
    expect(got.status).toBe(302);
    expect(await (await fetch(got.headers.get('location') ?? '')).text()).toBe('inside');
    expect((await anon(`${link.url}/${fileId}`)).status).toBe(404);
  });
});

describe('rate limits', () => {
  it('throttles auth per address with 429, Retry-After and RateLimit-* headers; reads carry the headers', async () => {
    const tight = await startRuntime({
      STRATUS_RATE_LIMITS: JSON.stringify({
        auth: { perIp: { capacity: 3, refillPerSecond: 0.05 } },
        read: {
          perIp: { capacity: 100, refillPerSecond: 10 },
          perUser: { capacity: 2, refillPerSecond: 0.05 },
        },
      }),
    });
    try {
      const c = new Client(tight.url);
      const reg = await c.call('POST', '/v1/auth/register', {
        email: 'rl@example.com',
        password: 'correct horse',
      });
      expect(reg.headers.get('ratelimit-limit')).toBe('3');
      expect(reg.headers.get('ratelimit-remaining')).toBe('2');
      await c.login('rl@example.com', 'correct horse');
      await c.call('POST', '/v1/auth/login', { email: 'rl@example.com', password: 'wrong wrong' });
      const limited = await c.call('POST', '/v1/auth/login', {
        email: 'rl@example.com',
        password: 'correct horse',
      });
      expect(limited.status).toBe(429);
      expect(kind(limited.json)).toBe('rate-limited');
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(limited.headers.get('ratelimit-remaining')).toBe('0');
      expect(limited.headers.get('ratelimit-policy')).toBe('3;w=60');
      expect((await c.call('GET', '/v1/folders/root/children')).headers.get('ratelimit-remaining')).toBe('1');
      await c.call('GET', '/v1/folders/root/children');
      expect((await c.call('GET', '/v1/folders/root/children')).status).toBe(429);
      const metrics = await (await scrapeMetrics(tight)).text();
      expect(metrics).toMatch(/stratus_rate_limit_rejections_total\{route="login"\} 1/);
      expect(metrics).toMatch(/stratus_rate_limit_rejections_total\{route="listChildren"\} 1/);
    } finally {
      await tight.stop();
    }
  });
});

describe('headers', () => {
  it('puts security headers on every answer, success or problem, and answers CORS preflights', async () => {
    const c = new Client(rt.url);
    for (const res of [
      await c.call('GET', '/health'),
      await c.call('GET', '/v1/me'),
      await c.call('GET', '/nowhere'),
    ]) {
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('strict-transport-security')).toContain('max-age=');
    }
    const pre = await fetch(`${rt.url}/v1/folders`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-headers')).toContain('authorization');
    expect(pre.headers.get('access-control-allow-credentials')).toBeNull();
  });
});

describe('operations', () => {
  it('scrapes /metrics after an upload and a download and sees both', async () => {
    const c = new Client(rt.url);
    const me = await c.signUp('metrics@example.com');
    const data = randomBytes(3 * 1024 * 1024);
    const { complete } = await c.upload('root', 'm.bin', data);
    const dl = await c.download(complete?.json.fileId as string);
    expect(sha256(dl.body ?? Buffer.alloc(0))).toBe(sha256(data));
    const res = await scrapeMetrics(rt);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? Number.NaN);
    // Per-node series, added up over the three nodes (which one took the upload is placement's choice).
    const nodes = (metric: string) => {
      const all = [...text.matchAll(new RegExp(`^${metric}\\{node="local-\\d"\\} (\\d+)$`, 'gm'))];
      expect(all.length, metric).toBeGreaterThan(0);
      return all.reduce((sum, m) => sum + Number(m[1]), 0);
    };
    expect(
      value(/stratus_http_requests_total\{route="POST \/v1\/uploads",status="201"\} (\d+)/),
    ).toBeGreaterThanOrEqual(1);
    expect(
      value(/stratus_http_requests_total\{route="POST \/v1\/uploads\/\{id\}\/complete",status="201"\} (\d+)/),
    ).toBeGreaterThanOrEqual(1);
    expect(
      value(/stratus_http_requests_total\{route="GET \/v1\/files\/\{id\}\/download",status="302"\} (\d+)/),
    ).toBeGreaterThanOrEqual(1);
    expect(nodes('stratus_storage_bytes_in_total')).toBeGreaterThanOrEqual(data.length);
    expect(nodes('stratus_storage_bytes_out_total')).toBeGreaterThanOrEqual(data.length);
    // One aggregate, no user ids (per-user usage is GET /v1/admin/usage).
    expect(value(/stratus_storage_used_bytes (\d+)/)).toBeGreaterThanOrEqual(data.length);
    expect(text).not.toContain(me.id);
    expect(nodes('stratus_node_stored_bytes')).toBeGreaterThanOrEqual(data.length);
    expect(text).toMatch(
      /stratus_http_request_duration_seconds_bucket\{route="POST \/v1\/uploads",le="0.005"\} \d+/,
    );
    expect(text).toMatch(/stratus_upload_sessions_open \d+/);
    // Present (the second replica of the upload may still be copying on three nodes).
    expect(text).toMatch(/^stratus_replicas_pending \d+$/m);
  });

  it('checks every dependency at /health/deep and reports usage to admins', async () => {
    const deep = await new Client(rt.url).call('GET', '/health/deep');
    expect(deep.status).toBe(200);
    expect(deep.json.status).toBe('ok');
    expect(Object.keys(deep.json.checks as object).sort()).toEqual([
      'cache',
      'database',
      'node:local-1',
      'node:local-2',
      'node:local-3',
      'stateStore',
    ]);
    const admin = new Client(rt.url);
    await admin.signInAdmin('sec-admin@example.com');
    const usage = await admin.call('GET', '/v1/admin/usage');
    expect(usage.status).toBe(200);
    const body = usage.json as {
      totalBytes: number;
      users: { usedBytes: number }[];
      nodes: { nodeId: string; bytes: number }[];
    };
    expect(body.totalBytes).toBe(body.users.reduce((s, u) => s + u.usedBytes, 0));
    // Nodes holding bytes; which ones depends on placement.
    expect(body.nodes.length).toBeGreaterThan(0);
    for (const n of body.nodes) expect(['local-1', 'local-2', 'local-3']).toContain(n.nodeId);
    const user = new Client(rt.url);
    await user.signUp('not-admin@example.com');
    expect((await user.call('GET', '/v1/admin/usage')).status).toBe(403);
  });

  it('lets admins query the security audit: logins, failures, token reuse, permissions, shares, purges', async () => {
    const admin = new Client(rt.url);
    await admin.login('sec-admin@example.com');
    const u = new Client(rt.url);
    await u.signUp('audited@example.com');
    await u.call('POST', '/v1/auth/login', { email: 'audited@example.com', password: 'not the password' });
    const old = u.refreshToken;
    await u.call('POST', '/v1/auth/refresh', { refreshToken: old });
    await u.call('POST', '/v1/auth/refresh', { refreshToken: old });
    await u.login('audited@example.com');
    const folder = (await u.call('POST', '/v1/folders', { parentId: 'root', name: 'A' })).json.id as string;
    await u.call('POST', '/v1/permissions', {
      itemId: folder,
      email: 'sec-admin@example.com',
      role: 'viewer',
    });
    await u.call('DELETE', `/v1/folders/${folder}`);
    await u.call('DELETE', `/v1/trash/${folder}`);
    for (const action of [
      'auth.login',
      'auth.login_failed',
      'auth.token_reuse',
      'permission.grant',
      'share.create',
      'share.download',
      'purge.item',
    ]) {
      const res = await admin.call('GET', `/v1/audit?action=${action}`);
      expect((res.json.items as unknown[]).length, action).toBeGreaterThan(0);
    }
    const mine = await u.call('GET', '/v1/audit?action=auth.login');
    expect(
      (mine.json.items as { ownerId: string }[]).every(
        (e) => e.ownerId === (mine.json.items as { ownerId: string }[])[0]?.ownerId,
      ),
    ).toBe(true);
  });
});
