/**
 * Checks path parameters, query and body against the route's zod schemas and hands on what they
 * output. A refusal is one 400 validation problem listing up to 20 issues, each with its path
 * (`path.id`, `query.limit`, `body.name`).
 */
import type { z } from 'zod';
import { errors } from '../../domain/errors.ts';
import type { ApiMiddleware, Parsed, Routed, Validated } from './types.ts';

export function validateInput(): ApiMiddleware<Routed & Parsed & Validated> {
  return {
    before: (request) => {
      const { route } = request.internal.target;
      const e = request.event;
      request.internal.input = {
        params: validate(route.params, e.pathParameters ?? {}, 'path'),
        query: validate(route.query, e.queryStringParameters ?? {}, 'query'),
        body: validate(route.body, request.internal.json, 'body'),
      };
    },
  };
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
