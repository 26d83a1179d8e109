/**
 * The local gateway: what API Gateway (HTTP API) is in AWS. It matches routes, runs the JWT
 * authorizer step with the same verifier, turns the request into an HTTP API v2 event, and calls
 * the very handler that Lambda runs. Storage-node URLs (/storage/…) go to the local nodes, as
 * presigned URLs go to S3 in AWS, without passing through a handler.
 */
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Context } from 'aws-lambda';
import { handlerFactories } from '../functions/api/index.ts';
import { allRoutes } from '../functions/api/routes.ts';
import type { Container } from '../functions/container.ts';
import { LocalStorageNodeServer } from '../shared/adapters/localfs/local-storage-node-server.ts';
import { UrlNonceLedger } from '../shared/adapters/localfs/url-nonce-ledger.ts';
import { bearerToken } from '../shared/auth/access-token-verifier.ts';
import { errors } from '../shared/domain/errors.ts';
import type { ApiEvent, ApiResult } from '../shared/http/api-handler.ts';
import { SECURITY_HEADERS } from '../shared/http/api-handler.ts';
import { authenticate } from '../shared/http/middleware/authenticate.ts';
import type { Authenticated } from '../shared/http/middleware/types.ts';
import { HttpError, problemBody, problemHeaders, statusOf } from '../shared/http/problem.ts';
import { type Route, type RouteGroup, routeKey } from '../shared/http/route.ts';

interface CompiledRoute {
  route: Route;
  regex: RegExp;
  names: string[];
}

function compile(route: Route): CompiledRoute {
  const names: string[] = [];
  const pattern = route.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, (_m, n: string) => {
    names.push(n);
    return '([^/]+)';
  });
  return { route, regex: new RegExp(`^${pattern}$`), names };
}

const API_CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, PUT, PATCH, DELETE, OPTIONS',
  'access-control-allow-headers': 'authorization, content-type, if-match, x-correlation-id',
  'access-control-expose-headers': 'etag, location, x-request-id, retry-after',
  'access-control-max-age': '600',
};

export interface Gateway {
  server: http.Server;
  url: string;
  close(): Promise<void>;
}

export function createGatewayListener(c: Container) {
  const compiled = allRoutes.map(compile);
  const handlers = new Map<RouteGroup, (e: ApiEvent, ctx: Context) => Promise<ApiResult>>();
  for (const [group, make] of Object.entries(handlerFactories) as [
    RouteGroup,
    (typeof handlerFactories)[RouteGroup],
  ][]) {
    handlers.set(group, make(c));
  }
  // Single-use download URLs are spent in the state store, which every node of the process shares.
  const storage = new LocalStorageNodeServer(
    c.localNodes,
    (e) => c.log.error(String(e.msg), e),
    c.metrics,
    new UrlNonceLedger(c.state),
  );
  const maxBody = c.config.STRATUS_MAX_BODY_BYTES;

  const sendProblem = (res: ServerResponse, err: unknown, instance: string) => {
    const status = statusOf(err);
    if (status >= 500) c.log.error('gateway failure', { err: String((err as Error)?.stack ?? err) });
    res.writeHead(status, {
      ...SECURITY_HEADERS,
      ...API_CORS,
      ...problemHeaders(err),
      'content-type': 'application/problem+json',
    });
    res.end(JSON.stringify(problemBody(err, instance)));
  };

  /**
   * GET /metrics is for operators: it needs an admin's bearer token, verified as every API route's
   * token is (this gateway's verifier, then the handler's own authenticate step: revocation list,
   * role from the users table now), and spends from the `read` buckets under the route id
   * `metrics` (STRATUS_RATE_LIMITS {"metrics": …} gives it buckets of its own). An admin token
   * rather than a separate listener: nothing new to configure or firewall, the same port behind
   * the same proxy, and Prometheus sends one with `authorization` in its scrape config. The spend
   * comes before the role check, so an ordinary user hammering it is throttled too. Returns the
   * RateLimit-* fields for the answer.
   */
  const metricsAuth = authenticate({ revocations: c.apiDeps.revocations, roles: c.apiDeps.roles });
  const metricsCaller = async (req: IncomingMessage): Promise<Record<string, string>> => {
    const token = bearerToken(req.headers.authorization);
    if (!token || !c.verifier) throw errors.unauthorized();
    const claims = await c.verifier.verify(token);
    // The middleware reads only the claims and whether the route needs auth; the rest of a middy
    // request (context, response) it never touches; test/security/security-metrics.test.ts tells if it does.
    const request = {
      event: { requestContext: { authorizer: { jwt: { claims, scopes: [] } } } },
      internal: { target: { route: { auth: true } } } as Partial<Authenticated>,
    };
    await metricsAuth.before?.(request as unknown as Parameters<NonNullable<typeof metricsAuth.before>>[0]);
    const principal = request.internal.principal;
    if (!principal) throw errors.unauthorized();
    const { headers } = await c.limits.check({
      routeId: 'metrics',
      cls: 'read',
      ip: req.socket.remoteAddress ?? 'unknown',
      userId: principal.userId,
    });
    if (principal.role !== 'admin') throw errors.forbidden('metrics are for admins');
    return headers;
  };

  return async (req: IncomingMessage, res: ServerResponse) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://local');
    } catch {
      sendProblem(res, errors.validation('malformed request target'), '/');
      return;
    }
    try {
      if (await storage.handle(req, res, url)) return;
      if (req.method === 'OPTIONS') {
        res.writeHead(204, API_CORS).end();
        return;
      }
      if (url.pathname === '/metrics' && req.method === 'GET' && c.prometheus) {
        const limited = await metricsCaller(req);
        res.writeHead(200, {
          ...SECURITY_HEADERS,
          ...limited,
          'content-type': 'text/plain; version=0.0.4; charset=utf-8',
          'cache-control': 'no-store',
        });
        res.end(await c.prometheus.render());
        return;
      }
      if (url.pathname === '/.well-known/jwks.json' && c.jwks) {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=300' });
        res.end(JSON.stringify(c.jwks));
        return;
      }
      const candidates = compiled
        .map((r) => ({ r, m: r.regex.exec(url.pathname) }))
        .filter((x): x is { r: CompiledRoute; m: RegExpExecArray } => x.m !== null);
      if (candidates.length === 0) throw new HttpError('route-not-found', `no route for ${url.pathname}`);
      const hit = candidates.find((x) => x.r.route.method === req.method);
      if (!hit) {
        throw new HttpError('method-not-allowed', `${req.method} is not allowed here`, {
          allow: candidates.map((x) => x.r.route.method).join(', '),
        });
      }
      const pathParameters: Record<string, string> = {};
      hit.r.names.forEach((n, i) => {
        try {
          pathParameters[n] = decodeURIComponent(hit.m[i + 1] ?? '');
        } catch {
          throw errors.validation('malformed path parameter');
        }
      });
      const body = await readBody(req, maxBody);
      let claims: Record<string, unknown> | undefined;
      if (hit.r.route.auth) {
        const token = bearerToken(req.headers.authorization);
        if (!token || !c.verifier) throw errors.unauthorized();
        claims = (await c.verifier.verify(token)) as Record<string, unknown>;
      }
      const event = toEvent(req, url, hit.r.route, pathParameters, body, claims);
      const handler = handlers.get(hit.r.route.group);
      if (!handler) throw new Error(`no handler for group ${hit.r.route.group}`);
      const result = await handler(event, lambdaContext(hit.r.route.group));
      const headers = { ...API_CORS, ...(result.headers as Record<string, string> | undefined) };
      res.writeHead(result.statusCode ?? 200, headers);
      res.end(
        result.body === undefined
          ? undefined
          : Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8'),
      );
    } catch (err) {
      if (!res.headersSent) sendProblem(res, err, url.pathname);
      else res.destroy();
    }
  };
}

async function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) {
    req.resume();
    throw errors.payloadTooLarge(limit);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw errors.payloadTooLarge(limit);
    chunks.push(chunk);
  }
  return size === 0 ? undefined : Buffer.concat(chunks).toString('utf8');
}

function toEvent(
  req: IncomingMessage,
  url: URL,
  route: Route,
  pathParameters: Record<string, string>,
  body: string | undefined,
  claims: Record<string, unknown> | undefined,
): ApiEvent {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers))
    if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(',') : v;
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = k in query ? `${query[k]},${v}` : v;
  const now = Date.now();
  const requestId = randomUUID();
  return {
    version: '2.0',
    routeKey: routeKey(route),
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    headers,
    ...(Object.keys(query).length ? { queryStringParameters: query } : {}),
    ...(Object.keys(pathParameters).length ? { pathParameters } : {}),
    ...(body === undefined ? {} : { body }),
    isBase64Encoded: false,
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'local',
      http: {
        method: req.method ?? 'GET',
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? 'unknown',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId,
      routeKey: routeKey(route),
      stage: '$default',
      time: new Date(now).toISOString(),
      timeEpoch: now,
      authorizer: {
        principalId: '',
        integrationLatency: 0,
        jwt: { claims: (claims ?? {}) as Record<string, string>, scopes: [] },
      },
    },
  };
}

function lambdaContext(group: string): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: `stratus-${group}`,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:stratus-${group}`,
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/stratus-${group}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => 30_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** Starts the gateway on host:port (port 0 picks a free one). */
export async function startGateway(c: Container, host: string, port: number): Promise<Gateway> {
  const server = http.createServer(createGatewayListener(c));
  server.requestTimeout = 0; // large uploads stream for as long as they need
  server.headersTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    server,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
