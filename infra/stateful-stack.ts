/** Data that outlives deploys: blobs (S3), state (DynamoDB), metadata (Aurora DSQL), identities (Cognito). */
import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as dsql from 'aws-cdk-lib/aws-dsql';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { accessLogBucket, blobBucketName, blobBucketProps, replicationRole } from './replication.ts';

export interface StatefulStackProps extends StackProps {
  stage: string;
  /** Other regions with a blob bucket replicating to and from this one. */
  replicaRegions?: string[];
}

export class StatefulStack extends Stack {
  readonly bucket: s3.Bucket;
  readonly accessLogs: s3.Bucket;
  readonly replicationRole?: iam.Role;
  readonly table: dynamodb.TableV2;
  readonly userPool: cognito.UserPool;
  readonly userPoolClient: cognito.UserPoolClient;
  readonly metadataCluster: dsql.CfnCluster;

  constructor(scope: Construct, id: string, props: StatefulStackProps) {
    super(scope, id, props);
    const retain = props.stage === 'prod' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    // Server access logs of the blob bucket (who fetched what, for audits), kept 90 days.
    this.accessLogs = accessLogBucket(this, props.stage);
    // With several regions the buckets get deterministic names so replication rules can name them.
    const peers = props.replicaRegions ?? [];
    this.bucket = new s3.Bucket(this, 'Blobs', {
      ...blobBucketProps(props.stage, this.accessLogs),
      ...(peers.length ? { bucketName: blobBucketName(props.stage, this.region) } : {}),
    });
    if (peers.length) this.replicationRole = replicationRole(this, props.stage, this.bucket, peers);

    this.table = new dynamodb.TableV2(this, 'State', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: 'ttl',
      dynamoStream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      billing: dynamodb.Billing.onDemand(),
      removalPolicy: retain,
    });

    this.metadataCluster = new dsql.CfnCluster(this, 'Metadata', {
      deletionProtectionEnabled: props.stage === 'prod',
    });

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
    new CfnOutput(this, 'MetadataEndpoint', { value: this.metadataCluster.attrEndpoint });
  }
}
