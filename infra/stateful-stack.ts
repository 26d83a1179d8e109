/**
 * Data that outlives deploys: blobs (S3), state (DynamoDB), metadata (Aurora DSQL, Aurora Serverless
 * v2 or a PostgreSQL you run), identities (Cognito), the shared cache (ElastiCache Serverless), and
 * the network the cache and Aurora need.
 */
import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { type MalwareProtection, malwareProtection } from './malware-protection.ts';
import { createMetadataStore, type MetadataStoreResources } from './metadata-store.ts';
import { type CacheStore, createCache, createNetwork, type Network } from './network.ts';
import type { DeployOptions } from './options.ts';
import {
  accessLogBucket,
  blobBucketName,
  blobBucketProps,
  dataKey,
  dataKeyAliasArn,
  replicationRole,
} from './replication.ts';

export interface StatefulStackProps extends StackProps {
  stage: string;
  /** Other regions with a blob bucket replicating to and from this one. */
  replicaRegions?: string[];
  /** Store, cache, global-table and key choices (infra/options.ts); defaults when absent. */
  options?: Partial<DeployOptions>;
}

export class StatefulStack extends Stack {
  readonly bucket: s3.Bucket;
  readonly accessLogs: s3.Bucket;
  readonly replicationRole?: iam.Role;
  readonly table: dynamodb.TableV2;
  readonly userPool: cognito.UserPool;
  readonly userPoolClient: cognito.UserPoolClient;
  /** How functions reach the metadata store (URL, grants, network). */
  readonly metadata: MetadataStoreResources;
  /** The shared cache, when there is one (URL and mode for the functions). */
  readonly cache?: CacheStore;
  /** The VPC the functions join when the cache or Aurora needs one. */
  readonly network?: Network;
  /** The customer-managed key for data at rest (`-c kms=true`). */
  readonly key?: kms.Key;
  /** GuardDuty Malware Protection on the blob bucket (`-c malwareScanner=guardduty`). */
  readonly malwareProtection?: MalwareProtection;

  constructor(scope: Construct, id: string, props: StatefulStackProps) {
    super(scope, id, props);
    const retain = props.stage === 'prod' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const o = props.options ?? {};
    const metadataStore = o.metadataStore ?? 'dsql';
    const cacheChoice = o.cache ?? 'valkey';
    // One customer-managed key per region for data at rest, named by a fixed alias so replication
    // rules in other regions can name it.
    if (o.kms) this.key = dataKey(this, props.stage);

    // Server access logs of the blob bucket (who fetched what, for audits), kept 90 days.
    this.accessLogs = accessLogBucket(this, props.stage);
    // With several regions the buckets get deterministic names so replication rules can name them.
    const peers = props.replicaRegions ?? [];
    this.bucket = new s3.Bucket(this, 'Blobs', {
      ...blobBucketProps(props.stage, this.accessLogs, this.key, o.purgeGraceDays),
      ...(peers.length ? { bucketName: blobBucketName(props.stage, this.region) } : {}),
    });
    if (peers.length)
      this.replicationRole = replicationRole(this, props.stage, this.bucket, peers, Boolean(this.key));
    if (o.malwareScanner === 'guardduty')
      this.malwareProtection = malwareProtection(this, this.bucket, this.key);

    this.table = new dynamodb.TableV2(this, 'State', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: 'ttl',
      dynamoStream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      billing: dynamodb.Billing.onDemand(),
      removalPolicy: retain,
      ...(this.key
        ? {
            encryption: dynamodb.TableEncryptionV2.customerManagedKey(
              this.key,
              // The replicas' keys: the data key's alias in each replica region.
              Object.fromEntries(peers.map((r) => [r, dataKeyAliasArn(props.stage, r)])),
            ),
          }
        : {}),
      // `-c globalTable=true`: a replica in every other region (multi-active; the stream Lambda runs
      // in the primary region and sees every region's writes).
      ...(o.globalTable ? { replicas: peers.map((region) => ({ region })) } : {}),
    });

    // The cache and Aurora live in private subnets; the functions join them there.
    if (cacheChoice === 'valkey' || metadataStore === 'aurora')
      this.network = createNetwork(this, props.stage);
    this.metadata = createMetadataStore(this, {
      stage: props.stage,
      store: metadataStore,
      ...(o.databaseUrl ? { databaseUrl: o.databaseUrl } : {}),
      ...(this.network ? { network: this.network } : {}),
      ...(this.key ? { key: this.key } : {}),
      ...(o.dsqlWitness ? { dsqlWitness: o.dsqlWitness } : {}),
      ...(o.dsqlPeers ? { dsqlPeers: o.dsqlPeers } : {}),
    });
    if (cacheChoice === 'valkey' && this.network)
      this.cache = createCache(this, props.stage, this.network, this.key);
    else if (cacheChoice === 'external' && o.redisUrl) this.cache = { url: o.redisUrl, mode: 'standalone' };

    this.userPool = new cognito.UserPool(this, 'Users', {
      // Accounts are created by the API (POST /v1/auth/register), behind its throttles.
      selfSignUpEnabled: false,
      signInAliases: { email: true },
      autoVerify: { email: true },
      passwordPolicy: { minLength: 8, requireSymbols: false, requireUppercase: false, requireDigits: false },
      accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
      removalPolicy: retain,
    });
    this.userPoolClient = this.userPool.addClient('Api', {
      authFlows: { userPassword: true },
      // Only the API signs users in: with a secret, a caller holding just the public client id
      // cannot call InitiateAuth or ForgotPassword and skip the API's throttles. The auth function
      // reads the secret with DescribeUserPoolClient (docs/deploy.md); it is in no template.
      generateSecret: true,
      // No hosted UI, no OAuth flows or callback URLs (CDK's defaults would add code and implicit).
      disableOAuth: true,
      accessTokenValidity: Duration.minutes(15),
      refreshTokenValidity: Duration.days(30),
      preventUserExistenceErrors: true,
      enableTokenRevocation: true,
      // Every refresh returns a new refresh token; the old one dies after the grace period.
      refreshTokenRotationGracePeriod: Duration.seconds(10),
    });
    for (const group of ['admin', 'user']) {
      new cognito.CfnUserPoolGroup(this, `Group-${group}`, {
        userPoolId: this.userPool.userPoolId,
        groupName: group,
      });
    }

    new CfnOutput(this, 'UserPoolId', { value: this.userPool.userPoolId });
    new CfnOutput(this, 'BlobBucket', { value: this.bucket.bucketName });
    new CfnOutput(this, 'StateTable', { value: this.table.tableName });
    new CfnOutput(this, 'MetadataEndpoint', { value: this.metadata.endpoint });
    if (this.metadata.dsql)
      new CfnOutput(this, 'MetadataClusterArn', { value: this.metadata.dsql.attrResourceArn });
  }
}
