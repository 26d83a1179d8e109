/**
 * The composition root's common half: given a profile's adapters, wires the services once per
 * process. The profiles live apart (aws-container.ts for Lambda, local/local-container.ts for the
 * embedded runtime) so that a Lambda bundle carries no local adapter and the local runtime no SDK
 * it does not use.
 */

import type { LocalFsBlobStore } from '../shared/adapters/localfs/localfs-blob-store.ts';
import { ItemRepository } from '../shared/adapters/postgres/item-repository.ts';
import { UserRepository } from '../shared/adapters/postgres/user-repository.ts';
import type { AccessTokenVerifier } from '../shared/auth/access-token-verifier.ts';
import type { Config } from '../shared/config/config.ts';
import { errors } from '../shared/domain/errors.ts';
import type { ApiHandlerDeps } from '../shared/http/api-handler.ts';
import type { Logger } from '../shared/observability/logger.ts';
import type { BlobStore } from '../shared/ports/blob-store.ts';
import type { Database } from '../shared/ports/database.ts';
import type { IdentityProvider } from '../shared/ports/identity-provider.ts';
import type { StateStore } from '../shared/ports/state-store.ts';
import type { ThrottleStore } from '../shared/ports/throttle-store.ts';
import { AuthService } from '../shared/services/auth-service.ts';
import { FileService } from '../shared/services/file-service.ts';
import { LoginThrottle } from '../shared/services/login-throttle.ts';
import { RevocationList } from '../shared/services/revocation-list.ts';

export const VERSION = '0.1.0';
export const LOCAL_CLIENT_ID = 'stratus-local';
const DEFAULT_QUOTA = 10 * 1024 ** 3;

export interface Container {
  config: Config;
  log: Logger;
  db: Database;
  state: StateStore;
  blobs: BlobStore;
  users: UserRepository;
  auth: AuthService;
  files: FileService;
  revocations: RevocationList;
  apiDeps: ApiHandlerDeps;
  /** Local profile only: verifies bearer tokens in the local gateway (API Gateway does it in AWS). */
  verifier?: AccessTokenVerifier;
  jwks?: { keys: object[] };
  localNodes: LocalFsBlobStore[];
  close(): Promise<void>;
}

export interface Parts {
  db: Database;
  state: StateStore;
  blobs: BlobStore;
  throttleStore: ThrottleStore;
  idp: IdentityProvider | undefined;
  log: Logger;
}

export function assemble(
  config: Config,
  p: Parts,
  extra: Partial<Container>,
  close: () => Promise<void>,
): Container {
  const users = new UserRepository(p.db);
  const items = new ItemRepository(p.db);
  const revocations = new RevocationList(p.state);
  const idp: IdentityProvider = p.idp ?? {
    register: () => Promise.reject(errors.unavailable('identity provider')),
    login: () => Promise.reject(errors.unavailable('identity provider')),
    refresh: () => Promise.reject(errors.unavailable('identity provider')),
    revokeRefreshToken: () => Promise.reject(errors.unavailable('identity provider')),
  };
  const auth = new AuthService(idp, users, new LoginThrottle(p.throttleStore), revocations, p.log, {
    adminEmail: config.STRATUS_ADMIN_EMAIL,
    defaultQuotaBytes: DEFAULT_QUOTA,
    accessTokenTtlSeconds: config.STRATUS_ACCESS_TOKEN_TTL_SECONDS,
  });
  const files = new FileService(p.db, items, users, p.state, p.blobs, p.log, {
    partSizeBytes: config.STRATUS_PART_SIZE_BYTES,
    maxFileBytes: config.STRATUS_MAX_FILE_BYTES,
    urlTtlSeconds: config.STRATUS_URL_TTL_SECONDS,
    uploadTtlSeconds: config.STRATUS_UPLOAD_TTL_SECONDS,
  });
  return {
    config,
    log: p.log,
    db: p.db,
    state: p.state,
    blobs: p.blobs,
    users,
    auth,
    files,
    revocations,
    apiDeps: { log: p.log, revocations, maxBodyBytes: config.STRATUS_MAX_BODY_BYTES },
    localNodes: [],
    ...extra,
    close,
  };
}
