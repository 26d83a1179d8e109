/**
 * IAM proven from the code. Each function group runs in its own aws-profile composition (as each
 * Lambda does), against the emulator (moto: S3, DynamoDB and Streams, Cognito), PostgreSQL and
 * Redis, with an SDK middleware recording every command the group sends or presigns (a URL is
 * executed with the role of the function that signed it). Every route of the route table is
 * driven through its group's real handler with API Gateway (HTTP API v2) events; the stream and
 * the scheduled function get their own events. Then the CDK app is synthesized and each recorded
 * command is checked against the Allow statements of that function's role: a command the role
 * does not allow fails the test, and the grants no command used are printed for review. The
 * metadata connection is checked the same way: the token each function signs for the database
 * URL the stack gives it (DbConnect or DbConnectAdmin) must be allowed on the cluster.
 *
 * moto does not enforce IAM, which is why this test exists. Its gaps: no GetTokensFromRefreshToken
 * and no RevokeToken (refresh and logout fail there, but the commands are recorded before sending).
 */
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CognitoIdentityProviderClient,
  CreateGroupCommand,
  CreateUserPoolClientCommand,
} from '@aws-sdk/client-cognito-identity-provider';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import type { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { Context, DynamoDBRecord } from 'aws-lambda';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { groupModules, handlerFactories } from '../../functions/api/index.ts';
import { allRoutes, routes } from '../../functions/api/routes.ts';
import { type AwsModules, composeAwsContainer, databaseOptions } from '../../functions/aws-container.ts';
import type { Container } from '../../functions/container.ts';
import { migrationDatabaseOptions } from '../../functions/deploy/migrate.ts';
import { modules as maintenanceModules, runMaintenance } from '../../functions/scheduled/maintenance.ts';
import {
  createStateStreamHandler,
  modules as stateStreamModules,
} from '../../functions/streams/state-stream.ts';
import { createVerifierHandler, modules as verifierModules } from '../../functions/streams/verifier.ts';
import { buildApp } from '../../infra/build-app.ts';
import { migrate } from '../../shared/adapters/postgres/migrations.ts';
import { openPgDatabase } from '../../shared/adapters/postgres/pg-database.ts';
import { type AwsConfig, loadConfig } from '../../shared/config/config.ts';
import type { ApiEvent, ApiResult } from '../../shared/http/api-handler.ts';
import { type Route, type RouteGroup, routeKey } from '../../shared/http/route.ts';
import {
  createStateTable,
  createUserPool,
  dynamoClient,
  REGION,
  s3Client,
  streamRecords,
  uid,
} from '../support/fixtures.ts';
import {
  allowing,
  functionEnv,
  PLACEHOLDER,
  roleStatements,
  type Statement,
} from '../support/iam-policies.ts';
import { type Needed, neededFor, recordInto, type SentCommand } from '../support/sdk-recorder.ts';
import { PG_URL } from '../support/services.ts';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const GROUPS = Object.keys(handlerFactories) as RouteGroup[];
type Worker = 'state-stream' | 'verifier' | 'maintenance';

const sent: SentCommand[] = [];
let config: AwsConfig;
const covered = new Set<string>();
const containers = new Map<RouteGroup | Worker, Container>();
const saved = { ...process.env };
const dbName = uid('stratus_iam_');
const sourceIp = `10.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}.7`;
let bucket: string;
let extraBucket: string;
let table: string;
let userPoolId: string;

async function sql(url: string, text: string) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(text);
  } finally {
    await c.end();
  }
}

const databaseUrl = () => {
  const u = new URL(PG_URL);
  u.pathname = `/${dbName}`;
  return u.toString();
};

// ---- API Gateway v2 events, as the HTTP API's Lambda integration sends them

interface Session {
  accessToken: string;
  refreshToken: string;
  claims: Record<string, unknown>;
}

interface Call {
  params?: Record<string, string>;
  query?: Record<string, string>;
  body?: unknown;
  headers?: Record<string, string>;
  as?: Session;
}

interface Answer {
  status: number;
  body: Record<string, unknown> & { items?: Record<string, unknown>[] };
  headers: Record<string, string>;
}

function apiEvent(route: Route, call: Call): ApiEvent {
  const rawPath = route.path.replace(/\{(\w+)\}/g, (_m, n: string) =>
    encodeURIComponent(call.params?.[n] ?? ''),
  );
  const now = Date.now();
  return {
    version: '2.0',
    routeKey: routeKey(route),
    rawPath,
    rawQueryString: new URLSearchParams(call.query ?? {}).toString(),
    headers: { host: 'api.example.com', 'user-agent': 'iam-test', ...call.headers },
    ...(call.query ? { queryStringParameters: call.query } : {}),
    ...(call.params ? { pathParameters: call.params } : {}),
    ...(call.body === undefined ? {} : { body: JSON.stringify(call.body) }),
    isBase64Encoded: false,
    requestContext: {
      accountId: '123456789012',
      apiId: 'iamtest',
      domainName: 'api.example.com',
      domainPrefix: 'api',
      http: { method: route.method, path: rawPath, protocol: 'HTTP/1.1', sourceIp, userAgent: 'iam-test' },
      requestId: randomUUID(),
      routeKey: routeKey(route),
      stage: '$default',
      time: new Date(now).toISOString(),
      timeEpoch: now,
      authorizer: {
        principalId: '',
        integrationLatency: 0,
        jwt: { claims: (call.as?.claims ?? {}) as Record<string, string>, scopes: [] },
      },
    },
  };
}

const lambdaContext = (name: string): Context =>
  ({
    callbackWaitsForEmptyEventLoop: false,
    functionName: `stratus-${name}`,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${REGION}:123456789012:function:stratus-${name}`,
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/stratus-${name}`,
    logStreamName: 'iam-test',
    getRemainingTimeInMillis: () => 15_000,
  }) as Context;

const handlers = new Map<RouteGroup, (e: ApiEvent, c: Context) => Promise<ApiResult>>();

/** Invokes the route's group handler; `expected` lists the statuses the step may answer. */
async function api(id: keyof typeof routes, call: Call = {}, expected: number[] = [200]): Promise<Answer> {
  const route = routes[id] as Route;
  const handler = handlers.get(route.group);
  if (!handler) throw new Error(`no handler for ${route.group}`);
  const res = await handler(apiEvent(route, call), lambdaContext(route.group));
  covered.add(route.id);
  const status = res.statusCode ?? 200;
  const text = res.body ?? '';
  let body: Answer['body'] = {};
  try {
    body = text ? (JSON.parse(text) as Answer['body']) : {};
  } catch {
    body = { text };
  }
  expect(expected, `${route.id} answered ${status}: ${text.slice(0, 300)}`).toContain(status);
  return { status, body, headers: (res.headers ?? {}) as Record<string, string> };
}

function session(tokens: Record<string, unknown>): Session {
  const accessToken = String(tokens.accessToken);
  const claims = JSON.parse(Buffer.from(accessToken.split('.')[1] ?? '', 'base64url').toString('utf8'));
  return { accessToken, refreshToken: String(tokens.refreshToken), claims };
}

/** Uploads `data` through the uploads group: create, PUT each presigned part, complete. */
async function upload(
  as: Session,
  parentId: string,
  name: string,
  data: Buffer,
  extra: Record<string, unknown> = {},
  partSize = 5 * MiB,
  completes: number[] = [200, 201],
) {
  const parts = [];
  for (let i = 0, n = 1; i < Math.max(data.length, 1); i += partSize, n++)
    parts.push({ partNumber: n, sha256: sha(data.subarray(i, i + partSize)) });
  const created = await api(
    'createUpload',
    {
      as,
      body: {
        parentId,
        name,
        size: data.length,
        sha256: sha(data),
        contentType: 'application/octet-stream',
        partSize,
        parts,
        ...extra,
      },
    },
    [200, 201],
  );
  const urls = created.body.parts as { partNumber: number; url: string; headers: Record<string, string> }[];
  // Reused parts (delta re-upload) are copied server-side; only the others are sent and named.
  const etags: { partNumber: number; etag: string }[] = [];
  for (const p of urls) {
    const chunk = data.subarray((p.partNumber - 1) * partSize, p.partNumber * partSize);
    const res = await fetch(p.url, { method: 'PUT', headers: p.headers, body: chunk });
    expect(res.status, await res.clone().text()).toBe(200);
    etags.push({ partNumber: p.partNumber, etag: res.headers.get('etag') ?? '' });
  }
  const uploadId = String(created.body.uploadId);
  await api('getUpload', { as, params: { id: uploadId } });
  const done = await api(
    'completeUpload',
    { as, params: { id: uploadId }, body: { parts: etags } },
    completes,
  );
  return { uploadId, created: created.body, ...(done.body as { fileId: string; versionId: string }) };
}

// ---- the compositions

beforeAll(async () => {
  const endpoint = inject('awsEndpoint');
  Object.assign(process.env, {
    AWS_REGION: REGION,
    AWS_ENDPOINT_URL: endpoint,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    POWERTOOLS_METRICS_DISABLED: 'true',
    POWERTOOLS_DEV: 'false',
  });
  const s3 = s3Client();
  bucket = uid('blobs-');
  extraBucket = uid('node-');
  for (const b of [bucket, extraBucket]) await s3.send(new CreateBucketCommand({ Bucket: b }));
  table = await createStateTable(dynamoClient());
  const cognito = new CognitoIdentityProviderClient({
    region: REGION,
    endpoint,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  // The stack's policy: length, no forced character classes.
  userPoolId = await createUserPool(cognito);
  const clientId = String(
    (
      await cognito.send(
        new CreateUserPoolClientCommand({
          UserPoolId: userPoolId,
          ClientName: 'api',
          ExplicitAuthFlows: ['ALLOW_USER_PASSWORD_AUTH', 'ALLOW_REFRESH_TOKEN_AUTH'],
        }),
      )
    ).UserPoolClient?.ClientId,
  );
  for (const GroupName of ['admin', 'user'])
    await cognito.send(new CreateGroupCommand({ UserPoolId: userPoolId, GroupName }));

  await sql(PG_URL, `create database ${dbName}`);
  // The deploy-time migration's job (its own connection is checked below, from the template).
  const admin = await openPgDatabase({ connectionString: databaseUrl(), max: 1 });
  await migrate(admin);
  await admin.close();

  config = loadConfig({
    STRATUS_PROFILE: 'aws',
    AWS_REGION: REGION,
    STRATUS_BUCKET: bucket,
    STRATUS_TABLE: table,
    STRATUS_DATABASE_URL: databaseUrl(),
    STRATUS_USER_POOL_ID: userPoolId,
    STRATUS_USER_POOL_CLIENT_ID: clientId,
    STRATUS_REDIS_URL: inject('redisUrl'),
    STRATUS_KDF_COST: '10',
    STRATUS_PART_SIZE_BYTES: String(5 * MiB),
    STRATUS_LOG_LEVEL: 'silent',
  }) as AwsConfig;
  // Each function composed as its entry composes it (its modules), so a call its bundle cannot make
  // (auth has no S3 client; only auth, admin and maintenance have Cognito) fails here too.
  const modules: Record<string, AwsModules> = {
    ...groupModules,
    'state-stream': stateStreamModules,
    verifier: verifierModules,
    maintenance: maintenanceModules,
  };
  for (const name of [...GROUPS, 'state-stream', 'verifier', 'maintenance'] as const)
    containers.set(
      name,
      await composeAwsContainer(config, modules[name] ?? {}, { client: recordInto(sent, name) }),
    );
  for (const g of GROUPS) handlers.set(g, handlerFactories[g](containers.get(g) as Container));
}, 120_000);

afterAll(async () => {
  for (const c of containers.values()) await c.close().catch(() => undefined);
  process.env = { ...saved };
  await sql(PG_URL, `drop database if exists ${dbName} with (force)`);
});

// ---- the synthesized grants

interface Synth {
  stack: Stack;
  template: Parameters<typeof roleStatements>[1];
  functions: Record<string, IFunction>;
  imports: Record<string, string>;
}

function synthesize(): Synth {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-iam-'));
  // Bundling is skipped: the policies do not depend on the code assets.
  const built = buildApp({ outdir, context: { stage: 'test', 'aws:cdk:bundling-stacks': [] } });
  const { stateful, stateless } = built;
  const importName = (v: string) =>
    (stateful.resolve(stateful.exportValue(v)) as { 'Fn::ImportValue': string })['Fn::ImportValue'];
  const cluster = stateful.metadata.dsql;
  if (!cluster) throw new Error('the default metadata store is DSQL');
  const imports = {
    [importName(stateful.bucket.bucketArn)]: PLACEHOLDER.bucketArn,
    [importName(stateful.table.tableArn)]: PLACEHOLDER.tableArn,
    [importName(stateful.userPool.userPoolArn)]: PLACEHOLDER.userPoolArn,
    [importName(cluster.attrResourceArn)]: PLACEHOLDER.clusterArn,
    [importName(cluster.attrEndpoint)]: PLACEHOLDER.clusterEndpoint,
  };
  built.app.synth();
  return {
    stack: stateless,
    template: Template.fromStack(stateless).toJSON() as Synth['template'],
    functions: {
      ...stateless.functions,
      'state-stream': stateless.workers.stateStream,
      verifier: stateless.workers.verifier,
      maintenance: stateless.workers.maintenance,
      migrate: stateless.migrations.fn,
    },
    imports,
  };
}

/** The ARN a recorded resource has in the stack (placeholders for the stack's own resources). */
function arnOf(n: Needed): string {
  const r = n.resource;
  switch (r.kind) {
    case 'bucket':
      return r.bucket === bucket ? PLACEHOLDER.bucketArn : `arn:aws:s3:::${r.bucket}`;
    case 'object':
      return `${r.bucket === bucket ? PLACEHOLDER.bucketArn : `arn:aws:s3:::${r.bucket}`}/${r.key}`;
    case 'table':
      return r.table === table ? PLACEHOLDER.tableArn : `arn:aws:dynamodb:REGION:ACCOUNT:table/${r.table}`;
    case 'userPool':
      return r.userPoolId === userPoolId
        ? PLACEHOLDER.userPoolArn
        : `arn:aws:cognito-idp:REGION:ACCOUNT:userpool/${r.userPoolId}`;
  }
}

// ---- the scenario

describe('IAM: what the code sends is what the roles allow', () => {
  it('drives every route, the stream and the schedules, then checks each command against its role', async () => {
    // system
    await api('health');
    await api('deepHealth');
    await api('openapi');
    await api('webIndex');
    await api('webAsset', { params: { file: 'no-such-file.js' } }, [200, 404]);

    // auth: an admin (registered, then promoted by the operator's promote-admin task, the first-admin
    // step of docs/deploy.md; registration never grants admin) and a user
    const password = 'correct horse battery';
    await api('register', { body: { email: 'admin@iam.example.com', password } }, [201]);
    await runMaintenance(containers.get('maintenance') as Container, 'promote-admin', {
      email: 'admin@iam.example.com',
    });
    await api('register', { body: { email: 'bob@iam.example.com', password } }, [201]);
    const admin = session((await api('login', { body: { email: 'admin@iam.example.com', password } })).body);
    const bob = session((await api('login', { body: { email: 'bob@iam.example.com', password } })).body);
    const me = await api('me', { as: admin });
    expect(me.body.role).toBe('admin');
    const root = String(me.body.rootFolderId);

    // folders
    const docs = await api('createFolder', { as: admin, body: { parentId: 'root', name: 'Docs' } }, [201]);
    const docsId = String(docs.body.id);
    const docsGet = await api('getFolder', { as: admin, params: { id: docsId } });
    await api('listChildren', { as: admin, params: { id: 'root' } });
    await api('resolvePath', { as: admin, query: { path: '/Docs' } });
    await api(
      'patchFolder',
      {
        as: admin,
        params: { id: docsId },
        body: { name: 'Papers' },
        headers: { 'if-match': docsGet.headers.etag ?? '' },
      },
      [200],
    );

    // uploads: a two-part file, a new version reusing its unchanged first part (server-side
    // copy), renewed URLs, and an aborted upload
    const v1 = Buffer.alloc(6 * MiB, 1);
    const first = await upload(admin, docsId, 'report.bin', v1);
    const v2 = Buffer.concat([v1.subarray(0, 5 * MiB), Buffer.alloc(MiB, 2)]);
    const second = await upload(admin, docsId, 'report.bin', v2, { baseVersionId: first.versionId });
    expect(second.fileId).toBe(first.fileId);
    expect(second.created.reusedParts).toEqual([1]);
    const pending = await api(
      'createUpload',
      { as: admin, body: { parentId: docsId, name: 'later.bin', size: 10, sha256: sha(Buffer.alloc(10)) } },
      [200, 201],
    );
    await api('renewParts', {
      as: admin,
      params: { id: String(pending.body.uploadId) },
      body: { parts: [{ partNumber: 1 }] },
    });
    await api('abortUpload', { as: admin, params: { id: String(pending.body.uploadId) } }, [200, 204]);

    // files
    const fileId = first.fileId;
    const file = await api('getFile', { as: admin, params: { id: fileId } });
    const link = await api('download', { as: admin, params: { id: fileId }, query: { format: 'json' } });
    expect((await fetch(String(link.body.url))).status).toBe(200);
    const versions = await api('listVersions', { as: admin, params: { id: fileId } });
    const old = versions.body.items?.find((v) => !v.current);
    await api(
      'restoreVersion',
      { as: admin, params: { id: fileId, versionId: String(old?.versionId) } },
      [200, 201],
    );
    const renamed = await api('getFile', { as: admin, params: { id: fileId } });
    await api('patchFile', {
      as: admin,
      params: { id: fileId },
      body: { name: 'final.bin' },
      headers: { 'if-match': renamed.headers.etag ?? '' },
    });
    expect(file.body.id).toBe(fileId);
    const copy = await api(
      'copyFile',
      { as: admin, params: { id: fileId }, body: { parentId: root } },
      [200, 201],
    );
    await api('deleteFile', { as: admin, params: { id: String(copy.body.id) } }, [200, 204]);
    await api('listTrash', { as: admin });
    await api('restoreTrash', { as: admin, params: { id: String(copy.body.id) } }, [200]);
    await api('deleteFile', { as: admin, params: { id: String(copy.body.id) } }, [200, 204]);
    await api('purgeTrash', { as: admin, params: { id: String(copy.body.id) } }, [200, 204]);
    const scratch = await upload(admin, root, 'scratch.txt', Buffer.from('scratch'));
    await api('deleteFile', { as: admin, params: { id: scratch.fileId } }, [200, 204]);
    const emptied = await api('emptyTrash', { as: admin }, [200, 204]);
    const jobId = String(emptied.headers['content-location']).split('/').pop() ?? '';
    await api('getJob', { as: admin, params: { id: jobId } });

    // account
    const granted = await api(
      'grant',
      { as: admin, body: { itemId: docsId, email: 'bob@iam.example.com', role: 'viewer' } },
      [200, 201],
    );
    await api('listPermissions', { as: admin, query: { itemId: docsId } });
    await api('shared', { as: bob });
    await api('revoke', { as: admin, params: { id: String(granted.body.id) } }, [200, 204]);
    await api('usage', { as: admin });
    await api('audit', { as: admin });
    await api('getRetention', { as: admin });
    await api('setRetention', { as: admin, body: { keepVersions: 5, keepDays: null, trashDays: 30 } });

    // shares: a file link with a password, a folder link and one item in it
    const share = await api(
      'createShare',
      { as: admin, body: { itemId: fileId, expiresInSeconds: 3600, password: 'open sesame' } },
      [200, 201],
    );
    await api('listShares', { as: admin, query: { itemId: fileId } });
    const token = String(share.body.token ?? String(share.body.url).split('/s/')[1]);
    const opened = await api('openShare', {
      params: { token },
      query: { format: 'json' },
      headers: { 'x-share-password': 'open sesame' },
    });
    expect((await fetch(String(opened.body.url))).status).toBe(200);
    const folderShare = await api(
      'createShare',
      { as: admin, body: { itemId: docsId, expiresInSeconds: 3600 } },
      [200, 201],
    );
    const folderToken = String(folderShare.body.token ?? String(folderShare.body.url).split('/s/')[1]);
    await api('openShareItem', { params: { token: folderToken, itemId: fileId }, query: { format: 'json' } });
    await api('revokeShare', { as: admin, params: { id: String(share.body.id) } }, [200, 204]);

    // admin: sweeps, usage, and a node added, drained and removed
    await api('sweep', { as: admin });
    await api('adminUsage', { as: admin });
    await api('listNodes', { as: admin });
    await api(
      'addNode',
      {
        as: admin,
        body: {
          id: 's3-extra',
          kind: 's3',
          bucket: extraBucket,
          region: REGION,
          endpoint: inject('awsEndpoint'),
        },
      },
      [201],
    );
    await api('reconcile', { as: admin });
    await api('drainNode', { as: admin, params: { id: 's3-extra' } }, [202]);
    await api('reconcile', { as: admin });
    await api('removeNode', { as: admin, params: { id: 's3-extra' } }, [204, 409]);
    await api('replication', { as: admin });
    // a user's role: bob promoted and demoted again (the users table, then the Cognito groups)
    await api('patchUser', { as: admin, params: { id: String(bob.claims.sub) }, body: { role: 'admin' } });
    await api('patchUser', { as: admin, params: { id: String(bob.claims.sub) }, body: { role: 'user' } });

    // the folder goes last; then sign-out (refresh and logout: moto lacks both Cognito calls)
    await api('deleteFolder', { as: admin, params: { id: docsId } }, [200, 204]);
    await api('refresh', { body: { refreshToken: bob.refreshToken } }, [200, 401, 500, 503]);
    await api('logout', { as: bob, body: { refreshToken: bob.refreshToken } }, [200, 204, 500, 503]);
    // a password reset (moto accepts any code that is not one of its own)
    await api('forgotPassword', { body: { email: 'bob@iam.example.com' } }, [202]);
    await api(
      'resetPassword',
      { body: { email: 'bob@iam.example.com', code: '123456', newPassword: 'another horse battery' } },
      [204],
    );

    // the background verifier: an upload past STRATUS_INLINE_VERIFY_BYTES answers 202 (the uploads
    // function composed here with a limit of 0), and the verifier function, whose mapping lets
    // through only verify# triggers, reads it, commits it and ends the session committed
    const background = await composeAwsContainer(
      { ...config, STRATUS_INLINE_VERIFY_BYTES: 0 },
      groupModules.uploads,
      {
        client: recordInto(sent, 'uploads'),
      },
    );
    handlers.set('uploads', handlerFactories.uploads(background));
    const behind = await upload(
      admin,
      'root',
      'verified-behind.bin',
      Buffer.alloc(6 * MiB, 7),
      {},
      5 * MiB,
      [202],
    );
    handlers.set('uploads', handlerFactories.uploads(containers.get('uploads') as Container));
    await background.close();
    const triggers = (await streamRecords(table)).filter(
      (r) => r.eventName !== 'REMOVE' && String(r.dynamodb?.Keys?.pk?.S ?? '').startsWith('verify#'),
    );
    expect(triggers.length).toBeGreaterThan(0);
    const verifier = createVerifierHandler(containers.get('verifier') as Container);
    expect((await verifier({ Records: triggers as unknown as DynamoDBRecord[] })).batchItemFailures).toEqual(
      [],
    );
    expect((await api('getUpload', { as: admin, params: { id: behind.uploadId } })).body.state).toBe(
      'committed',
    );

    // the state stream: the records its event source mapping's filters let through
    const records = (await streamRecords(table)).filter((r) => {
      const pk = String(r.dynamodb?.Keys?.pk?.S ?? '');
      return (
        (r.eventName === 'REMOVE' && pk.startsWith('upload#')) ||
        (r.eventName !== 'REMOVE' && pk.startsWith('ledger#'))
      );
    });
    expect(records.length).toBeGreaterThan(0);
    const stream = createStateStreamHandler(containers.get('state-stream') as Container);
    const result = await stream({ Records: records as unknown as DynamoDBRecord[] });
    expect(result.batchItemFailures).toEqual([]);

    // the schedules
    const maintenance = containers.get('maintenance') as Container;
    for (const task of ['health', 'reconcile', 'retention']) await runMaintenance(maintenance, task);
    // The operator's first admin: an account registered above, promoted by invoking the function.
    expect(
      await runMaintenance(maintenance, 'promote-admin', { email: 'bob@iam.example.com' }),
    ).toMatchObject({
      admin: { email: 'bob@iam.example.com', role: 'admin' },
    });

    // ---- every route ran
    expect(allRoutes.map((r) => r.id).filter((id) => !covered.has(id))).toEqual([]);

    // ---- every command is allowed to the role of the function that sent it
    const synth = synthesize();
    const statements = new Map<string, Statement[]>();
    for (const [name, fn] of Object.entries(synth.functions))
      statements.set(name, roleStatements(synth.stack, synth.template, fn, synth.imports));
    const used = new Map<string, Set<string>>();
    const denied = new Set<string>();
    const seen = new Set<string>();
    for (const c of sent) {
      // A node added at run time is a bucket outside the stack: its grants are the operator's.
      // So is reading one as a server-side copy's source (CopyObject into the stack's bucket).
      if (c.service === 'S3' && c.input.Bucket === extraBucket) continue;
      for (const need of neededFor(c)) {
        if ('bucket' in need.resource && need.resource.bucket === extraBucket) continue;
        const arn = arnOf(need);
        const hits = allowing(statements.get(c.group) ?? [], need.action, arn);
        seen.add(`${c.group}: ${c.service} ${c.command} -> ${need.action}`);
        if (!hits.length) denied.add(`${c.group}: ${c.service} ${c.command} needs ${need.action} on ${arn}`);
        for (const h of hits) {
          if (!used.has(c.group)) used.set(c.group, new Set());
          used.get(c.group)?.add(h);
        }
      }
    }

    // ---- and so is the metadata connection each function signs for
    for (const [name, fn] of Object.entries(synth.functions)) {
      const url = functionEnv(synth.stack, synth.template, fn, 'STRATUS_DATABASE_URL', synth.imports);
      expect(url, name).toContain(PLACEHOLDER.clusterEndpoint);
      const options =
        name === 'migrate'
          ? migrationDatabaseOptions(String(url), REGION)
          : databaseOptions(String(url), REGION);
      const signed = new URL(`https://${await (options.password as () => Promise<string>)()}`);
      const action = `dsql:${signed.searchParams.get('Action')}`;
      seen.add(`${name}: connect ${new URL(options.connectionString).username} -> ${action}`);
      const hits = allowing(statements.get(name) ?? [], action, PLACEHOLDER.clusterArn);
      if (!hits.length) denied.add(`${name}: the database connection needs ${action} on the cluster`);
      for (const h of hits) {
        if (!used.has(name)) used.set(name, new Set());
        used.get(name)?.add(h);
      }
    }
    console.log(`IAM: ${sent.length} commands recorded; per function:\n  ${[...seen].sort().join('\n  ')}`);
    expect([...denied].sort()).toEqual([]);

    // ---- grants no command used, for review. X-Ray's are the tracer's; grants on anything but the
    // stack's data (the stream, the failure destinations) are used by Lambda on the function's behalf.
    const ours = Object.values(PLACEHOLDER).filter((p) => p.startsWith('arn:'));
    const unused: string[] = [];
    for (const [name, list] of statements)
      list.forEach((st, i) => {
        if (!st.resources.some((r) => ours.some((p) => r === p || r.startsWith(`${p}/`)))) return;
        const idle = st.actions.filter((a) => !a.startsWith('xray:') && !used.get(name)?.has(`${i}:${a}`));
        if (idle.length) unused.push(`${name}: ${idle.join(' ')} on ${st.resources.join(' ')}`);
      });
    console.log(`IAM grants no recorded command used (for review):\n  ${unused.join('\n  ') || '(none)'}`);
  }, 300_000);
});
