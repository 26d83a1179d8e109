/**
 * Builds the CDK app: a stateful stack (data that must outlive deploys) and a stateless one (API and
 * compute) that can be destroyed and redeployed freely, checked by cdk-nag (AWS Solutions and
 * Serverless packs). Every acknowledged finding carries its reason (infra/nag.ts).
 * Context flags: `stage` (default dev), `region`.
 */
import { App, type AppProps, Tags, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { acknowledgeFindings } from './nag.ts';
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
  const stateful = new StatefulStack(app, `Stratus-${stage}-Stateful`, { env, stage });
  const stateless = new StatelessStack(app, `Stratus-${stage}-Stateless`, { env, stage, stateful });
  Tags.of(app).add('project', 'stratus');
  Tags.of(app).add('stage', stage);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
  acknowledgeFindings(stateful, stateless);
  return { app, stateful, stateless };
}
