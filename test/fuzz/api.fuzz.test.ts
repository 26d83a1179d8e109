/**
 * Property-based fuzzing of every route's inputs, through the same Lambda handlers the local
 * gateway and API Gateway call. An attacker (a signed-in user with nothing shared) sends hostile
 * path parameters, queries, headers and bodies; a victim owns data. For every request:
 * - the answer is never a 5xx, and every 4xx is problem+json;
 * - a 4xx writes nothing (audit records of failed attempts are the one intended trace);
 * - the victim's rows are never changed;
 * - no answer contains the victim's names, email or content.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Context } from 'aws-lambda';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handlerFactories } from '../../functions/api/index.ts';
import { allRoutes } from '../../functions/api/routes.ts';
import type { Container } from '../../functions/container.ts';
import type { ApiEvent, ApiResult } from '../../shared/http/api-handler.ts';
import { type RouteGroup, routeKey } from '../../shared/http/route.ts';
import { Client, type Runtime, startRuntime } from '../support/local-runtime.ts';

const RUNS = Number(process.env.STRATUS_FUZZ_RUNS ?? 1000);
const SECRET = {
  folder: 'victim-secret-folder',
  file: 'victim-secret-file.txt',
  email: 'victim-fuzz@example.com',
  content: 'victim-secret-content',
};

let rt: Runtime;
let c: Container;
let handlers: Map<RouteGroup, (e: ApiEvent, ctx: Context) => Promise<ApiResult>>;
let victim: {
  userId: string;
  folderId: string;
  fileId: string;
  shareToken: string;
  shareId: string;
  grantId: string;
  uploadId: string;
};
let attacker: { userId: string };

beforeAll(async () => {
  rt = await startRuntime();
  c = rt.container;
  handlers = new Map((Object.keys(handlerFactories) as RouteGroup[]).map((g) => [g, handlerFactories[g](c)]));
  const v = new Client(rt.url);
  const me = await v.signUp(SECRET.email);
  const folderId = (await v.call('POST', '/v1/folders', { parentId: 'root', name: SECRET.folder })).json
    .id as string;
  const fileId = (await v.upload(folderId, SECRET.file, Buffer.from(SECRET.content), 'text/plain')).complete
    ?.json.fileId as string;
  const share = (
    await v.call('POST', '/v1/shares', { itemId: fileId, expiresInSeconds: 3600, password: 'victim pass' })
  ).json;
  const a = new Client(rt.url);
  const att = await a.signUp('attacker-fuzz@example.com');
  const grant = (
    await v.call('POST', '/v1/permissions', {
      itemId: folderId,
      email: 'third-fuzz@example.com',
      role: 'viewer',
    })
  ).json;
  const pending = (
    await v.call('POST', '/v1/uploads', {
      parentId: 'root',
      name: 'pending.bin',
      size: 10,
      sha256: 'a'.repeat(64),
    })
  ).json;
  victim = {
    userId: me.id,
    folderId,
    fileId,
    shareToken: share.token as string,
    shareId: share.id as string,
    grantId: (grant.id as string) ?? randomUUID(),
    uploadId: pending.uploadId as string,
  };
  attacker = { userId: att.id };
}, 120_000);

afterAll(async () => {
  await rt?.stop();
});

/** Everything a request could write, except the audit trail; and a fingerprint of the victim's rows. */
async function snapshot(): Promise<Record<string, string>> {
  const [row] = await c.db.query<Record<string, string>>(
    `select
       (select count(*) from users)::text as users,
       (select count(*) from items)::text as items,
       (select count(*) from versions)::text as versions,
       (select count(*) from permissions)::text as permissions,
       (select count(*) from share_links)::text as shares,
       (select count(*) from state_items where pk not like 'revoked#%')::text as state,
       (select coalesce(string_agg(id::text || ':' || revision || ':' || coalesce(deleted_at::text, ''), ',' order by id), '') from items where owner_id = $1) as victim_items,
       (select coalesce(string_agg(id::text, ',' order by id), '') from versions v where exists (select 1 from items i where i.id = v.file_id and i.owner_id = $1)) as victim_versions,
       (select coalesce(string_agg(id::text || ':' || role, ',' order by id), '') from permissions where owner_id = $1) as victim_grants,
       (select coalesce(string_agg(id::text || ':' || downloads || ':' || coalesce(revoked_at::text, ''), ',' order by id), '') from share_links where owner_id = $1) as victim_shares,
       (select used_bytes::text || ':' || quota_bytes::text || ':' || role from users where id = $1) as victim_user`,
    [victim.userId],
  );
  // Distinct keys over all nodes: replication copying a key to a second node changes nothing here.
  const root = path.join(rt.dataDir, 'nodes');
  const keys = async (dir: string) => {
    const seen = new Set<string>();
    for (const n of await fs.readdir(root))
      for (const k of await fs.readdir(path.join(root, n, dir)).catch(() => [] as string[])) seen.add(k);
    return seen.size;
  };
  const multipart = await keys('multipart');
  const objects = await keys(path.join('objects', 'v'));
  return { ...(row as Record<string, string>), multipart: String(multipart), objects: String(objects) };
}

const victimKeys = [
  'victim_items',
  'victim_versions',
  'victim_grants',
  'victim_shares',
  'victim_user',
] as const;

// Hostile values: unicode tricks, traversal, control characters, huge and odd numbers, wrong types.
const hostileString = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    '.',
    '..',
    '../../etc/passwd',
    '..%2f..%2fetc%2fpasswd',
    '%00',
    'a\u0000b',
    '\u202Etxt.exe',
    'CON',
    'x'.repeat(5000),
    'root',
    '__proto__',
    'constructor',
    'prototype',
    '{"$gt":""}',
    "' or 1=1 --",
    '<script>alert(1)</script>',
    '\uFEFFbom',
    'e\u0301',
    '𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
    'NaN',
    '-0',
    '1e308',
    SECRET.folder,
  ),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
);
const idLike = fc.oneof(
  fc.constantFrom('root', 'not-a-uuid', '00000000-0000-0000-0000-000000000000'),
  fc.uuid(),
  fc.constant(undefined).map(() => victim.folderId),
  fc.constant(undefined).map(() => victim.fileId),
  fc.constant(undefined).map(() => victim.shareId),
  fc.constant(undefined).map(() => victim.grantId),
  fc.constant(undefined).map(() => victim.uploadId),
  fc.constant(undefined).map(() => victim.shareToken),
  hostileString,
);
const hostileNumber = fc.oneof(
  fc.constantFrom(0, -1, 1.5, 2 ** 53, -(2 ** 53), 1e308, Number.MAX_SAFE_INTEGER + 2, 5 * 1024 ** 4 + 1),
  fc.integer(),
  fc.double(),
);
const value: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: hostileString },
  { weight: 2, arbitrary: idLike },
  { weight: 2, arbitrary: hostileNumber },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.array(fc.oneof(hostileString, hostileNumber), { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(hostileString, hostileString, { maxKeys: 3 }) },
);
const bodyKeys = [
  'email',
  'password',
  'refreshToken',
  'parentId',
  'name',
  'size',
  'sha256',
  'contentType',
  'parts',
  'partNumber',
  'etag',
  'itemId',
  'role',
  'expiresInSeconds',
  'maxDownloads',
  'maxBytes',
  'keepVersions',
  'keepDays',
  'trashDays',
  'autorename',
  'onConflict',
  'baseVersionId',
  'partSize',
  '__proto__',
  'constructor',
];

const jsonBody: fc.Arbitrary<string | undefined> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .dictionary(fc.constantFrom(...bodyKeys), value, { maxKeys: 8 })
      .map((o) => JSON.stringify(o)),
  },
  { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '{"name":"a","name":"b","parentId":"root"}',
      '{"__proto__":{"admin":true},"parentId":"root","name":"x"}',
      '{"constructor":{"prototype":{"role":"admin"}}}',
      `${'['.repeat(100)}${']'.repeat(100)}`,
      '{"parts":[{"partNumber":1e309,"etag":"x"}]}',
      '{',
      'null',
      '"string"',
      '\u0000',
    ),
  },
  { weight: 1, arbitrary: fc.constant(undefined) },
);

function event(
  route: (typeof allRoutes)[number],
  input: {
    params: Record<string, string>;
    query: Record<string, string>;
    body?: string;
    claims: 'attacker' | 'none' | 'forged';
    headers: Record<string, string>;
  },
): ApiEvent {
  const now = Date.now();
  const claims =
    input.claims === 'attacker'
      ? {
          sub: attacker.userId,
          jti: randomUUID(),
          origin_jti: randomUUID(),
          token_use: 'access',
          exp: Math.floor(now / 1000) + 600,
          'cognito:groups': ['user'],
        }
      : input.claims === 'forged'
        ? { sub: victim.userId, token_use: 'id' }
        : {};
  return {
    version: '2.0',
    routeKey: routeKey(route),
    rawPath: route.path,
    rawQueryString: new URLSearchParams(input.query).toString(),
    headers: input.headers,
    queryStringParameters: input.query,
    pathParameters: input.params,
    ...(input.body === undefined ? {} : { body: input.body }),
    isBase64Encoded: false,
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: 'localhost',
      domainPrefix: 'local',
      http: {
        method: route.method,
        path: route.path,
        protocol: 'HTTP/1.1',
        sourceIp: '203.0.113.9',
        userAgent: 'fuzz',
      },
      requestId: randomUUID(),
      routeKey: routeKey(route),
      stage: '$default',
      time: new Date(now).toISOString(),
      timeEpoch: now,
      authorizer: {
        principalId: '',
        integrationLatency: 0,
        jwt: { claims: claims as Record<string, string>, scopes: [] },
      },
    },
  };
}

const ctx = { awsRequestId: 'fuzz', getRemainingTimeInMillis: () => 30_000 } as unknown as Context;

describe('fuzzing every route', () => {
  it.each(allRoutes.map((r) => [routeKey(r), r] as const))(
    '%s',
    async (_key, route) => {
      const names = [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string);
      const arb = fc.record({
        params: fc
          .tuple(...names.map(() => idLike))
          .map((vals) => Object.fromEntries(names.map((n, i) => [n, String(vals[i] ?? '')]))),
        query: fc.dictionary(
          fc.constantFrom(
            'cursor',
            'limit',
            'sort',
            'dir',
            'format',
            'versionId',
            'itemId',
            'path',
            'action',
            '__proto__',
          ),
          hostileString.map(String),
          { maxKeys: 4 },
        ),
        body: jsonBody,
        claims: fc.constantFrom('attacker', 'attacker', 'attacker', 'none', 'forged') as fc.Arbitrary<
          'attacker' | 'none' | 'forged'
        >,
        headers: fc.dictionary(
          fc.constantFrom('if-match', 'x-share-password', 'x-correlation-id', 'content-type'),
          hostileString.map(String),
          { maxKeys: 2 },
        ),
      });
      const handler = handlers.get(route.group);
      if (!handler) throw new Error(`no handler for ${route.group}`);
      let checked = 0;
      // Nothing else runs meanwhile, so each request's "after" is the next one's "before".
      let last = await snapshot();
      await fc.assert(
        fc.asyncProperty(arb, async (input) => {
          const before = last;
          const res = await handler(event(route, input), ctx);
          const after = await snapshot();
          last = after;
          const status = res.statusCode ?? 0;
          expect(status, JSON.stringify(res.body)).toBeLessThan(500);
          if (status >= 400) {
            expect(res.headers?.['content-type']).toBe('application/problem+json');
            expect(after).toEqual(before);
          }
          for (const k of victimKeys) expect(after[k], k).toBe(before[k]);
          const text = `${res.body ?? ''}${JSON.stringify(res.headers ?? {})}`;
          for (const secret of [SECRET.file, SECRET.email, SECRET.content])
            expect(text).not.toContain(secret);
          // The folder name may only come back as an echo of what the attacker sent.
          if (!JSON.stringify(input).includes(SECRET.folder)) expect(text).not.toContain(SECRET.folder);
          checked++;
        }),
        { numRuns: RUNS },
      );
      expect(checked).toBeGreaterThanOrEqual(RUNS);
    },
    600_000,
  );
});
