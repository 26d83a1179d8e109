/**
 * Builds the CDK app: a stateful stack (data that must outlive deploys) and a stateless one (API and
 * compute) that can be destroyed and redeployed freely, checked by cdk-nag (AWS Solutions and
 * Serverless packs). Every acknowledged finding carries its reason (infra/nag.ts).
 * Context flags: `stage` (default dev), `region`, `regions` (comma-separated; the first is the
 * primary), `replicationRtc` (true|false).
 */
import { App, type AppProps, Tags, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { acknowledgeFindings } from './nag.ts';
import { ReplicaBlobStack, ReplicationLinkStack } from './replication.ts';
import { StatefulStack } from './stateful-stack.ts';
import { StatelessStack } from './stateless-stack.ts';

/** Feature flags the stacks rely on (here, not only in cdk.json, so tests synthesize the same app). */
const FEATURE_FLAGS = {
  '@aws-cdk/aws-lambda-nodejs:useLatestRuntimeVersion': false,
  '@aws-cdk/core:defaultCrossStackReferences': 'strong',
  // Server access logs are delivered under a bucket policy, not the legacy log-delivery ACL.
  '@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy': true,
};

export function buildApp(props: AppProps = {}) {
  const app = new App({ ...props, context: { ...FEATURE_FLAGS, ...props.context } });
  const stage = (app.node.tryGetContext('stage') as string | undefined) ?? 'dev';
  const region =
    (app.node.tryGetContext('region') as string | undefined) ?? process.env.CDK_DEFAULT_REGION ?? 'us-east-1';
  const env = { account: process.env.CDK_DEFAULT_ACCOUNT, region };
  // `-c regions=us-east-1,eu-west-1`: the first region holds everything, the others a replica
  // blob bucket each, replicating both ways (`-c replicationRtc=true` adds Replication Time Control).
  const regions = String(app.node.tryGetContext('regions') ?? region)
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean);
  const primary = regions[0] ?? region;
  const rtc = String(app.node.tryGetContext('replicationRtc') ?? 'false') === 'true';
  const primaryEnv = { account: env.account, region: primary };
  const stateful = new StatefulStack(app, `Stratus-${stage}-Stateful`, {
    env: primaryEnv,
    stage,
    replicaRegions: regions.slice(1),
  });
  const stateless = new StatelessStack(app, `Stratus-${stage}-Stateless`, {
    env: primaryEnv,
    stage,
    stateful,
  });
  const replicas = regions.slice(1).map((r) => {
    const replica = new ReplicaBlobStack(app, `Stratus-${stage}-Blobs-${r}`, {
      env: { account: env.account, region: r },
      stage,
      primaryRegion: primary,
      peers: regions.filter((x) => x !== r),
      rtc,
    });
    replica.addStackDependency(stateful);
    return replica;
  });
  let link: ReplicationLinkStack | undefined;
  if (replicas.length && stateful.replicationRole) {
    link = new ReplicationLinkStack(app, `Stratus-${stage}-Replication`, {
      env: primaryEnv,
      stage,
      bucketName: stateful.bucket.bucketName,
      roleArn: stateful.replicationRole.roleArn,
      peers: regions.slice(1),
      rtc,
    });
    for (const r of replicas) link.addStackDependency(r);
  }
  Tags.of(app).add('project', 'stratus');
  Tags.of(app).add('stage', stage);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
  acknowledgeFindings(stateful, stateless, replicas, link, stage);
  return { app, stateful, stateless, replicas, link };
}
