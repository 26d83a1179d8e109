/**
 * `POST /v1/permissions` as an account oracle (issue 18, item 7): sharing with an unknown email
 * answered 404 "user not found", with a known one 201 and the account's id, so anyone could test
 * addresses one request at a time. Now an unknown address gets an invitation answered exactly like
 * a grant (same status, same fields, no account id), listed alike, and made a grant when the address
 * registers; a revoked invitation gives nothing. The route spends the write rate limit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, type Runtime, startRuntime } from '../support/local-runtime.ts';

let rt: Runtime;
let owner: Client;
let folderId: string;

beforeAll(async () => {
  rt = await startRuntime();
  owner = new Client(rt.url);
  await owner.signUp('oracle-owner@example.com');
  folderId = (await owner.call('POST', '/v1/folders', { parentId: 'root', name: 'Plans' })).json.id as string;
  await owner.upload(folderId, 'plan.txt', Buffer.from('the plan'));
  await new Client(rt.url).signUp('known@example.com');
});
afterAll(async () => {
  await rt?.stop();
});

const shape = (json: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(json).map(([k, v]) => [k, typeof v]));

describe('sharing reveals nothing about which addresses have accounts', () => {
  it('answers a known and an unknown address alike', async () => {
    const known = await owner.call('POST', '/v1/permissions', {
      itemId: folderId,
      email: 'known@example.com',
      role: 'viewer',
    });
    const unknown = await owner.call('POST', '/v1/permissions', {
      itemId: folderId,
      email: 'nobody-yet@example.com',
      role: 'viewer',
    });
    expect(known.status).toBe(201);
    expect(unknown.status).toBe(201);
    expect(Object.keys(unknown.json).sort()).toEqual(Object.keys(known.json).sort());
    expect(shape(unknown.json)).toEqual(shape(known.json));
    expect(known.json).not.toHaveProperty('granteeId');
    expect(unknown.json).toMatchObject({ itemId: folderId, email: 'nobody-yet@example.com', role: 'viewer' });
    expect(unknown.headers.get('content-type')).toBe(known.headers.get('content-type'));

    // the item's list shows both the same way
    const list = await owner.call('GET', `/v1/permissions?itemId=${folderId}`);
    expect(list.status).toBe(200);
    const rows = list.json.items as Record<string, unknown>[];
    const byEmail = Object.fromEntries(rows.map((r) => [r.email, r]));
    expect(shape(byEmail['nobody-yet@example.com'] as Record<string, unknown>)).toEqual(
      shape(byEmail['known@example.com'] as Record<string, unknown>),
    );
  });

  it('someone who may not share the item gets the same refusal for either address', async () => {
    const stranger = new Client(rt.url);
    await stranger.signUp('oracle-stranger@example.com');
    const a = await stranger.call('POST', '/v1/permissions', {
      itemId: folderId,
      email: 'known@example.com',
      role: 'editor',
    });
    const b = await stranger.call('POST', '/v1/permissions', {
      itemId: folderId,
      email: 'also-nobody@example.com',
      role: 'editor',
    });
    expect(a.status).toBe(404);
    expect(b.status).toBe(a.status);
    expect(b.json.type).toBe(a.json.type);
  });

  it('an invitation becomes a grant when the address registers', async () => {
    const invited = await owner.call('POST', '/v1/permissions', {
      itemId: folderId,
      email: 'newcomer@example.com',
      role: 'editor',
    });
    expect(invited.status).toBe(201);
    const newcomer = new Client(rt.url);
    await newcomer.signUp('Newcomer@Example.com');
    const shared = await newcomer.call('GET', '/v1/shared');
    expect((shared.json.items as { id: string; role: string }[]).map((i) => [i.id, i.role])).toEqual([
      [folderId, 'editor'],
    ]);
    const listing = await newcomer.call('GET', `/v1/folders/${folderId}/children`);
    expect(listing.status).toBe(200);
    expect((listing.json.items as { name: string }[]).map((i) => i.name)).toEqual(['plan.txt']);
    // the editor can write there
    const { complete } = await newcomer.upload(folderId, 'notes.txt', Buffer.from('mine'));
    expect(complete?.status).toBe(201);
    // the invitation is now the grant: one row for the address, with a grant's id
    const rows = (await owner.call('GET', `/v1/permissions?itemId=${folderId}`)).json.items as {
      id: string;
      email: string;
    }[];
    expect(rows.filter((r) => r.email === 'newcomer@example.com')).toHaveLength(1);
    expect(rows.find((r) => r.email === 'newcomer@example.com')?.id).not.toBe(invited.json.id);
  });

  it('a revoked invitation gives the address nothing when it registers', async () => {
    const invited = await owner.call('POST', '/v1/permissions', {
      itemId: folderId,
      email: 'uninvited@example.com',
      role: 'viewer',
    });
    expect((await owner.call('DELETE', `/v1/permissions/${invited.json.id}`)).status).toBe(204);
    expect((await owner.call('DELETE', `/v1/permissions/${invited.json.id}`)).status).toBe(404);
    const late = new Client(rt.url);
    await late.signUp('uninvited@example.com');
    expect((await late.call('GET', '/v1/shared')).json.items).toEqual([]);
    expect((await late.call('GET', `/v1/folders/${folderId}/children`)).status).toBe(404);
  });
});

describe('sharing spends the write rate limit', () => {
  it('refuses a burst of grants with 429 once the write bucket is empty', async () => {
    const tight = await startRuntime({
      STRATUS_RATE_LIMITS: JSON.stringify({
        write: {
          perIp: { capacity: 1000, refillPerSecond: 1 },
          perUser: { capacity: 5, refillPerSecond: 0.01 },
        },
      }),
    });
    try {
      const o = new Client(tight.url);
      await o.signUp('burst-owner@example.com');
      const folder = (await o.call('POST', '/v1/folders', { parentId: 'root', name: 'F' })).json.id as string;
      const statuses: number[] = [];
      for (let i = 0; i < 10; i++)
        statuses.push(
          (
            await o.call('POST', '/v1/permissions', {
              itemId: folder,
              email: `probe-${i}@example.com`,
              role: 'viewer',
            })
          ).status,
        );
      expect(statuses.filter((s) => s === 201).length).toBeGreaterThan(0);
      expect(statuses.filter((s) => s === 201).length).toBeLessThan(10);
      expect(statuses.slice(-1)).toEqual([429]);
    } finally {
      await tight.stop();
    }
  });
});
