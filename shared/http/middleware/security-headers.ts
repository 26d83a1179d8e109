/**
 * Security headers on every answer the handler gives, success or problem. A route's own headers
 * win (the dashboard's HTML brings its own content-security-policy and caching).
 */
import type { ApiMiddleware, ApiRequest } from './types.ts';

export const SECURITY_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
};

export function securityHeaders(): ApiMiddleware {
  const apply = (request: ApiRequest) => {
    if (!request.response) return;
    request.response.headers = { ...SECURITY_HEADERS, ...request.response.headers };
  };
  return { after: apply, onError: apply };
}
