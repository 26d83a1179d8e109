/**
 * The composition root: builds every adapter and service once per process (Lambda container or
 * local runtime) from the validated config. Nothing else reads the environment.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import { DynamoDbStateStore } from '../shared/adapters/dynamodb/dynamodb-state-store.ts';
import { LocalIdentityProvider } from '../shared/adapters/local-idp/local-identity-provider.ts';
import { loadOrCreateSigningKey } from '../shared/adapters/local-idp/signing-keys.ts';
import { LocalFsBlobStore } from '../shared/adapters/localfs/localfs-blob-store.ts';
import { MemoryThrottleStore } from '../shared/adapters/memory/memory-throttle-store.ts';
import { ItemRepository } from '../shared/adapters/postgres/item-repository.ts';
import { migrate } from '../shared/adapters/postgres/migrations.ts';
import { openPgDatabase } from '../shared/adapters/postgres/pg-database.ts';
import { openPgliteDatabase } from '../shared/adapters/postgres/pglite-database.ts';
import { SqlStateStore } from '../shared/adapters/postgres/sql-state-store.ts';
import { UserRepository } from '../shared/adapters/postgres/user-repository.ts';
import { RedisThrottleStore } from '../shared/adapters/redis/redis-throttle-store.ts';
import { S3BlobStore } from '../shared/adapters/s3/s3-blob-store.ts';
import {
  type AccessTokenVerifier,
  cognitoIssuer,
  createAccessTokenVerifier,
} from '../shared/auth/access-token-verifier.ts';
import { type AwsConfig, type Config, type LocalConfig, loadConfig } from '../shared/config/config.ts';
import { errors } from '../shared/domain/errors.ts';
import type { ApiHandlerDeps } from '../shared/http/api-handler.ts';
import { createLogger, type Logger } from '../shared/observability/logger.ts';
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

interface Parts {
  db: Database;
  state: StateStore;
  blobs: BlobStore;
  throttleStore: ThrottleStore;
  idp: IdentityProvider | undefined;
  log: Logger;
}

function assemble(
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

async function secretFile(file: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await fs
    .writeFile(file, randomBytes(32), { mode: 0o600, flag: 'wx' })
    .catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  return fs.readFile(file);
}

export interface LocalOverrides {
  db?: Database;
  throttleStore?: ThrottleStore;
  log?: Logger;
}

/** The embedded profile: PGlite (or STRATUS_DATABASE_URL), local nodes and state under the data dir. */
export async function createLocalContainer(config: LocalConfig, o: LocalOverrides = {}): Promise<Container> {
  const log = o.log ?? createLogger(config.STRATUS_LOG_LEVEL, { service: 'stratus' });
  const dir = config.STRATUS_DATA_DIR;
  await fs.mkdir(dir, { recursive: true });
  const db =
    o.db ??
    (config.STRATUS_DATABASE_URL
      ? await openPgDatabase({ connectionString: config.STRATUS_DATABASE_URL })
      : await openPgliteDatabase(path.join(dir, 'pglite')));
  await migrate(db);
  const state = new SqlStateStore(db);
  const secret = await secretFile(path.join(dir, 'keys', 'url-signing.key'));
  const node = await new LocalFsBlobStore(
    'local-1',
    path.join(dir, 'nodes', 'local-1'),
    `${config.publicUrl}/storage/local-1`,
    secret,
  ).init();
  const key = await loadOrCreateSigningKey(dir);
  const issuer = config.publicUrl;
  const idp = new LocalIdentityProvider(db, state, key, {
    issuer,
    clientId: LOCAL_CLIENT_ID,
    accessTokenTtlSeconds: config.STRATUS_ACCESS_TOKEN_TTL_SECONDS,
    refreshTokenTtlSeconds: config.STRATUS_REFRESH_TOKEN_TTL_SECONDS,
    kdfCost: config.STRATUS_KDF_COST,
  });
  const jwks = idp.jwks();
  const verifier = createAccessTokenVerifier({
    issuer,
    clientId: LOCAL_CLIENT_ID,
    jwksUri: `${issuer}/.well-known/jwks.json`,
    jwks,
  });
  return assemble(
    config,
    { db, state, blobs: node, throttleStore: o.throttleStore ?? new MemoryThrottleStore(), idp, log },
    { verifier, jwks, localNodes: [node] },
    () => (o.db ? Promise.resolve() : db.close()),
  );
}

/** The aws profile: S3, DynamoDB, the Postgres-compatible store, Redis, Cognito's tokens. */
export async function createAwsContainer(config: AwsConfig): Promise<Container> {
  const log = createLogger(config.STRATUS_LOG_LEVEL, { service: 'stratus' });
  const db = await openPgDatabase({ connectionString: config.STRATUS_DATABASE_URL, max: 2 });
  const s3 = new S3Client({ region: config.AWS_REGION, requestChecksumCalculation: 'WHEN_REQUIRED' });
  const state = new DynamoDbStateStore(
    new DynamoDBClient({ region: config.AWS_REGION }),
    config.STRATUS_TABLE,
  );
  const redis = config.STRATUS_REDIS_URL
    ? new Redis(config.STRATUS_REDIS_URL, {
        lazyConnect: true,
        maxRetriesPerRequest: 1,
        enableOfflineQueue: false,
      })
    : undefined;
  const issuer = cognitoIssuer(config.AWS_REGION, config.STRATUS_USER_POOL_ID);
  return assemble(
    config,
    {
      db,
      state,
      blobs: new S3BlobStore(`s3-${config.AWS_REGION}`, s3, config.STRATUS_BUCKET),
      throttleStore: redis ? new RedisThrottleStore(redis) : new MemoryThrottleStore(),
      idp: undefined,
      log,
    },
    {
      verifier: createAccessTokenVerifier({
        issuer,
        clientId: config.STRATUS_USER_POOL_CLIENT_ID,
        jwksUri: `${issuer}/.well-known/jwks.json`,
      }),
    },
    async () => {
      await db.close();
      redis?.disconnect();
    },
  );
}

let cached: Promise<Container> | undefined;

/** The process-wide container, built on first use from the environment (Lambda cold start). */
export function container(): Promise<Container> {
  cached ??= (async () => {
    const config = loadConfig();
    return config.STRATUS_PROFILE === 'local' ? createLocalContainer(config) : createAwsContainer(config);
  })();
  return cached;
}
