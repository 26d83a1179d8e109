/**
 * The handler boundary, the middleware chain as a whole: validation at the edge, auth, limits, and
 * the one error mapping. Each middleware alone: http-middleware.test.ts.
 */
import type { Context } from 'aws-lambda';
import { beforeEach, describe, expect, expectTypeOf, it } from 'vitest';
import * as z from 'zod';
import { MemoryRateLimiter } from '../../shared/adapters/memory/memory-rate-limiter.ts';
import { MemoryStateStore } from '../../shared/adapters/memory/memory-state-store.ts';
import { errors } from '../../shared/domain/errors.ts';
import type { Principal } from '../../shared/domain/model.ts';
import {
  type ApiEvent,
  createApiHandler,
  groupsOf,
  implement,
  SECURITY_HEADERS,
} from '../../shared/http/api-handler.ts';
import { defineRoute } from '../../shared/http/route.ts';
import { createLogger } from '../../shared/observability/logger.ts';
import { RequestLimits } from '../../shared/services/request-limits.ts';
import { RevocationList } from '../../shared/services/revocation-list.ts';

const echo = defineRoute({
  id: 'echo',
  group: 'system',
  method: 'POST',
  path: '/echo/{id}',
  auth: true,
  tags: [],
  summary: '',
  params: z.object({ id: z.uuid() }),
  body: z.object({ n: z.number().int().max(10) }),
  responses: {
    200: { description: 'echo', schema: z.object({ id: z.string(), n: z.number(), role: z.string() }) },
    204: { description: 'nothing' },
  },
});
const boom = defineRoute({
  id: 'boom',
  group: 'system',
  method: 'GET',
  path: '/boom',
  auth: false,
  tags: [],
  summary: '',
  responses: {},
});
const teapot = defineRoute({
  id: 'teapot',
  group: 'system',
  method: 'GET',
  path: '/teapot',
  auth: false,
  tags: [],
  summary: '',
  responses: {},
});

const ID = '6f1c2b1e-8a8e-4b8e-9a3b-2f7f3b9d1c11';
const lines: string[] = [];
let revocations: RevocationList;
let handler: ReturnType<typeof createApiHandler>;

function event(routeKey: string, over: Partial<ApiEvent> = {}, claims?: Record<string, unknown>): ApiEvent {
  return {
    version: '2.0',
    routeKey,
    rawPath: routeKey.split(' ')[1] ?? '/',
    rawQueryString: '',
    headers: {},
    isBase64Encoded: false,
    requestContext: {
      accountId: 'x',
      apiId: 'x',
      domainName: 'x',
      domainPrefix: 'x',
      requestId: 'req-1',
      routeKey,
      stage: '$default',
      time: '',
      timeEpoch: 0,
      http: { method: 'POST', path: '/', protocol: 'HTTP/1.1', sourceIp: '1.2.3.4', userAgent: '' },
      authorizer: {
        principalId: '',
        integrationLatency: 0,
        jwt: { claims: (claims ?? {}) as Record<string, string>, scopes: [] },
      },
    },
    ...over,
  };
}

const validClaims = {
  sub: 'u1',
  jti: 'j1',
  origin_jti: 'fam1',
  token_use: 'access',
  exp: 9_999_999_999,
  'cognito:groups': '[admin]',
};
const ctx = { awsRequestId: 'aws-1' } as Context;

beforeEach(() => {
  lines.length = 0;
  revocations = new RevocationList(new MemoryStateStore());
  handler = createApiHandler(
    [
      implement(echo, async ({ params, body }, req) => {
        expectTypeOf(req.principal).toEqualTypeOf<Principal>();
        expectTypeOf(body).toEqualTypeOf<{ n: number }>();
        return { status: 200, body: { id: params.id, n: body.n, role: req.principal.role } };
      }),
      implement(boom, async (_input, req) => {
        expectTypeOf(req.principal).toEqualTypeOf<Principal | undefined>();
        throw new Error('database password is hunter2');
      }),
      implement(teapot, async () => {
        throw errors.conflict('busy', { current: 3 });
      }),
    ],
    { log: createLogger('info', {}, (l) => lines.push(l)), revocations, maxBodyBytes: 1000 },
  );
});

describe('API handler boundary', () => {
  it('validates and passes typed input, with the principal from JWT claims', async () => {
    const res = await handler(
      event('POST /echo/{id}', { pathParameters: { id: ID }, body: '{"n":3}' }, validClaims),
      ctx,
    );
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body ?? '')).toEqual({ id: ID, n: 3, role: 'admin' });
    expect(res.headers?.['x-content-type-options']).toBe('nosniff');
    expect(res.headers?.['x-request-id']).toBe('req-1');
  });

  it('reports every validation issue with its path', async () => {
    const res = await handler(
      event('POST /echo/{id}', { pathParameters: { id: 'nope' }, body: '{"n":3}' }, validClaims),
      ctx,
    );
    expect(res.statusCode).toBe(400);
    const body = JSON.parse(res.body ?? '');
    expect(body.type).toBe('urn:stratus:problem:validation-error');
    expect(body.errors[0].path).toBe('path.id');
    const bad = await handler(
      event('POST /echo/{id}', { pathParameters: { id: ID }, body: '{"n":11}' }, validClaims),
      ctx,
    );
    expect(JSON.parse(bad.body ?? '').errors[0].path).toBe('body.n');
  });

  it('answers 401 without claims, and for revoked tokens or token families', async () => {
    const e = () => event('POST /echo/{id}', { pathParameters: { id: ID }, body: '{"n":1}' }, validClaims);
    expect(
      (await handler(event('POST /echo/{id}', { pathParameters: { id: ID }, body: '{"n":1}' }), ctx))
        .statusCode,
    ).toBe(401);
    expect(
      (await handler(event('POST /echo/{id}', {}, { ...validClaims, token_use: 'id' }), ctx)).statusCode,
    ).toBe(401);
    await revocations.revoke('fam1', 9_999_999_999, 'test');
    const res = await handler(e(), ctx);
    expect(res.statusCode).toBe(401);
    expect(res.headers?.['www-authenticate']).toBe('Bearer');
  });

  it('turns unexpected errors into a 500 that reveals nothing, and logs the stack', async () => {
    const res = await handler(event('GET /boom'), ctx);
    expect(res.statusCode).toBe(500);
    expect(res.headers?.['content-type']).toBe('application/problem+json');
    expect(res.body).not.toContain('hunter2');
    expect(JSON.parse(res.body ?? '')).toMatchObject({
      type: 'urn:stratus:problem:internal-error',
      status: 500,
    });
    const logged = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.level === 'error');
    expect(String(logged?.err)).toContain('hunter2');
    expect(String(logged?.err)).toContain('api-handler.test.ts');
  });

  it('exposes domain errors with their extra members and logs them as rejections', async () => {
    const res = await handler(event('GET /teapot'), ctx);
    expect(res.statusCode).toBe(409);
    expect(JSON.parse(res.body ?? '')).toMatchObject({
      type: 'urn:stratus:problem:conflict',
      detail: 'busy',
      current: 3,
    });
    expect(lines.some((l) => l.includes('request rejected'))).toBe(true);
  });

  it('honours a well-formed correlation id and ignores a hostile one', async () => {
    const ok = await handler(event('GET /teapot', { headers: { 'x-correlation-id': 'abc-123' } }), ctx);
    expect(ok.headers?.['x-request-id']).toBe('abc-123');
    const evil = await handler(event('GET /teapot', { headers: { 'x-correlation-id': 'a\nb' } }), ctx);
    expect(evil.headers?.['x-request-id']).toBe('req-1');
  });

  it('answers an unknown route with a 404 problem carrying the security headers and request id', async () => {
    const res = await handler(event('GET /nowhere'), ctx);
    expect(res.statusCode).toBe(404);
    expect(res.headers).toMatchObject({
      ...SECURITY_HEADERS,
      'content-type': 'application/problem+json',
      'x-request-id': 'req-1',
    });
    expect(JSON.parse(res.body ?? '').type).toBe('urn:stratus:problem:route-not-found');
  });

  it('logs one request line per request, with the caller once authenticated', async () => {
    await handler(
      event('POST /echo/{id}', { pathParameters: { id: ID }, body: '{"n":3}' }, validClaims),
      ctx,
    );
    await handler(event('GET /teapot'), ctx);
    const requests = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === 'request');
    expect(requests.map((l) => [l.status, l.userId, l.correlationId])).toEqual([
      [200, 'u1', 'req-1'],
      [409, undefined, 'req-1'],
    ]);
  });

  it('spends rate-limit tokens after authentication, with RateLimit-* on answers and on the 429', async () => {
    // Prepare
    const limits = new RequestLimits(new MemoryRateLimiter(() => 1_000_000), createLogger('silent'), {
      policies: {
        write: {
          perIp: { capacity: 100, refillPerSecond: 0.001 },
          perUser: { capacity: 1, refillPerSecond: 0.001 },
        },
      },
    });
    const limited = createApiHandler([implement(echo, async () => ({ status: 204 }))], {
      log: createLogger('silent'),
      revocations,
      maxBodyBytes: 1000,
      limits,
    });
    const call = (claims?: Record<string, unknown>) =>
      limited(event('POST /echo/{id}', { pathParameters: { id: ID }, body: '{"n":1}' }, claims), ctx);

    // Act
    const anonymous = await call();
    const first = await call(validClaims);
    const second = await call(validClaims);

    // Assess
    expect(anonymous.statusCode).toBe(401);
    expect(first.statusCode).toBe(204);
    expect(first.headers).toMatchObject({
      ...SECURITY_HEADERS,
      'ratelimit-limit': '1',
      'ratelimit-remaining': '0',
    });
    expect(second.statusCode).toBe(429);
    expect(second.headers).toMatchObject({
      ...SECURITY_HEADERS,
      'retry-after': expect.any(String),
      'ratelimit-remaining': '0',
      'x-request-id': 'req-1',
    });
  });

  it('reads groups as API Gateway flattens them and as arrays', () => {
    expect(groupsOf('[admin user]')).toEqual(['admin', 'user']);
    expect(groupsOf(['user'])).toEqual(['user']);
    expect(groupsOf(undefined)).toEqual([]);
  });
});
