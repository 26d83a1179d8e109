/**
 * The CDK app: a stateful stack (data that must outlive deploys) and a stateless one (API and
 * compute) that can be destroyed and redeployed freely. Context flags: `region`, `stage`.
 */
import { App, Tags } from 'aws-cdk-lib';
import { StatefulStack } from './stateful-stack.ts';
import { StatelessStack } from './stateless-stack.ts';

const app = new App();
const stage = (app.node.tryGetContext('stage') as string | undefined) ?? 'dev';
const region =
  (app.node.tryGetContext('region') as string | undefined) ?? process.env.CDK_DEFAULT_REGION ?? 'us-east-1';
const env = { account: process.env.CDK_DEFAULT_ACCOUNT, region };

const stateful = new StatefulStack(app, `Stratus-${stage}-Stateful`, { env, stage });
new StatelessStack(app, `Stratus-${stage}-Stateless`, { env, stage, stateful });
Tags.of(app).add('project', 'stratus');
Tags.of(app).add('stage', stage);
app.synth();
