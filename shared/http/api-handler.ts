/**
 * Builds one Lambda handler for a group of routes. The same function object serves API Gateway in
 * AWS and the local gateway, which both hand it an HTTP API (v2) event. Middleware first (middy),
 * handler last: correlation id and request log, then edge validation, then auth, then the use case.
 */

import middy from '@middy/core';
import type {
  APIGatewayProxyEventV2WithJWTAuthorizer,
  APIGatewayProxyStructuredResultV2,
  Context,
} from 'aws-lambda';
import type { z } from 'zod';
import { type DomainError, errors } from '../domain/errors.ts';
import type { Principal } from '../domain/model.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../ports/metrics.ts';
import type { RequestLimits } from '../services/request-limits.ts';
import type { RevocationList } from '../services/revocation-list.ts';
import { parseJsonBody } from './json-body.ts';
import { HttpError, problemBody, problemHeaders, statusOf } from './problem.ts';
import { type Route, routeKey } from './route.ts';

export type ApiEvent = APIGatewayProxyEventV2WithJWTAuthorizer;
export type ApiResult = APIGatewayProxyStructuredResultV2;

export interface RequestInfo {
  requestId: string;
  /** The API's own origin as the client reached it (for links in answers). */
  baseUrl: string;
  correlationId: string;
  sourceIp: string;
  headers: Record<string, string | undefined>;
  principal: Principal | undefined;
  log: Logger;
}

export interface HttpResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

type Out<S> = S extends z.ZodType ? z.output<S> : undefined;

export interface Input<R extends Route> {
  params: Out<NonNullable<R['params']>>;
  query: Out<NonNullable<R['query']>>;
  body: Out<NonNullable<R['body']>>;
}

export interface Bound {
  route: Route;
  run(input: { params: unknown; query: unknown; body: unknown }, req: RequestInfo): Promise<HttpResult>;
}

/** Pairs a route with its implementation, typed by the route's schemas. */
export function implement<R extends Route>(
  route: R,
  run: (input: Input<R>, req: RequestInfo) => Promise<HttpResult>,
): Bound {
  return { route, run: run as Bound['run'] };
}

export interface ApiHandlerDeps {
  log: Logger;
  revocations: RevocationList;
  maxBodyBytes: number;
  limits?: RequestLimits;
  metrics?: Metrics;
  /**
   * The principal's current role (the users table, briefly cached). Without it the token's
   * `cognito:groups` decide, which are frozen when the token is issued.
   */
  roles?: { roleOf(userId: string): Promise<'admin' | 'user'> };
}

export const SECURITY_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
};

const CORRELATION = /^[A-Za-z0-9._:-]{1,64}$/;

type Request = middy.Request<ApiEvent, ApiResult, Error, Context, { info: RequestInfo; started: number }>;

export function createApiHandler(bound: readonly Bound[], deps: ApiHandlerDeps) {
  const byKey = new Map(bound.map((b) => [routeKey(b.route), b]));

  const boundary: middy.MiddlewareObj<ApiEvent, ApiResult, Error, Context> = {
    before: (request) => {
      const r = request as unknown as Request;
      const e = r.event;
      const given = e.headers?.['x-correlation-id'];
      const requestId = e.requestContext?.requestId ?? r.context?.awsRequestId ?? 'unknown';
      const correlationId = given && CORRELATION.test(given) ? given : requestId;
      r.internal.started = Date.now();
      r.internal.info = {
        requestId,
        correlationId,
        baseUrl: `${e.requestContext?.apiId === 'local' ? 'http' : 'https'}://${e.requestContext?.domainName ?? 'localhost'}`,
        sourceIp: e.requestContext?.http?.sourceIp ?? 'unknown',
        headers: e.headers ?? {},
        principal: undefined,
        log: deps.log.child({ correlationId, route: e.routeKey }),
      };
    },
    after: (request) => finish(request as unknown as Request),
    onError: (request) => {
      const r = request as unknown as Request;
      const err = r.error;
      const status = statusOf(err);
      r.response = {
        statusCode: status,
        headers: { ...SECURITY_HEADERS, ...problemHeaders(err), 'content-type': 'application/problem+json' },
        body: JSON.stringify(problemBody(err, r.event.rawPath)),
      };
      const log = r.internal.info?.log ?? deps.log;
      if (status >= 500) log.error('request failed', { status, err: err?.stack ?? String(err) });
      else log.info('request rejected', { status, problem: (err as DomainError).slug, detail: err?.message });
      finish(r);
    },
  };

  function finish(r: Request) {
    const info = r.internal.info;
    if (!r.response || !info) return;
    r.response.headers = { ...r.response.headers, 'x-request-id': info.correlationId };
    const latencyMs = Date.now() - (r.internal.started ?? Date.now());
    const status = r.response.statusCode ?? 200;
    info.log.info('request', {
      method: r.event.requestContext?.http?.method,
      status,
      latencyMs,
      userId: info.principal?.userId,
    });
    const m = deps.metrics;
    if (m) {
      const route = r.event.routeKey ?? 'unmatched';
      m.count('stratus_http_requests_total', { route, status: String(status) });
      m.observe('stratus_http_request_duration_seconds', latencyMs / 1000, { route });
      if (status >= 500) m.count('stratus_http_errors_total', { route });
      m.count('stratus_http_bytes_in_total', { route }, Buffer.byteLength(r.event.body ?? ''));
      m.count(
        'stratus_http_bytes_out_total',
        { route },
        Buffer.byteLength(typeof r.response.body === 'string' ? r.response.body : ''),
      );
      m.flush();
    }
  }

  const core = async (event: ApiEvent, context: Context): Promise<ApiResult> => {
    const info = (context as unknown as { stratus?: RequestInfo }).stratus;
    if (!info) throw new Error('boundary middleware did not run');
    const b = byKey.get(event.routeKey);
    if (!b) throw new HttpError('route-not-found', `no route ${event.routeKey}`);
    const route = b.route;
    if (route.auth) info.principal = await authenticate(event, deps);
    const limited = deps.limits
      ? await deps.limits.check({
          routeId: route.id,
          cls: route.limit ?? (route.method === 'GET' ? 'read' : 'write'),
          ip: info.sourceIp,
          userId: info.principal?.userId,
        })
      : { headers: {} };
    const params = validate(route.params, event.pathParameters ?? {}, 'path');
    const query = validate(route.query, event.queryStringParameters ?? {}, 'query');
    const rawBody = route.body
      ? parseJsonBody(event.body, event.isBase64Encoded, deps.maxBodyBytes)
      : undefined;
    if (route.body && rawBody === undefined) throw errors.malformedBody('a JSON body is required');
    const body = validate(route.body, rawBody, 'body');
    const result = await b.run({ params, query, body }, info);
    return toResult({ ...result, headers: { ...limited.headers, ...result.headers } });
  };

  const handler = middy<ApiEvent, ApiResult, Error, Context>()
    .use(boundary)
    .use({
      // Hands the RequestInfo built by the boundary to the core through the context object.
      before: (request) => {
        (request.context as unknown as { stratus?: RequestInfo }).stratus = (
          request as unknown as Request
        ).internal.info;
      },
    })
    .handler(core);
  return handler;
}

function validate(schema: z.ZodType | undefined, value: unknown, where: 'path' | 'query' | 'body'): unknown {
  if (!schema) return undefined;
  const res = schema.safeParse(value);
  if (res.success) return res.data;
  const issues = res.error.issues.slice(0, 20).map((i) => ({
    path: [where, ...i.path.map(String)].join('.'),
    message: i.message,
  }));
  throw errors.validation(`invalid ${where === 'body' ? 'request body' : `${where} parameters`}`, issues);
}

function toResult(r: HttpResult): ApiResult {
  const headers: Record<string, string> = { ...SECURITY_HEADERS, ...r.headers };
  if (r.body === undefined) return { statusCode: r.status, headers };
  if (typeof r.body === 'string' && headers['content-type'])
    return { statusCode: r.status, headers, body: r.body };
  return {
    statusCode: r.status,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(r.body),
  };
}

/** Claims come from API Gateway's JWT authorizer (AWS) or the local gateway's (same verifier). */
async function authenticate(event: ApiEvent, deps: ApiHandlerDeps): Promise<Principal> {
  const claims = event.requestContext?.authorizer?.jwt?.claims;
  if (claims?.token_use !== 'access' || typeof claims.sub !== 'string' || typeof claims.jti !== 'string') {
    throw errors.unauthorized();
  }
  const origin = typeof claims.origin_jti === 'string' ? claims.origin_jti : undefined;
  const [revoked, role] = await Promise.all([
    deps.revocations.isRevoked([claims.jti, origin]),
    deps.roles
      ? deps.roles.roleOf(claims.sub)
      : groupsOf(claims['cognito:groups']).includes('admin')
        ? ('admin' as const)
        : ('user' as const),
  ]);
  if (revoked) throw errors.unauthorized('the token has been revoked');
  return {
    userId: claims.sub,
    role,
    tokenId: claims.jti,
    ...(origin ? { originTokenId: origin } : {}),
    expiresAt: Number(claims.exp),
  };
}

/** API Gateway flattens array claims to "[a b]"; the local gateway passes arrays. Accept both. */
export function groupsOf(raw: unknown): string[] {
  if (Array.isArray(raw)) return raw.map(String);
  if (typeof raw === 'string')
    return raw
      .replace(/^\[|\]$/g, '')
      .split(/[\s,]+/)
      .filter(Boolean);
  return [];
}
