/**
 * The private network the shared cache and Aurora need, and the cache itself.
 *
 * Two availability zones, private subnets with egress through one NAT gateway (one per zone in
 * prod) for the AWS APIs that have no gateway endpoint (Cognito, DSQL, X-Ray, Secrets Manager),
 * and free gateway endpoints for S3 and DynamoDB so blob and state traffic never pays NAT
 * processing. Flow logs go to CloudWatch Logs. The functions share one security group; the cache
 * and the database admit that group only.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elasticache from 'aws-cdk-lib/aws-elasticache';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

export interface Network {
  vpc: ec2.Vpc;
  /** Attached to every function in the VPC; the cache and database admit it. */
  functions: ec2.SecurityGroup;
}

export interface CacheStore {
  /** What the functions get as STRATUS_REDIS_URL. */
  url: string;
  /** ElastiCache Serverless is cluster-mode only: the client must follow slot redirects. */
  mode: 'cluster' | 'standalone';
  resource?: elasticache.CfnServerlessCache;
  securityGroup?: ec2.SecurityGroup;
}

export function createNetwork(scope: Construct, stage: string): Network {
  const vpc = new ec2.Vpc(scope, 'Network', {
    maxAzs: 2,
    natGateways: stage === 'prod' ? 2 : 1,
    subnetConfiguration: [
      { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
      { name: 'private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
    ],
    gatewayEndpoints: {
      S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
      DynamoDB: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
    },
  });
  vpc.addFlowLog('FlowLogs', {
    destination: ec2.FlowLogDestination.toCloudWatchLogs(
      new logs.LogGroup(scope, 'FlowLogGroup', {
        retention: logs.RetentionDays.ONE_MONTH,
        removalPolicy: RemovalPolicy.DESTROY,
      }),
    ),
    trafficType: ec2.FlowLogTrafficType.REJECT,
  });
  const functions = new ec2.SecurityGroup(scope, 'FunctionsSg', {
    vpc,
    description: 'Stratus Lambda functions',
    allowAllOutbound: true,
  });
  return { vpc, functions };
}

/** ElastiCache Serverless (Valkey 8): TLS only, reachable from the functions' security group only. */
export function createCache(scope: Construct, stage: string, network: Network, key?: kms.IKey): CacheStore {
  const sg = new ec2.SecurityGroup(scope, 'CacheSg', {
    vpc: network.vpc,
    description: 'Stratus cache: Valkey from the functions only',
    allowAllOutbound: false,
  });
  sg.addIngressRule(network.functions, ec2.Port.tcp(6379), 'functions to Valkey');
  const cache = new elasticache.CfnServerlessCache(scope, 'Cache', {
    engine: 'valkey',
    majorEngineVersion: '8',
    serverlessCacheName: `stratus-${stage}`,
    description: 'Stratus rate limits, login throttles and metadata cache',
    securityGroupIds: [sg.securityGroupId],
    subnetIds: network.vpc.selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }).subnetIds,
    // Rate-limit buckets and cached pages are small: cap what a runaway could cost.
    cacheUsageLimits: { dataStorage: { maximum: 5, unit: 'GB' }, ecpuPerSecond: { maximum: 100_000 } },
    ...(key ? { kmsKeyId: key.keyId } : {}),
  });
  return {
    url: `rediss://${cache.attrEndpointAddress}:${cache.attrEndpointPort}`,
    mode: 'cluster',
    resource: cache,
    securityGroup: sg,
  };
}
