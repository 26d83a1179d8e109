/**
 * A route is the public contract of one operation: method, path, whether it needs a token, and the
 * zod schemas of its inputs and outputs. Routes carry no behaviour, so the CDK app, the local
 * gateway and the OpenAPI generator can all read them without loading a service.
 */
import type { z } from 'zod';

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** The Lambda that serves a route: one function per route group. */
export type RouteGroup = 'auth' | 'folders' | 'files' | 'uploads' | 'account' | 'admin' | 'shares' | 'system';

export interface RouteResponse {
  description: string;
  schema?: z.ZodType;
  contentType?: string;
}

export interface Route<
  P extends z.ZodType = z.ZodType,
  Q extends z.ZodType = z.ZodType,
  B extends z.ZodType = z.ZodType,
  A extends boolean = boolean,
  Res extends Record<number, RouteResponse> = Record<number, RouteResponse>,
> {
  id: string;
  group: RouteGroup;
  method: Method;
  path: string;
  /** Whether a token is needed; a literal `true` gives the implementation a non-optional principal. */
  auth: A;
  /** Which rate-limit buckets it spends from; by default GET is `read`, other methods `write`. */
  limit?: 'auth' | 'read' | 'write' | 'public';
  summary: string;
  /** Longer prose for the OpenAPI operation. */
  description?: string;
  tags: string[];
  params?: P;
  query?: Q;
  body?: B;
  responses: Res;
}

export function defineRoute<
  P extends z.ZodType,
  Q extends z.ZodType,
  B extends z.ZodType,
  A extends boolean,
  const Res extends Record<number, RouteResponse>,
>(r: Route<P, Q, B, A, Res>): Route<P, Q, B, A, Res> {
  return r;
}

/** The statuses a route declares. */
export type StatusOf<R extends Route> = Extract<keyof R['responses'], number>;

/** The body a route declares for status `S`: its schema's input, or anything when it has none. */
export type BodyFor<R extends Route, S> = S extends keyof R['responses']
  ? R['responses'][S] extends { schema: infer T extends z.ZodType }
    ? z.input<T>
    : unknown
  : never;

/** API Gateway's route key, e.g. "GET /v1/files/{id}". */
export function routeKey(r: Pick<Route, 'method' | 'path'>): string {
  return `${r.method} ${r.path}`;
}
