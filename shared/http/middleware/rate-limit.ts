/**
 * Spends the request's tokens (per address, and per user once authenticated) before any input is
 * parsed; a refusal is a 429 problem with Retry-After and RateLimit-*. A successful answer carries
 * the RateLimit-* fields of the tightest bucket, unless the route set its own.
 */
import type { RequestLimits } from '../../services/request-limits.ts';
import type { ApiMiddleware, Authenticated, RateLimited, Routed, Scoped } from './types.ts';

export function rateLimit(
  limits: RequestLimits | undefined,
): ApiMiddleware<Scoped & Routed & Authenticated & RateLimited> {
  return {
    before: async (request) => {
      const { route } = request.internal.target;
      const decision = limits
        ? await limits.check({
            routeId: route.id,
            cls: route.limit ?? (route.method === 'GET' ? 'read' : 'write'),
            ip: request.internal.scope.sourceIp,
            userId: request.internal.principal?.userId,
          })
        : { headers: {} };
      request.internal.rateLimitHeaders = decision.headers;
    },
    after: (request) => {
      if (!request.response) return;
      request.response.headers = { ...request.internal.rateLimitHeaders, ...request.response.headers };
    },
  };
}
