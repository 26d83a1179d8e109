/**
 * Blob buckets in several regions with two-way S3 replication (`-c regions=us-east-1,eu-west-1`).
 * The first region holds the stateful stack; each other region gets a `Stratus-<stage>-Blobs-<region>`
 * stack with a bucket configured like the primary one. Every bucket replicates every write and
 * delete marker to every other bucket, with replica modification sync so metadata changes made on a
 * replica flow back; S3 Replication Time Control (15-minute SLA, metrics) with `-c replicationRtc=true`.
 *
 * Buckets have deterministic names (`stratus-<stage>-blobs-<account>-<region>`) so rules can name
 * their destinations without cross-region references. CloudFormation refuses a replication rule whose
 * destination does not exist yet, and two-way rules would make the stacks depend on each other, so:
 * replica stacks are deployed after the primary and carry their rules back to it; the primary's
 * rules to the replicas are applied last by a small link stack (an SDK call, PutBucketReplication).
 */
import { Aws, CfnOutput, Duration, Fn, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import type * as dsql from 'aws-cdk-lib/aws-dsql';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as cr from 'aws-cdk-lib/custom-resources';
import type { Construct } from 'constructs';
import { type MalwareProtection, malwareProtection } from './malware-protection.ts';
import { dsqlCluster } from './metadata-store.ts';

export const blobBucketName = (stage: string, region: string) =>
  Fn.join('-', ['stratus', stage, 'blobs', Aws.ACCOUNT_ID, region]);

const bucketArn = (stage: string, region: string) =>
  Fn.join('', [`arn:${Aws.PARTITION}:s3:::`, blobBucketName(stage, region)]);

/** The alias every region's data key carries, so rules in other regions can name it. */
export const dataKeyAlias = (stage: string) => `alias/stratus-${stage}-data`;

export const dataKeyAliasArn = (stage: string, region: string) =>
  Fn.join('', [`arn:${Aws.PARTITION}:kms:${region}:`, Aws.ACCOUNT_ID, `:${dataKeyAlias(stage)}`]);

/**
 * The customer-managed key for data at rest in one region (`-c kms=true`): blobs (with S3 Bucket
 * Keys, so KMS sees one request per bucket key rather than per object), the state table, the
 * metadata store and the cache. Rotated yearly; kept when the stack is deleted outside dev stages.
 */
export function dataKey(scope: Construct, stage: string): kms.Key {
  return new kms.Key(scope, 'DataKey', {
    alias: dataKeyAlias(stage),
    description: `Stratus ${stage}: data at rest`,
    enableKeyRotation: true,
    removalPolicy: stage === 'prod' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    pendingWindow: Duration.days(stage === 'prod' ? 30 : 7),
  });
}

/** The data key of a replica region, in a stack deployed before everything that uses it. */
export class RegionKeyStack extends Stack {
  readonly key: kms.Key;

  constructor(scope: Construct, id: string, props: StackProps & { stage: string }) {
    super(scope, id, props);
    this.key = dataKey(this, props.stage);
  }
}

/** The bucket settings every blob bucket shares (primary and replicas). */
export function blobBucketProps(
  stage: string,
  accessLogs: s3.IBucket,
  key?: kms.IKey,
  purgeGraceDays = 7,
): s3.BucketProps {
  return {
    versioned: true,
    ...(key
      ? { encryption: s3.BucketEncryption.KMS, encryptionKey: key, bucketKeyEnabled: true }
      : { encryption: s3.BucketEncryption.S3_MANAGED }),
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    minimumTLSVersion: 1.2,
    removalPolicy: stage === 'prod' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    autoDeleteObjects: false,
    serverAccessLogsBucket: accessLogs,
    serverAccessLogsPrefix: 'blobs/',
    cors: [
      {
        // Browsers PUT parts and GET downloads straight to S3 with presigned URLs.
        allowedMethods: [s3.HttpMethods.PUT, s3.HttpMethods.GET, s3.HttpMethods.HEAD],
        allowedOrigins: ['*'],
        allowedHeaders: ['content-type', 'content-length', 'x-amz-checksum-sha256'],
        exposedHeaders: ['ETag', 'x-amz-checksum-sha256'],
        maxAge: 600,
      },
    ],
    lifecycleRules: [
      { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
      // The application applies the users' retention (trash, old versions) and then deletes the
      // blob; on a versioned bucket that leaves a noncurrent version, kept this many days for an
      // operator to undo a purge, then removed, with the delete markers left behind.
      {
        id: 'expire-purged-blobs',
        noncurrentVersionExpiration: Duration.days(purgeGraceDays),
        expiredObjectDeleteMarker: true,
      },
    ],
  };
}

/** An access-log bucket for a region's blob bucket. */
export function accessLogBucket(scope: Construct, stage: string): s3.Bucket {
  return new s3.Bucket(scope, 'AccessLogs', {
    encryption: s3.BucketEncryption.S3_MANAGED,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    minimumTLSVersion: 1.2,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    lifecycleRules: [{ expiration: Duration.days(90) }],
    removalPolicy: stage === 'prod' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
  });
}

/** The role S3 assumes to copy objects from `source` to the peers. */
export function replicationRole(
  scope: Construct,
  stage: string,
  source: s3.IBucket,
  peers: string[],
  kmsEncrypted = false,
): iam.Role {
  const role = new iam.Role(scope, 'ReplicationRole', {
    assumedBy: new iam.ServicePrincipal('s3.amazonaws.com'),
    description: 'S3 replication of Stratus blob buckets',
  });
  role.addToPolicy(
    new iam.PolicyStatement({
      actions: ['s3:GetReplicationConfiguration', 's3:ListBucket'],
      resources: [source.bucketArn],
    }),
  );
  role.addToPolicy(
    new iam.PolicyStatement({
      actions: ['s3:GetObjectVersionForReplication', 's3:GetObjectVersionAcl', 's3:GetObjectVersionTagging'],
      resources: [source.arnForObjects('*')],
    }),
  );
  role.addToPolicy(
    new iam.PolicyStatement({
      actions: ['s3:ReplicateObject', 's3:ReplicateDelete', 's3:ReplicateTags'],
      resources: peers.map((r) => Fn.join('', [bucketArn(stage, r), '/*'])),
    }),
  );
  if (kmsEncrypted) {
    // Decrypt with this region's data key, encrypt with each peer's (named by alias: key ids
    // differ per region and are unknown here).
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
        conditions: {
          'ForAnyValue:StringEquals': { 'kms:ResourceAliases': dataKeyAlias(stage) },
          StringLike: { 'kms:ViaService': 's3.*.amazonaws.com' },
        },
      }),
    );
  }
  return role;
}

/** Replication rules (CloudFormation shape) from one bucket to each peer region. */
export function replicationRules(stage: string, peers: string[], rtc: boolean, kmsEncrypted = false) {
  return peers.map((region, i) => ({
    id: `to-${region}`,
    priority: i + 1,
    status: 'Enabled',
    filter: { prefix: '' },
    deleteMarkerReplication: { status: 'Enabled' },
    sourceSelectionCriteria: {
      replicaModifications: { status: 'Enabled' },
      ...(kmsEncrypted ? { sseKmsEncryptedObjects: { status: 'Enabled' } } : {}),
    },
    destination: {
      bucket: bucketArn(stage, region),
      ...(kmsEncrypted
        ? { encryptionConfiguration: { replicaKmsKeyId: dataKeyAliasArn(stage, region) } }
        : {}),
      ...(rtc
        ? {
            replicationTime: { status: 'Enabled', time: { minutes: 15 } },
            metrics: { status: 'Enabled', eventThreshold: { minutes: 15 } },
          }
        : {}),
    },
  }));
}

export interface ReplicaStackProps extends StackProps {
  stage: string;
  primaryRegion: string;
  peers: string[];
  rtc: boolean;
  /** This region's data key (`-c kms=true`). */
  key?: kms.IKey;
  purgeGraceDays?: number;
  /** Multi-Region DSQL: this region's peer cluster (witness region and, once known, both ARNs). */
  dsql?: { witness: string; peers?: string[] };
  /**
   * GuardDuty Malware Protection on this bucket too (`-c malwareScanner=guardduty`): GuardDuty scans
   * the objects replicated into a protected bucket, and S3 replicates tags only with the object, so
   * a stateless stack deployed here after a failover finds this bucket's own verdicts.
   */
  malwareProtection?: boolean;
}

/** A blob bucket in another region, replicating to every other region's bucket. */
export class ReplicaBlobStack extends Stack {
  readonly bucket: s3.Bucket;
  readonly accessLogs: s3.Bucket;
  readonly role: iam.Role;
  readonly metadataCluster?: dsql.CfnCluster;
  readonly malwareProtection?: MalwareProtection;

  constructor(scope: Construct, id: string, props: ReplicaStackProps) {
    super(scope, id, props);
    this.accessLogs = accessLogBucket(this, props.stage);
    this.bucket = new s3.Bucket(this, 'Blobs', {
      ...blobBucketProps(props.stage, this.accessLogs, props.key, props.purgeGraceDays),
      bucketName: blobBucketName(props.stage, this.region),
    });
    this.role = replicationRole(this, props.stage, this.bucket, props.peers, Boolean(props.key));
    (this.bucket.node.defaultChild as s3.CfnBucket).replicationConfiguration = {
      role: this.role.roleArn,
      rules: replicationRules(props.stage, props.peers, props.rtc, Boolean(props.key)),
    };
    if (props.malwareProtection) this.malwareProtection = malwareProtection(this, this.bucket, props.key);
    if (props.dsql) {
      this.metadataCluster = dsqlCluster(this, {
        stage: props.stage,
        ...(props.key ? { key: props.key } : {}),
        dsqlWitness: props.dsql.witness,
        ...(props.dsql.peers ? { dsqlPeers: props.dsql.peers } : {}),
      });
      new CfnOutput(this, 'MetadataClusterArn', { value: this.metadataCluster.attrResourceArn });
      new CfnOutput(this, 'MetadataEndpoint', { value: this.metadataCluster.attrEndpoint });
    }
  }
}

export interface ReplicationLinkProps extends StackProps {
  stage: string;
  bucketName: string;
  roleArn: string;
  peers: string[];
  rtc: boolean;
  kms?: boolean;
}

/** Applies the primary bucket's rules once the replica buckets exist (deployed last). */
export class ReplicationLinkStack extends Stack {
  readonly link: cr.AwsCustomResource;

  constructor(scope: Construct, id: string, props: ReplicationLinkProps) {
    super(scope, id, props);
    const toSdk = (rules: ReturnType<typeof replicationRules>) =>
      rules.map((r) => ({
        ID: r.id,
        Priority: r.priority,
        Status: r.status,
        Filter: { Prefix: '' },
        DeleteMarkerReplication: { Status: 'Enabled' },
        SourceSelectionCriteria: {
          ReplicaModifications: { Status: 'Enabled' },
          ...(r.sourceSelectionCriteria.sseKmsEncryptedObjects
            ? { SseKmsEncryptedObjects: { Status: 'Enabled' } }
            : {}),
        },
        Destination: {
          Bucket: r.destination.bucket,
          ...(r.destination.encryptionConfiguration
            ? {
                EncryptionConfiguration: {
                  ReplicaKmsKeyID: r.destination.encryptionConfiguration.replicaKmsKeyId,
                },
              }
            : {}),
          ...(r.destination.replicationTime
            ? {
                ReplicationTime: { Status: 'Enabled', Time: { Minutes: 15 } },
                Metrics: { Status: 'Enabled', EventThreshold: { Minutes: 15 } },
              }
            : {}),
        },
      }));
    const put = {
      service: 'S3',
      action: 'putBucketReplication',
      parameters: {
        Bucket: props.bucketName,
        ReplicationConfiguration: {
          Role: props.roleArn,
          Rules: toSdk(replicationRules(props.stage, props.peers, props.rtc, props.kms)),
        },
      },
      physicalResourceId: cr.PhysicalResourceId.of(`${props.bucketName}-replication`),
    };
    this.link = new cr.AwsCustomResource(this, 'PrimaryReplication', {
      onCreate: put,
      onUpdate: put,
      onDelete: {
        service: 'S3',
        action: 'deleteBucketReplication',
        parameters: { Bucket: props.bucketName },
      },
      policy: cr.AwsCustomResourcePolicy.fromStatements([
        new iam.PolicyStatement({
          actions: ['s3:PutReplicationConfiguration', 's3:DeleteReplicationConfiguration'],
          resources: [Fn.join('', [`arn:${Aws.PARTITION}:s3:::`, props.bucketName])],
        }),
        new iam.PolicyStatement({ actions: ['iam:PassRole'], resources: [props.roleArn] }),
      ]),
      installLatestAwsSdk: false,
    });
  }
}
