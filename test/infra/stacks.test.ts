/**
 * The CDK app, synthesized offline: cdk-nag (AWS Solutions + Serverless) leaves no unacknowledged
 * finding, and fine-grained Template assertions pin every property that matters — encryption, TLS,
 * TTL, stream view type, per-function IAM actions, the authorizer on exactly the non-public routes,
 * DLQs, schedules, alarms.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { allRoutes } from '../../functions/api/routes.ts';
import { buildApp } from '../../infra/build-app.ts';
import { API_FUNCTION_TIMEOUT_SECONDS } from '../../infra/stateless-stack.ts';

type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;

let stateful: Template;
let stateless: Template;
let report: { pluginReports: { conclusion?: string; violations?: unknown[] }[] };

function synth(mutate?: (built: ReturnType<typeof buildApp>) => void) {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-cdk-'));
  const built = buildApp({ outdir, context: { stage: 'test' } });
  mutate?.(built);
  built.app.synth();
  const validation = JSON.parse(fs.readFileSync(path.join(outdir, 'validation-report.json'), 'utf8'));
  return { built, outdir, validation };
}

/** The IAM actions granted to one function's role, flattened. */
function actionsOf(t: Template, fnLogicalPrefix: string): string[] {
  const policies = t.findResources('AWS::IAM::Policy') as Resources;
  const out: string[] = [];
  for (const [id, p] of Object.entries(policies)) {
    if (!id.startsWith(fnLogicalPrefix)) continue;
    const doc = p.Properties.PolicyDocument as { Statement: { Action: string | string[] }[] };
    for (const st of doc.Statement) out.push(...(Array.isArray(st.Action) ? st.Action : [st.Action]));
  }
  return out;
}

beforeAll(() => {
  const { built, validation } = synth();
  stateful = Template.fromStack(built.stateful);
  stateless = Template.fromStack(built.stateless);
  report = validation;
}, 120_000);

describe('cdk-nag', () => {
  it('reports no unacknowledged finding (AWS Solutions and Serverless packs)', () => {
    const violations = report.pluginReports.flatMap((r) => r.violations ?? []);
    expect(violations).toEqual([]);
  });

  it('is really checking: a queue without TLS enforcement or DLQ fails synthesis', () => {
    expect(() =>
      synth(({ stateless: s }) => {
        new sqs.Queue(s, 'CarelessQueue', { enforceSSL: false }); // no acknowledgement for this one
      }),
    ).toThrow(/CarelessQueue[\s\S]*AwsSolutions-SQS4/);
  }, 120_000);
});

describe('stateful stack', () => {
  it('blob bucket: versioned, encrypted, private, TLS only, access-logged, CORS for browser uploads, multipart cleanup', () => {
    stateful.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: { Status: 'Enabled' },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      LoggingConfiguration: { DestinationBucketName: Match.anyValue(), LogFilePrefix: 'blobs/' },
      CorsConfiguration: {
        CorsRules: [
          Match.objectLike({
            AllowedMethods: Match.arrayWith(['PUT', 'GET']),
            AllowedHeaders: Match.arrayWith(['x-amz-checksum-sha256']),
            ExposedHeaders: Match.arrayWith(['ETag']),
          }),
        ],
      },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 } }),
          // Purged blobs (noncurrent versions) go after the grace period, and their delete markers.
          Match.objectLike({
            NoncurrentVersionExpiration: { NoncurrentDays: 7 },
            ExpiredObjectDeleteMarker: true,
            Status: 'Enabled',
          }),
        ]),
      },
    });
    // Both buckets deny plain HTTP.
    const policies = stateful.findResources('AWS::S3::BucketPolicy') as Resources;
    const insecureDenied = Object.values(policies).filter((p) =>
      JSON.stringify(p.Properties.PolicyDocument).includes('"aws:SecureTransport":"false"'),
    );
    expect(insecureDenied.length).toBe(2);
  });

  it('state table: TTL, NEW_AND_OLD_IMAGES stream, point-in-time recovery, on demand', () => {
    stateful.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
      StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
      BillingMode: 'PAY_PER_REQUEST',
      Replicas: [
        Match.objectLike({ PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } }),
      ],
    });
  });

  it('metadata store: an Aurora DSQL cluster', () => {
    stateful.resourceCountIs('AWS::DSQL::Cluster', 1);
  });

  it('Cognito: accounts created by the API only, groups admin and user, refresh-token rotation and revocation', () => {
    stateful.hasResourceProperties('AWS::Cognito::UserPool', {
      AdminCreateUserConfig: { AllowAdminCreateUserOnly: true },
      UsernameAttributes: ['email'],
    });
    for (const g of ['admin', 'user'])
      stateful.hasResourceProperties('AWS::Cognito::UserPoolGroup', { GroupName: g });
    stateful.hasResourceProperties('AWS::Cognito::UserPoolClient', {
      ExplicitAuthFlows: Match.arrayWith(['ALLOW_USER_PASSWORD_AUTH']),
      EnableTokenRevocation: true,
      PreventUserExistenceErrors: 'ENABLED',
      RefreshTokenRotation: Match.objectLike({ Feature: 'ENABLED' }),
    });
  });
});

describe('stateless stack', () => {
  it('every function: nodejs24.x on arm64, traced, with its own log group', () => {
    const fns = stateless.findResources('AWS::Lambda::Function') as Resources;
    const ours = Object.values(fns).filter((f) => String(f.Properties.Handler).startsWith('index.'));
    expect(ours.length).toBe(12); // 8 route groups, state stream, verifier, maintenance, migrations
    for (const f of ours) {
      expect(f.Properties.Runtime).toBe('nodejs24.x');
      expect(f.Properties.Architectures).toEqual(['arm64']);
      expect(f.Properties.TracingConfig).toEqual({ Mode: 'Active' });
      expect(f.Properties.LoggingConfig).toBeDefined();
    }
  });

  it('schema migrations run in a deploy-time custom resource that every API function waits for', () => {
    const schema = stateless.findResources('AWS::CloudFormation::CustomResource') as Resources;
    const [schemaId, res] = Object.entries(schema)[0] ?? [];
    expect(res?.Properties.migrations).toMatch(/^\d+$/);
    const fns = stateless.findResources('AWS::Lambda::Function') as Record<string, { DependsOn?: string[] }>;
    const api = Object.entries(fns).filter(([id]) =>
      ['auth', 'folders', 'files', 'uploads', 'account', 'admin', 'shares', 'system'].some((g) =>
        id.startsWith(`Fn${g}`),
      ),
    );
    expect(api.length).toBe(8);
    for (const [, fn] of api) expect(fn.DependsOn).toContain(schemaId);
  });

  it('the JWT authorizer guards exactly the routes the route table marks as needing a token', () => {
    const routes = stateless.findResources('AWS::ApiGatewayV2::Route') as Resources;
    const byKey = new Map(Object.values(routes).map((r) => [r.Properties.RouteKey as string, r.Properties]));
    expect(byKey.size).toBe(allRoutes.length);
    for (const r of allRoutes) {
      const props = byKey.get(`${r.method} ${r.path}`);
      expect(props, `${r.method} ${r.path}`).toBeDefined();
      expect(props?.AuthorizationType, `${r.method} ${r.path}`).toBe(r.auth ? 'JWT' : 'NONE');
    }
    // Public: health, auth, share links, the dashboard and the API description.
    const pub = allRoutes.filter((r) => !r.auth).map((r) => r.path);
    expect(pub.every((p) => /^\/(health|v1\/auth|s\/|app\/|openapi\.json|$)/.test(p))).toBe(true);
    stateless.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'JWT',
      JwtConfiguration: { Audience: [Match.anyValue()], Issuer: Match.anyValue() },
    });
  });

  it('every API function ends before the HTTP API\u2019s 30 s integration timeout; the workers keep theirs', () => {
    const fns = stateless.findResources('AWS::Lambda::Function') as Resources;
    const integrations = Object.values(
      stateless.findResources('AWS::ApiGatewayV2::Integration') as Resources,
    );
    expect(integrations.length).toBeGreaterThan(0);
    const integrated = new Set<string>();
    for (const integration of integrations) {
      // An HTTP API waits 30 s at most; an integration may only lower that.
      const waits = Number(integration.Properties.TimeoutInMillis ?? 30_000) / 1000;
      expect(waits).toBeLessThanOrEqual(30);
      const uri = JSON.stringify(integration.Properties.IntegrationUri);
      const [id, fn] = Object.entries(fns).find(([fnId]) => uri.includes(`"${fnId}"`)) ?? [];
      expect(id, uri).toBeDefined();
      expect(fn?.Properties.Timeout).toBeLessThanOrEqual(API_FUNCTION_TIMEOUT_SECONDS);
      expect(Number(fn?.Properties.Timeout)).toBeLessThan(waits);
      // A reconcile asked for through the API stops (keeping its cursor) before the API gives up.
      const env = (fn?.Properties.Environment as { Variables?: Record<string, string> } | undefined)
        ?.Variables;
      expect(Number(env?.STRATUS_RECONCILE_BUDGET_SECONDS)).toBeGreaterThan(0);
      expect(Number(env?.STRATUS_RECONCILE_BUDGET_SECONDS)).toBeLessThan(Number(fn?.Properties.Timeout));
      integrated.add(String(id));
    }
    // The eight route groups, the uploads function among them; no worker sits behind the API.
    expect(integrated.size).toBe(8);
    expect([...integrated].some((id) => id.startsWith('Fnuploads'))).toBe(true);
    const timeoutOf = (prefix: string) =>
      Object.entries(fns).find(([id]) => id.startsWith(prefix))?.[1].Properties.Timeout;
    expect(timeoutOf('Fnstatestream')).toBe(60);
    expect(timeoutOf('Fnmaintenance')).toBe(15 * 60);
    const maintenanceEnv = (
      Object.entries(fns).find(([id]) => id.startsWith('Fnmaintenance'))?.[1].Properties.Environment as
        | { Variables?: Record<string, string> }
        | undefined
    )?.Variables;
    // Each hourly sweep works ten minutes at most, then the next goes on from its cursor.
    expect(Number(maintenanceEnv?.STRATUS_RECONCILE_BUDGET_SECONDS)).toBe(600);
  });

  it('the API stage throttles and writes JSON access logs', () => {
    stateless.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingBurstLimit: 2000, ThrottlingRateLimit: 1000 },
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('routeKey') },
    });
  });

  it('least privilege: each function gets only the actions its routes need', () => {
    const auth = actionsOf(stateless, 'Fnauth');
    expect(auth).toEqual(
      expect.arrayContaining([
        'cognito-idp:AdminCreateUser',
        'cognito-idp:AdminSetUserPassword',
        'cognito-idp:AdminAddUserToGroup',
      ]),
    );
    expect(auth.some((a) => a.startsWith('s3:'))).toBe(false);
    const folders = actionsOf(stateless, 'Fnfolders');
    expect(folders.some((a) => a.startsWith('s3:'))).toBe(false);
    expect(folders.some((a) => /dynamodb:(PutItem|UpdateItem|DeleteItem|BatchWriteItem)/.test(a))).toBe(
      false,
    );
    const system = actionsOf(stateless, 'Fnsystem');
    // /health/deep probes the bucket; nothing else of S3 or Cognito.
    expect(system.filter((a) => a.startsWith('s3:') || a.startsWith('cognito-idp:'))).toEqual([
      's3:ListBucket',
    ]);
    // Trash purges delete ledger entries; node management writes the catalog and repairs blobs.
    expect(actionsOf(stateless, 'Fnfiles')).toContain('dynamodb:DeleteItem');
    expect(actionsOf(stateless, 'Fnadmin')).toEqual(
      expect.arrayContaining(['dynamodb:PutItem', 'dynamodb:DeleteItem', 's3:GetObject*', 's3:PutObject']),
    );
    const uploads = actionsOf(stateless, 'Fnuploads');
    expect(uploads).toEqual(expect.arrayContaining(['s3:PutObject', 'dynamodb:PutItem']));
    expect(uploads.some((a) => a.startsWith('cognito-idp:'))).toBe(false);
    const shares = actionsOf(stateless, 'Fnshares');
    expect(shares.some((a) => /^s3:(PutObject|DeleteObject)/.test(a))).toBe(false);
    for (const fn of [
      'Fnauth',
      'Fnfolders',
      'Fnfiles',
      'Fnuploads',
      'Fnaccount',
      'Fnadmin',
      'Fnshares',
      'Fnsystem',
      'Fnstatestream',
      'Fnmaintenance',
    ]) {
      // Data rights only: the application's database role, never `admin`.
      expect(actionsOf(stateless, fn)).toContain('dsql:DbConnect');
      expect(actionsOf(stateless, fn)).not.toContain('dsql:DbConnectAdmin');
    }
    const migrate = actionsOf(stateless, 'Fnmigrate');
    expect(migrate).toContain('dsql:DbConnectAdmin');
    expect(migrate).not.toContain('dsql:DbConnect');
  });

  it('DSQL: the migration maps the IAM role of every function that connects as the application', () => {
    const [schema] = Object.values(
      stateless.findResources('AWS::CloudFormation::CustomResource') as Resources,
    );
    const arns = schema?.Properties.appRoleArns as { 'Fn::GetAtt': [string, string] }[];
    const roles = arns.map((a) => a['Fn::GetAtt'][0]).sort();
    const fns = stateless.findResources('AWS::Lambda::Function') as Resources;
    const roleOf = (prefix: string) =>
      Object.entries(fns).find(([id]) => id.startsWith(prefix))?.[1]?.Properties.Role as {
        'Fn::GetAtt': [string, string];
      };
    const apps = [
      'auth',
      'folders',
      'files',
      'uploads',
      'account',
      'admin',
      'shares',
      'system',
      'statestream',
      'verifier',
      'maintenance',
    ];
    expect(roles).toEqual(apps.map((g) => roleOf(`Fn${g}`)['Fn::GetAtt'][0]).sort());
    expect(roles).not.toContain(roleOf('Fnmigrate')['Fn::GetAtt'][0]);
    // The functions log in as the application role; the migration swaps in admin for itself.
    const files = Object.entries(fns).find(([id]) => id.startsWith('Fnfiles'))?.[1];
    const env = files?.Properties.Environment as { Variables: Record<string, unknown> } | undefined;
    const url = JSON.stringify(env?.Variables.STRATUS_DATABASE_URL);
    expect(url).toContain('postgres://stratus_app@');
  });

  it('state stream: batch item failures, bisection, an S3 on-failure destination (whole records) and two filters', () => {
    const [bucketId] = Object.keys(stateless.findResources('AWS::S3::Bucket'));
    stateless.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 5,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [bucketId, 'Arn'] } } },
      FilterCriteria: { Filters: Match.arrayEquals([Match.anyValue(), Match.anyValue()]) },
      StartingPosition: 'TRIM_HORIZON',
    });
  });

  it('verifier: its own mapping of the stream, one verify# or purgejob# trigger per invocation, ten at once per shard, 15 minutes', () => {
    const [bucketId] = Object.keys(stateless.findResources('AWS::S3::Bucket'));
    const fns = stateless.findResources('AWS::Lambda::Function') as Resources;
    const [verifierId, verifier] = Object.entries(fns).find(([id]) => id.startsWith('Fnverifier')) ?? [];
    expect(verifier?.Properties.Timeout).toBe(900);
    // a run stops at a checkpoint well before the timeout, and the next run goes on from it
    const env = (verifier?.Properties.Environment as { Variables?: Record<string, string> } | undefined)
      ?.Variables;
    const runSeconds = Number(env?.STRATUS_VERIFY_RUN_SECONDS);
    expect(runSeconds).toBeGreaterThan(0);
    expect(runSeconds).toBeLessThanOrEqual(900 - 120);
    stateless.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: verifierId },
      BatchSize: 1,
      ParallelizationFactor: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [bucketId, 'Arn'] } } },
      FilterCriteria: {
        Filters: [
          {
            Pattern: JSON.stringify({
              eventName: ['INSERT', 'MODIFY'],
              dynamodb: { Keys: { pk: { S: [{ prefix: 'verify#' }] } } },
            }),
          },
          {
            Pattern: JSON.stringify({
              eventName: ['INSERT', 'MODIFY'],
              dynamodb: { Keys: { pk: { S: [{ prefix: 'purgejob#' }] } } },
            }),
          },
        ],
      },
    });
    // a purge job's run hands over well before the timeout too
    const purgeSeconds = Number(env?.STRATUS_PURGE_RUN_SECONDS);
    expect(purgeSeconds).toBeGreaterThan(0);
    expect(purgeSeconds).toBeLessThanOrEqual(900 - 120);
    // the state stream's own mapping never sees the triggers
    const mappings = Object.values(stateless.findResources('AWS::Lambda::EventSourceMapping') as Resources);
    const others = mappings.filter(
      (m) => JSON.stringify(m.Properties.FunctionName) !== JSON.stringify({ Ref: verifierId }),
    );
    expect(JSON.stringify(others)).not.toContain('verify#');
    expect(JSON.stringify(others)).not.toContain('purgejob#');
  });

  it('failed stream batches: kept in a retained, private, TLS-only bucket; each one also a notice in a queue', () => {
    stateless.resourceCountIs('AWS::S3::Bucket', 1);
    const [bucketId, bucket] = Object.entries(stateless.findResources('AWS::S3::Bucket'))[0] ?? [];
    expect(bucket?.DeletionPolicy).toBe('Retain');
    expect(bucket?.Properties.NotificationConfiguration).toEqual({
      EventBridgeConfiguration: { EventBridgeEnabled: true },
    });
    expect(bucket?.Properties.PublicAccessBlockConfiguration).toMatchObject({ BlockPublicAcls: true });
    const notices = Object.keys(stateless.findResources('AWS::SQS::Queue')).find((id) =>
      id.startsWith('StreamFailureNotices'),
    );
    stateless.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.s3'],
        'detail-type': ['Object Created'],
        detail: { bucket: { name: [{ Ref: bucketId }] } },
      },
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [notices, 'Arn'] },
          DeadLetterConfig: Match.anyValue(),
        }),
      ],
    });
    // The stream function may write the failure records (Lambda uses its role).
    expect(actionsOf(stateless, 'Fnstatestream')).toContain('s3:PutObject');
  });

  it('scheduled maintenance: failed runs go to an on-failure destination, not only to the delivery DLQ', () => {
    const fns = stateless.findResources('AWS::Lambda::Function') as Resources;
    const maintenance = Object.keys(fns).find((id) => id.startsWith('Fnmaintenance'));
    const failures = Object.keys(stateless.findResources('AWS::SQS::Queue')).find((id) =>
      id.startsWith('MaintenanceFailures'),
    );
    stateless.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: maintenance },
      MaximumRetryAttempts: 1,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [failures, 'Arn'] } } },
    });
    expect(actionsOf(stateless, 'Fnmaintenance')).toContain('sqs:SendMessage');
  });

  it('schedules: health, reconcile and retention, each with retries and a DLQ', () => {
    const rules = Object.values(stateless.findResources('AWS::Events::Rule') as Resources).filter(
      (r) => r.Properties.ScheduleExpression,
    );
    expect(rules.map((r) => r.Properties.ScheduleExpression).sort()).toEqual([
      'rate(1 day)',
      'rate(1 hour)',
      'rate(5 minutes)',
    ]);
    for (const r of rules) {
      const [target] = r.Properties.Targets as { DeadLetterConfig?: unknown; RetryPolicy?: unknown }[];
      expect(target?.DeadLetterConfig).toBeDefined();
      expect(target?.RetryPolicy).toEqual({ MaximumRetryAttempts: 2 });
    }
  });

  it('the hourly sweep is a Distributed Map: one maintenance invocation per share of the id space, at once', () => {
    const machines = stateless.findResources('AWS::StepFunctions::StateMachine') as Resources;
    expect(Object.keys(machines)).toHaveLength(1);
    const [id, machine] = Object.entries(machines)[0] as [string, Resources[string]];
    // The definition: a Pass listing the eight shares, then the Distributed Map over them, whose
    // items invoke the maintenance function with the reconcile task and the share.
    const props = machine.Properties as {
      DefinitionString: { 'Fn::Join': [string, unknown[]] };
      TracingConfiguration: unknown;
      LoggingConfiguration: { Level: string };
    };
    const parts = props.DefinitionString['Fn::Join'][1];
    const json = parts.map((p) => (typeof p === 'string' ? p : '<ref>')).join('');
    const def = JSON.parse(json) as {
      StartAt: string;
      States: Record<string, Record<string, unknown>>;
    };
    const list = def.States[def.StartAt] as { Type: string; Result: { partitions: unknown[] }; Next: string };
    expect(list.Type).toBe('Pass');
    expect(list.Result.partitions).toEqual(Array.from({ length: 8 }, (_, index) => ({ index, count: 8 })));
    const map = def.States[list.Next] as {
      Type: string;
      MaxConcurrency: number;
      ItemsPath: string;
      ItemSelector: Record<string, unknown>;
      ItemProcessor: { ProcessorConfig: { Mode: string; ExecutionType: string } };
    };
    expect(map.Type).toBe('Map');
    expect(map.ItemProcessor.ProcessorConfig).toEqual({ Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' });
    expect(map.MaxConcurrency).toBe(8);
    expect(map.ItemsPath).toBe('$.partitions');
    expect(map.ItemSelector).toEqual({ task: 'reconcile', 'partition.$': '$$.Map.Item.Value' });
    // The item's task is the maintenance function itself (its ARN is the one reference in the definition).
    expect(json).toContain('"Type":"Task","Resource":"<ref>"');
    const refs = parts.filter((p) => typeof p !== 'string') as { 'Fn::GetAtt'?: string[] }[];
    expect(refs.map((r) => r['Fn::GetAtt']?.[0]?.startsWith('Fnmaintenance'))).toEqual([true]);
    expect(props.TracingConfiguration).toEqual({ Enabled: true });
    expect(props.LoggingConfiguration.Level).toBe('ALL');
    // The hourly rule starts it (retries and the DLQ as every schedule), not the function.
    const hourly = Object.values(stateless.findResources('AWS::Events::Rule') as Resources).find(
      (r) => r.Properties.ScheduleExpression === 'rate(1 hour)',
    );
    expect((hourly?.Properties.Targets as { Arn: unknown }[] | undefined)?.[0]?.Arn).toEqual({ Ref: id });
    // Its role may invoke the maintenance function.
    const policies = Object.values(stateless.findResources('AWS::IAM::Policy') as Resources).filter((p) =>
      (p.Properties.Roles as { Ref: string }[]).some((r) => r.Ref.startsWith('ReconcileSweep')),
    );
    expect(JSON.stringify(policies)).toContain('lambda:InvokeFunction');
  });

  it('alarms on errors and throttles of every function, 5xx, every failure queue, stream lag, replication failures and replica lag', () => {
    const alarms = Object.values(stateless.findResources('AWS::CloudWatch::Alarm') as Resources);
    const names = alarms.map((a) => a.Properties.AlarmName as string);
    expect(alarms.length).toBe(11 * 2 + 3 + 3 + 1 + 2);
    for (const fn of ['auth', 'uploads', 'state-stream', 'verifier', 'maintenance']) {
      expect(names).toContain(`stratus-test-${fn}-errors`);
      expect(names).toContain(`stratus-test-${fn}-throttles`);
    }
    for (const n of [
      'api-5xx',
      'stream-failures-depth',
      'maintenance-failures-depth',
      'schedule-dlq-depth',
      'stream-iterator-age',
      'replication-failures',
      'replica-lag',
      'reconcile-sweep-failures',
      'reconcile-sweep-timeouts',
    ])
      expect(names).toContain(`stratus-test-${n}`);
    // Every queue of the stack is a failure queue, and each has a depth alarm at its first message.
    const queues = Object.keys(stateless.findResources('AWS::SQS::Queue'));
    expect(queues.length).toBe(3);
    for (const q of queues)
      stateless.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [q, 'QueueName'] } }],
        Threshold: 1,
      });
    const fns = stateless.findResources('AWS::Lambda::Function') as Resources;
    stateless.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'stratus-test-stream-iterator-age',
      Namespace: 'AWS/Lambda',
      MetricName: 'IteratorAge',
      Statistic: 'Maximum',
      Threshold: 600_000,
      Dimensions: [
        {
          Name: 'FunctionName',
          Value: { Ref: Object.keys(fns).find((id) => id.startsWith('Fnstatestream')) },
        },
      ],
    });
    for (const a of alarms) expect(a.Properties.AlarmActions).toHaveLength(1);
    stateless.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'stratus-test-replica-lag',
      MetricName: 'stratus_replica_lag_seconds',
      Namespace: 'Stratus',
      Dimensions: [{ Name: 'service', Value: 'stratus' }],
    });
    stateless.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });
});

describe('several regions (-c regions=us-east-1,eu-west-1,ap-southeast-2 -c replicationRtc=true)', () => {
  let built: ReturnType<typeof buildApp>;
  beforeAll(() => {
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-cdk-mr-'));
    built = buildApp({
      outdir,
      context: { stage: 'test', regions: 'us-east-1,eu-west-1,ap-southeast-2', replicationRtc: 'true' },
    });
    built.app.synth(); // throws on any unacknowledged cdk-nag finding
  }, 120_000);

  it('puts a blob bucket in each other region, replicating to both peers with RTC, delete markers and replica sync', () => {
    expect(built.replicas.map((r) => r.region)).toEqual(['eu-west-1', 'ap-southeast-2']);
    for (const replica of built.replicas) {
      const t = Template.fromStack(replica);
      const peers = ['us-east-1', 'eu-west-1', 'ap-southeast-2'].filter((r) => r !== replica.region);
      t.hasResourceProperties('AWS::S3::Bucket', {
        VersioningConfiguration: { Status: 'Enabled' },
        BucketEncryption: Match.anyValue(),
        ReplicationConfiguration: {
          Role: Match.anyValue(),
          Rules: peers.map((peer, i) =>
            Match.objectLike({
              Id: `to-${peer}`,
              Priority: i + 1,
              Status: 'Enabled',
              DeleteMarkerReplication: { Status: 'Enabled' },
              SourceSelectionCriteria: { ReplicaModifications: { Status: 'Enabled' } },
              Destination: Match.objectLike({
                ReplicationTime: { Status: 'Enabled', Time: { Minutes: 15 } },
                Metrics: { Status: 'Enabled', EventThreshold: { Minutes: 15 } },
              }),
            }),
          ),
        },
      });
      expect(replica.dependencies).toContain(built.stateful);
    }
  });

  it("applies the primary's rules last, once the replica buckets exist", () => {
    const link = built.link;
    expect(link).toBeDefined();
    for (const r of built.replicas) expect(link?.dependencies).toContain(r);
    const t = Template.fromStack(link as NonNullable<typeof link>);
    const res = Object.values(t.findResources('Custom::AWS') as Resources)[0];
    const create = JSON.stringify(res?.Properties.Create);
    expect(create).toContain('putBucketReplication');
    expect(create).toContain('to-eu-west-1');
    expect(create).toContain('to-ap-southeast-2');
    // The primary bucket is named deterministically so the replicas' rules can address it.
    Template.fromStack(built.stateful).hasResourceProperties('AWS::S3::Bucket', {
      BucketName: { 'Fn::Join': ['-', ['stratus-test-blobs', { Ref: 'AWS::AccountId' }, 'us-east-1']] },
    });
  });
});

describe('an explicit account and region (as the emulator deploy sets CDK_DEFAULT_ACCOUNT)', () => {
  it('passes cdk-nag: acknowledgements that name the account match it rendered literally', () => {
    const before = process.env.CDK_DEFAULT_ACCOUNT;
    process.env.CDK_DEFAULT_ACCOUNT = '000000000000';
    try {
      const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-cdk-acct-'));
      const built = buildApp({ outdir, context: { stage: 'emu', 'aws:cdk:bundling-stacks': [] } });
      expect(built.stateless.account).toBe('000000000000');
      built.app.synth(); // throws on any unacknowledged cdk-nag finding
      const report = JSON.parse(fs.readFileSync(path.join(outdir, 'validation-report.json'), 'utf8')) as {
        pluginReports: { violations?: unknown[] }[];
      };
      expect(report.pluginReports.flatMap((r) => r.violations ?? [])).toEqual([]);
    } finally {
      if (before === undefined) delete process.env.CDK_DEFAULT_ACCOUNT;
      else process.env.CDK_DEFAULT_ACCOUNT = before;
    }
  }, 120_000);
});

describe('prod (-c stage=prod)', () => {
  let t: Template;
  let violations: unknown[];
  beforeAll(() => {
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-cdk-prod-'));
    // Bundling skipped: these assertions are about the stateful stack.
    const built = buildApp({ outdir, context: { stage: 'prod', 'aws:cdk:bundling-stacks': [] } });
    built.app.synth();
    const report = JSON.parse(fs.readFileSync(path.join(outdir, 'validation-report.json'), 'utf8')) as {
      pluginReports: { violations?: unknown[] }[];
    };
    violations = report.pluginReports.flatMap((r) => r.violations ?? []);
    t = Template.fromStack(built.stateful);
  }, 120_000);

  it('passes cdk-nag', () => {
    expect(violations).toEqual([]);
  });

  it('Aurora DSQL: retained on stack deletion, deletion protection on', () => {
    t.hasResource('AWS::DSQL::Cluster', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: Match.objectLike({ DeletionProtectionEnabled: true }),
    });
  });

  it('Aurora DSQL: backed up by AWS Backup, daily (35 days) and monthly (a year), into a retained vault', () => {
    t.hasResource('AWS::Backup::BackupVault', { DeletionPolicy: 'Retain' });
    t.hasResourceProperties('AWS::Backup::BackupPlan', {
      BackupPlan: {
        BackupPlanName: Match.anyValue(),
        BackupPlanRule: Match.arrayWith([
          Match.objectLike({
            RuleName: 'daily',
            ScheduleExpression: 'cron(0 3 * * ? *)',
            Lifecycle: { DeleteAfterDays: 35 },
          }),
          Match.objectLike({ RuleName: 'monthly', Lifecycle: { DeleteAfterDays: 365 } }),
        ]),
      },
    });
    const [clusterId] = Object.keys(t.findResources('AWS::DSQL::Cluster'));
    t.hasResourceProperties('AWS::Backup::BackupSelection', {
      BackupSelection: Match.objectLike({
        Resources: [{ 'Fn::GetAtt': [clusterId, 'ResourceArn'] }],
      }),
    });
  });

  it('other stages keep neither (a dev stack tears down whole)', () => {
    stateful.hasResource('AWS::DSQL::Cluster', { DeletionPolicy: 'Delete' });
    stateful.resourceCountIs('AWS::Backup::BackupPlan', 0);
  });
});
