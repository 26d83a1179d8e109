/**
 * Runs before `npm test`: makes sure what the suite needs is there, installing what it can.
 * - PostgreSQL 15 and Redis must answer (they are machine services); if not, one line says so.
 *   The redis-server binary must be on the PATH (the cluster-mode tests start their own).
 * - The AWS API emulator (moto server, pinned) is installed into .venv if missing.
 * - Debian's Chromium (for the browser suite, driven by playwright-core; no browser download) is
 *   installed with apt-get if missing and this user may (root); else one line says how.
 * - With --deployed (npm run test:deployed): MiniStack, pinned, into .venv-ministack instead.
 * Exits non-zero with one clear line on the first thing it cannot fix. It never skips.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import {
  CHROMIUM,
  hostPort,
  MOTO_SERVER,
  PG_URL,
  REDIS_URL,
  ROOT,
  tcpReachable,
  VENV,
} from '../test/support/services.ts';
import { MINISTACK, MINISTACK_VENV } from './emulator-deploy.ts';

function fail(line: string): never {
  process.stderr.write(`test prerequisites: ${line}\n`);
  process.exit(1);
}

async function checkPostgres() {
  const { host, port } = hostPort(PG_URL, 5432);
  await tcpReachable(host, port).catch(() =>
    fail(
      `PostgreSQL is not answering at ${host}:${port} (set STRATUS_TEST_DATABASE_URL, or start it: pg_ctlcluster 15 main start)`,
    ),
  );
  const client = new pg.Client({ connectionString: PG_URL });
  try {
    await client.connect();
    const res = await client.query<{ v: string }>("select current_setting('server_version_num') as v");
    const major = Math.floor(Number(res.rows[0]?.v) / 10000);
    if (!Number.isFinite(major)) fail(`PostgreSQL at ${host}:${port} did not report its version`);
    if (major < 15) fail(`PostgreSQL at ${host}:${port} is version ${major}; 15 or newer is needed`);
    process.stdout.write(`test prerequisites: PostgreSQL ${major} answers at ${host}:${port}\n`);
  } catch (err) {
    fail(`PostgreSQL at ${host}:${port} refused the test connection (${PG_URL}): ${(err as Error).message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function checkRedis() {
  const { host, port } = hostPort(REDIS_URL, 6379);
  const redis = new Redis(REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  try {
    await redis.connect();
    const pong = await redis.ping();
    if (pong !== 'PONG') throw new Error(pong);
    const version = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? '?';
    process.stdout.write(`test prerequisites: Redis ${version} answers at ${host}:${port}\n`);
  } catch {
    fail(`Redis is not answering at ${host}:${port} (set STRATUS_TEST_REDIS_URL, or start redis-server)`);
  } finally {
    redis.disconnect();
  }
}

/** The cluster-mode tests (ElastiCache Serverless speaks cluster mode) start their own redis-server. */
function checkRedisServerBinary() {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'pipe' });
  } catch {
    fail(
      'redis-server is not on the PATH; the cluster-mode Redis tests start one (Debian: apt-get install redis-server)',
    );
  }
}

function findPython(): string {
  for (const candidate of ['python3', 'python']) {
    try {
      execFileSync(candidate, ['-c', 'import sys, venv; assert sys.version_info >= (3, 9)'], {
        stdio: 'ignore',
      });
      return candidate;
    } catch {
      // try the next
    }
  }
  return fail(
    'Python 3.9+ with the venv module is needed for the AWS API emulators; install python3 and python3-venv',
  );
}

/** Installs a pinned requirements file into its own venv (once; again when the file changes). */
function ensureVenv(label: string, venv: string, reqFile: string, binary: string) {
  const stamp = path.join(venv, '.stratus-requirements');
  const wanted = readFileSync(reqFile, 'utf8');
  if (existsSync(binary) && existsSync(stamp) && readFileSync(stamp, 'utf8') === wanted) return;
  const python = findPython();
  process.stdout.write(`test prerequisites: installing ${label} into ${path.relative(ROOT, venv)} …\n`);
  try {
    if (!existsSync(path.join(venv, 'bin', 'pip')))
      execFileSync(python, ['-m', 'venv', venv], { stdio: 'inherit' });
    execFileSync(
      path.join(venv, 'bin', 'pip'),
      ['install', '--quiet', '--disable-pip-version-check', '-r', reqFile],
      {
        stdio: 'inherit',
      },
    );
  } catch {
    fail(`could not install ${label} into ${path.relative(ROOT, venv)} (pip failed; is PyPI reachable?)`);
  }
  if (!existsSync(binary))
    fail(`${path.basename(binary)} is missing from ${path.relative(ROOT, venv)} after installing`);
  writeFileSync(stamp, wanted);
}

function ensureEmulator() {
  ensureVenv(
    'the AWS API emulator (moto)',
    VENV,
    path.join(ROOT, 'test', 'support', 'emulator-requirements.txt'),
    MOTO_SERVER,
  );
}

/** MiniStack (for the emulator deploy) has its own venv: it pins a botocore moto does not accept. */
function ensureMiniStack() {
  ensureVenv(
    'the deploy emulator (MiniStack)',
    MINISTACK_VENV,
    path.join(ROOT, 'test', 'support', 'ministack-requirements.txt'),
    MINISTACK,
  );
}

function ensureChromium() {
  if (existsSync(CHROMIUM)) return;
  const hint = `Chromium is missing at ${CHROMIUM} (install Debian's chromium package: sudo apt-get install -y chromium, or set STRATUS_CHROMIUM)`;
  if (process.getuid?.() !== 0 || CHROMIUM !== '/usr/bin/chromium') fail(hint);
  process.stdout.write('test prerequisites: installing chromium with apt-get …\n');
  try {
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'chromium'], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  } catch {
    try {
      execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore' });
      execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'chromium'], {
        stdio: ['ignore', 'ignore', 'inherit'],
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
    } catch {
      fail(hint);
    }
  }
  if (!existsSync(CHROMIUM)) fail(hint);
}

await checkPostgres();
await checkRedis();
if (process.argv.includes('--deployed')) {
  // The emulator deploy needs PostgreSQL, Redis and MiniStack only.
  ensureMiniStack();
  process.stdout.write('test prerequisites: PostgreSQL, Redis and MiniStack are ready\n');
} else {
  checkRedisServerBinary();
  ensureEmulator();
  ensureChromium();
  process.stdout.write(
    'test prerequisites: PostgreSQL, Redis, the AWS API emulator and Chromium are ready\n',
  );
}
