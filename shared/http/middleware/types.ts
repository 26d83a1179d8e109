/**
 * The types the handler middleware shares. Each middleware says, in its type, which slices of
 * middy's per-request `internal` storage it reads and writes; `.use()` intersects them, so the
 * middlewares after it and the chain's last step see them typed. `internal` is fresh for every
 * request and never part of the handler's call signature, so callers still pass a plain Lambda
 * `Context`.
 */
import type middy from '@middy/core';
import type {
  APIGatewayProxyEventV2WithJWTAuthorizer,
  APIGatewayProxyStructuredResultV2,
  Context,
} from 'aws-lambda';
import type { Principal } from '../../domain/model.ts';
import type { Logger } from '../../observability/logger.ts';
import type { Route } from '../route.ts';

export type ApiEvent = APIGatewayProxyEventV2WithJWTAuthorizer;
export type ApiResult = APIGatewayProxyStructuredResultV2;

/** What a route implementation learns about its request. */
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

/** A route with `auth: true` is only ever run with a principal (the authenticate middleware). */
export type AuthenticatedRequestInfo = RequestInfo & { principal: Principal };

export interface HttpResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** A route's input as the validate middleware hands it on, before `implement` types it. */
export interface RawInput {
  params: unknown;
  query: unknown;
  body: unknown;
}

/** A route paired with its implementation (see `implement`), with the types erased. */
export interface Bound {
  route: Route;
  run(input: RawInput, req: RequestInfo): Promise<HttpResult>;
}

// The slices of `request.internal`, one per middleware that writes it. (Type aliases, not
// interfaces: middy's `TInternal` must be a `Record<string, unknown>`.)

/** From requestContext: who asked, how to log it, when it began. */
export type Scoped = {
  scope: {
    requestId: string;
    correlationId: string;
    baseUrl: string;
    sourceIp: string;
    headers: Record<string, string | undefined>;
    log: Logger;
    startedAt: number;
  };
};
/** From router: the route this request is for. */
export type Routed = { target: Bound };
/** From authenticate: the caller, always set for routes with `auth: true`, else undefined. */
export type Authenticated = { principal: Principal | undefined };
/** From rateLimit: the RateLimit-* fields a successful answer carries. */
export type RateLimited = { rateLimitHeaders: Record<string, string> };
/** From parseBody: the JSON body, parsed within the limits, or undefined for routes without one. */
export type Parsed = { json: unknown };
/** From validateInput: params, query and body as the route's schemas output them. */
export type Validated = { input: RawInput };

export type ApiMiddleware<I extends Record<string, unknown> = Record<never, never>> = middy.MiddlewareObj<
  ApiEvent,
  ApiResult,
  Error,
  Context,
  I
>;
export type ApiRequest<I extends Record<string, unknown> = Record<never, never>> = middy.Request<
  ApiEvent,
  ApiResult,
  Error,
  Context,
  I
>;
