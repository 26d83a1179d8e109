/**
 * cdk-nag acknowledgements (AWS Solutions and Serverless packs). Each names the rule (and, for
 * IAM5, the exact finding), the constructs it applies to, and why the finding is accepted; nothing
 * is acknowledged app-wide. Findings that had a fix were fixed instead: S3 server access logs, DLQs
 * on the stream mapping and on the EventBridge targets, TLS-only queues and buckets.
 */
import { type CfnElement, Stack, Token, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { allRoutes } from '../functions/api/routes.ts';
import type { ReplicaBlobStack, ReplicationLinkStack } from './replication.ts';
import type { StatefulStack } from './stateful-stack.ts';
import type { StatelessStack } from './stateless-stack.ts';

const ack = (scope: IConstruct, id: string, reason: string) =>
  Validations.of(scope).acknowledge({ id, reason });

/**
 * Functions aws-cdk-lib writes and deploys for its own deploy-time machinery (the custom-resource
 * Provider framework, the AwsCustomResource singleton): their runtime, memory and tracing are the
 * library's, and CloudFormation calls them synchronously, so a failure fails the deploy.
 */
function ackCdkFrameworkFunctions(scope: IConstruct, what: string) {
  ack(scope, 'AwsSolutions-L1', `${what}: its runtime is chosen by aws-cdk-lib.`);
  ack(scope, 'Serverless-LambdaLatestVersion', `${what}: runtime set by aws-cdk-lib.`);
  ack(
    scope,
    'Serverless-LambdaDLQ',
    `${what}: invoked synchronously by CloudFormation; a failure fails the deploy.`,
  );
  ack(scope, 'Serverless-LambdaTracing', `${what}: a deploy-time call, not traced.`);
  ack(scope, 'Serverless-LambdaDefaultMemorySize', `${what}: a deploy-time call.`);
}

export function acknowledgeFindings(
  stateful: StatefulStack,
  stateless: StatelessStack,
  replicas: ReplicaBlobStack[] = [],
  link?: ReplicationLinkStack,
  stage = 'dev',
): void {
  // ---- Cognito
  ack(
    stateful.userPool,
    'AwsSolutions-COG1',
    'Length over composition (NIST SP 800-63B 5.1.1.2): at least 8 characters, no forced character classes; ' +
      'the API throttles guessing per account and per address.',
  );
  ack(
    stateful.userPool,
    'AwsSolutions-COG2',
    'MFA challenges are not part of the API login flow yet; sign-in is password plus refresh-token rotation and ' +
      'revocation. Enable MFA (optional TOTP) together with a challenge step in the auth routes.',
  );
  ack(
    stateful.userPool,
    'AwsSolutions-COG8',
    'The Essentials tier is the default to keep a small deployment cheap; the Plus tier (threat protection) is a ' +
      'one-line change for deployments that want it (docs/deploy.md).',
  );

  // ---- S3
  ack(
    stateful.accessLogs,
    'AwsSolutions-S1',
    'This is the access-log bucket itself; logging it into itself would loop.',
  );

  // ---- API routes without the JWT authorizer: exactly those the route table marks public.
  for (const r of allRoutes.filter((x) => !x.auth)) {
    const id = `${r.method}${r.path.replace(/\//g, '--')}`;
    const route = stateless.api.node.tryFindChild(id);
    if (!route) throw new Error(`no API route construct ${id} for the public route ${r.id}`);
    ack(
      route,
      'AwsSolutions-APIG4',
      `Public by design (${r.id}): ${
        r.group === 'auth'
          ? 'it issues or rotates the tokens the authorizer checks'
          : r.group === 'shares'
            ? 'a share link is a capability URL: its unguessable token (and optional password) is the authorization'
            : r.path.startsWith('/health')
              ? 'health checks are read by load balancers and monitors without credentials'
              : 'the dashboard page, its assets and the API description are public documents'
      }; rate-limited per address by the application.`,
    );
  }

  // ---- The CDK custom-resource Provider framework (runs the schema migrations at deploy time).
  const provider = stateless.migrations.provider;
  ack(
    provider,
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    'CDK Provider framework function: the managed policy only writes its own logs.',
  );
  ack(
    provider,
    `AwsSolutions-IAM5[Resource::<${Stack.of(stateless).getLogicalId(stateless.migrations.fn.node.defaultChild as CfnElement)}.Arn>:*]`,
    'CDK Provider framework: invokes the migration function (any version or alias of that one function).',
  );
  ackCdkFrameworkFunctions(provider, 'CDK Provider framework function');

  // ---- Step Functions: the reconcile sweep's Distributed Map
  const sweep = stateless.reconcileSweep;
  const sweepRef = stateless.resolve(sweep.stateMachineArn) as { Ref: string };
  const sweepName = `{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"${sweepRef.Ref}"}]}]}`;
  // A stack with an explicit env (the emulator's 000000000000) renders region and account literally.
  const region = stateless.region;
  const account = Token.isUnresolved(stateless.account) ? '<AWS::AccountId>' : stateless.account;
  ack(
    sweep,
    'AwsSolutions-IAM5[Resource::*]',
    'X-Ray tracing and CloudWatch Logs delivery of the state machine (xray:PutTraceSegments, ' +
      'logs:CreateLogDelivery and friends) support no resource-level permissions.',
  );
  ack(
    sweep,
    `AwsSolutions-IAM5[Resource::<${stateless.getLogicalId(stateless.workers.maintenance.node.defaultChild as CfnElement)}.Arn>:*]`,
    'LambdaInvoke grants the one maintenance function with any version or alias qualifier.',
  );
  for (const suffix of [':*', '/*:*'])
    ack(
      sweep,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:${region}:${account}:execution:${sweepName}${suffix}]`,
      'The Distributed Map starts, describes and stops child executions of its own state machine only ' +
        '(their names are generated per run).',
    );

  // ---- Lambda
  const all = [
    ...Object.values(stateless.functions),
    stateless.workers.stateStream,
    stateless.workers.verifier,
    stateless.workers.maintenance,
    stateless.migrations.fn,
  ];
  for (const fn of all) {
    ack(
      fn,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      'The managed basic execution policy only allows writing the function’s own CloudWatch logs.',
    );
    ack(
      fn,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
      'The managed VPC access policy only lets Lambda attach the function’s network interfaces in the VPC ' +
        '(ec2:CreateNetworkInterface and friends, which support no resource-level scoping).',
    );
    ack(
      fn,
      'AwsSolutions-IAM5[Resource::*]',
      'X-Ray (xray:PutTraceSegments, xray:PutTelemetryRecords) supports no resource-level permissions.',
    );
    ack(
      fn,
      'Serverless-LambdaDLQ',
      stateless.workers.stateStream === fn || stateless.workers.verifier === fn
        ? 'Stream failures go to the event source mapping’s on-failure SQS destination (a DLQ on the function ' +
            'applies to asynchronous invokes only).'
        : stateless.workers.maintenance === fn
          ? 'Invoked asynchronously by EventBridge: a failed run goes to the function’s on-failure destination ' +
            '(SQS, with its event and error), which is a superset of a function DLQ; the EventBridge target ' +
            'DLQ only catches deliveries, not runs that threw.'
          : stateless.migrations.fn === fn
            ? 'Invoked synchronously by the CloudFormation custom-resource provider: a failure fails the deploy.'
            : 'Invoked synchronously by API Gateway: the client receives the error; a function DLQ applies to ' +
              'asynchronous invokes only.',
    );
  }
  // Object-level grants: blobs are keyed by version id, so the functions that read, write or delete
  // blobs need every key of this one bucket (the resource is the bucket's ARN/*, not all of S3).
  const blobFns = [
    stateless.functions.files,
    stateless.functions.uploads,
    stateless.functions.shares,
    stateless.functions.admin,
    stateless.workers.stateStream,
    stateless.workers.verifier,
    stateless.workers.maintenance,
  ];
  // The functions see the bucket's ARN through the cross-stack export CDK generates; exportValue
  // returns that same export (by name), so the finding is named without hard-coding its hash.
  const exported = stateful.resolve(stateful.exportValue(stateful.bucket.bucketArn)) as Record<
    string,
    string
  >;
  const bucketRef = `Resource::${exported['Fn::ImportValue']}/*`;
  for (const fn of blobFns) {
    for (const finding of [
      bucketRef,
      'Action::s3:List*',
      'Action::s3:GetObject*',
      'Action::s3:GetBucket*',
      'Action::s3:DeleteObject*',
      'Action::s3:Abort*',
    ]) {
      ack(
        fn,
        `AwsSolutions-IAM5[${finding}]`,
        'Blobs are keyed by version id: the function works on any object of the one blob bucket (CDK grant ' +
          'helpers scope the actions to read, write or delete as the function needs).',
      );
    }
  }

  // ---- Aurora Serverless v2 (-c metadataStore=aurora)
  const aurora = stateful.metadata.aurora;
  if (aurora) {
    if (stage !== 'prod')
      ack(
        aurora,
        'AwsSolutions-RDS10',
        'Deletion protection is on in prod only; dev stages are torn down freely.',
      );
    ack(
      aurora,
      'AwsSolutions-RDS11',
      'The default port: the security group admits only the functions, a different port hides nothing.',
    );
  }

  // ---- AWS Backup of Aurora DSQL (prod)
  for (const holder of [stateful, ...replicas]) {
    const plan = holder.node.tryFindChild('MetadataBackupPlan');
    if (plan)
      ack(
        plan,
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup]',
        'The role AWS Backup assumes to back up the selected cluster: AWS maintains that policy as each ' +
          "service's backup permissions change, and the selection limits it to the one DSQL cluster.",
      );
  }

  // ---- Customer-managed data keys (-c kms=true): CDK grant helpers on the one key.
  if (stateful.key) {
    for (const fn of all) {
      for (const action of ['kms:GenerateDataKey*', 'kms:ReEncrypt*'])
        ack(
          fn,
          `AwsSolutions-IAM5[Action::${action}]`,
          'CDK grant helpers for the one data key of this stage (bucket and table encryption).',
        );
    }
  }

  // ---- SQS: these queues are the dead-letter and failure queues.
  for (const q of Object.values(stateless.queues)) {
    ack(q, 'AwsSolutions-SQS3', 'This queue is itself a dead-letter (failure) queue.');
    ack(q, 'Serverless-SQSRedrivePolicy', 'This queue is itself a dead-letter (failure) queue.');
  }
  for (const fn of [stateless.workers.stateStream, stateless.workers.verifier])
    ack(
      fn,
      `AwsSolutions-IAM5[Resource::<${Stack.of(stateless).getLogicalId(stateless.streamFailures.node.defaultChild as CfnElement)}.Arn>/*]`,
      'The stream mapping writes each failed batch to a key Lambda chooses, with the function’s role, in this ' +
        'one failure bucket.',
    );
  ack(
    stateless.streamFailures,
    'AwsSolutions-S1',
    'Only Lambda writes here (failed stream batches) and operators read it to redrive; server access logs ' +
      'would go to the stateful stack’s log bucket, whose policy would then name this stack and tie the two ' +
      'stacks in a cycle.',
  );

  // ---- Multi-region blob replication
  const replicationReason =
    'S3 replication copies every object version: the role reads any object of its source bucket and ' +
    'writes any object of the peer blob buckets (named, not wildcarded, buckets).';
  const regions = [stateful.region, ...replicas.map((r) => r.region)];
  for (const holder of [stateful, ...replicas]) {
    const role = holder.node.tryFindChild('ReplicationRole');
    if (!role) continue;
    const source = Stack.of(holder).getLogicalId(
      (holder as StatefulStack | ReplicaBlobStack).bucket.node.defaultChild as CfnElement,
    );
    ack(role, `AwsSolutions-IAM5[Resource::<${source}.Arn>/*]`, replicationReason);
    if (stateful.key)
      ack(
        role,
        'AwsSolutions-IAM5[Resource::*]',
        'KMS-encrypted replication: decrypt and encrypt with the data keys of the peer regions, named by ' +
          'their alias (kms:ResourceAliases condition) and only through S3 (kms:ViaService).',
      );
    for (const peer of regions.filter((r) => r !== holder.region)) {
      ack(
        role,
        `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::stratus-${stage}-blobs-<AWS::AccountId>-${peer}/*]`,
        replicationReason,
      );
    }
  }
  for (const r of replicas) ack(r.accessLogs, 'AwsSolutions-S1', 'This is the access-log bucket itself.');

  // ---- GuardDuty Malware Protection for S3 (-c malwareScanner=guardduty): the role AWS documents
  for (const holder of [stateful, ...replicas]) {
    const protection = holder.malwareProtection;
    if (!protection) continue;
    const bucket = Stack.of(holder).getLogicalId(holder.bucket.node.defaultChild as CfnElement);
    ack(
      protection.role,
      `AwsSolutions-IAM5[Resource::<${bucket}.Arn>/*]`,
      'GuardDuty scans and tags every object written to the blob bucket (keys are version ids), as the ' +
        'policy in "Create or update IAM role policy" (GuardDuty User Guide) grants it.',
    );
    ack(
      protection.role,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:events:${holder.region}:<AWS::AccountId>:rule/DO-NOT-DELETE-AmazonGuardDutyMalwareProtectionS3*]`,
      'The EventBridge rule GuardDuty creates and manages for the plan has a name AWS chooses under this ' +
        'prefix; the documented policy names it so (and the write actions only with events:ManagedBy).',
    );
  }
  if (link) {
    // The provider function of every AwsCustomResource in a stack is one singleton with this id.
    const singleton = link.node.tryFindChild('AWS679f53fac002430cb0da5b7982bd2287');
    if (singleton)
      ack(
        singleton,
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        'CDK AwsCustomResource singleton: the managed policy only writes its own logs.',
      );
    ack(
      link,
      'AwsSolutions-IAM4',
      'CDK AwsCustomResource singleton: the managed policy only writes its own logs.',
    );
    ackCdkFrameworkFunctions(link, 'CDK AwsCustomResource singleton');
  }
}
