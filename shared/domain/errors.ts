/**
 * Domain errors: a small class hierarchy callers can `instanceof`, each instance with a stable
 * problem `type` slug and the `cause` it explains. No HTTP here: the one mapping to RFC 9457
 * problem+json (status, headers) lives in shared/http/problem.ts. Adapters translate driver/SDK
 * errors into these so that services never see an SDK error.
 */
export type ProblemSlug =
  | 'validation-error'
  | 'malformed-body'
  | 'payload-too-large'
  | 'unsupported-media-type'
  | 'unauthorized'
  | 'forbidden'
  | 'signature-invalid'
  | 'not-found'
  | 'route-not-found'
  | 'method-not-allowed'
  | 'name-conflict'
  | 'email-taken'
  | 'conflict'
  | 'precondition-failed'
  | 'precondition-required'
  | 'quota-exceeded'
  | 'quarantined'
  | 'checksum-mismatch'
  | 'upload-incomplete'
  | 'upload-in-progress'
  | 'too-many-open-uploads'
  | 'too-many-attempts'
  | 'rate-limited'
  | 'share-not-found'
  | 'share-expired'
  | 'share-revoked'
  | 'share-exhausted'
  | 'share-unavailable'
  | 'share-password-required'
  | 'share-password-invalid'
  | 'download-url-used'
  | 'range-not-satisfiable'
  | 'dependency-unavailable'
  | 'internal-error';

export interface FieldIssue {
  path: string;
  message: string;
}

export interface ErrorDetails {
  /** Fields the problem body carries beside type/title/detail (e.g. `errors`, `current`). */
  extra?: Record<string, unknown>;
  /** The error this one explains (an SDK or driver error, a failed check). */
  cause?: unknown;
}

/**
 * A domain error: a stable problem `type` slug, a message safe to show, fields for the problem
 * body, and the cause it explains. Callers branch on its class (`instanceof NotFoundError`), never
 * on a status: only shared/http/ knows HTTP, and maps slugs to statuses and headers there.
 */
export abstract class DomainError extends Error {
  override readonly name: string = 'DomainError';
  readonly slug: ProblemSlug;
  readonly extra: Record<string, unknown>;

  constructor(slug: ProblemSlug, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.slug = slug;
    this.extra = details.extra ?? {};
  }

  /** Seconds after which a retry may succeed, when the error knows. */
  get retryAfterSeconds(): number | undefined {
    const v = this.extra.retryAfterSeconds;
    return typeof v === 'number' ? v : undefined;
  }
}

/** The request itself is wrong: bad fields, a malformed or oversized body, an unknown media type. */
export class InvalidInputError extends DomainError {
  override readonly name: string = 'InvalidInputError';
}
/** No valid credentials were presented. */
export class UnauthenticatedError extends DomainError {
  override readonly name: string = 'UnauthenticatedError';
}
/** The caller is known but may not do this (or the signed URL is not valid for it). */
export class ForbiddenError extends DomainError {
  override readonly name: string = 'ForbiddenError';
}
export class NotFoundError extends DomainError {
  override readonly name: string = 'NotFoundError';
}
/** What the caller asked for existed but is gone for good (an expired or revoked share link). */
export class GoneError extends DomainError {
  override readonly name: string = 'GoneError';
}
/** The request clashes with the current state: a name taken, a changed base, a busy upload. */
export class ConflictError extends DomainError {
  override readonly name: string = 'ConflictError';
}
/** A conditional request lacks its condition. */
export class PreconditionError extends DomainError {
  override readonly name: string = 'PreconditionError';
}
/** Bytes do not match what was declared, or are not all there. */
export class IntegrityError extends DomainError {
  override readonly name: string = 'IntegrityError';
}
export class QuotaExceededError extends DomainError {
  override readonly name: string = 'QuotaExceededError';
}
/** Too many requests or attempts: come back after `retryAfterSeconds`. */
export class RateLimitedError extends DomainError {
  override readonly name: string = 'RateLimitedError';
  /** The tightest bucket's state, for RateLimit-* fields (draft-ietf-httpapi-ratelimit-headers). */
  readonly limit:
    | { capacity: number; remaining: number; resetSeconds: number; windowSeconds: number }
    | undefined;
  constructor(
    slug: ProblemSlug,
    message: string,
    details: ErrorDetails & { limit?: RateLimitedError['limit'] },
  ) {
    super(slug, message, details);
    this.limit = details.limit;
  }
}
/** A dependency (database, cache, storage, identity provider) cannot serve now; retry later. */
export class UnavailableError extends DomainError {
  override readonly name: string = 'UnavailableError';
}

const retry = (retryAfterSeconds?: number) => (retryAfterSeconds === undefined ? {} : { retryAfterSeconds });

export const errors = {
  validation: (message: string, issues: FieldIssue[] = [], cause?: unknown) =>
    new InvalidInputError('validation-error', message, {
      extra: issues.length ? { errors: issues } : {},
      cause,
    }),
  malformedBody: (message: string) => new InvalidInputError('malformed-body', message),
  payloadTooLarge: (limit: number) =>
    new InvalidInputError('payload-too-large', `request body exceeds ${limit} bytes`, { extra: { limit } }),
  /** A declared file size over what this deployment accepts (`limit`, in bytes). */
  fileTooLarge: (limit: number) =>
    new InvalidInputError('payload-too-large', `files may be at most ${limit} bytes`, { extra: { limit } }),
  unsupportedMediaType: (message: string) => new InvalidInputError('unsupported-media-type', message),
  unauthorized: (message = 'authentication required') => new UnauthenticatedError('unauthorized', message),
  forbidden: (message = 'not allowed') => new ForbiddenError('forbidden', message),
  signatureInvalid: (message = 'the signed URL is invalid or has expired') =>
    new ForbiddenError('signature-invalid', message),
  notFound: (what = 'item', cause?: unknown) =>
    new NotFoundError('not-found', `${what} not found`, { cause }),
  nameConflict: (name: string) =>
    new ConflictError('name-conflict', `an item named ${JSON.stringify(name)} already exists here`),
  emailTaken: () => new ConflictError('email-taken', 'an account with this email already exists'),
  conflict: (message: string, extra: Record<string, unknown> = {}) =>
    new ConflictError('conflict', message, { extra }),
  preconditionRequired: () =>
    new PreconditionError(
      'precondition-required',
      'send If-Match with the ETag of the version this change is based on',
    ),
  quarantined: (scanState: string) =>
    new ConflictError('quarantined', 'this version is quarantined until a malware scan passes it', {
      extra: { scanState },
    }),
  quotaExceeded: () => new QuotaExceededError('quota-exceeded', 'this would exceed the storage quota'),
  checksumMismatch: (message: string) => new IntegrityError('checksum-mismatch', message),
  uploadIncomplete: (message: string) => new IntegrityError('upload-incomplete', message),
  tooManyOpenUploads: (max: number) =>
    new ConflictError(
      'too-many-open-uploads',
      `at most ${max} uploads may be open at once: complete or abort some first`,
      { extra: { maxOpenUploads: max } },
    ),
  /** Another request is completing this upload: come back, and a retry replays its result. */
  uploadInProgress: (retryAfterSeconds: number) =>
    new ConflictError(
      'upload-in-progress',
      'this upload is being completed by another request; retry to get its result',
      { extra: { state: 'completing', retryAfterSeconds } },
    ),
  tooManyAttempts: (retryAfterSeconds: number) =>
    new RateLimitedError('too-many-attempts', 'too many failed attempts; try again later', {
      extra: { retryAfterSeconds },
    }),
  rateLimited: (retryAfterSeconds: number, limit?: RateLimitedError['limit']) =>
    new RateLimitedError('rate-limited', 'too many requests; slow down', {
      extra: { retryAfterSeconds },
      ...(limit ? { limit } : {}),
    }),
  unavailable: (what: string, retryAfterSeconds?: number, cause?: unknown) =>
    new UnavailableError('dependency-unavailable', `${what} is unavailable`, {
      extra: retry(retryAfterSeconds),
      cause,
    }),
  shareNotFound: () => new NotFoundError('share-not-found', 'this link does not exist'),
  shareExpired: () => new GoneError('share-expired', 'this link has expired'),
  shareRevoked: () => new GoneError('share-revoked', 'this link has been revoked'),
  shareExhausted: () => new GoneError('share-exhausted', 'this link has reached its download limit'),
  shareUnavailable: () =>
    new GoneError('share-unavailable', 'what this link pointed to is no longer available'),
  sharePasswordRequired: () =>
    new UnauthenticatedError('share-password-required', 'this link needs a password (X-Share-Password)'),
  sharePasswordInvalid: () =>
    new UnauthenticatedError('share-password-invalid', 'the password for this link is not right'),
  downloadUrlUsed: () =>
    new GoneError('download-url-used', 'this download URL has been used; ask the link for a new one'),
  rangeNotSatisfiable: (size: number) =>
    new InvalidInputError('range-not-satisfiable', 'the requested byte range is outside the object', {
      extra: { size },
    }),
};

/** Thrown by state-store adapters when a conditional write loses. Services decide what it means. */
export class ConditionFailedError extends Error {
  override readonly name: string = 'ConditionFailedError';
}

/** Thrown by SQL adapters on a unique-constraint violation, with the constraint's name. */
export class UniqueViolationError extends Error {
  override readonly name: string = 'UniqueViolationError';
  readonly constraint: string;

  constructor(constraint: string) {
    super(`unique violation: ${constraint}`);
    this.constraint = constraint;
  }
}
