/**
 * An S3 emulator whose bucket starts out holding many objects, for tests at the scale of a real node
 * (the orphan sweep over 25,000 keys). The suite's emulator would take minutes of PUTs to get there
 * (moto answers a few hundred a second on a busy machine); this one, the same pinned moto, is seeded
 * through its backend in its own process (seeded-s3.py) and then spoken to over S3's API only.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { freePort, VENV } from './services.ts';

export interface SeededS3 {
  client: S3Client;
  bucket: string;
  endpoint: string;
  stop(): Promise<void>;
}

export async function startSeededS3(objects: readonly { key: string; size: number }[]): Promise<SeededS3> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-seeded-s3-'));
  const file = path.join(dir, 'objects.jsonl');
  await fs.writeFile(file, objects.map((o) => JSON.stringify(o)).join('\n'));
  const port = await freePort();
  const bucket = 'seeded';
  const child: ChildProcess = spawn(
    path.join(VENV, 'bin', 'python'),
    [path.join(import.meta.dirname, 'seeded-s3.py'), String(port), bucket, file],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    await fs.rm(dir, { recursive: true, force: true });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`seeded S3 emulator not ready in 60 s\n${stderr}`)),
        60_000,
      );
      let out = '';
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes(`ready ${objects.length}\n`)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`seeded S3 emulator exited with ${code}\n${stderr}`));
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  } catch (err) {
    await stop();
    throw err;
  }
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    client,
    bucket,
    endpoint,
    async stop() {
      client.destroy();
      await stop();
    },
  };
}
