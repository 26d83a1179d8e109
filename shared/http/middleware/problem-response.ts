/**
 * The one error handler, registered last so that it handles errors first (middy runs `onError`
 * innermost-out): any error becomes an RFC 9457 problem+json answer through ../problem.ts. A 5xx
 * says nothing about its cause; the log line has the stack. A 4xx is logged as a rejection.
 */
import { DomainError } from '../../domain/errors.ts';
import type { Logger } from '../../observability/logger.ts';
import { problemBody, problemHeaders, statusOf } from '../problem.ts';
import type { ApiMiddleware, Scoped } from './types.ts';

export interface ProblemResponseOptions {
  /** For errors raised before the request's own logger exists. */
  log: Logger;
}

export function problemResponse(opts: ProblemResponseOptions): ApiMiddleware<Partial<Scoped>> {
  return {
    onError: (request) => {
      if (request.response !== undefined) return;
      const err = request.error;
      const status = statusOf(err);
      request.response = {
        statusCode: status,
        headers: { ...problemHeaders(err), 'content-type': 'application/problem+json' },
        body: JSON.stringify(problemBody(err, request.event.rawPath)),
      };
      const log = request.internal.scope?.log ?? opts.log;
      if (status >= 500) log.error('request failed', { status, err: err?.stack ?? String(err) });
      else
        log.info('request rejected', {
          status,
          problem: err instanceof DomainError ? err.slug : undefined,
          detail: err?.message,
        });
    },
  };
}
