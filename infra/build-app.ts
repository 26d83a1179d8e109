/**
 * Builds the CDK app: a stateful stack (data that must outlive deploys) and a stateless one (API and
 * compute) that can be destroyed and redeployed freely, checked by cdk-nag (AWS Solutions and
 * Serverless packs). Every acknowledged finding carries its reason (infra/nag.ts).
 * Context flags are read and validated in infra/options.ts (docs/deploy.md lists them).
 */
import { App, type AppProps, Tags, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { acknowledgeFindings } from './nag.ts';
import { readOptions } from './options.ts';
import { RegionKeyStack, ReplicaBlobStack, ReplicationLinkStack } from './replication.ts';
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
  const options = readOptions(app);
  const { stage, regions, primary } = options;
  const account = process.env.CDK_DEFAULT_ACCOUNT;
  const primaryEnv = { account, region: primary };
  const others = regions.slice(1);
  // `-c kms=true` with several regions: each other region's data key comes first, in its own stack
  // (global-table replicas and replica buckets encrypt with it).
  const keyStacks = options.kms
    ? others.map(
        (r) => new RegionKeyStack(app, `Stratus-${stage}-Keys-${r}`, { env: { account, region: r }, stage }),
      )
    : [];
  const stateful = new StatefulStack(app, `Stratus-${stage}-Stateful`, {
    env: primaryEnv,
    stage,
    replicaRegions: others,
    options,
  });
  for (const k of keyStacks) stateful.addStackDependency(k);
  const stateless = new StatelessStack(app, `Stratus-${stage}-Stateless`, {
    env: primaryEnv,
    stage,
    stateful,
    inlineVerifyMiB: options.inlineVerifyMiB,
    malwareScanner: options.malwareScanner,
    reconcilePartitions: options.reconcilePartitions,
  });
  const replicas = others.map((r, i) => {
    const replica = new ReplicaBlobStack(app, `Stratus-${stage}-Blobs-${r}`, {
      env: { account, region: r },
      stage,
      primaryRegion: primary,
      peers: regions.filter((x) => x !== r),
      rtc: options.replicationRtc,
      purgeGraceDays: options.purgeGraceDays,
      malwareProtection: options.malwareScanner === 'guardduty',
      ...(keyStacks[i] ? { key: keyStacks[i].key } : {}),
      ...(options.dsqlWitness
        ? {
            dsql: {
              witness: options.dsqlWitness,
              ...(options.dsqlPeers ? { peers: options.dsqlPeers } : {}),
            },
          }
        : {}),
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
      peers: others,
      rtc: options.replicationRtc,
      kms: options.kms,
    });
    for (const r of replicas) link.addStackDependency(r);
  }
  Tags.of(app).add('project', 'stratus');
  Tags.of(app).add('stage', stage);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
  acknowledgeFindings(stateful, stateless, replicas, link, stage);
  return { app, options, stateful, stateless, replicas, link, keyStacks };
}
