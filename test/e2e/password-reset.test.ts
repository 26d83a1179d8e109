/**
 * Password reset on the local runtime as a user meets it: `npm start`'s entry point as a child
 * process, real HTTP, and the reset code read from the process's own log (the local profile has no
 * mail server; the log line is the email).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, ROOT } from '../support/services.ts';

let child: ChildProcess;
let dir: string;
let base: string;
let out = '';

const unlimited = { capacity: 1e6, refillPerSecond: 1e6 };

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-reset-'));
  const port = await freePort();
  child = spawn(process.execPath, [path.join(ROOT, 'local', 'main.ts')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: os.tmpdir(),
      PORT: String(port),
      STRATUS_DATA_DIR: dir,
      STRATUS_KDF_COST: '10',
      STRATUS_LOG_FORMAT: 'json',
      STRATUS_LOG_LEVEL: 'info',
      STRATUS_RATE_LIMITS: JSON.stringify({ auth: { perIp: unlimited, perUser: unlimited } }),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const up = await fetch(`${base}/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the runtime did not start:\n${out}`);
});
afterAll(async () => {
  if (child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  await fs.rm(dir, { recursive: true, force: true });
});

const post = (p: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(base + p, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });

/** The log entries the runtime wrote (JSON lines). */
const logEntries = () =>
  out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

async function emailedCode(to: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const mail = logEntries().find((e) => e.to === to && typeof e.code === 'string');
    if (mail) {
      expect(String(mail.msg)).toMatch(/password reset code emailed .*written to this log/);
      return mail.code as string;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no reset code for ${to} in the log`);
}

describe('password reset over HTTP (local identity provider)', () => {
  it('forgot answers 202 for every address and emails (logs) a code only for a real account', async () => {
    await post('/v1/auth/register', { email: 'known@example.com', password: 'correct horse' });
    const known = await post('/v1/auth/password/forgot', { email: 'known@example.com' });
    const unknown = await post('/v1/auth/password/forgot', { email: 'nobody@example.com' });
    for (const r of [known, unknown]) {
      expect(r.status).toBe(202);
      expect(await r.text()).toBe('');
    }
    await emailedCode('known@example.com');
    expect(logEntries().some((e) => e.to === 'nobody@example.com')).toBe(false);
    const bad = await post('/v1/auth/password/forgot', { email: 'not an address' });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toContain('application/problem+json');
  });

  it('reset with the emailed code sets the password and ends every session; the code works once', async () => {
    const email = 'reset@example.com';
    expect((await post('/v1/auth/register', { email, password: 'old password' })).status).toBe(201);
    const login = await post('/v1/auth/login', { email, password: 'old password' });
    const session = (await login.json()) as { accessToken: string; refreshToken: string };
    const auth = { authorization: `Bearer ${session.accessToken}` };
    expect((await fetch(`${base}/v1/me`, { headers: auth })).status).toBe(200);

    expect((await post('/v1/auth/password/forgot', { email })).status).toBe(202);
    const code = await emailedCode(email);
    expect(code).toMatch(/^\d{8}$/);

    const wrongCode = code === '00000000' ? '00000001' : '00000000';
    const wrong = await post('/v1/auth/password/reset', {
      email,
      code: wrongCode,
      newPassword: 'new password',
    });
    expect(wrong.status).toBe(400);
    expect(wrong.headers.get('content-type')).toContain('application/problem+json');
    expect(((await wrong.json()) as { type: string }).type).toBe('urn:stratus:problem:validation-error');

    const reset = await post('/v1/auth/password/reset', { email, code, newPassword: 'new password' });
    expect(reset.status).toBe(204);

    // Every session of the account ended: its refresh token and its access token.
    expect((await post('/v1/auth/refresh', { refreshToken: session.refreshToken })).status).toBe(401);
    expect((await fetch(`${base}/v1/me`, { headers: auth })).status).toBe(401);
    expect((await post('/v1/auth/login', { email, password: 'old password' })).status).toBe(401);
    expect((await post('/v1/auth/login', { email, password: 'new password' })).status).toBe(200);
    const again = await post('/v1/auth/password/reset', { email, code, newPassword: 'third password' });
    expect(again.status).toBe(400);
  });

  it('the reset routes are in the OpenAPI description', async () => {
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/auth/password/forgot', '/v1/auth/password/reset']),
    );
  });
});
