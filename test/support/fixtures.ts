/** Isolated backends per test: a schema per PostgreSQL test, a table/bucket per emulator test. */
import { randomBytes } from 'node:crypto';
import {
  type CognitoIdentityProviderClient,
  CreateUserPoolCommand,
} from '@aws-sdk/client-cognito-identity-provider';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import {
  type _Record,
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from '@aws-sdk/client-dynamodb-streams';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { inject } from 'vitest';
import { migrate } from '../../shared/adapters/postgres/migrations.ts';
import { openPgDatabase } from '../../shared/adapters/postgres/pg-database.ts';
import { openPgliteDatabase } from '../../shared/adapters/postgres/pglite-database.ts';
import type { BlobStore } from '../../shared/ports/blob-store.ts';
import type { Database } from '../../shared/ports/database.ts';
import { NodeRegistry } from '../../shared/services/node-registry.ts';

export const uid = (prefix = 't') => `${prefix}${randomBytes(6).toString('hex')}`;

const creds = { accessKeyId: 'testing', secretAccessKey: 'testing' };
export const REGION = 'us-east-1';

export function s3Client(): S3Client {
  return new S3Client({
    region: REGION,
    endpoint: inject('awsEndpoint'),
    forcePathStyle: true,
    credentials: creds,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export function dynamoClient(): DynamoDBClient {
  return new DynamoDBClient({ region: REGION, endpoint: inject('awsEndpoint'), credentials: creds });
}

export async function createBucket(s3: S3Client): Promise<string> {
  const bucket = uid('bucket-');
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

/** The state table as the CDK stack defines it: pk/sk strings, TTL on `ttl`. */
export async function createStateTable(ddb: DynamoDBClient): Promise<string> {
  const name = uid('state-');
  await ddb.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' },
    }),
  );
  await ddb.send(
    new UpdateTimeToLiveCommand({
      TableName: name,
      TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
    }),
  );
  return name;
}

export interface SqlBackend {
  name: 'pglite' | 'postgres';
  open(): Promise<{ db: Database; dispose(): Promise<void> }>;
}

let sharedPglite: Promise<Database> | undefined;

/**
 * PGlite takes ~3 s to start (WASM) and ~30 ms to create a schema, so one instance serves a test
 * worker and each test gets its own schema, as on PostgreSQL. PGlite is a single connection, so
 * search_path applies to everything the test does.
 */
export const sqlBackends: SqlBackend[] = [
  {
    name: 'pglite',
    async open() {
      sharedPglite ??= openPgliteDatabase();
      const base = await sharedPglite;
      const schema = uid('t_');
      await base.exec(`create schema ${schema}; set search_path to ${schema}`);
      const db: Database = { ...base, close: async () => undefined };
      await migrate(db);
      return {
        db,
        async dispose() {
          await base.exec(`set search_path to public; drop schema ${schema} cascade`);
        },
      };
    },
  },
  {
    name: 'postgres',
    async open() {
      const schema = uid('t_');
      const db = await openPgDatabase({ connectionString: inject('pgUrl'), schema, max: 4 });
      await migrate(db);
      return {
        db,
        async dispose() {
          await db.query(`drop schema ${schema} cascade`);
          await db.close();
        },
      };
    },
  },
];

/** Every record the table's stream holds, read as a Lambda event source would. */
export async function streamRecords(table: string): Promise<_Record[]> {
  const ddb = dynamoClient();
  const streams = new DynamoDBStreamsClient({
    region: REGION,
    endpoint: inject('awsEndpoint'),
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  const arn = (await ddb.send(new DescribeTableCommand({ TableName: table }))).Table?.LatestStreamArn;
  const shards =
    (await streams.send(new DescribeStreamCommand({ StreamArn: arn }))).StreamDescription?.Shards ?? [];
  const out: _Record[] = [];
  for (const shard of shards) {
    let iterator = (
      await streams.send(
        new GetShardIteratorCommand({
          StreamArn: arn,
          ShardId: shard.ShardId,
          ShardIteratorType: 'TRIM_HORIZON',
        }),
      )
    ).ShardIterator;
    for (let i = 0; iterator && i < 10; i++) {
      const res = await streams.send(new GetRecordsCommand({ ShardIterator: iterator }));
      out.push(...(res.Records ?? []));
      if (!res.Records?.length) break;
      iterator = res.NextShardIterator;
    }
  }
  return out;
}

/** A user pool as the CDK stack makes it (email user names, length-only password policy); its id. */
export async function createUserPool(
  client: CognitoIdentityProviderClient,
  prefix = 'stratus-',
): Promise<string> {
  const pool = await client.send(
    new CreateUserPoolCommand({
      PoolName: uid(prefix),
      UsernameAttributes: ['email'],
      Policies: {
        PasswordPolicy: {
          MinimumLength: 8,
          RequireSymbols: false,
          RequireUppercase: false,
          RequireLowercase: false,
          RequireNumbers: false,
        },
      },
    }),
  );
  return pool.UserPool?.Id as string;
}

/** A registry of healthy, active local-kind nodes over the given stores (unit and integration tests). */
export function healthyRegistry(stores: readonly BlobStore[], replicationFactor: number): NodeRegistry {
  return new NodeRegistry(
    stores.map((store) => ({
      id: store.nodeId,
      kind: 'localfs' as const,
      region: 'local',
      weight: 1,
      store,
      health: 'healthy' as const,
      draining: false,
    })),
    replicationFactor,
  );
}
