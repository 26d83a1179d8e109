/**
 * Parses the JSON body of routes that declare one, within the byte and depth limits
 * (../json-body.ts), before any schema sees it. Routes without a body schema never parse one.
 */
import { errors } from '../../domain/errors.ts';
import { parseJsonBody } from '../json-body.ts';
import type { ApiMiddleware, Parsed, Routed } from './types.ts';

export interface ParseBodyOptions {
  maxBytes: number;
}

export function parseBody(opts: ParseBodyOptions): ApiMiddleware<Routed & Parsed> {
  return {
    before: (request) => {
      const e = request.event;
      if (!request.internal.target.route.body) {
        request.internal.json = undefined;
        return;
      }
      const json = parseJsonBody(e.body, e.isBase64Encoded, opts.maxBytes);
      if (json === undefined) throw errors.malformedBody('a JSON body is required');
      request.internal.json = json;
    },
  };
}
