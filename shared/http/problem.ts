/**
 * The one mapping from errors to RFC 9457 problem+json. Domain errors (< 500) are exposed with their
 * stable `type`; anything else becomes a 500 whose body says nothing about the cause.
 */
import { DomainError, type ProblemSlug, RateLimitedError } from '../domain/errors.ts';

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
  416: 'Range Not Satisfiable',
  422: 'Unprocessable Content',
  428: 'Precondition Required',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
  507: 'Insufficient Storage',
};

/** The HTTP status of each problem type: the only place statuses are chosen. */
export const STATUS: Record<ProblemSlug, number> = {
  'validation-error': 400,
  'malformed-body': 400,
  'payload-too-large': 413,
  'unsupported-media-type': 415,
  unauthorized: 401,
  forbidden: 403,
  'signature-invalid': 403,
  'not-found': 404,
  'route-not-found': 404,
  'method-not-allowed': 405,
  'name-conflict': 409,
  'email-taken': 409,
  conflict: 409,
  'precondition-failed': 412,
  'precondition-required': 428,
  'quota-exceeded': 507,
  quarantined: 409,
  'checksum-mismatch': 422,
  'upload-incomplete': 422,
  'upload-in-progress': 409,
  'too-many-open-uploads': 409,
  'too-many-attempts': 429,
  'rate-limited': 429,
  'share-not-found': 404,
  'share-expired': 410,
  'share-revoked': 410,
  'share-exhausted': 410,
  'share-unavailable': 410,
  'share-password-required': 401,
  'share-password-invalid': 401,
  'download-url-used': 410,
  'range-not-satisfiable': 416,
  'dependency-unavailable': 503,
  'internal-error': 500,
};

/**
 * An error only the HTTP layer raises (no route, wrong method): a problem slug with the headers
 * the status needs. Services never see it.
 */
export class HttpError extends DomainError {
  override readonly name = 'HttpError';
  readonly headers: Record<string, string>;
  constructor(slug: ProblemSlug, message: string, headers: Record<string, string> = {}) {
    super(slug, message);
    this.headers = headers;
  }
}

/** The status an error answers with: a domain error's by its slug, anything else 500. */
export function statusOf(err: unknown): number {
  return err instanceof DomainError ? STATUS[err.slug] : 500;
}

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
      title: TITLES[STATUS[err.slug]] ?? 'Error',
      status: STATUS[err.slug],
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
  if (!(err instanceof DomainError)) return {};
  const h: Record<string, string> = {};
  if (err.slug === 'unauthorized') h['www-authenticate'] = 'Bearer';
  const wait = err.retryAfterSeconds;
  if (wait !== undefined) h['retry-after'] = String(wait);
  if (err instanceof RateLimitedError && err.limit) {
    const l = err.limit;
    h['ratelimit-limit'] = String(l.capacity);
    h['ratelimit-remaining'] = String(l.remaining);
    h['ratelimit-reset'] = String(l.resetSeconds);
    h['ratelimit-policy'] = `${l.capacity};w=${l.windowSeconds}`;
  }
  // RFC 9110 §15.5.17: a 416 names the representation's length.
  if (err.slug === 'range-not-satisfiable' && typeof err.extra.size === 'number')
    h['content-range'] = `bytes */${err.extra.size}`;
  if (err instanceof HttpError) Object.assign(h, err.headers);
  return h;
}
