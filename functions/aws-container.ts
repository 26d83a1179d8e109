/** The aws profile's adapters: S3, DynamoDB, the Postgres-compatible store, Redis, Cognito. */
import { CognitoIdentityProviderClient } from '@aws-sdk/client-cognito-identity-provider';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { CognitoIdentityProvider } from '../shared/adapters/cognito/cognito-identity-provider.ts';
import { DynamoDbStateStore } from '../shared/adapters/dynamodb/dynamodb-state-store.ts';
import { MemoryCache } from '../shared/adapters/memory/memory-cache.ts';
import { MemoryRateLimiter } from '../shared/adapters/memory/memory-rate-limiter.ts';
import { MemoryThrottleStore } from '../shared/adapters/memory/memory-throttle-store.ts';
import { openPgDatabase } from '../shared/adapters/postgres/pg-database.ts';
import {
  PowertoolsMetrics,
  powertoolsLogger,
  tracer,
} from '../shared/adapters/powertools/powertools-observability.ts';
import { RedisCache } from '../shared/adapters/redis/redis-cache.ts';
import { openRedis } from '../shared/adapters/redis/redis-client.ts';
import { RedisRateLimiter } from '../shared/adapters/redis/redis-rate-limiter.ts';
import { RedisThrottleStore } from '../shared/adapters/redis/redis-throttle-store.ts';
import { S3BlobStore } from '../shared/adapters/s3/s3-blob-store.ts';
import { s3Node } from '../shared/adapters/s3/s3-node.ts';
import { type AwsConfig, loadConfig } from '../shared/config/config.ts';
import { errors } from '../shared/domain/errors.ts';
import type { NodeSpec } from '../shared/services/node-catalog.ts';
import type { StorageNode } from '../shared/services/node-registry.ts';
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

/** Every SDK client of the profile goes through here: the test hook, then X-Ray tracing. */
function sdkClient<C extends AwsSdkClient>(client: C, hooks: AwsContainerHooks): C {
  hooks.client?.(client);
  return tracer.captureAWSv3Client(client);
}

export async function createAwsContainer(
  config: AwsConfig,
  hooks: AwsContainerHooks = {},
): Promise<Container> {
  const log = powertoolsLogger(config.STRATUS_LOG_LEVEL);
  const db = await openPgDatabase(databaseOptions(config.STRATUS_DATABASE_URL, config.AWS_REGION));
  const s3 = sdkClient(
    new S3Client({
      region: config.AWS_REGION,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      // A custom endpoint (an emulator, an S3-compatible store) has no per-bucket DNS names.
      forcePathStyle: Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL),
    }),
    hooks,
  );
  const state = new DynamoDbStateStore(
    sdkClient(new DynamoDBClient({ region: config.AWS_REGION }), hooks),
    config.STRATUS_TABLE,
  );
  const redis = config.STRATUS_REDIS_URL
    ? openRedis(config.STRATUS_REDIS_URL, config.STRATUS_REDIS_MODE)
    : undefined;
  // Without an offline queue, commands before the first connect fail: connect at cold start.
  await redis
    ?.connect()
    .catch((err: unknown) => log.warn('Redis is not answering at cold start', { err: String(err) }));
  return assemble(
    config,
    {
      db,
      state,
      blobs: new S3BlobStore(`s3-${config.AWS_REGION}`, s3, config.STRATUS_BUCKET),
      throttleStore: redis ? new RedisThrottleStore(redis) : new MemoryThrottleStore(),
      cache: redis ? new RedisCache(redis) : new MemoryCache(),
      rateLimiter: redis ? new RedisRateLimiter(redis) : new MemoryRateLimiter(),
      metrics: new PowertoolsMetrics(),
      nodeFactory: (spec) => s3NodeFactory(spec, hooks),
      idp: new CognitoIdentityProvider(
        sdkClient(new CognitoIdentityProviderClient({ region: config.AWS_REGION }), hooks),
        {
          userPoolId: config.STRATUS_USER_POOL_ID,
          clientId: config.STRATUS_USER_POOL_CLIENT_ID,
          rotation: true,
        },
      ),
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

/** What a Lambda cold start builds: the container, with the configured and cataloged nodes. */
export async function composeAwsContainer(config: AwsConfig, hooks: AwsContainerHooks = {}) {
  const c = await createAwsContainer(config, hooks);
  await applyNodeCatalog(c, (spec) => s3NodeFactory(spec, hooks));
  return c;
}

let cached: Promise<Container> | undefined;

/** The Lambda container, built on first use from the environment (cold start). */
export function awsContainer(): Promise<Container> {
  cached ??= (async () => {
    const config = loadConfig();
    if (config.STRATUS_PROFILE !== 'aws')
      throw new Error('Lambda handlers run the aws profile (STRATUS_PROFILE=aws)');
    return composeAwsContainer(config);
  })();
  return cached;
}

/** In AWS, nodes added at run time are S3 buckets (another region, or an S3-compatible endpoint). */
export async function s3NodeFactory(spec: NodeSpec, hooks: AwsContainerHooks = {}): Promise<StorageNode> {
  if (spec.kind !== 's3') throw errors.validation('in AWS, storage nodes are S3 buckets');
  return s3Node(spec, (c) => sdkClient(c, hooks));
}
