/**
 * The aws profile's composition root. Every function gets the common adapters: the
 * Postgres-compatible store, DynamoDB (the state table), Redis and Powertools. What only some
 * functions use comes in as `AwsModules` from the function's own entry file: S3 storage nodes
 * (`aws-storage.ts`: every function but auth) and the Cognito identity provider (`aws-identity.ts`:
 * auth, admin and maintenance). The entry imports the modules it names, so each bundle carries only
 * the SDK clients its routes use (issue #16; `node bench/cold-start.ts` measures the bundles).
 */
import type { CognitoIdentityProviderClient } from '@aws-sdk/client-cognito-identity-provider';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { DynamoDbStateStore } from '../shared/adapters/dynamodb/dynamodb-state-store.ts';
import { MemoryCache } from '../shared/adapters/memory/memory-cache.ts';
import { MemoryRateLimiter } from '../shared/adapters/memory/memory-rate-limiter.ts';
import { MemoryThrottleStore } from '../shared/adapters/memory/memory-throttle-store.ts';
import { openPgDatabase } from '../shared/adapters/postgres/pg-database.ts';
import {
  PowertoolsMetrics,
  powertoolsLogger,
} from '../shared/adapters/powertools/powertools-observability.ts';
import { RedisCache } from '../shared/adapters/redis/redis-cache.ts';
import { openRedis } from '../shared/adapters/redis/redis-client.ts';
import { RedisRateLimiter } from '../shared/adapters/redis/redis-rate-limiter.ts';
import { RedisThrottleStore } from '../shared/adapters/redis/redis-throttle-store.ts';
import { type AwsConfig, loadConfig } from '../shared/config/config.ts';
import type { Logger } from '../shared/observability/logger.ts';
import type { BlobStore } from '../shared/ports/blob-store.ts';
import type { IdentityProvider } from '../shared/ports/identity-provider.ts';
import type { Scanner } from '../shared/ports/scanner.ts';
import type { StorageNode } from '../shared/ports/storage-node.ts';
import type { NodeSpec } from '../shared/services/node-catalog.ts';
import type { NodeRegistry } from '../shared/services/node-registry.ts';
import { applyNodeCatalog, assemble, type Container } from './container.ts';
import { databaseOptions } from './database-options.ts';

export { DSQL_ADMIN_USER, databaseOptions } from './database-options.ts';

/** An AWS SDK client the aws profile creates. */
export type AwsSdkClient = S3Client | DynamoDBClient | CognitoIdentityProviderClient;

/** Seams of the aws profile for tests; Lambda passes none. */
export interface AwsContainerHooks {
  /** Sees every SDK client before its first command (the IAM test records commands this way). */
  client?: (client: AwsSdkClient) => void;
}

/** How a module creates its SDK clients: through the hooks, once per container. */
export type SdkClients = <C extends AwsSdkClient>(client: C) => C;

/**
 * The storage side: the configured bucket as the home node, nodes added at run time, and the
 * GuardDuty scanner, which reads the scan-result tags of the nodes' objects (STRATUS_SCANNER=guardduty).
 */
export interface AwsStorage {
  home(config: AwsConfig, sdk: SdkClients): BlobStore;
  node(spec: NodeSpec, sdk: SdkClients): Promise<StorageNode>;
  guardDutyScanner(nodes: Pick<NodeRegistry, 'store'>, log: Logger): Scanner;
}

/** The identity provider (registration, login, refresh, password reset, roles). */
export interface AwsIdentity {
  provider(config: AwsConfig, sdk: SdkClients): IdentityProvider;
}

/** What a function's entry adds to the common adapters; a function without one never needs it. */
export interface AwsModules {
  storage?: AwsStorage;
  identity?: AwsIdentity;
}

function sdkClients(hooks: AwsContainerHooks): SdkClients {
  return (client) => {
    hooks.client?.(client);
    return client;
  };
}

export async function createAwsContainer(
  config: AwsConfig,
  modules: AwsModules,
  hooks: AwsContainerHooks = {},
): Promise<Container> {
  const sdk = sdkClients(hooks);
  const log = powertoolsLogger(config.STRATUS_LOG_LEVEL);
  const db = await openPgDatabase(databaseOptions(config.STRATUS_DATABASE_URL, config.AWS_REGION));
  const state = new DynamoDbStateStore(
    sdk(new DynamoDBClient({ region: config.AWS_REGION })),
    config.STRATUS_TABLE,
  );
  const redis = config.STRATUS_REDIS_URL
    ? openRedis(config.STRATUS_REDIS_URL, config.STRATUS_REDIS_MODE)
    : undefined;
  // Without an offline queue, commands before the first connect fail: connect at cold start.
  await redis
    ?.connect()
    .catch((err: unknown) => log.warn('Redis is not answering at cold start', { err: String(err) }));
  const { storage, identity } = modules;
  return assemble(
    config,
    {
      db,
      state,
      ...(storage
        ? {
            blobs: storage.home(config, sdk),
            nodeFactory: (spec: NodeSpec) => storage.node(spec, sdk),
            guardDuty: (nodes: NodeRegistry, l: Logger) => storage.guardDutyScanner(nodes, l),
          }
        : {}),
      throttleStore: redis ? new RedisThrottleStore(redis) : new MemoryThrottleStore(),
      cache: redis ? new RedisCache(redis) : new MemoryCache(),
      rateLimiter: redis ? new RedisRateLimiter(redis) : new MemoryRateLimiter(),
      metrics: new PowertoolsMetrics(),
      idp: identity?.provider(config, sdk),
      log,
    },
    // No token verifier: API Gateway's JWT authorizer checks tokens before a handler runs.
    {},
    async () => {
      await db.close();
      redis?.disconnect();
    },
  );
}

/**
 * What a Lambda cold start builds: the container, with the configured and cataloged nodes when the
 * function holds storage.
 */
export async function composeAwsContainer(
  config: AwsConfig,
  modules: AwsModules,
  hooks: AwsContainerHooks = {},
): Promise<Container> {
  const c = await createAwsContainer(config, modules, hooks);
  const { storage } = modules;
  const sdk = sdkClients(hooks);
  if (storage) await applyNodeCatalog(c, (spec) => storage.node(spec, sdk));
  return c;
}

let cached: Promise<Container> | undefined;

/** The Lambda container, built on first use from the environment (cold start). */
export function awsContainer(modules: AwsModules): Promise<Container> {
  cached ??= (async () => {
    const config = loadConfig();
    if (config.STRATUS_PROFILE !== 'aws')
      throw new Error('Lambda handlers run the aws profile (STRATUS_PROFILE=aws)');
    return composeAwsContainer(config, modules);
  })();
  return cached;
}
