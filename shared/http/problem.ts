/**
 * The one mapping from errors to RFC 9457 problem+json. Domain errors (< 500) are exposed with their
 * stable `type`; anything else becomes a 500 whose body says nothing about the cause.
 */
import { DomainError } from '../domain/errors.ts';

export const PROBLEM_TYPE_PREFIX = 'urn:stratus:problem:';

const TITLES: Record<string, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  410: 'Gone',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  428: 'Precondition Required',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
  507: 'Insufficient Storage',
};

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  [extra: string]: unknown;
}

export function problemBody(err: unknown, instance?: string): Problem {
  if (err instanceof DomainError) {
    return {
      ...err.extra,
      type: PROBLEM_TYPE_PREFIX + err.slug,
      title: TITLES[err.status] ?? 'Error',
      status: err.status,
      detail: err.message,
      ...(instance ? { instance } : {}),
    };
  }
  return {
    type: `${PROBLEM_TYPE_PREFIX}internal-error`,
    title: TITLES[500] ?? 'Internal Server Error',
    status: 500,
    detail: 'an internal error occurred',
    ...(instance ? { instance } : {}),
  };
}

export function problemHeaders(err: unknown): Record<string, string> {
  return err instanceof DomainError ? err.headers : {};
}
