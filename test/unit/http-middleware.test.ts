/**
 * Each handler middleware alone (shared/http/middleware/): a request object as middy builds it,
 * one phase run, its effect on `internal`, the response or the error checked.
 */
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { MemoryRateLimiter } from '../../shared/adapters/memory/memory-rate-limiter.ts';
import { MemoryStateStore } from '../../shared/adapters/memory/memory-state-store.ts';
import { DomainError, errors } from '../../shared/domain/errors.ts';
import type { Principal } from '../../shared/domain/model.ts';
import { authenticate, groupsOf } from '../../shared/http/middleware/authenticate.ts';
import { parseBody } from '../../shared/http/middleware/parse-body.ts';
import { problemResponse } from '../../shared/http/middleware/problem-response.ts';
import { rateLimit } from '../../shared/http/middleware/rate-limit.ts';
import { requestContext } from '../../shared/http/middleware/request-context.ts';
import { router } from '../../shared/http/middleware/router.ts';
import { SECURITY_HEADERS, securityHeaders } from '../../shared/http/middleware/security-headers.ts';
import type {
  ApiEvent,
  ApiMiddleware,
  ApiRequest,
  ApiResult,
  Authenticated,
  Bound,
  Routed,
  Scoped,
} from '../../shared/http/middleware/types.ts';
import { validateInput } from '../../shared/http/middleware/validate-input.ts';
import { statusOf } from '../../shared/http/problem.ts';
import { defineRoute, type Route } from '../../shared/http/route.ts';
import { createLogger, type Logger } from '../../shared/observability/logger.ts';
import type { Metrics } from '../../shared/ports/metrics.ts';
import { RequestLimits } from '../../shared/services/request-limits.ts';
import { RevocationList } from '../../shared/services/revocation-list.ts';

const ID = '6f1c2b1e-8a8e-4b8e-9a3b-2f7f3b9d1c11';

function route(over: Partial<Route> = {}): Route {
  return defineRoute({
    id: 'r',
    group: 'system',
    method: 'POST',
    path: '/r',
    auth: false,
    tags: [],
    summary: '',
    responses: {},
    ...over,
  });
}
const bound = (r: Route): Bound => ({ route: r, run: async () => ({ status: 200 }) });

type Claims = ApiEvent['requestContext']['authorizer']['jwt']['claims'];

function event(over: Partial<ApiEvent> = {}, claims: Claims = {}): ApiEvent {
  return {
    version: '2.0',
    routeKey: 'POST /r',
    rawPath: '/r',
    rawQueryString: '',
    headers: {},
    isBase64Encoded: false,
    requestContext: {
      accountId: 'x',
      apiId: 'api',
      domainName: 'api.example.com',
      domainPrefix: 'api',
      requestId: 'req-1',
      routeKey: 'POST /r',
      stage: '$default',
      time: '',
      timeEpoch: 0,
      http: { method: 'POST', path: '/r', protocol: 'HTTP/1.1', sourceIp: '1.2.3.4', userAgent: '' },
      authorizer: {
        principalId: '',
        integrationLatency: 0,
        jwt: { claims, scopes: [] },
      },
    },
    ...over,
  };
}

/** middy starts each request with an empty `internal` (as typed, the middlewares fill it in). */
const empty = <I>(): I => Object.create(null);

/** The request object middy hands each phase: event, context, response, error, internal. */
function request<I extends Record<string, unknown>>(internal: I, over: Partial<ApiRequest<I>> = {}) {
  const r: ApiRequest<I> = {
    event: event(),
    context: { awsRequestId: 'aws-1' } as Context,
    response: undefined,
    error: undefined,
    internal,
    ...over,
  };
  return r;
}

async function run<I extends Record<string, unknown>>(
  mw: ApiMiddleware<I>,
  phase: 'before' | 'after' | 'onError',
  r: ApiRequest<I>,
): Promise<void> {
  const fn = mw[phase];
  if (!fn) throw new Error(`the middleware has no ${phase} phase`);
  await fn(r);
}

async function refusal(p: Promise<unknown>): Promise<DomainError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DomainError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

function recordingLog() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger('debug', {}, (l) => lines.push(JSON.parse(l) as Record<string, unknown>));
  return { log, lines };
}

function scope(log: Logger, over: Partial<Scoped['scope']> = {}): Scoped['scope'] {
  return {
    requestId: 'req-1',
    correlationId: 'corr-1',
    baseUrl: 'https://api.example.com',
    sourceIp: '1.2.3.4',
    headers: {},
    log,
    startedAt: Date.now(),
    ...over,
  };
}

const alice: Principal = { userId: 'alice', role: 'user', tokenId: 'j1', expiresAt: 9_999_999_999 };

describe('requestContext', () => {
  type Internal = Scoped & { principal?: Principal };

  it('opens the scope: correlation id when well-formed, else the request id; the origin as reached', async () => {
    // Prepare
    const { log } = recordingLog();
    const mw = requestContext({ log });
    const honoured = request(empty<Internal>(), {
      event: event({ headers: { 'x-correlation-id': 'abc-123' } }),
    });
    const hostile = request(empty<Internal>(), { event: event({ headers: { 'x-correlation-id': 'a\nb' } }) });
    const local = event();
    local.requestContext.apiId = 'local';
    local.requestContext.domainName = '127.0.0.1:8787';
    const plain = request(empty<Internal>(), { event: local });

    // Act
    for (const r of [honoured, hostile, plain]) await run(mw, 'before', r);

    // Assess
    expect(honoured.internal.scope).toMatchObject({
      requestId: 'req-1',
      correlationId: 'abc-123',
      baseUrl: 'https://api.example.com',
      sourceIp: '1.2.3.4',
      headers: { 'x-correlation-id': 'abc-123' },
    });
    expect(hostile.internal.scope?.correlationId).toBe('req-1');
    expect(plain.internal.scope?.baseUrl).toBe('http://127.0.0.1:8787');
  });

  it("falls back to the Lambda context's request id when the event has none", async () => {
    // Prepare
    const e = event();
    Reflect.deleteProperty(e.requestContext, 'requestId');
    const r = request(empty<Internal>(), { event: e });

    // Act
    await run(requestContext({ log: recordingLog().log }), 'before', r);

    // Assess
    expect(r.internal.scope?.requestId).toBe('aws-1');
    expect(r.internal.scope?.correlationId).toBe('aws-1');
  });

  it('tags the answer with x-request-id, logs one request line with the caller, counts metrics', async () => {
    // Prepare
    const { log, lines } = recordingLog();
    const calls: string[] = [];
    const metrics: Metrics = {
      count: (name, labels, value) => calls.push(`${name} ${JSON.stringify(labels)} ${value ?? 1}`),
      observe: (name, _v, labels) => calls.push(`${name} ${JSON.stringify(labels)}`),
      flush: () => calls.push('flush'),
    };
    const mw = requestContext({ log, metrics });
    const r = request<Internal>(
      { scope: scope(log.child({ correlationId: 'corr-1' })), principal: alice },
      { event: event({ body: '{"a":1}' }), response: { statusCode: 201, headers: { a: 'b' }, body: 'four' } },
    );

    // Act
    await run(mw, 'after', r);

    // Assess
    expect(r.response?.headers).toEqual({ a: 'b', 'x-request-id': 'corr-1' });
    expect(lines).toEqual([
      expect.objectContaining({
        level: 'info',
        msg: 'request',
        correlationId: 'corr-1',
        method: 'POST',
        status: 201,
        userId: 'alice',
        latencyMs: expect.any(Number),
      }),
    ]);
    expect(calls).toEqual([
      'stratus_http_requests_total {"route":"POST /r","status":"201"} 1',
      'stratus_http_request_duration_seconds {"route":"POST /r"}',
      'stratus_http_bytes_in_total {"route":"POST /r"} 7',
      'stratus_http_bytes_out_total {"route":"POST /r"} 4',
      'flush',
    ]);
  });

  it('finishes an error answer the same way, counting 5xx as errors', async () => {
    // Prepare
    const { log, lines } = recordingLog();
    const calls: string[] = [];
    const metrics: Metrics = { count: (name) => calls.push(name), observe: () => {}, flush: () => {} };
    const r = request<Scoped>({ scope: scope(log) }, { response: { statusCode: 503, headers: {} } });

    // Act
    await run(requestContext({ log, metrics }), 'onError', r);

    // Assess
    expect(r.response?.headers?.['x-request-id']).toBe('corr-1');
    expect(lines.map((l) => [l.msg, l.status])).toEqual([['request', 503]]);
    expect(calls).toContain('stratus_http_errors_total');
  });
});

describe('securityHeaders', () => {
  it('puts the security headers on answers and problems; a route may set its own', async () => {
    // Prepare
    const mw = securityHeaders();
    const ok = request({}, { response: { statusCode: 200, headers: { 'cache-control': 'max-age=60' } } });
    const problem = request({}, { response: { statusCode: 404, headers: {} } });
    const none = request({});

    // Act
    await run(mw, 'after', ok);
    await run(mw, 'onError', problem);
    await run(mw, 'after', none);

    // Assess
    expect(ok.response?.headers).toEqual({ ...SECURITY_HEADERS, 'cache-control': 'max-age=60' });
    expect(problem.response?.headers).toEqual(SECURITY_HEADERS);
    expect(SECURITY_HEADERS).toMatchObject({
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'strict-transport-security': 'max-age=31536000; includeSubDomains',
    });
    expect(none.response).toBeUndefined();
  });
});

describe('router', () => {
  it('finds the route by its route key, and answers 404 for any other', async () => {
    // Prepare
    const a = bound(route({ method: 'GET', path: '/a' }));
    const b = bound(route({ method: 'POST', path: '/a' }));
    const mw = router([a, b]);
    const hit = request(empty<Routed>(), { event: event({ routeKey: 'POST /a' }) });
    const miss = request(empty<Routed>(), { event: event({ routeKey: 'PUT /a' }) });

    // Act
    await run(mw, 'before', hit);
    const e = await refusal(run(mw, 'before', miss));

    // Assess
    expect(hit.internal.target).toBe(b);
    expect([e.slug, statusOf(e), e.message]).toEqual(['route-not-found', 404, 'no route PUT /a']);
  });
});

describe('authenticate', () => {
  const claims = {
    sub: 'u1',
    jti: 'j1',
    origin_jti: 'fam1',
    token_use: 'access',
    exp: '9999999999',
    'cognito:groups': '[admin]',
  };
  const setup = () => {
    const revocations = new RevocationList(new MemoryStateStore());
    const secured = { target: bound(route({ auth: true })), principal: undefined };
    return { revocations, secured };
  };

  it("builds the principal from the authorizer's claims, with the role the users table holds", async () => {
    // Prepare
    const { revocations, secured } = setup();
    const live = authenticate({
      revocations,
      roles: { roleOf: async (id) => (id === 'u1' ? 'user' : 'admin') },
    });
    const frozen = authenticate({ revocations });
    const a = request({ ...secured }, { event: event({}, claims) });
    const b = request({ ...secured }, { event: event({}, { ...claims, 'cognito:groups': ['user'] }) });
    const c = request({ ...secured }, { event: event({}, claims) });

    // Act
    await run(live, 'before', a);
    await run(frozen, 'before', b);
    await run(frozen, 'before', c);

    // Assess
    expect(a.internal).toMatchObject({
      principal: {
        userId: 'u1',
        role: 'user',
        tokenId: 'j1',
        originTokenId: 'fam1',
        expiresAt: 9_999_999_999,
      },
    });
    expect(b.internal).toMatchObject({ principal: { role: 'user' } });
    expect(c.internal).toMatchObject({ principal: { role: 'admin' } });
  });

  it('gives public routes no principal, whatever claims come along', async () => {
    // Prepare
    const { revocations } = setup();
    const r = request<Routed & Authenticated>(
      { target: bound(route({ auth: false })), principal: alice },
      { event: event({}, claims) },
    );

    // Act
    await run(authenticate({ revocations }), 'before', r);

    // Assess
    expect(r.internal.principal).toBeUndefined();
  });

  it('answers 401 without an access token, and for a revoked token or token family', async () => {
    // Prepare
    const { revocations, secured } = setup();
    const mw = authenticate({ revocations });
    const { jti: _jti, ...withoutJti } = claims;
    const { origin_jti: _family, ...withoutFamily } = claims;
    const attempt = (c: Claims) =>
      refusal(run(mw, 'before', request({ ...secured }, { event: event({}, c) })));

    // Act
    const none = await attempt({});
    const idToken = await attempt({ ...claims, token_use: 'id' });
    const noJti = await attempt(withoutJti);
    await revocations.revoke('fam1', 9_999_999_999, 'test');
    const family = await attempt(claims);
    const token = await attempt({ ...withoutFamily, jti: 'fam1' });

    // Assess
    for (const e of [none, idToken, noJti, family, token]) expect(statusOf(e)).toBe(401);
    expect(none.message).toBe('authentication required');
    expect(family.message).toBe('the token has been revoked');
    expect(token.message).toBe('the token has been revoked');
  });

  it('reads groups as API Gateway flattens them and as arrays', () => {
    expect(groupsOf('[admin user]')).toEqual(['admin', 'user']);
    expect(groupsOf('[admin,user]')).toEqual(['admin', 'user']);
    expect(groupsOf(['user'])).toEqual(['user']);
    expect(groupsOf(undefined)).toEqual([]);
  });
});

describe('rateLimit', () => {
  const log = createLogger('silent');
  const limited = (capacity: number) =>
    new RequestLimits(new MemoryRateLimiter(() => 1_000_000), log, {
      policies: {
        read: { perIp: { capacity, refillPerSecond: 0.001 } },
        write: {
          perIp: { capacity: 100, refillPerSecond: 0.001 },
          perUser: { capacity, refillPerSecond: 0.001 },
        },
        auth: { perIp: { capacity: 1, refillPerSecond: 0.001 } },
      },
    });
  const req = (r: Route, ip: string, principal?: Principal) =>
    request({
      scope: scope(log, { sourceIp: ip }),
      target: bound(r),
      principal,
      rateLimitHeaders: {},
    });

  it('spends from the route class and puts RateLimit-* on the answer; the route may set its own', async () => {
    // Prepare
    const mw = rateLimit(limited(2));
    const first = req(route({ method: 'GET' }), '9.9.9.9');
    const second = req(route({ method: 'GET' }), '9.9.9.9');

    // Act
    await run(mw, 'before', first);
    await run(mw, 'before', second);
    first.response = { statusCode: 200, headers: { 'content-type': 'text/plain' } };
    second.response = { statusCode: 200, headers: { 'ratelimit-remaining': 'mine' } };
    await run(mw, 'after', first);
    await run(mw, 'after', second);
    const third = await refusal(run(mw, 'before', req(route({ method: 'GET' }), '9.9.9.9')));

    // Assess
    expect(first.response.headers).toEqual({
      'ratelimit-limit': '2',
      'ratelimit-remaining': '1',
      'ratelimit-reset': expect.any(String),
      'ratelimit-policy': expect.stringMatching(/^2;w=\d+$/),
      'content-type': 'text/plain',
    });
    expect(second.response.headers?.['ratelimit-remaining']).toBe('mine');
    expect([third.slug, statusOf(third)]).toEqual(['rate-limited', 429]);
  });

  it("counts a signed-in caller's requests per user across addresses, and honours the route's class", async () => {
    // Prepare
    const mw = rateLimit(limited(1));

    // Act
    await run(mw, 'before', req(route(), '1.1.1.1', alice));
    const fromElsewhere = await refusal(run(mw, 'before', req(route(), '2.2.2.2', alice)));
    await run(mw, 'before', req(route({ id: 'login', limit: 'auth' }), '3.3.3.3'));
    const login = await refusal(run(mw, 'before', req(route({ id: 'login', limit: 'auth' }), '3.3.3.3')));

    // Assess
    expect(statusOf(fromElsewhere)).toBe(429);
    expect(statusOf(login)).toBe(429);
  });

  it('without limits, lets everything through with no RateLimit-* fields', async () => {
    // Prepare
    const mw = rateLimit(undefined);
    const r = req(route(), '1.1.1.1');

    // Act
    await run(mw, 'before', r);
    r.response = { statusCode: 204, headers: {} };
    await run(mw, 'after', r);

    // Assess
    expect(r.response.headers).toEqual({});
  });
});

describe('parseBody', () => {
  const withBody = { target: bound(route({ body: z.object({ n: z.number() }) })), json: undefined };
  const mw = parseBody({ maxBytes: 100 });
  const parse = async (over: Partial<ApiEvent>, internal: { target: Bound; json: unknown } = withBody) => {
    const r = request({ ...internal }, { event: event(over) });
    await run(mw, 'before', r);
    return r.internal.json;
  };

  it('parses the JSON body of a route that declares one, base64 or not', async () => {
    expect(await parse({ body: '{"n":1}' })).toEqual({ n: 1 });
    expect(await parse({ body: Buffer.from('{"n":2}').toString('base64'), isBase64Encoded: true })).toEqual({
      n: 2,
    });
  });

  it('leaves the body of a route without a body schema alone', async () => {
    expect(await parse({ body: '{not json' }, { target: bound(route()), json: 'stale' })).toBeUndefined();
  });

  it('refuses a missing, malformed, too deep or too large body', async () => {
    // Act
    const missing = await refusal(parse({}));
    const malformed = await refusal(parse({ body: '{"n":' }));
    const deep = await refusal(parse({ body: `${'['.repeat(33)}${']'.repeat(33)}` }));
    const large = await refusal(parse({ body: JSON.stringify({ s: 'x'.repeat(100) }) }));

    // Assess
    expect([missing.slug, missing.message]).toEqual(['malformed-body', 'a JSON body is required']);
    expect(malformed.slug).toBe('malformed-body');
    expect(deep.slug).toBe('malformed-body');
    expect([large.slug, statusOf(large)]).toEqual(['payload-too-large', 413]);
  });
});

describe('validateInput', () => {
  const r = route({
    params: z.object({ id: z.uuid() }),
    query: z.object({ limit: z.coerce.number().int().max(100).default(10) }),
    body: z.object({ name: z.string().min(1) }),
  });

  it("hands on what the route's schemas output, and undefined where it has none", async () => {
    // Prepare
    const full = request(
      { target: bound(r), json: { name: 'a', extra: true }, input: { params: 0, query: 0, body: 0 } },
      { event: event({ pathParameters: { id: ID }, queryStringParameters: { limit: '5' } }) },
    );
    const bare = request({
      target: bound(route()),
      json: undefined,
      input: { params: 0, query: 0, body: 0 },
    });

    // Act
    await run(validateInput(), 'before', full);
    await run(validateInput(), 'before', bare);

    // Assess
    expect(full.internal.input).toEqual({ params: { id: ID }, query: { limit: 5 }, body: { name: 'a' } });
    expect(bare.internal.input).toEqual({ params: undefined, query: undefined, body: undefined });
  });

  it('reports each issue with its path, path parameters first', async () => {
    // Prepare
    const attempt = (over: Partial<ApiEvent>, json: unknown) =>
      refusal(
        run(
          validateInput(),
          'before',
          request(
            { target: bound(r), json, input: { params: 0, query: 0, body: 0 } },
            { event: event(over) },
          ),
        ),
      );

    // Act
    const path = await attempt({ pathParameters: { id: 'nope' } }, { name: '' });
    const query = await attempt({ pathParameters: { id: ID }, queryStringParameters: { limit: '1000' } }, {});
    const body = await attempt({ pathParameters: { id: ID } }, { name: '' });

    // Assess
    expect([path.slug, path.message, statusOf(path)]).toEqual([
      'validation-error',
      'invalid path parameters',
      400,
    ]);
    expect(path.extra.errors).toEqual([{ path: 'path.id', message: expect.any(String) }]);
    expect(query.message).toBe('invalid query parameters');
    expect(query.extra.errors).toEqual([{ path: 'query.limit', message: expect.any(String) }]);
    expect(body.message).toBe('invalid request body');
    expect(body.extra.errors).toEqual([{ path: 'body.name', message: expect.any(String) }]);
  });

  it('lists at most 20 issues', async () => {
    // Prepare
    const many = route({
      body: z.object(Object.fromEntries([...Array(30).keys()].map((i) => [`f${i}`, z.string()]))),
    });
    const req = request({ target: bound(many), json: {}, input: { params: 0, query: 0, body: 0 } });

    // Act
    const e = await refusal(run(validateInput(), 'before', req));

    // Assess
    expect(e.extra.errors).toHaveLength(20);
  });
});

describe('problemResponse', () => {
  const answer = async (err: Error, internal: Partial<Scoped> = {}, fallback = recordingLog().log) => {
    const r = request(internal, { event: event({ rawPath: '/v1/x' }), error: err });
    await run(problemResponse({ log: fallback }), 'onError', r);
    const response: ApiResult = r.response ?? {};
    return { response, body: JSON.parse(response.body ?? '{}') as Record<string, unknown> };
  };

  it('answers a domain error with its problem, status and headers, and logs a rejection', async () => {
    // Prepare
    const { log, lines } = recordingLog();

    // Act
    const conflict = await answer(errors.conflict('busy', { current: 3 }), { scope: scope(log) });
    const unauthorized = await answer(errors.unauthorized());
    const limited = await answer(
      errors.rateLimited(7, { capacity: 10, remaining: 0, resetSeconds: 7, windowSeconds: 60 }),
    );

    // Assess
    expect(conflict.response.statusCode).toBe(409);
    expect(conflict.response.headers).toEqual({ 'content-type': 'application/problem+json' });
    expect(conflict.body).toEqual({
      type: 'urn:stratus:problem:conflict',
      title: 'Conflict',
      status: 409,
      detail: 'busy',
      current: 3,
      instance: '/v1/x',
    });
    expect(lines).toEqual([
      expect.objectContaining({
        level: 'info',
        msg: 'request rejected',
        status: 409,
        problem: 'conflict',
        detail: 'busy',
      }),
    ]);
    expect(unauthorized.response.headers?.['www-authenticate']).toBe('Bearer');
    expect(limited.response.headers).toMatchObject({
      'retry-after': '7',
      'ratelimit-limit': '10',
      'ratelimit-remaining': '0',
      'ratelimit-policy': '10;w=60',
    });
  });

  it('answers anything else with a 500 that reveals nothing, and logs the stack', async () => {
    // Prepare
    const { log: fallback, lines } = recordingLog();

    // Act
    const { response, body } = await answer(new Error('database password is hunter2'), {}, fallback);

    // Assess
    expect(response.statusCode).toBe(500);
    expect(response.body).not.toContain('hunter2');
    expect(body).toEqual({
      type: 'urn:stratus:problem:internal-error',
      title: 'Internal Server Error',
      status: 500,
      detail: 'an internal error occurred',
      instance: '/v1/x',
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'error', msg: 'request failed', status: 500 });
    expect(String(lines[0]?.err)).toContain('hunter2');
    expect(String(lines[0]?.err)).toContain('http-middleware.test.ts');
  });

  it('leaves an answer another onError step already gave alone', async () => {
    // Prepare
    const given = { statusCode: 418 };
    const r = request({}, { error: new Error('x'), response: given });

    // Act
    await run(problemResponse({ log: recordingLog().log }), 'onError', r);

    // Assess
    expect(r.response).toBe(given);
  });
});
