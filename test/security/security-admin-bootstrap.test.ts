/**
 * Attacks on the first admin (issue 18, item 1). Registering STRATUS_ADMIN_EMAIL used to grant
 * admin to whoever did it first (any case, padded with spaces). Now registration never grants admin:
 * the operator's STRATUS_ADMIN_EMAIL + STRATUS_ADMIN_PASSWORD create the admin at start-up, before
 * the gateway serves, and an account someone registered under that address beforehand is promoted
 * only when the configured password signs in to it.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, adminEnv, Client, type Runtime, startRuntime } from '../support/local-runtime.ts';

const ATTACKER_PASSWORD = 'attacker chose this';

let runtimes: Runtime[] = [];
afterEach(async () => {
  for (const r of runtimes) await r.stop().catch(() => undefined);
  runtimes = [];
});

async function start(env: Record<string, string>, dataDir?: string) {
  const rt = await startRuntime(
    { STRATUS_LOCAL_NODES: '1', STRATUS_REPLICATION_FACTOR: '1', ...env },
    dataDir,
  );
  runtimes.push(rt);
  return rt;
}

async function stop(rt: Runtime) {
  await rt.stop();
  runtimes = runtimes.filter((r) => r !== rt);
}

const me = async (c: Client) => (await c.call('GET', '/v1/me')).json as { id: string; role: string };

describe('admin bootstrap', () => {
  it('registration never grants admin, whatever the spelling of the configured address', async () => {
    const rt = await start(adminEnv('chief@example.com'));
    // The admin exists before the first request: signing in is the first thing that happens.
    const chief = new Client(rt.url);
    expect((await chief.signInAdmin('chief@example.com')).role).toBe('admin');
    for (const email of ['chief@example.com', ' Chief@Example.COM ', 'CHIEF@EXAMPLE.COM']) {
      const res = await new Client(rt.url).call('POST', '/v1/auth/register', {
        email,
        password: ATTACKER_PASSWORD,
      });
      expect(res.status, email).toBe(409);
      expect(res.json.type).toBe('urn:stratus:problem:email-taken');
    }
    // A runtime with no admin configured: any address registers as a user.
    const open = await start({});
    const someone = new Client(open.url);
    expect((await someone.signUp('chief@example.com', ATTACKER_PASSWORD)).role).toBe('user');
    expect((await someone.call('GET', '/v1/admin/usage')).status).toBe(403);
  });

  it('an account registered under the address before it was configured stays a user', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-e2e-bootstrap-'));
    const before = await start({}, dir);
    const squatter = new Client(before.url);
    const { id } = await squatter.signUp('ops@example.com', ATTACKER_PASSWORD);
    await stop(before);

    const after = await start(adminEnv('ops@example.com'), dir);
    const attacker = new Client(after.url);
    await attacker.login('ops@example.com', ATTACKER_PASSWORD);
    expect(await me(attacker)).toMatchObject({ id, role: 'user' });
    expect((await attacker.call('GET', '/v1/admin/usage')).status).toBe(403);
    // The configured password does not sign in to it either: nobody became admin.
    const operator = await new Client(after.url).call('POST', '/v1/auth/login', {
      email: 'ops@example.com',
      password: ADMIN_PASSWORD,
    });
    expect(operator.status).toBe(401);
    const refused = await after.container.audit.list({ ownerId: id }, 50);
    expect(refused.map((e) => e.event.action)).toContain('admin.bootstrap_refused');
  });

  it('promotes the operator’s own earlier account, and keeps an admin whose password changed since', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-e2e-bootstrap-'));
    const before = await start({}, dir);
    const { id } = await new Client(before.url).signUp('lead@example.com', ADMIN_PASSWORD);
    await stop(before);

    const promoted = await start(adminEnv('lead@example.com'), dir);
    const lead = new Client(promoted.url);
    expect(await lead.signInAdmin('lead@example.com')).toMatchObject({ id, role: 'admin' });
    await stop(promoted);

    // The admin's password is not the configured one any more (changed in the app, or the
    // configuration says something else): start-up neither fails nor demotes.
    const later = await start(
      { STRATUS_ADMIN_EMAIL: 'lead@example.com', STRATUS_ADMIN_PASSWORD: 'a different one now' },
      dir,
    );
    expect(await new Client(later.url).signInAdmin('lead@example.com')).toMatchObject({ id, role: 'admin' });
  });
});
