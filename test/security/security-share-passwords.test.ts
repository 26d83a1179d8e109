/**
 * Guessing a share link's password, over HTTP, as an attacker would (#18 item 3): wrong passwords
 * lock the link (from anywhere) and the address (across links) with 429 `too-many-attempts` and
 * Retry-After; during a lock even the right password is refused; locks expire; a new link needs a
 * password of at least 8 characters; and a flood of parallel guesses reaches the KDF only as often
 * as the lockout allows, while a login meanwhile goes through.
 *
 * The suite's runtime has near-unlimited request rate limits (see startRuntime): what is asserted
 * here is the password throttle alone. Its store runs on a clock the test moves.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemoryThrottleStore } from '../../shared/adapters/memory/memory-throttle-store.ts';
import { hashPassword } from '../../shared/domain/password-hash.ts';
import { Client, type Runtime, startRuntime } from '../support/local-runtime.ts';

let clock = Date.now();
let rt: Runtime;
let owner: Client;
let fileId: string;
const RIGHT = 'correct horse staple';

beforeAll(async () => {
  rt = await startRuntime({}, undefined, { throttleStore: new MemoryThrottleStore(() => clock) });
  owner = new Client(rt.url);
  await owner.signUp('share-guess-owner@example.com');
  fileId = (await owner.upload('root', 'guarded.txt', Buffer.from('guarded'), 'text/plain')).complete?.json
    .fileId as string;
});
afterAll(async () => {
  await rt?.stop();
});
// Each case starts with every counter and lock of the last one expired (two days on).
afterEach(() => {
  clock += 2 * 86_400_000;
});

const kind = (json: Record<string, unknown>) => String(json.type).replace('urn:stratus:problem:', '');

async function share(password: string | undefined = RIGHT) {
  const res = await owner.call('POST', '/v1/shares', {
    itemId: fileId,
    expiresInSeconds: 3600,
    ...(password === undefined ? {} : { password }),
  });
  expect(res.status, JSON.stringify(res.json)).toBe(201);
  return res.json as { id: string; token: string; url: string };
}

async function open(url: string, password: string) {
  const res = await fetch(`${url}?format=json`, { headers: { 'x-share-password': password } });
  const text = await res.text();
  const json = (text.startsWith('{') ? JSON.parse(text) : {}) as Record<string, unknown>;
  return { status: res.status, retryAfter: res.headers.get('retry-after'), kind: kind(json) };
}

describe('share-link password guessing', () => {
  it('locks a link after a few wrong passwords, well before 40, with Retry-After', async () => {
    const link = await share();
    const answers = [];
    for (let i = 0; i < 40; i++) answers.push(await open(link.url, `wrong guess ${i}`));
    const firstLocked = answers.findIndex((a) => a.status === 429);
    expect(firstLocked).toBeGreaterThan(0);
    expect(firstLocked).toBeLessThanOrEqual(5);
    expect(answers.slice(0, firstLocked).every((a) => a.status === 401)).toBe(true);
    for (const a of answers.slice(firstLocked)) {
      expect(a.status).toBe(429);
      expect(a.kind).toBe('too-many-attempts');
      expect(Number(a.retryAfter)).toBeGreaterThan(0);
    }
  });

  it('refuses the right password during the lock, and accepts it once the lock has expired', async () => {
    const link = await share();
    let locked = await open(link.url, 'wrong guess');
    for (let i = 0; i < 10 && locked.status === 401; i++) locked = await open(link.url, 'wrong guess');
    expect(locked.status).toBe(429);
    const during = await open(link.url, RIGHT);
    expect(during.status).toBe(429);
    expect(during.kind).toBe('too-many-attempts');
    const wait = Number(during.retryAfter);
    expect(wait).toBeGreaterThan(0);
    clock += (wait - 1) * 1000;
    expect((await open(link.url, RIGHT)).status).toBe(429);
    clock += 2000;
    expect((await open(link.url, RIGHT)).status).toBe(200);
  });

  it('locks an address that guesses across many links, each below the per-link threshold', async () => {
    const links = await Promise.all([1, 2, 3, 4, 5].map(() => share()));
    const statuses: number[] = [];
    for (const link of links)
      for (let i = 0; i < 3; i++) statuses.push((await open(link.url, `wrong guess ${i}`)).status);
    expect(statuses).toContain(429);
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(10);
    // A link this address never guessed at is locked for it too, right password or not.
    const fresh = await share();
    const res = await open(fresh.url, RIGHT);
    expect(res.status).toBe(429);
    expect(res.kind).toBe('too-many-attempts');
  });

  it('lets 40 parallel guesses reach the KDF only as often as the lockout allows, while a login goes through', async () => {
    const link = await share();
    const guesses = Array.from({ length: 40 }, (_, i) => open(link.url, `parallel guess ${i}`));
    const login = owner.call('POST', '/v1/auth/login', {
      email: 'share-guess-owner@example.com',
      password: 'correct horse battery',
    });
    const answers = await Promise.all(guesses);
    expect((await login).status).toBe(200);
    // A 401 is a guess that ran the KDF; every other one was refused before it.
    expect(answers.filter((a) => a.status === 401).length).toBeLessThanOrEqual(5);
    expect(answers.every((a) => a.status === 401 || a.status === 429)).toBe(true);
    expect(answers.filter((a) => a.status === 429).length).toBeGreaterThanOrEqual(35);
  });

  it('needs at least 8 characters for a new link password; an old short one still opens its link', async () => {
    for (const password of ['abcd', 'seven77']) {
      const res = await owner.call('POST', '/v1/shares', {
        itemId: fileId,
        expiresInSeconds: 3600,
        password,
      });
      expect(res.status).toBe(400);
    }
    await share('eight888');
    // A link made before the rule, with a 4-character password, keeps working.
    const old = await share();
    await rt.container.db.query('update share_links set password_hash = $1 where id = $2', [
      await hashPassword('abcd', 10),
      old.id,
    ]);
    expect((await open(old.url, 'abcd')).status).toBe(200);
  });
});
