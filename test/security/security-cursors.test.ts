/**
 * Crafted page cursors, over HTTP, as an attacker would send them (#18 item 8): every cursor the
 * API did not issue, for the folder listing and for the audit trail, is a 400 `validation-error`
 * problem naming `query.cursor`, never a 500 from a cast in the database and never a silently
 * accepted position. Genuine cursors still page through every sort order.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, type Runtime, startRuntime } from '../support/local-runtime.ts';

let rt: Runtime;
let c: Client;
beforeAll(async () => {
  rt = await startRuntime();
  c = new Client(rt.url);
  await c.signUp('cursor-attacker@example.com');
  for (const name of ['alpha', 'Beta', 'gamma']) {
    expect((await c.call('POST', '/v1/folders', { parentId: 'root', name })).status).toBe(201);
  }
  for (const [name, size] of [
    ['one.bin', 1],
    ['two.bin', 2],
  ] as const) {
    expect((await c.upload('root', name, Buffer.alloc(size, 7))).complete?.status).toBe(201);
  }
});
afterAll(async () => {
  await rt?.stop();
});

const kind = (json: Record<string, unknown>) => String(json.type).replace('urn:stratus:problem:', '');
/** base64url of a JSON value (or of raw text, to craft what JSON.stringify would not write). */
const b64 = (v: unknown, raw = false) =>
  Buffer.from(raw ? String(v) : JSON.stringify(v)).toString('base64url');

const ID = randomUUID();
const child = (over: Record<string, unknown>) => ({
  value: 'alpha',
  id: ID,
  by: 'name',
  dir: 'asc',
  ...over,
});
const audit = (over: Record<string, unknown>) => ({ at: '2026-01-02 03:04:05.123456+00', id: ID, ...over });
const DASHES = '-'.repeat(36);
const ZEROS = '0'.repeat(36);

/** [what, query (sort and dir), cursor as sent]. */
const CHILDREN: [string, string, string][] = [
  ['id of 36 dashes', 'sort=name', b64(child({ id: DASHES }))],
  ['id of 36 zeros', 'sort=name', b64(child({ id: ZEROS }))],
  ['id with misplaced dashes', 'sort=name', b64(child({ id: '0000-00000000-0000-0000-000000000000' }))],
  ['id in upper case', 'sort=name', b64(child({ id: ID.toUpperCase() }))],
  ['id without dashes', 'sort=name', b64(child({ id: ID.replace(/-/g, '') }))],
  ['id in braces', 'sort=name', b64(child({ id: `{${ID}}` }))],
  ['id a number', 'sort=name', b64(child({ id: 1 }))],
  ['size not a number', 'sort=size', b64(child({ by: 'size', value: 'abc' }))],
  ['size in exponent form', 'sort=size', b64(child({ by: 'size', value: '1e3' }))],
  ['size beyond bigint', 'sort=size', b64(child({ by: 'size', value: '99999999999999999999999' }))],
  ['size beyond a safe integer', 'sort=size', b64(child({ by: 'size', value: '9007199254740993' }))],
  ['size negative', 'sort=size', b64(child({ by: 'size', value: '-1' }))],
  ['size a fraction', 'sort=size', b64(child({ by: 'size', value: '1.5' }))],
  ['size empty', 'sort=size', b64(child({ by: 'size', value: '' }))],
  ['size padded', 'sort=size', b64(child({ by: 'size', value: ' 7' }))],
  ['size with a leading zero', 'sort=size', b64(child({ by: 'size', value: '07' }))],
  ['size a JSON number', 'sort=size', b64(child({ by: 'size', value: 7 }))],
  ['modified not a date', 'sort=modified', b64(child({ by: 'modified', value: 'not a date' }))],
  [
    'modified on 30 February',
    'sort=modified',
    b64(child({ by: 'modified', value: '2026-02-30 00:00:00+00' })),
  ],
  ['modified at hour 25', 'sort=modified', b64(child({ by: 'modified', value: '2026-01-01 25:00:00+00' }))],
  [
    'modified in year 294277',
    'sort=modified',
    b64(child({ by: 'modified', value: '294277-01-01 00:00:00+00' })),
  ],
  ['modified "infinity"', 'sort=modified', b64(child({ by: 'modified', value: 'infinity' }))],
  ['modified "now"', 'sort=modified', b64(child({ by: 'modified', value: 'now' }))],
  ['modified as epoch millis', 'sort=modified', b64(child({ by: 'modified', value: 1767225600000 }))],
  ['name with a NUL', 'sort=name', b64(child({ value: 'a\u0000b' }))],
  ['name with a lone surrogate', 'sort=name', b64(child({ value: '\ud800' }))],
  ['name an object', 'sort=name', b64(child({ value: { $gt: '' } }))],
  ['longer than 1024 characters', 'sort=name', b64(child({ value: 'a'.repeat(2000) }))],
  ['cursor of another sort', 'sort=name', b64(child({ by: 'size', value: '1' }))],
  ['cursor of another direction', 'sort=name&dir=desc', b64(child({}))],
  ['sort not one the API has', 'sort=name', b64(child({ by: 'name; drop table items' }))],
  ['no sort in the cursor', 'sort=name', b64({ value: 'alpha', id: ID })],
  ['an extra field', 'sort=name', b64(child({ limit: 1e9 }))],
  ['JSON null', 'sort=name', b64(null)],
  ['JSON array', 'sort=name', b64(['alpha', ID, 'name', 'asc'])],
  ['JSON with a __proto__ key', 'sort=name', b64(`{"__proto__":{"x":1},"value":"a","id":"${ID}"}`, true)],
  ['not JSON', 'sort=name', b64('{value: alpha}', true)],
  ['not base64url', 'sort=name', 'definitely not a cursor!'],
  ['base64 with padding', 'sort=name', `${b64(child({}))}==`],
  [
    'base64 with + and /',
    'sort=name',
    Buffer.from(JSON.stringify(child({ value: '>>>???' }))).toString('base64'),
  ],
  ['invalid UTF-8', 'sort=name', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]).toString('base64url')],
  ['empty', 'sort=name', ''],
];

const AUDIT: [string, string][] = [
  ['id of 36 dashes', b64(audit({ id: DASHES }))],
  ['id of 36 zeros', b64(audit({ id: ZEROS }))],
  ['id with misplaced dashes', b64(audit({ id: '0000-00000000-0000-0000-000000000000' }))],
  ['id in upper case', b64(audit({ id: ID.toUpperCase() }))],
  ['id missing', b64({ at: '2026-01-02 03:04:05+00' })],
  ['at not a date', b64(audit({ at: 'last tuesday' }))],
  ['at on 30 February', b64(audit({ at: '2026-02-30 00:00:00+00' }))],
  ['at minute 61', b64(audit({ at: '2026-01-01 00:61:00+00' }))],
  ['at in year 294277', b64(audit({ at: '294277-01-01 00:00:00+00' }))],
  ['at "infinity"', b64(audit({ at: 'infinity' }))],
  ['at "epoch"', b64(audit({ at: 'epoch' }))],
  ['at a number', b64(audit({ at: 0 }))],
  ['at with ten fraction digits', b64(audit({ at: '2026-01-02 03:04:05.1234567890+00' }))],
  ['an extra field', b64(audit({ ownerId: ID }))],
  ['a folder-listing cursor', b64(child({}))],
  ['JSON null', b64(null)],
  ['not base64url', 'definitely not a cursor!'],
  ['base64 with padding', `${b64(audit({}))}=`],
];

const expectCursorProblem = async (path: string) => {
  const res = await c.call('GET', path);
  expect(res.status, JSON.stringify(res.json)).toBe(400);
  expect(res.headers.get('content-type')).toContain('application/problem+json');
  expect(kind(res.json)).toBe('validation-error');
  expect(res.json.errors).toEqual(
    expect.arrayContaining([expect.objectContaining({ path: 'query.cursor' })]),
  );
};

describe('GET /v1/folders/{id}/children with a crafted cursor', () => {
  it.each(CHILDREN)('%s: 400 validation-error on query.cursor', async (_what, query, cursor) => {
    await expectCursorProblem(`/v1/folders/root/children?${query}&cursor=${encodeURIComponent(cursor)}`);
  });
});

describe('GET /v1/audit with a crafted cursor', () => {
  it.each(AUDIT)('%s: 400 validation-error on query.cursor', async (_what, cursor) => {
    await expectCursorProblem(`/v1/audit?cursor=${encodeURIComponent(cursor)}`);
  });
});

describe('cursors the API issued', () => {
  it.each(['name', 'size', 'modified'].flatMap((sort) => ['asc', 'desc'].map((dir) => [sort, dir] as const)))(
    'page one child at a time by %s %s, each once',
    async (sort, dir) => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const q = `sort=${sort}&dir=${dir}&limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const res = await c.call('GET', `/v1/folders/root/children?${q}`);
        expect(res.status, JSON.stringify(res.json)).toBe(200);
        seen.push(...(res.json.items as { id: string }[]).map((i) => i.id));
        cursor = res.json.nextCursor as string | null;
      } while (cursor && seen.length < 10);
      expect(seen).toHaveLength(5);
      expect(new Set(seen).size).toBe(5);
    },
  );

  it('page the audit trail one event at a time, each once', async () => {
    const all = await c.call('GET', '/v1/audit?limit=500');
    const total = (all.json.items as unknown[]).length;
    expect(total).toBeGreaterThanOrEqual(3);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await c.call(
        'GET',
        `/v1/audit?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      expect(res.status, JSON.stringify(res.json)).toBe(200);
      seen.push(...(res.json.items as { id: string }[]).map((i) => i.id));
      cursor = res.json.nextCursor as string | null;
    } while (cursor && seen.length <= total);
    expect(new Set(seen).size).toBe(total);
    expect(seen).toHaveLength(total);
  });
});
