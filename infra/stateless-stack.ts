/**
 * The API and its compute: one Lambda per route group (nodejs24.x, arm64, bundled by local
 * esbuild), an HTTP API whose routes come from the same table the local gateway serves, and a
 * JWT authorizer on the Cognito issuer for every route that needs a token.
 */
import path from 'node:path';
import {
  CfnOutput,
  type CfnResource,
  CustomResource,
  Duration,
  Lazy,
  RemovalPolicy,
  Stack,
  type StackProps,
} from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import { DynamoEventSource, S3OnFailureDestination } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as sfnTasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import * as cr from 'aws-cdk-lib/custom-resources';
import type { Construct } from 'constructs';
import { handlerEntries } from '../functions/api/entries.ts';
import { allRoutes } from '../functions/api/routes.ts';
import { migrations } from '../shared/adapters/postgres/migrations.ts';
import type { RouteGroup } from '../shared/http/route.ts';
import {
  ESM_REQUIRE_BANNER,
  LAMBDA_ALIASES,
  LAMBDA_EXTERNALS,
  LAMBDA_MAIN_FIELDS,
  LAMBDA_SOURCES_CONTENT,
} from './bundling.ts';
import { Monitoring } from './monitoring.ts';
import type { MalwareScanner } from './options.ts';
import type { StatefulStack } from './stateful-stack.ts';

export interface StatelessStackProps extends StackProps {
  stage: string;
  stateful: StatefulStack;
  /** Uploads up to this many MiB are verified inside the complete request (default 64). */
  inlineVerifyMiB?: number;
  /** `guardduty`: the functions read GuardDuty's scan-result tags (the stateful stack's plan). */
  malwareScanner?: MalwareScanner;
  /** Shares of the id space the hourly sweep runs at once (a Distributed Map item each); default 8. */
  reconcilePartitions?: number;
}

const ROOT = path.resolve(import.meta.dirname, '..');
/**
 * The longest an API function may run: under the 30 s an HTTP API waits for its integration ("Quotas
 * for configuring and running an HTTP API in API Gateway": maximum integration timeout 30 seconds,
 * not adjustable), so the function ends before the API gives up on it.
 */
export const API_FUNCTION_TIMEOUT_SECONDS = 29;

export class StatelessStack extends Stack {
  readonly api: apigw.HttpApi;
  readonly functions: Record<RouteGroup, NodejsFunction>;
  readonly monitoring: Monitoring;
  readonly schema: CustomResource;
  readonly migrations: { fn: NodejsFunction; provider: cr.Provider };
  /** Failure queues: notices of failed stream batches, failed maintenance runs, EventBridge's DLQ. */
  readonly queues: {
    streamFailureNotices: sqs.Queue;
    scheduleDlq: sqs.Queue;
    maintenanceFailures: sqs.Queue;
  };
  /** Whole records of stream batches that failed every retry (redrive: docs/deploy.md). */
  readonly streamFailures: s3.Bucket;
  readonly workers: { stateStream: NodejsFunction; verifier: NodejsFunction; maintenance: NodejsFunction };
  /** The hourly reconcile sweep's state machine (a Distributed Map over the id space's shares). */
  readonly reconcileSweep: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: StatelessStackProps) {
    super(scope, id, props);
    const s = props.stateful;
    const issuer = `https://cognito-idp.${this.region}.amazonaws.com/${s.userPool.userPoolId}`;
    const environment: Record<string, string> = {
      STRATUS_PROFILE: 'aws',
      STRATUS_BUCKET: s.bucket.bucketName,
      STRATUS_TABLE: s.table.tableName,
      STRATUS_DATABASE_URL: s.metadata.url,
      STRATUS_USER_POOL_ID: s.userPool.userPoolId,
      STRATUS_USER_POOL_CLIENT_ID: s.userPoolClient.userPoolClientId,
      NODE_OPTIONS: '--enable-source-maps',
      STRATUS_INLINE_VERIFY_BYTES: String((props.inlineVerifyMiB ?? 64) * 1024 * 1024),
      // A reconcile run asked for through the API (admin functions end after 15 s) stops at the
      // first page boundary after 5 s and keeps its cursor; the maintenance function (below) gets
      // ten minutes an hour and finishes the pass.
      STRATUS_RECONCILE_BUDGET_SECONDS: '5',
      ...(props.malwareScanner === 'guardduty' ? { STRATUS_SCANNER: 'guardduty' } : {}),
      ...s.metadata.environment,
      ...(s.cache ? { STRATUS_REDIS_URL: s.cache.url, STRATUS_REDIS_MODE: s.cache.mode } : {}),
    };
    // With the cache or Aurora, functions run in the private subnets (egress by NAT, S3 and
    // DynamoDB by gateway endpoints) under the security group the cache and database admit.
    const placement = s.network
      ? {
          vpc: s.network.vpc,
          vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
          securityGroups: [s.network.functions],
        }
      : {};

    /** Every Lambda: Node 24 on arm64, bundled by local esbuild as ESM with source maps, traced. */
    const lambdaFunction = (
      name: string,
      entry: string,
      memorySize: number,
      timeout: Duration,
      afterBundling?: (inputDir: string, outputDir: string) => string[],
    ) =>
      new NodejsFunction(this, `Fn-${name}`, {
        ...placement,
        entry: path.join(ROOT, entry),
        handler: 'handler',
        runtime: lambda.Runtime.NODEJS_24_X,
        architecture: lambda.Architecture.ARM_64,
        memorySize,
        timeout,
        environment,
        logGroup: new logs.LogGroup(this, `Logs-${name}`, { retention: logs.RetentionDays.ONE_MONTH }),
        tracing: lambda.Tracing.ACTIVE,
        projectRoot: ROOT,
        depsLockFilePath: path.join(ROOT, 'package-lock.json'),
        bundling: {
          format: OutputFormat.ESM,
          target: 'node24',
          minify: true,
          sourceMap: true,
          sourcesContent: LAMBDA_SOURCES_CONTENT,
          banner: ESM_REQUIRE_BANNER,
          // CDK renders each as --alias:<module>=<replacement>.
          esbuildArgs: { '--alias': Object.entries(LAMBDA_ALIASES).map(([from, to]) => `${from}=${to}`) },
          externalModules: LAMBDA_EXTERNALS,
          mainFields: LAMBDA_MAIN_FIELDS,
          ...(afterBundling
            ? { commandHooks: { beforeBundling: () => [], beforeInstall: () => [], afterBundling } }
            : {}),
        },
      });
    const make = (group: RouteGroup) =>
      lambdaFunction(
        group,
        handlerEntries[group],
        group === 'uploads' ? 1024 : 512,
        // Below the HTTP API's 30 s integration timeout: a function still running after the API gave
        // up would work on for a client that has gone (longer work runs in the workers).
        Duration.seconds(group === 'uploads' ? API_FUNCTION_TIMEOUT_SECONDS : 15),
        // The system function serves the dashboard: its bundled files go beside the handler.
        group === 'system'
          ? (inputDir, outputDir) => [`node "${inputDir}/scripts/build-web.ts" "${outputDir}/web"`]
          : undefined,
      );
    // Schema migrations run once per deploy, before the functions that use the schema change.
    const migrateFn = lambdaFunction('migrate', 'functions/deploy/migrate.ts', 512, Duration.minutes(5));
    // Aurora: the migration logs in with the admin secret and creates the application role.
    for (const [k, v] of Object.entries(s.metadata.grantMigrate(migrateFn))) migrateFn.addEnvironment(k, v);
    const migrationsProvider = new cr.Provider(this, 'MigrationsProvider', { onEventHandler: migrateFn });
    // Every function that connects as the application (DSQL: the migration maps their IAM roles to
    // the database role, so a new or replaced role re-runs it).
    const appFunctions: lambda.Function[] = [];
    this.schema = new CustomResource(this, 'Schema', {
      serviceToken: migrationsProvider.serviceToken,
      properties: {
        migrations: String(migrations.length),
        ...(s.metadata.mapsIamRoles
          ? {
              appRoleArns: Lazy.list({
                produce: () => appFunctions.map((fn) => (fn.role as iam.IRole).roleArn),
              }),
            }
          : {}),
      },
    });
    this.migrations = { fn: migrateFn, provider: migrationsProvider };
    /** Connects `fn` as the application, once the schema (and its database role) is in place. */
    const connectAsApp = (fn: lambda.Function) => {
      s.metadata.grantConnect(fn);
      appFunctions.push(fn);
      // The function itself waits for the schema; its role must not (the schema names the role).
      (fn.node.defaultChild as lambda.CfnFunction).addResourceDependency(
        this.schema.node.defaultChild as CfnResource,
      );
    };

    this.functions = {
      auth: make('auth'),
      folders: make('folders'),
      files: make('files'),
      uploads: make('uploads'),
      account: make('account'),
      admin: make('admin'),
      shares: make('shares'),
      system: make('system'),
    };

    // Least privilege per group; the IAM test (test/integration/iam-usage.test.ts) records every
    // SDK command each group's routes send and fails on any these grants do not allow.
    for (const fn of Object.values(this.functions)) connectAsApp(fn);
    s.table.grantReadWriteData(this.functions.auth);
    // Sign-up creates the user, sets its password and group, and deletes it again when a later step
    // fails; a password reset signs the user out everywhere; the app client's secret is read at
    // cold start (login, refresh, revoke, ForgotPassword and ConfirmForgotPassword are public APIs
    // that the secret, not IAM, guards).
    this.functions.auth.addToRolePolicy(
      new iam.PolicyStatement({
        actions: [
          'cognito-idp:AdminCreateUser',
          'cognito-idp:AdminSetUserPassword',
          'cognito-idp:AdminAddUserToGroup',
          'cognito-idp:AdminDeleteUser',
          'cognito-idp:AdminUserGlobalSignOut',
          'cognito-idp:DescribeUserPoolClient',
        ],
        resources: [s.userPool.userPoolArn],
      }),
    );
    s.table.grantReadData(this.functions.folders);
    s.table.grantReadData(this.functions.files);
    // Purging (trash, retention) deletes blobs and their replica-ledger entries: each removal is one
    // transaction with the version's ledger summary (a put, or a delete with the last replica) and
    // an ADD to a counter item (replica-ledger.ts).
    s.table.grant(
      this.functions.files,
      'dynamodb:DeleteItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
      'dynamodb:ConditionCheckItem',
    );
    s.table.grantReadWriteData(this.functions.uploads);
    s.table.grantReadData(this.functions.system);
    s.table.grantReadData(this.functions.account);
    // Node management writes the node catalog; reconciliation repairs replicas and their ledger.
    s.table.grantReadWriteData(this.functions.admin);
    // PATCH /v1/admin/users/{id}: a role change moves the user between the Cognito groups (the
    // users table, which authorization reads, changes first; the groups shape the tokens issued).
    this.functions.admin.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['cognito-idp:AdminAddUserToGroup', 'cognito-idp:AdminRemoveUserFromGroup'],
        resources: [s.userPool.userPoolArn],
      }),
    );
    s.table.grantReadData(this.functions.shares);
    s.bucket.grantRead(this.functions.shares);
    s.bucket.grantRead(this.functions.files);
    s.bucket.grantDelete(this.functions.files);
    s.bucket.grantReadWrite(this.functions.admin);
    s.bucket.grantDelete(this.functions.admin);
    s.bucket.grantReadWrite(this.functions.uploads);
    // /health/deep probes the bucket (HeadBucket), nothing more.
    this.functions.system.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [s.bucket.bucketArn] }),
    );

    this.api = new apigw.HttpApi(this, 'Api', {
      corsPreflight: {
        allowOrigins: ['*'],
        allowMethods: [apigw.CorsHttpMethod.ANY],
        allowHeaders: ['authorization', 'content-type', 'if-match', 'x-correlation-id'],
        exposeHeaders: ['etag', 'location', 'x-request-id', 'retry-after'],
        maxAge: Duration.minutes(10),
      },
    });
    // Stage-wide throttling (per-user limits live in the app) and JSON access logs.
    const accessLogs = new logs.LogGroup(this, 'ApiAccessLogs', {
      retention: logs.RetentionDays.THREE_MONTHS,
    });
    const stage = this.api.defaultStage?.node.defaultChild as apigw.CfnStage;
    stage.defaultRouteSettings = { throttlingBurstLimit: 2000, throttlingRateLimit: 1000 };
    stage.accessLogSettings = {
      destinationArn: accessLogs.logGroupArn,
      format: JSON.stringify({
        requestId: '$context.requestId',
        ip: '$context.identity.sourceIp',
        time: '$context.requestTime',
        method: '$context.httpMethod',
        route: '$context.routeKey',
        status: '$context.status',
        latency: '$context.responseLatency',
        integrationError: '$context.integrationErrorMessage',
        authorizerError: '$context.authorizer.error',
        user: '$context.authorizer.claims.sub',
      }),
    };
    const authorizer = new HttpJwtAuthorizer('Cognito', issuer, {
      jwtAudience: [s.userPoolClient.userPoolClientId],
    });
    const integrations = new Map<RouteGroup, HttpLambdaIntegration>();
    for (const r of allRoutes) {
      let integration = integrations.get(r.group);
      if (!integration) {
        integration = new HttpLambdaIntegration(`Int-${r.group}`, this.functions[r.group]);
        integrations.set(r.group, integration);
      }
      this.api.addRoutes({
        path: r.path,
        methods: [r.method as apigw.HttpMethod],
        integration,
        ...(r.auth ? { authorizer } : {}),
      });
    }
    // Deliveries EventBridge could not make (the schedules, the failure notices below) land here.
    const scheduleDlq = new sqs.Queue(this, 'ScheduleDlq', {
      retentionPeriod: Duration.days(14),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });

    // Stream batches that fail every retry keep their whole records here: Lambda writes the
    // invocation record with its payload (an SQS destination would get only shard and sequence
    // numbers, useless once the stream's 24 hours pass). Retained: they are what a redrive needs
    // (docs/deploy.md) and must outlive a redeploy of this stack.
    const streamFailures = new s3.Bucket(this, 'StreamFailures', {
      ...(s.key
        ? { encryption: s3.BucketEncryption.KMS, encryptionKey: s.key, bucketKeyEnabled: true }
        : { encryption: s3.BucketEncryption.S3_MANAGED }),
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      lifecycleRules: [{ expiration: Duration.days(90) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // Each failed batch also becomes one notice (S3 -> EventBridge -> SQS), whose depth alarms. Set
    // on the L1 bucket: CDK's notification helper would add a custom-resource function.
    (streamFailures.node.defaultChild as s3.CfnBucket).notificationConfiguration = {
      eventBridgeConfiguration: { eventBridgeEnabled: true },
    };
    const streamFailureNotices = new sqs.Queue(this, 'StreamFailureNotices', {
      retentionPeriod: Duration.days(14),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    new events.Rule(this, 'StreamFailureNotice', {
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: { bucket: { name: [streamFailures.bucketName] } },
      },
      targets: [
        new targets.SqsQueue(streamFailureNotices, { deadLetterQueue: scheduleDlq, retryAttempts: 2 }),
      ],
    });

    // The state table's stream drives upload-session cleanup and replication.
    const streamFn = lambdaFunction(
      'state-stream',
      'functions/streams/state-stream.ts',
      512,
      Duration.seconds(60),
    );
    connectAsApp(streamFn);
    s.table.grantReadWriteData(streamFn);
    s.bucket.grantReadWrite(streamFn);
    streamFn.addEventSource(
      new DynamoEventSource(s.table, {
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        batchSize: 100,
        bisectBatchOnError: true,
        reportBatchItemFailures: true,
        retryAttempts: 5,
        onFailure: new S3OnFailureDestination(streamFailures),
        // Removals of upload sessions (cleanup) and writes to the replica ledger (replication).
        filters: [
          lambda.FilterCriteria.filter({
            eventName: lambda.FilterRule.isEqual('REMOVE'),
            dynamodb: { Keys: { pk: { S: lambda.FilterRule.beginsWith('upload#') } } },
          }),
          lambda.FilterCriteria.filter({
            eventName: lambda.FilterRule.or('INSERT', 'MODIFY'),
            dynamodb: { Keys: { pk: { S: lambda.FilterRule.beginsWith('ledger#') } } },
          }),
        ],
      }),
    );

    // The background verifier: uploads that answered 202 (their verify#<id> triggers), read whole,
    // checked and committed. A mapping of its own on the same stream (a stream serves two readers
    // at full speed): a verification may take minutes and must not hold up cleanup and replication.
    const verifierFn = lambdaFunction(
      'verifier',
      'functions/streams/verifier.ts',
      2048,
      Duration.minutes(15),
    );
    // A run stops at a checkpoint after 12 minutes and the next run goes on from there: a file too
    // big to read in one 15-minute run still verifies, and a run never meets its timeout.
    verifierFn.addEnvironment('STRATUS_VERIFY_RUN_SECONDS', '720');
    // Purge jobs of trees too big for a request ride the same mapping (purgejob#<id> triggers): a
    // run deletes batches for 10 minutes (each batch a bounded transaction), then triggers the next.
    verifierFn.addEnvironment('STRATUS_PURGE_RUN_SECONDS', '600');
    connectAsApp(verifierFn);
    s.table.grantReadWriteData(verifierFn);
    s.bucket.grantReadWrite(verifierFn);
    verifierFn.addEventSource(
      new DynamoEventSource(s.table, {
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        // One upload per invocation, up to ten at once per shard (each trigger its own partition).
        batchSize: 1,
        parallelizationFactor: 10,
        reportBatchItemFailures: true,
        retryAttempts: 3,
        onFailure: new S3OnFailureDestination(streamFailures),
        filters: [
          lambda.FilterCriteria.filter({
            eventName: lambda.FilterRule.or('INSERT', 'MODIFY'),
            dynamodb: { Keys: { pk: { S: lambda.FilterRule.beginsWith('verify#') } } },
          }),
          lambda.FilterCriteria.filter({
            eventName: lambda.FilterRule.or('INSERT', 'MODIFY'),
            dynamodb: { Keys: { pk: { S: lambda.FilterRule.beginsWith('purgejob#') } } },
          }),
        ],
      }),
    );

    // Scheduled maintenance: canaries every 5 minutes, reconciliation hourly, retention daily.
    const maintenance = lambdaFunction(
      'maintenance',
      'functions/scheduled/maintenance.ts',
      1024,
      Duration.minutes(15),
    );
    // Ten minutes of each hourly run, then the sweep keeps its cursor and the next run goes on.
    maintenance.addEnvironment('STRATUS_RECONCILE_BUDGET_SECONDS', '600');
    connectAsApp(maintenance);
    s.table.grantReadWriteData(maintenance);
    s.bucket.grantReadWrite(maintenance);
    s.bucket.grantDelete(maintenance);
    // The operator's first-admin task (`{"task": "promote-admin", "email": …}`, invoked by hand).
    maintenance.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['cognito-idp:AdminAddUserToGroup', 'cognito-idp:AdminRemoveUserFromGroup'],
        resources: [s.userPool.userPoolArn],
      }),
    );
    // EventBridge invokes asynchronously: a run that fails (after Lambda's one retry) lands, with
    // its event and error, in this on-failure destination. The target DLQ above only gets events
    // EventBridge could not deliver; it never sees a run that threw.
    const maintenanceFailures = new sqs.Queue(this, 'MaintenanceFailures', {
      retentionPeriod: Duration.days(14),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    maintenance.configureAsyncInvoke({
      onFailure: new destinations.SqsDestination(maintenanceFailures),
      retryAttempts: 1,
    });
    // The hourly sweep: a Distributed Map runs one maintenance invocation per share of the id space
    // at once (`{task: 'reconcile', partition: {index, count}}`), each with its own cursor and lease
    // (shared/services/sweep-partitions.ts), so a pass takes 1/count of the time. Child executions
    // are standard workflows: a run may take the function's 15 minutes.
    const partitions = props.reconcilePartitions ?? 8;
    const sweepPartition = new sfnTasks.LambdaInvoke(this, 'SweepPartition', {
      lambdaFunction: maintenance,
      payloadResponseOnly: true,
      retryOnServiceExceptions: true,
    });
    const sweepMap = new sfn.DistributedMap(this, 'SweepPartitions', {
      itemsPath: sfn.JsonPath.stringAt('$.partitions'),
      itemSelector: { task: 'reconcile', partition: sfn.JsonPath.objectAt('$$.Map.Item.Value') },
      maxConcurrency: partitions,
      mapExecutionType: sfn.StateMachineType.STANDARD,
      resultPath: sfn.JsonPath.DISCARD,
    });
    sweepMap.itemProcessor(sweepPartition);
    const listPartitions = new sfn.Pass(this, 'ListPartitions', {
      result: sfn.Result.fromObject({
        partitions: Array.from({ length: partitions }, (_, index) => ({ index, count: partitions })),
      }),
    });
    const sweepLogs = new logs.LogGroup(this, 'ReconcileSweepLogs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const reconcileSweep = new sfn.StateMachine(this, 'ReconcileSweep', {
      definitionBody: sfn.DefinitionBody.fromChainable(listPartitions.next(sweepMap)),
      // Under the hour between schedules; a share's run ends by its budget (600 s) well before.
      timeout: Duration.minutes(50),
      tracingEnabled: true,
      logs: { destination: sweepLogs, level: sfn.LogLevel.ALL, includeExecutionData: true },
    });
    new events.Rule(this, 'Schedule-reconcile', {
      schedule: events.Schedule.rate(Duration.hours(1)),
      targets: [
        new targets.SfnStateMachine(reconcileSweep, {
          input: events.RuleTargetInput.fromObject({}),
          deadLetterQueue: scheduleDlq,
          retryAttempts: 2,
        }),
      ],
    });
    this.reconcileSweep = reconcileSweep;
    for (const [task, schedule] of [
      ['health', events.Schedule.rate(Duration.minutes(5))],
      ['retention', events.Schedule.rate(Duration.days(1))],
    ] as const) {
      new events.Rule(this, `Schedule-${task}`, {
        schedule,
        targets: [
          new targets.LambdaFunction(maintenance, {
            event: events.RuleTargetInput.fromObject({ task }),
            deadLetterQueue: scheduleDlq,
            retryAttempts: 2,
          }),
        ],
      });
    }

    // GuardDuty Malware Protection (`-c malwareScanner=guardduty`). The functions that verify an
    // upload or rescan quarantined versions (inline complete, the verifier, the maintenance rescans,
    // the admin sweep) read each object's scan-result tag: named here, not only through the read
    // grants' s3:GetObject*, so narrowing those cannot take it away unnoticed. An upload is
    // committed quarantined before GuardDuty has scanned it; the tag GuardDuty writes then asks for a
    // rescan at once, instead of at the daily retention run. The rule listens for S3's "Object Tags
    // Added" (the tag is readable when it fires) rather than GuardDuty's "Object Scan Result" event,
    // which does not promise that the tag is already there.
    if (props.malwareScanner === 'guardduty') {
      const readScanTag = new iam.PolicyStatement({
        actions: ['s3:GetObjectTagging'],
        resources: [s.bucket.arnForObjects('*')],
      });
      for (const fn of [this.functions.uploads, this.functions.admin, verifierFn, maintenance])
        fn.addToRolePolicy(readScanTag);
      new events.Rule(this, 'RescanOnScanResult', {
        description: 'A blob got its GuardDuty scan-result tag: rescan the quarantined versions now',
        eventPattern: {
          source: ['aws.s3'],
          detailType: ['Object Tags Added'],
          detail: { bucket: { name: [s.bucket.bucketName] } },
        },
        targets: [
          new targets.LambdaFunction(maintenance, {
            event: events.RuleTargetInput.fromObject({ task: 'rescan' }),
            deadLetterQueue: scheduleDlq,
            retryAttempts: 2,
          }),
        ],
      });
    }

    this.queues = { streamFailureNotices, scheduleDlq, maintenanceFailures };
    this.streamFailures = streamFailures;
    this.workers = { stateStream: streamFn, verifier: verifierFn, maintenance };
    this.monitoring = new Monitoring(this, 'Monitoring', {
      stage: props.stage,
      api: this.api,
      functions: { ...this.functions, 'state-stream': streamFn, verifier: verifierFn, maintenance },
      failureQueues: [
        {
          name: 'stream-failures',
          queue: streamFailureNotices,
          meaning:
            'state stream batches gave up after retries; their records are in the StreamFailures bucket',
        },
        {
          name: 'maintenance-failures',
          queue: maintenanceFailures,
          meaning: 'a scheduled maintenance run failed twice (the queue holds its event and error)',
        },
        {
          name: 'schedule-dlq',
          queue: scheduleDlq,
          meaning: 'EventBridge could not deliver a schedule or a failure notice',
        },
      ],
      streamConsumer: streamFn,
      stateMachines: { 'reconcile-sweep': reconcileSweep },
    });

    new CfnOutput(this, 'ApiUrl', { value: this.api.apiEndpoint });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.monitoring.topic.topicArn });
    new CfnOutput(this, 'StreamFailuresBucket', { value: streamFailures.bucketName });
    new CfnOutput(this, 'StateStreamFunction', { value: streamFn.functionName });
    new CfnOutput(this, 'VerifierFunction', { value: verifierFn.functionName });
    new CfnOutput(this, 'StreamFailureNoticesQueueUrl', { value: streamFailureNotices.queueUrl });
    new CfnOutput(this, 'MaintenanceFailuresQueueUrl', { value: maintenanceFailures.queueUrl });
    new CfnOutput(this, 'MaintenanceFunction', { value: maintenance.functionName });
    new CfnOutput(this, 'ReconcileSweepStateMachine', { value: reconcileSweep.stateMachineArn });
  }
}
