/** The embedded profile's adapters: PGlite (or STRATUS_DATABASE_URL), local nodes and state under the data dir. */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { assemble, type Container, LOCAL_CLIENT_ID } from '../functions/container.ts';
import { LocalIdentityProvider } from '../shared/adapters/local-idp/local-identity-provider.ts';
import { loadOrCreateSigningKey } from '../shared/adapters/local-idp/signing-keys.ts';
import { LocalFsBlobStore } from '../shared/adapters/localfs/localfs-blob-store.ts';
import { MemoryCache } from '../shared/adapters/memory/memory-cache.ts';
import { MemoryThrottleStore } from '../shared/adapters/memory/memory-throttle-store.ts';
import { migrate } from '../shared/adapters/postgres/migrations.ts';
import { openPgDatabase } from '../shared/adapters/postgres/pg-database.ts';
import { openPgliteDatabase } from '../shared/adapters/postgres/pglite-database.ts';
import { SqlStateStore } from '../shared/adapters/postgres/sql-state-store.ts';
import { createAccessTokenVerifier } from '../shared/auth/access-token-verifier.ts';
import type { LocalConfig } from '../shared/config/config.ts';
import { createLogger, type Logger } from '../shared/observability/logger.ts';
import type { Cache } from '../shared/ports/cache.ts';
import type { Database } from '../shared/ports/database.ts';
import type { Scanner } from '../shared/ports/scanner.ts';
import type { ThrottleStore } from '../shared/ports/throttle-store.ts';
import { SessionCleanup } from '../shared/services/session-cleanup.ts';

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
  cache?: Cache;
  scanner?: Scanner;
  log?: Logger;
}

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
  const c = assemble(
    config,
    {
      db,
      state,
      blobs: node,
      throttleStore: o.throttleStore ?? new MemoryThrottleStore(),
      cache: o.cache ?? new MemoryCache(),
      ...(o.scanner ? { scanner: o.scanner } : {}),
      idp,
      log,
    },
    { verifier, jwks, localNodes: [node] },
    () => (o.db ? Promise.resolve() : db.close()),
  );
  // The local change feed does what DynamoDB Streams -> Lambda does in AWS.
  const cleanup = new SessionCleanup(c.uploads, state, log);
  state.onChange(
    (change) => cleanup.handle(change).then(() => undefined),
    (err) => log.error('state change handler failed', { err: String((err as Error)?.stack ?? err) }),
  );
  c.reapExpiredState = () => state.reapExpired();
  return c;
}
