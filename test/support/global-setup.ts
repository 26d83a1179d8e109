/**
 * Starts the AWS API emulator (moto server from .venv) on a free localhost port for the run, and a
 * one-node cluster-mode Redis (as ElastiCache Serverless speaks: slot map, CROSSSLOT refusals), and
 * hands their URLs to the tests. Fails loudly, never skips, if either cannot start.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { TestProject } from 'vitest/node';
import { freePort, MOTO_SERVER, PG_URL, REDIS_URL, tcpReachable } from './services.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    awsEndpoint: string;
    pgUrl: string;
    redisUrl: string;
    redisClusterUrl: string;
  }
}

let moto: ChildProcess | undefined;

/** redis-server in cluster mode on a free port, owning every slot; resolves once the cluster is ok. */
async function startRedisCluster(): Promise<{ url: string; stop: () => void }> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stratus-redis-cluster-'));
  const server = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--cluster-enabled',
      'yes',
      // The slot map must name an address clients can dial (a lone node knows none of its own).
      '--cluster-announce-ip',
      '127.0.0.1',
      '--dir',
      dir,
      '--cluster-config-file',
      'nodes.conf',
      '--save',
      '',
      '--appendonly',
      'no',
    ],
    { stdio: 'ignore' },
  );
  const spawnError = new Promise<never>((_, reject) =>
    server.once('error', (err) =>
      reject(new Error(`cannot start redis-server for the cluster-mode tests: ${err.message}`)),
    ),
  );
  const stop = () => {
    server.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  const ready = (async () => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (server.exitCode !== null)
        throw new Error(`redis-server (cluster mode) exited with ${server.exitCode}`);
      if (
        await tcpReachable('127.0.0.1', port, 500).then(
          () => true,
          () => false,
        )
      )
        break;
      if (Date.now() > deadline) throw new Error('redis-server (cluster mode) did not start listening');
      await new Promise((r) => setTimeout(r, 100));
    }
    const admin = new Redis({ port, host: '127.0.0.1', lazyConnect: true });
    admin.on('error', () => undefined);
    try {
      await admin.connect();
      await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
      while (Date.now() < deadline) {
        if (String(await admin.call('CLUSTER', 'INFO')).includes('cluster_state:ok')) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('cluster-mode redis-server did not reach cluster_state:ok');
    } finally {
      admin.disconnect();
    }
  })();
  try {
    await Promise.race([ready, spawnError]);
  } catch (err) {
    stop();
    throw err;
  }
  return { url: `redis://127.0.0.1:${port}`, stop };
}

async function waitUntilUp(url: string, child: ChildProcess, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with code ${child.exitCode}`);
    try {
      const res = await fetch(`${url}/moto-api/`);
      if (res.status < 500) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`moto_server did not answer at ${url} within ${timeoutMs} ms`);
}

export default async function setup(project: TestProject) {
  if (!existsSync(MOTO_SERVER)) {
    throw new Error(
      'the AWS API emulator is not installed: run the suite with `npm test` (it installs moto into .venv)',
    );
  }
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  moto = spawn(MOTO_SERVER, ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  moto.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  try {
    await waitUntilUp(url, moto);
  } catch (err) {
    moto.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${stderr}`);
  }
  let cluster: Awaited<ReturnType<typeof startRedisCluster>>;
  try {
    cluster = await startRedisCluster();
  } catch (err) {
    moto.kill('SIGKILL');
    throw err;
  }
  process.stdout.write(
    `AWS API emulator (moto) at ${url}; PostgreSQL at ${new URL(PG_URL).host}; Redis at ${new URL(REDIS_URL).host} (cluster mode: ${new URL(cluster.url).host})\n`,
  );
  // Any SDK client the tests create picks the emulator up from the standard variables too.
  process.env.AWS_ENDPOINT_URL = url;
  process.env.AWS_ACCESS_KEY_ID ??= 'testing';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';
  process.env.AWS_REGION ??= 'us-east-1';
  project.provide('awsEndpoint', url);
  project.provide('pgUrl', PG_URL);
  project.provide('redisUrl', REDIS_URL);
  project.provide('redisClusterUrl', cluster.url);
  return async () => {
    moto?.kill('SIGTERM');
    cluster.stop();
  };
}
