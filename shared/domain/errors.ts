/**
 * Domain errors. Each carries a stable problem `type` slug and an HTTP status; the single mapping
 * to RFC 9457 problem+json lives in shared/http/problem.ts. Adapters translate driver/SDK errors
 * into these so that services never see an SDK error.
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
  | 'dependency-unavailable'
  | 'internal-error';

export interface FieldIssue {
  path: string;
  message: string;
}

export class DomainError extends Error {
  override readonly name: string = 'DomainError';
  readonly slug: ProblemSlug;
  readonly status: number;
  readonly extra: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(
    slug: ProblemSlug,
    status: number,
    message: string,
    extra: Record<string, unknown> = {},
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.slug = slug;
    this.status = status;
    this.extra = extra;
    this.headers = headers;
  }
}

export const errors = {
  validation: (message: string, issues: FieldIssue[] = []) =>
    new DomainError('validation-error', 400, message, issues.length ? { errors: issues } : {}),
  malformedBody: (message: string) => new DomainError('malformed-body', 400, message),
  payloadTooLarge: (limit: number) =>
    new DomainError('payload-too-large', 413, `request body exceeds ${limit} bytes`, { limit }),
  unsupportedMediaType: (message: string) => new DomainError('unsupported-media-type', 415, message),
  unauthorized: (message = 'authentication required') =>
    new DomainError('unauthorized', 401, message, {}, { 'www-authenticate': 'Bearer' }),
  forbidden: (message = 'not allowed') => new DomainError('forbidden', 403, message),
  signatureInvalid: (message = 'the signed URL is invalid or has expired') =>
    new DomainError('signature-invalid', 403, message),
  notFound: (what = 'item') => new DomainError('not-found', 404, `${what} not found`),
  nameConflict: (name: string) =>
    new DomainError('name-conflict', 409, `an item named ${JSON.stringify(name)} already exists here`),
  emailTaken: () => new DomainError('email-taken', 409, 'an account with this email already exists'),
  conflict: (message: string, extra: Record<string, unknown> = {}) =>
    new DomainError('conflict', 409, message, extra),
  preconditionRequired: () =>
    new DomainError(
      'precondition-required',
      428,
      'send If-Match with the ETag of the version this change is based on',
    ),
  quarantined: (scanState: string) =>
    new DomainError('quarantined', 409, 'this version is quarantined until a malware scan passes it', {
      scanState,
    }),
  quotaExceeded: () => new DomainError('quota-exceeded', 507, 'this would exceed the storage quota'),
  checksumMismatch: (message: string) => new DomainError('checksum-mismatch', 422, message),
  uploadIncomplete: (message: string) => new DomainError('upload-incomplete', 422, message),
  tooManyOpenUploads: (max: number) =>
    new DomainError(
      'too-many-open-uploads',
      409,
      `at most ${max} uploads may be open at once: complete or abort some first`,
      { maxOpenUploads: max },
    ),
  /** Another request is completing this upload: come back, and a retry replays its result. */
  uploadInProgress: (retryAfterSeconds: number) =>
    new DomainError(
      'upload-in-progress',
      409,
      'this upload is being completed by another request; retry to get its result',
      { state: 'completing', retryAfterSeconds },
      { 'retry-after': String(retryAfterSeconds) },
    ),
  tooManyAttempts: (retryAfterSeconds: number) =>
    new DomainError(
      'too-many-attempts',
      429,
      'too many failed attempts; try again later',
      { retryAfterSeconds },
      { 'retry-after': String(retryAfterSeconds) },
    ),
  unavailable: (what: string, retryAfterSeconds?: number) =>
    new DomainError(
      'dependency-unavailable',
      503,
      `${what} is unavailable`,
      retryAfterSeconds === undefined ? {} : { retryAfterSeconds },
      retryAfterSeconds === undefined ? {} : { 'retry-after': String(retryAfterSeconds) },
    ),
};

/** Thrown by state-store adapters when a conditional write loses. Services decide what it means. */
export class ConditionFailedError extends Error {
  override readonly name = 'ConditionFailedError';
}

/** Thrown by SQL adapters on a unique-constraint violation, with the constraint's name. */
export class UniqueViolationError extends Error {
  override readonly name = 'UniqueViolationError';
  readonly constraint: string;

  constructor(constraint: string) {
    super(`unique violation: ${constraint}`);
    this.constraint = constraint;
  }
}
