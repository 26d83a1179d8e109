/**
 * Starts the AWS API emulator (moto server from .venv) on a free localhost port for the run and
 * hands its URL to the tests. Fails loudly, never skips, if the emulator is not installed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { TestProject } from 'vitest/node';
import { freePort, MOTO_SERVER, PG_URL, REDIS_URL } from './services.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    awsEndpoint: string;
    pgUrl: string;
    redisUrl: string;
  }
}

let moto: ChildProcess | undefined;

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
  process.stdout.write(
    `AWS API emulator (moto) at ${url}; PostgreSQL at ${new URL(PG_URL).host}; Redis at ${new URL(REDIS_URL).host}\n`,
  );
  // Any SDK client the tests create picks the emulator up from the standard variables too.
  process.env.AWS_ENDPOINT_URL = url;
  process.env.AWS_ACCESS_KEY_ID ??= 'testing';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';
  process.env.AWS_REGION ??= 'us-east-1';
  project.provide('awsEndpoint', url);
  project.provide('pgUrl', PG_URL);
  project.provide('redisUrl', REDIS_URL);
  return async () => {
    moto?.kill('SIGTERM');
  };
}
