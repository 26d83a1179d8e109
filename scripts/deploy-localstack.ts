/**
 * `npm run deploy:local`: the whole CDK app into LocalStack (Docker), the way `cdk deploy` deploys
 * to an account. Starts localstack-compose.yml (LocalStack, PostgreSQL 15 and Redis on one Docker
 * network), waits for LocalStack, then bootstraps and deploys with AWS_ENDPOINT_URL pointing at it.
 * The functions run in LocalStack's Lambda containers and reach PostgreSQL and Redis by service
 * name (`-c databaseUrl=postgres://postgres@postgres:5432/stratus -c redisUrl=redis://redis:6379`):
 * LocalStack has no Aurora DSQL and the stack's ElastiCache Serverless needs a VPC it does not model.
 *
 * Needs Docker and LOCALSTACK_AUTH_TOKEN (since 2026-03), on a LocalStack plan that includes
 * API Gateway v2 and Cognito (the free tier does not). Stops with one line on what is missing.
 * `npm run deploy:local -- --down` stops the containers.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../test/support/services.ts';
import { apiPathUrl, cdkDeployTo } from './emulator-deploy.ts';

const COMPOSE = ['compose', '-f', path.join(ROOT, 'localstack-compose.yml')];
const ENDPOINT = 'http://127.0.0.1:4566';

function fail(line: string): never {
  process.stderr.write(`deploy:local: ${line}\n`);
  process.exit(1);
}

function docker(args: string[]) {
  execFileSync('docker', args, { cwd: ROOT, stdio: 'inherit' });
}

if (process.argv.includes('--down')) {
  docker([...COMPOSE, 'down']);
  process.exit(0);
}
if (!process.env.LOCALSTACK_AUTH_TOKEN)
  fail('LOCALSTACK_AUTH_TOKEN is not set (LocalStack needs an account token since 2026-03)');
try {
  execFileSync('docker', ['info'], { stdio: 'ignore' });
} catch {
  fail('Docker is not running (docker info failed); without Docker, use `npm run deploy:emulator`');
}
docker([...COMPOSE, 'up', '-d', '--wait']);

const deadline = Date.now() + 120_000;
for (;;) {
  try {
    const res = await fetch(`${ENDPOINT}/_localstack/health`);
    const health = (await res.json()) as { services?: Record<string, string> };
    const missing = ['apigateway', 'cognito-idp', 'lambda', 'cloudformation'].filter(
      (s) => !['available', 'running'].includes(health.services?.[s] ?? ''),
    );
    if (!missing.length) break;
    if (Date.now() > deadline)
      fail(
        `LocalStack does not offer ${missing.join(', ')} (the free tier leaves out API Gateway v2 and Cognito)`,
      );
  } catch {
    if (Date.now() > deadline) fail(`LocalStack did not answer at ${ENDPOINT}`);
  }
  await new Promise((r) => setTimeout(r, 1000));
}

const work = mkdtempSync(path.join(os.tmpdir(), 'stratus-localstack-'));
const outputs = cdkDeployTo(
  ENDPOINT,
  {
    stage: 'local',
    databaseUrl: 'postgres://postgres@postgres:5432/stratus',
    redisUrl: 'redis://redis:6379',
  },
  work,
  (s) => process.stdout.write(s),
);
process.stdout.write(
  `\nStratus is deployed in LocalStack.\n  API: ${apiPathUrl(ENDPOINT, outputs, 'local')}\n` +
    'Stop with: npm run deploy:local -- --down\n',
);
