/**
 * Builds one Lambda handler for a group of routes. The same function object serves API Gateway in
 * AWS and the local gateway, which both hand it an HTTP API (v2) event.
 *
 * Middleware first (middy), handler last; one concern per middleware (./middleware/), in order:
 * request context (correlation id, logger, the request log line and metrics), security headers,
 * router, authenticate, rate limit, parse body, validate input, and last the one error handler,
 * so that its `onError` runs first and the ones before it (security headers, request context) see
 * its answer. Each middleware's type names the slices of middy's per-request `internal` storage it
 * reads and writes; a last `before` step hands what they found to the handler, which runs the
 * route's implementation.
 */

import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import type { z } from 'zod';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../ports/metrics.ts';
import type { RequestLimits } from '../services/request-limits.ts';
import type { RevocationList } from '../services/revocation-list.ts';
import { authenticate } from './middleware/authenticate.ts';
import { parseBody } from './middleware/parse-body.ts';
import { problemResponse } from './middleware/problem-response.ts';
import { rateLimit } from './middleware/rate-limit.ts';
import { requestContext } from './middleware/request-context.ts';
import { router } from './middleware/router.ts';
import { securityHeaders } from './middleware/security-headers.ts';
import type {
  ApiEvent,
  ApiResult,
  AuthenticatedRequestInfo,
  Bound,
  HttpResult,
  RawInput,
  RequestInfo,
} from './middleware/types.ts';
import { validateInput } from './middleware/validate-input.ts';
import type { BodyFor, Route, StatusOf } from './route.ts';

export { groupsOf } from './middleware/authenticate.ts';
export { SECURITY_HEADERS } from './middleware/security-headers.ts';
export type {
  ApiEvent,
  ApiResult,
  AuthenticatedRequestInfo,
  Bound,
  HttpResult,
  RequestInfo,
} from './middleware/types.ts';

type Out<S> = S extends z.ZodType ? z.output<S> : undefined;

export interface Input<R extends Route> {
  params: Out<NonNullable<R['params']>>;
  query: Out<NonNullable<R['query']>>;
  body: Out<NonNullable<R['body']>>;
}

/** What a route's implementation is given: a principal, never undefined, when the route has `auth: true`. */
export type RequestFor<R extends Route> = R['auth'] extends true ? AuthenticatedRequestInfo : RequestInfo;

/**
 * Pairs a route with its implementation, typed by the route's schemas and its `auth`. The
 * implementation signature below is the erased one the handler calls: the validate middleware
 * makes the input what `Input<R>` says, and the authenticate middleware sets the principal on
 * every route with `auth: true` (or answers 401 before the implementation runs).
 */
export function implement<R extends Route, S extends StatusOf<R>>(
  route: R,
  run: (
    input: Input<R>,
    req: RequestFor<R>,
  ) => Promise<{ status: S; body?: BodyFor<R, S>; headers?: Record<string, string> }>,
): Bound;
export function implement(route: Route, run: Bound['run']): Bound {
  return { route, run };
}

/**
 * `implement` without the answer check, for the few routes whose answers one JSON schema per
 * status cannot describe (a share link answers a browser with the HTML page, a client with JSON).
 * Inputs and the principal are typed as with `implement`.
 */
export function implementUnchecked<R extends Route>(
  route: R,
  run: (input: Input<R>, req: RequestFor<R>) => Promise<HttpResult>,
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

/**
 * What the last `before` step hands the handler through the Lambda context (middy gives the
 * handler only the event and the context). Optional in the type, so that callers pass a plain
 * Lambda `Context`.
 */
interface RouteCall {
  target: Bound;
  input: RawInput;
  info: RequestInfo;
}
type HandlerContext = Context & { stratus?: RouteCall };

export function createApiHandler(bound: readonly Bound[], deps: ApiHandlerDeps) {
  return middy<ApiEvent, ApiResult, Error, HandlerContext>()
    .use(requestContext({ log: deps.log, metrics: deps.metrics }))
    .use(securityHeaders())
    .use(router(bound))
    .use(authenticate({ revocations: deps.revocations, roles: deps.roles }))
    .use(rateLimit(deps.limits))
    .use(parseBody({ maxBytes: deps.maxBodyBytes }))
    .use(validateInput())
    .use(problemResponse({ log: deps.log }))
    .before((request) => {
      const { scope: s, target, input, principal } = request.internal;
      const info: RequestInfo = {
        requestId: s.requestId,
        baseUrl: s.baseUrl,
        correlationId: s.correlationId,
        sourceIp: s.sourceIp,
        headers: s.headers,
        principal,
        log: s.log,
      };
      request.context.stratus = { target, input, info };
    })
    .handler(async (_event, context) => {
      const call = context.stratus;
      if (!call) throw new Error('the hand-off to the handler did not run');
      return toResult(await call.target.run(call.input, call.info));
    });
}

function toResult(r: HttpResult): ApiResult {
  const headers: Record<string, string> = { ...r.headers };
  if (r.body === undefined) return { statusCode: r.status, headers };
  if (typeof r.body === 'string' && headers['content-type'])
    return { statusCode: r.status, headers, body: r.body };
  return {
    statusCode: r.status,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(r.body),
  };
}
