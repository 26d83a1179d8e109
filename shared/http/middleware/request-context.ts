/**
 * The first middleware: opens the request's scope (request id, correlation id, a logger carrying
 * it) and, once there is an answer (`after`, or `onError` after the error handler made one), tags
 * it with `x-request-id` and writes the one `request` log line and the HTTP metrics.
 */
import type { Logger } from '../../observability/logger.ts';
import type { Metrics } from '../../ports/metrics.ts';
import type { ApiMiddleware, ApiRequest, Authenticated, Scoped } from './types.ts';

/** A client's correlation id is echoed only when it is short and plain (no header injection). */
export const CORRELATION = /^[A-Za-z0-9._:-]{1,64}$/;

export interface RequestContextOptions {
  log: Logger;
  metrics?: Metrics | undefined;
}

type Internal = Scoped & Partial<Authenticated>;

export function requestContext(opts: RequestContextOptions): ApiMiddleware<Internal> {
  const before = (request: ApiRequest<Internal>) => {
    const e = request.event;
    const given = e.headers?.['x-correlation-id'];
    const requestId = e.requestContext?.requestId ?? request.context?.awsRequestId ?? 'unknown';
    const correlationId = given && CORRELATION.test(given) ? given : requestId;
    request.internal.scope = {
      requestId,
      correlationId,
      baseUrl: `${e.requestContext?.apiId === 'local' ? 'http' : 'https'}://${e.requestContext?.domainName ?? 'localhost'}`,
      sourceIp: e.requestContext?.http?.sourceIp ?? 'unknown',
      headers: e.headers ?? {},
      log: opts.log.child({ correlationId, route: e.routeKey }),
      startedAt: Date.now(),
    };
  };

  const finish = (request: ApiRequest<Internal>) => {
    // Absent only when `before` itself failed; then there is nothing to tag or time.
    const scope: Scoped['scope'] | undefined = request.internal.scope;
    const response = request.response;
    if (!response || !scope) return;
    response.headers = { ...response.headers, 'x-request-id': scope.correlationId };
    const latencyMs = Date.now() - scope.startedAt;
    const status = response.statusCode ?? 200;
    scope.log.info('request', {
      method: request.event.requestContext?.http?.method,
      status,
      latencyMs,
      userId: request.internal.principal?.userId,
    });
    const m = opts.metrics;
    if (!m) return;
    const route = request.event.routeKey ?? 'unmatched';
    m.count('stratus_http_requests_total', { route, status: String(status) });
    m.observe('stratus_http_request_duration_seconds', latencyMs / 1000, { route });
    if (status >= 500) m.count('stratus_http_errors_total', { route });
    m.count('stratus_http_bytes_in_total', { route }, Buffer.byteLength(request.event.body ?? ''));
    m.count(
      'stratus_http_bytes_out_total',
      { route },
      Buffer.byteLength(typeof response.body === 'string' ? response.body : ''),
    );
    m.flush();
  };

  return { before, after: finish, onError: finish };
}
