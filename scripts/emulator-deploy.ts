/**
 * Deploys the CDK app into MiniStack, an AWS emulator that runs here without Docker (pure Python,
 * from PyPI, in .venv-ministack), the way `cdk deploy` deploys to an account: `cdk bootstrap`, then
 * `cdk deploy --all` with AWS_ENDPOINT_URL pointing at the emulator. The functions run as Node.js
 * subprocesses of the emulator; API Gateway (HTTP API, JWT authorizer), Cognito, S3, DynamoDB
 * Streams, EventBridge, SQS, SNS, CloudWatch and the migrations custom resource are the emulator's.
 *
 * Emulator gaps and how the deploy meets them (docs/deploy.md, "Local emulation"):
 * - MiniStack has no AWS::DSQL::Cluster and no AWS::ElastiCache::ServerlessCache in CloudFormation:
 *   the deploy uses the stack's own choices for a PostgreSQL and a Redis you run
 *   (`-c databaseUrl=` on this machine's PostgreSQL, `-c redisUrl=` on its Redis). The DSQL, Aurora,
 *   ElastiCache and VPC variants are covered by the template assertions instead.
 * - Its HTTP API answers on `{apiId}.execute-api.<host>` or the path form
 *   `/_aws/execute-api/{apiId}/…`; the suite uses the path form (no DNS needed).
 *
 * `npm run deploy:emulator` deploys and keeps the emulator running (Ctrl-C stops it);
 * `npm run test:deployed` deploys, then runs test/deployed against the deployed API.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort, PG_URL, REDIS_URL, ROOT } from '../test/support/services.ts';

export const MINISTACK_VENV = path.join(ROOT, '.venv-ministack');
export const MINISTACK = path.join(MINISTACK_VENV, 'bin', 'ministack');
const ACCOUNT = '000000000000';
const REGION = 'us-east-1';

export interface EmulatorDeployment {
  /** The deployed HTTP API, path form: `<emulator>/_aws/execute-api/<apiId>`. */
  apiUrl: string;
  /** The emulator's endpoint (for SDK clients: AWS_ENDPOINT_URL). */
  endpoint: string;
  outputs: Record<string, Record<string, string>>;
  stage: string;
  databaseUrl: string;
  /** Emulator log (Lambda output lands here). */
  logFile: string;
  stop(): Promise<void>;
}

async function waitForEmulator(endpoint: string, child: ChildProcess, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`MiniStack exited with code ${child.exitCode}`);
    try {
      const res = await fetch(`${endpoint}/_ministack/health`);
      if (res.ok) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`MiniStack did not answer at ${endpoint} within ${timeoutMs} ms`);
}

function cdk(args: string[], env: NodeJS.ProcessEnv, log: (s: string) => void) {
  const bin = path.join(ROOT, 'node_modules', '.bin', 'cdk');
  try {
    const out = execFileSync(bin, args, { cwd: ROOT, env, stdio: 'pipe', maxBuffer: 64 * 1024 * 1024 });
    log(out.toString());
  } catch (err) {
    const e = err as { stdout?: Buffer; stderr?: Buffer; message: string };
    throw new Error(
      `cdk ${args[0]} into the emulator failed: ${e.message}\n${String(e.stderr ?? '').slice(-4000)}`,
    );
  }
}

/**
 * `cdk bootstrap` and `cdk deploy --all` into an AWS API emulator at `endpoint` (MiniStack here,
 * LocalStack in scripts/deploy-localstack.ts), with fake credentials and no profile, so nothing can
 * reach a real account. Returns the stack outputs.
 */
export function cdkDeployTo(
  endpoint: string,
  context: { stage: string; databaseUrl: string; redisUrl: string },
  work: string,
  log: (s: string) => void,
): Record<string, Record<string, string>> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_ENDPOINT_URL: endpoint,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: REGION,
    AWS_DEFAULT_REGION: REGION,
    CDK_DEFAULT_ACCOUNT: ACCOUNT,
    CDK_DEFAULT_REGION: REGION,
  };
  for (const k of ['AWS_PROFILE', 'AWS_SESSION_TOKEN', 'AWS_CONFIG_FILE', 'AWS_SHARED_CREDENTIALS_FILE'])
    delete env[k];
  const outdir = path.join(work, 'cdk.out');
  const outputsFile = path.join(work, 'outputs.json');
  // The CLI saves lookups (the emulator account's AZs) to cdk.context.json in the project: they are
  // not the project's context, so the file is left as it was (and lint stays clean).
  const contextFile = path.join(ROOT, 'cdk.context.json');
  const contextBefore = existsSync(contextFile) ? readFileSync(contextFile, 'utf8') : undefined;
  try {
    cdk(['bootstrap', `aws://${ACCOUNT}/${REGION}`, '--output', outdir], env, log);
    cdk(
      [
        'deploy',
        '--all',
        '--require-approval',
        'never',
        '--output',
        outdir,
        '--outputs-file',
        outputsFile,
        '-c',
        `stage=${context.stage}`,
        '-c',
        `databaseUrl=${context.databaseUrl}`,
        '-c',
        `redisUrl=${context.redisUrl}`,
        // Uploads past 8 MiB (the suite's multi-part file) take the 202 path through the verifier
        // function and its mapping of the stream.
        '-c',
        'inlineVerifyMiB=8',
      ],
      env,
      log,
    );
  } finally {
    if (contextBefore === undefined) rmSync(contextFile, { force: true });
    else writeFileSync(contextFile, contextBefore);
  }
  return JSON.parse(readFileSync(outputsFile, 'utf8')) as Record<string, Record<string, string>>;
}

/** One statement on the machine's PostgreSQL as its admin (creating and dropping databases). */
async function adminSql(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * The deployed HTTP API in the emulators' path form, `<endpoint>/_aws/execute-api/<apiId>`, from the
 * stack's `ApiUrl` output (`https://<apiId>.execute-api.…`), which needs DNS the emulators lack.
 */
export function apiPathUrl(endpoint: string, outputs: Record<string, Record<string, string>>, stage: string) {
  const apiUrl = outputs[`Stratus-${stage}-Stateless`]?.ApiUrl;
  const apiId = apiUrl ? /^https?:\/\/([a-z0-9]+)\.execute-api\./.exec(apiUrl)?.[1] : undefined;
  if (!apiId) throw new Error(`the deploy did not output an API URL (got ${apiUrl})`);
  return `${endpoint}/_aws/execute-api/${apiId}`;
}

export async function deployToEmulator(
  opts: { log?: (s: string) => void; stage?: string } = {},
): Promise<EmulatorDeployment> {
  const log = opts.log ?? (() => undefined);
  if (!existsSync(MINISTACK))
    throw new Error(
      'MiniStack is not installed: run `npm run test:deployed` (it installs it into .venv-ministack)',
    );
  const stage = opts.stage ?? 'emu';
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const work = mkdtempSync(path.join(os.tmpdir(), 'stratus-emulator-'));
  const logFile = path.join(work, 'ministack.log');
  const nodeBin = path.dirname(process.execPath);
  // The functions run under the Node.js that runs this script (24, from the node package).
  const emulator = spawn(MINISTACK, [], {
    cwd: work,
    env: {
      ...process.env,
      PATH: `${nodeBin}${path.delimiter}${process.env.PATH ?? ''}`,
      GATEWAY_PORT: String(port),
      BIND_HOST: '127.0.0.1',
      MINISTACK_HOST: '127.0.0.1',
      MINISTACK_REGION: REGION,
      LAMBDA_EXECUTOR: 'local',
      STATE_DIR: path.join(work, 'state'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const logStream = createWriteStream(logFile);
  emulator.stdout?.pipe(logStream);
  emulator.stderr?.pipe(logStream);

  const databaseName = `stratus_${stage}_${process.pid}`;
  const dropDatabase = () => adminSql(`drop database if exists ${databaseName} with (force)`);
  const stop = async () => {
    try {
      if (emulator.pid && emulator.exitCode === null) process.kill(-emulator.pid, 'SIGTERM');
    } catch {
      // already gone
    }
    await dropDatabase().catch(() => undefined);
  };

  try {
    await waitForEmulator(endpoint, emulator);
    log(`MiniStack answers at ${endpoint} (log: ${logFile})\n`);
    await dropDatabase();
    await adminSql(`create database ${databaseName}`);
    const dbUrl = new URL(PG_URL);
    dbUrl.pathname = `/${databaseName}`;
    const databaseUrl = dbUrl.toString();

    const outputs = cdkDeployTo(endpoint, { stage, databaseUrl, redisUrl: REDIS_URL }, work, log);
    return {
      apiUrl: apiPathUrl(endpoint, outputs, stage),
      endpoint,
      outputs,
      stage,
      databaseUrl,
      logFile,
      async stop() {
        await stop();
        logStream.end();
        rmSync(work, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n(emulator log kept at ${logFile})`);
  }
}

if (import.meta.main) {
  const d = await deployToEmulator({ log: (s) => process.stdout.write(s) });
  process.stdout.write(
    `\nStratus is deployed in MiniStack.\n  API:      ${d.apiUrl}\n  Emulator: ${d.endpoint} (AWS_ENDPOINT_URL)\n  Log:      ${d.logFile}\nTry: STRATUS_ENDPOINT=${d.apiUrl} npm run stratus -- login --register\nCtrl-C stops the emulator and drops its database.\n`,
  );
  const shutdown = () => {
    void d.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  setInterval(() => undefined, 1 << 30);
}
