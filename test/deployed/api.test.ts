/**
 * The CDK app as deployed (by `cdk deploy`) into the MiniStack emulator, tested from outside over
 * HTTP with the project's own client: API Gateway (HTTP API, JWT authorizer on the Cognito issuer),
 * the Lambda functions, Cognito, S3 presigned multipart uploads, DynamoDB and the migrations custom
 * resource. Nothing here reaches into the functions: every check is what a user of the deployed API
 * would see. The routes not reached here are in routes.suite.ts (called below); the last describe
 * fails on any route of the table that no request reached (route-coverage.ts, where the rule is).
 */
import { randomBytes } from 'node:crypto';
import { DeleteItemCommand, DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import pg from 'pg';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { ApiError, type FileItem, StratusApi } from '../../clients/api.ts';
import { nodeHasher } from '../../clients/node-io.ts';
import { fetchPutPart, uploadFile } from '../../clients/upload.ts';
import { routes } from '../../functions/api/routes.ts';
import { describeRouteCoverage } from './route-coverage.ts';
import { describeOtherRoutes } from './routes.suite.ts';
import { API, call, EMULATOR, email, memorySource, PASSWORD, sha256, upload } from './support.ts';

const outputs = inject('deployedOutputs');
const stage = inject('deployedStage');
const stateful = outputs[`Stratus-${stage}-Stateful`] ?? {};

async function download(api: StratusApi, fileId: string, versionId?: string) {
  const { url } = await api.downloadUrl(fileId, versionId);
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return new Uint8Array(await res.arrayBuffer());
}

let user: StratusApi;
let rootId: string;

beforeAll(async () => {
  user = new StratusApi({ endpoint: API });
  const address = email();
  await user.register(address, PASSWORD);
  await user.login(address, PASSWORD);
  rootId = (await user.me()).rootFolderId;
});

describe('the deployed stack', () => {
  it('ran the schema migrations at deploy time (custom resource)', async () => {
    const c = new pg.Client({ connectionString: inject('deployedDatabaseUrl') });
    await c.connect();
    try {
      const { rows } = await c.query<{ n: number }>('select count(*)::int as n from schema_migrations');
      expect(rows[0]?.n).toBeGreaterThanOrEqual(5);
    } finally {
      await c.end();
    }
  });

  it('answers /health through API Gateway and the system function, with security headers', async () => {
    const res = await fetch(`${API}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok' });
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('refuses a request without a token, or with a forged one, at the JWT authorizer', async () => {
    expect((await fetch(`${API}/v1/me`)).status).toBe(401);
    const [h, p] = (user.tokens?.accessToken ?? '').split('.');
    const forged = `${h}.${p}.${Buffer.from('not the signature').toString('base64url')}`;
    expect((await fetch(`${API}/v1/me`, { headers: { authorization: `Bearer ${forged}` } })).status).toBe(
      401,
    );
  });

  it('answers bad input with problem+json, a stable type and 400', async () => {
    const res = await call<{ type: string; status: number }>(routes.register, {
      body: { email: 'not an address', password: 'x' },
      expect: 400,
    });
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    const problem = res.body;
    expect(problem.type).toBe('urn:stratus:problem:validation-error');
    expect(problem.status).toBe(400);
  });
});

describe('accounts in the deployed user pool (Cognito)', () => {
  it('signs in with tokens the deployed pool issued', async () => {
    const claims = JSON.parse(
      Buffer.from((user.tokens?.accessToken ?? '').split('.')[1] ?? '', 'base64url').toString('utf8'),
    ) as { iss: string; token_use: string };
    expect(claims.token_use).toBe('access');
    expect(claims.iss.endsWith(`/${stateful.UserPoolId}`)).toBe(true);
    expect((await user.me()).role).toBe('user');
  });

  it('refuses a wrong password and a taken address with problem types', async () => {
    const other = new StratusApi({ endpoint: API });
    const address = email();
    await other.register(address, PASSWORD);
    const wrong = await other.login(address, 'wrong password entirely').catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(ApiError);
    expect((wrong as ApiError).status).toBe(401);
    const taken = await other.register(address, PASSWORD).catch((e: unknown) => e);
    expect((taken as ApiError).status).toBe(409);
  });

  it('refreshes (GetTokensFromRefreshToken), and sign-out ends the session', async () => {
    const s = new StratusApi({ endpoint: API });
    const address = email();
    await s.register(address, PASSWORD);
    const first = await s.login(address, PASSWORD);
    await s.refresh();
    expect(s.tokens?.accessToken).toBeTruthy();
    // The deployed client refreshes with GetTokensFromRefreshToken (the rotation API). MiniStack
    // answers it but does not model RefreshTokenRotation (same refresh token back): rotation itself
    // is asserted on the template (test/infra), not here.
    expect((await s.me()).email).toBe(address);
    const refreshToken = s.tokens?.refreshToken ?? first.refreshToken;
    await s.logout();
    // The signed-out session's refresh token no longer works.
    const res = await call<{ type: string }>(routes.refresh, { body: { refreshToken }, expect: 401 });
    expect(res.body.type).toMatch(/^urn:stratus:problem:/);
  });
});

describe('files through the deployed stack (S3 presigned multipart uploads)', () => {
  const big = randomBytes(20 * 1024 * 1024 + 12_345);
  let file: FileItem;

  it('uploads a three-part file straight to the blob bucket and downloads it intact', async () => {
    // The emulator deploy verifies uploads past 8 MiB in the background (-c inlineVerifyMiB=8):
    // the complete answers 202, and the verifier function commits the file from its stream trigger.
    const phases = new Set<string>();
    const r = await upload(user, rootId, 'big.bin', big, undefined, (p) => phases.add(p.phase));
    expect(phases).toContain('verifying');
    expect(r.bytesSent).toBe(big.length);
    file = await user.file(r.fileId);
    expect(file.size).toBe(big.length);
    expect(file.sha256).toBe(sha256(big));
    expect(sha256(await download(user, file.id))).toBe(sha256(big));
    const listing = await user.allChildren(rootId);
    expect(listing.map((i) => i.name)).toContain('big.bin');
    expect((await user.usage()).usedBytes).toBeGreaterThanOrEqual(big.length);
  });

  it('keeps versions and restores an older one', async () => {
    const small = new TextEncoder().encode('version two');
    await uploadFile({
      api: user,
      source: memorySource(small),
      parentId: rootId,
      name: 'big.bin',
      baseVersionId: file.versionId,
      newHasher: nodeHasher,
      putPart: fetchPutPart(),
    });
    const versions = await user.versions(file.id);
    expect(versions).toHaveLength(2);
    expect(sha256(await download(user, file.id))).toBe(sha256(small));
    const original = versions.find((v) => v.sha256 === sha256(big));
    expect(original).toBeDefined();
    await user.restoreVersion(file.id, original?.versionId ?? '');
    expect(sha256(await download(user, file.id))).toBe(sha256(big));
  });

  it('moves a file to the trash and restores it', async () => {
    const r = await upload(user, rootId, 'note.txt', new TextEncoder().encode('hello'));
    const item = await user.file(r.fileId);
    await user.remove(item);
    expect((await user.trash()).map((t) => t.id)).toContain(item.id);
    await user.restoreFromTrash(item.id);
    expect((await user.allChildren(rootId)).map((i) => i.name)).toContain('note.txt');
  });

  it('keeps another user out, and shares through a link that needs no account', async () => {
    const r = await upload(user, rootId, 'shared.txt', new TextEncoder().encode('for the link'));
    const stranger = new StratusApi({ endpoint: API });
    const address = email();
    await stranger.register(address, PASSWORD);
    await stranger.login(address, PASSWORD);
    const denied = await stranger.file(r.fileId).catch((e: unknown) => e);
    expect([403, 404]).toContain((denied as ApiError).status);

    const share = await user.createShare(r.fileId, 3600);
    const info = await fetch(`${API}/s/${share.token}?format=json`);
    expect(info.status).toBe(200);
    const body = (await info.json()) as { downloadUrl?: string; url?: string };
    const url = body.downloadUrl ?? body.url;
    expect(typeof url).toBe('string');
    const got = await fetch(url as string);
    expect(await got.text()).toBe('for the link');
  });

  it('storage refuses a part whose bytes differ from the SHA-256 its URL was signed for; the old content stays', async () => {
    const bytes = new TextEncoder().encode('original content');
    const r = await upload(user, rootId, 'guarded.txt', bytes);
    const tampered = await uploadFile({
      api: user,
      source: memorySource(new TextEncoder().encode('tampered bytes!!')),
      parentId: rootId,
      name: 'guarded.txt',
      baseVersionId: (await user.file(r.fileId)).versionId,
      newHasher: () => ({ update: () => undefined, digest: () => sha256(bytes) }),
      putPart: fetchPutPart(),
    }).catch((e: unknown) => e);
    expect(tampered).toBeInstanceOf(ApiError);
    // S3 itself refuses the PUT: the presigned URL is signed for the declared SHA-256.
    expect((tampered as ApiError).slug).toBe('part-rejected');
    expect((tampered as ApiError).message).toMatch(/storage refused part 1 \(HTTP 400\)/);
    expect(sha256(await download(user, r.fileId))).toBe(sha256(bytes));
  });
});

describe('the state stream (DynamoDB Streams -> the state-stream function)', () => {
  const emulator = {
    region: 'us-east-1',
    endpoint: inject('emulatorEndpoint'),
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  };
  const dynamo = new DynamoDBClient(emulator);
  const s3 = new S3Client({ ...emulator, forcePathStyle: true });

  async function openUploads(bucket: string, key: string) {
    const res = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
    return (res.Uploads ?? []).map((u) => u.UploadId);
  }

  it('releases the multipart upload of a session that disappears from the table (as TTL expiry does)', async () => {
    const bytes = randomBytes(12 * 1024 * 1024);
    const created = await user.createUpload({
      parentId: rootId,
      name: 'abandoned.bin',
      size: bytes.length,
      sha256: sha256(bytes),
      partSize: 8 * 1024 * 1024,
    });
    const table = stateful.StateTable as string;
    const bucket = stateful.BlobBucket as string;
    const key = { pk: { S: `upload#${created.uploadId}` }, sk: { S: 's' } };
    const item = await dynamo.send(new GetItemCommand({ TableName: table, Key: key }));
    const session = (unmarshall(item.Item ?? {}) as { data: { blobKey: string; storageUploadId: string } })
      .data;
    expect(await openUploads(bucket, session.blobKey)).toContain(session.storageUploadId);

    // The session vanishes without the API (TTL would do this); only the stream can clean up.
    await dynamo.send(new DeleteItemCommand({ TableName: table, Key: key }));
    const deadline = Date.now() + 60_000;
    let open = await openUploads(bucket, session.blobKey);
    while (open.includes(session.storageUploadId) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      open = await openUploads(bucket, session.blobKey);
    }
    expect(open).not.toContain(session.storageUploadId);
  });
});

describe('the scheduled maintenance function (EventBridge targets)', () => {
  const endpoint = inject('emulatorEndpoint');

  /** Invokes a deployed function by the name CloudFormation gave it (Lambda's REST API). */
  async function invoke(logicalPrefix: string, payload: unknown) {
    const list = (await (await fetch(`${endpoint}/2015-03-31/functions/`)).json()) as {
      Functions: { FunctionName: string }[];
    };
    const fn = list.Functions.find((f) => f.FunctionName.includes(logicalPrefix));
    expect(fn, `a deployed function named like ${logicalPrefix}`).toBeDefined();
    const res = await fetch(`${endpoint}/2015-03-31/functions/${fn?.FunctionName}/invocations`, {
      method: 'POST',
      body: JSON.stringify(payload),
    });
    return {
      error: res.headers.get('x-amz-function-error'),
      body: (await res.json()) as Record<string, unknown>,
    };
  }

  it('checks the storage nodes (health task): the deployed S3 bucket answers', async () => {
    const { error, body } = await invoke('Fnmaintenance', { task: 'health' });
    expect(error).toBeNull();
    // One S3 node in the function's region: the canary wrote, read and deleted an object there.
    const health = body.health as Record<string, { health: string }>;
    expect(Object.keys(health)).toEqual(['s3-us-east-1']);
    expect(health['s3-us-east-1']?.health).toBe('healthy');
  });

  it('sweeps retention and reconciles without errors', async () => {
    const retention = await invoke('Fnmaintenance', { task: 'retention' });
    expect(retention.error).toBeNull();
    expect(retention.body).toHaveProperty('retention');
    const reconcile = await invoke('Fnmaintenance', { task: 'reconcile' });
    expect(reconcile.error).toBeNull();
    expect(reconcile.body).toHaveProperty('reconcile');
  });
});

// Every other route of the table (routes.suite.ts), then the coverage check over all of it: last.
describeOtherRoutes();
describeRouteCoverage({ emulatorEndpoint: EMULATOR, apiBase: API });
