/**
 * Tokens follow the account (issue 15, item 6), over HTTP on the local runtime: a logout without
 * a refresh token ends the family its access token names; a role change is an admin API, audited,
 * that reaches live access tokens (the principal's role is read from the users table) and the next
 * refresh; the last admin cannot demote themselves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminEnv, Client, type Runtime, startRuntime } from '../support/local-runtime.ts';

const ADMIN = 'tokens-admin@example.com';
let rt: Runtime;
let root: Client;
let rootId: string;

beforeAll(async () => {
  rt = await startRuntime(adminEnv(ADMIN));
  root = new Client(rt.url);
  rootId = (await root.signInAdmin(ADMIN)).id;
});
afterAll(async () => {
  await rt?.stop();
});

const kind = (json: Record<string, unknown>) => String(json.type).replace('urn:stratus:problem:', '');
const claims = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
let n = 0;
async function newUser(prefix: string) {
  const c = new Client(rt.url);
  const u = await c.signUp(`${prefix}-${++n}@example.com`);
  return { c, id: u.id, email: `${prefix}-${n}@example.com` };
}

describe('logout without a refresh token', () => {
  it('revokes the family the access token names: the old refresh token is then 401', async () => {
    const { c } = await newUser('leaver');
    const refreshToken = c.refreshToken as string;
    const out = await c.call('POST', '/v1/auth/logout', {});
    expect(out.status).toBe(204);
    expect((await c.call('GET', '/v1/me')).status).toBe(401);
    const again = await c.call('POST', '/v1/auth/refresh', { refreshToken });
    expect(again.status).toBe(401);
    expect(kind(again.json)).toBe('unauthorized');
  });

  it('ends only that session: another login of the same account keeps working', async () => {
    const { c, email } = await newUser('two-devices');
    const other = new Client(rt.url);
    await other.login(email);
    expect((await c.call('POST', '/v1/auth/logout', {})).status).toBe(204);
    const refreshed = await other.call('POST', '/v1/auth/refresh', { refreshToken: other.refreshToken });
    expect(refreshed.status).toBe(200);
  });
});

describe('PATCH /v1/admin/users/{id}', () => {
  const patch = (as: Client, id: string, body: unknown) => as.call('PATCH', `/v1/admin/users/${id}`, body);

  it('promotes and demotes; a demoted admin loses admin routes at once and refreshes to role user', async () => {
    const { c: alice, id } = await newUser('alice');
    const promoted = await patch(root, id, { role: 'admin' });
    expect(promoted.status).toBe(200);
    expect(promoted.json).toMatchObject({ id, role: 'admin' });
    // The token she holds was issued as `user`; the principal's role comes from the users table.
    expect((await alice.call('GET', '/v1/admin/usage')).status).toBe(200);
    await alice.login(`alice-${n}@example.com`);
    expect(claims(alice.accessToken as string)['cognito:groups']).toEqual(['admin']);
    const refreshToken = alice.refreshToken as string;

    const demoted = await patch(root, id, { role: 'user' });
    expect(demoted.status).toBe(200);
    expect(demoted.json.role).toBe('user');
    // Her access token still says admin; the local runtime drops its cached role on the change
    // (other processes within STRATUS's 5 s role cache, see docs/architecture.md).
    expect(claims(alice.accessToken as string)['cognito:groups']).toEqual(['admin']);
    const refused = await alice.call('GET', '/v1/admin/usage');
    expect(refused.status).toBe(403);
    expect(kind(refused.json)).toBe('forbidden');
    expect((await alice.call('GET', '/v1/me')).json.role).toBe('user');

    const refreshed = await alice.call('POST', '/v1/auth/refresh', { refreshToken });
    expect(refreshed.status).toBe(200);
    expect(claims(refreshed.json.accessToken as string)['cognito:groups']).toEqual(['user']);
    alice.accessToken = refreshed.json.accessToken as string;
    expect((await alice.call('GET', '/v1/admin/nodes')).status).toBe(403);
  });

  it('is audited with the actor, the user and the change', async () => {
    const { id } = await newUser('audited');
    expect((await patch(root, id, { role: 'admin', quotaBytes: 1234 })).status).toBe(200);
    const audit = await root.call('GET', '/v1/audit?action=admin.user_updated');
    expect(audit.status).toBe(200);
    const entry = (audit.json.items as Record<string, unknown>[]).find((e) => e.ownerId === id);
    expect(entry).toMatchObject({
      actorId: rootId,
      ownerId: id,
      action: 'admin.user_updated',
      detail: { role: { from: 'user', to: 'admin' }, quotaBytes: { to: 1234 } },
    });
  });

  it('sets the quota', async () => {
    const { c, id } = await newUser('quota');
    const res = await patch(root, id, { quotaBytes: 5000 });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ quotaBytes: 5000, role: 'user' });
    expect((await c.call('GET', '/v1/usage')).json.quotaBytes).toBe(5000);
  });

  it('is admins only (403), an unknown user is 404, a bad body is 400', async () => {
    const { c: mallory, id } = await newUser('mallory');
    const self = await patch(mallory, id, { role: 'admin' });
    expect(self.status).toBe(403);
    expect(kind(self.json)).toBe('forbidden');
    expect((await mallory.call('GET', '/v1/me')).json.role).toBe('user');
    const unknown = await patch(root, '0d7a4a8e-4a52-4f5e-9d53-2b8f0e8f4c11', { role: 'user' });
    expect(unknown.status).toBe(404);
    expect(kind(unknown.json)).toBe('not-found');
    expect((await patch(root, id, {})).status).toBe(400);
    expect((await patch(root, id, { role: 'owner' })).status).toBe(400);
    expect((await patch(root, 'not-a-uuid', { role: 'user' })).status).toBe(400);
  });

  it('refuses to demote the last admin (409)', async () => {
    const rt2 = await startRuntime(adminEnv('only-admin@example.com'));
    try {
      const only = new Client(rt2.url);
      const { id } = await only.signInAdmin('only-admin@example.com');
      const res = await only.call('PATCH', `/v1/admin/users/${id}`, { role: 'user' });
      expect(res.status).toBe(409);
      expect(kind(res.json)).toBe('conflict');
      expect((await only.call('GET', '/v1/admin/usage')).status).toBe(200);
    } finally {
      await rt2.stop();
    }
  });
});
