/**
 * `stratus upload` through the 202 path: the runtime verifies every upload in the background
 * (STRATUS_INLINE_VERIFY_BYTES=0), so complete answers 202 and the CLI waits for the verifier. On a
 * terminal (a pty from util-linux `script`) the bar says "verifying … N%" before the upload line;
 * the file is then committed with the bytes sent. A refusal by the verifier (a declared SHA-256
 * that the bytes do not have: a proxy in front of the API rewrites it, since the CLI itself always
 * declares the right one) ends the command with the service's reason, exit 6 and the problem type
 * in --json, and leaves nothing to resume.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Runtime, sha256, startRuntime } from '../support/local-runtime.ts';

const BIN = path.resolve('bin/stratus.js');
const MiB = 1024 * 1024;

let rt: Runtime;
let work: string;
let configDir: string;
/** The CLI's config when it talks to the proxy (credentials are kept per endpoint). */
let liarConfigDir: string;
/** The API behind a proxy that declares a wrong whole-file SHA-256 for every new upload. */
let liar: http.Server;
let liarUrl = '';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], endpoint = rt.url): Promise<Run> {
  const config = endpoint === rt.url ? configDir : liarConfigDir;
  const child = spawn(file, args, {
    env: { ...process.env, STRATUS_ENDPOINT: endpoint, STRATUS_CONFIG_DIR: config },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

const cli = (args: string[], endpoint?: string) => run(process.execPath, [BIN, ...args], endpoint);

/** The CLI on a pseudo-terminal, as a person runs it: progress bar on (stdout and stderr merged). */
const onTerminal = (args: string[]) => {
  const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  return run('script', ['-qefc', [process.execPath, BIN, ...args].map(quote).join(' '), '/dev/null']);
};

async function json<T = Record<string, unknown>>(args: string[]): Promise<T> {
  const r = await cli([...args, '--json']);
  if (r.code !== 0) throw new Error(`stratus ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as T;
}

/** Forwards to the runtime; `POST /v1/uploads` goes on with its `sha256` replaced. */
function lyingProxy(): http.Server {
  return http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      let body: Buffer | string | undefined = chunks.length ? Buffer.concat(chunks) : undefined;
      if (req.method === 'POST' && req.url === '/v1/uploads' && body)
        body = JSON.stringify({
          ...JSON.parse(body.toString()),
          sha256: sha256(Buffer.from('not these bytes')),
        });
      const headers = Object.fromEntries(
        Object.entries(req.headers).filter(([k]) => !['host', 'content-length', 'connection'].includes(k)),
      ) as Record<string, string>;
      const answer = await fetch(rt.url + req.url, {
        method: req.method ?? 'GET',
        headers,
        redirect: 'manual',
        ...(body === undefined ? {} : { body }),
      });
      const out = Buffer.from(await answer.arrayBuffer());
      const back: Record<string, string> = {};
      answer.headers.forEach((v, k) => {
        if (!['content-length', 'content-encoding', 'transfer-encoding', 'connection'].includes(k))
          back[k] = v;
      });
      res.writeHead(answer.status, back);
      res.end(out);
    });
  });
}

beforeAll(async () => {
  rt = await startRuntime({ STRATUS_INLINE_VERIFY_BYTES: '0' });
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-cli-verify-'));
  configDir = path.join(work, 'config');
  liarConfigDir = path.join(work, 'liar-config');
  liar = lyingProxy();
  await new Promise<void>((resolve) => liar.listen(0, '127.0.0.1', resolve));
  liarUrl = `http://127.0.0.1:${(liar.address() as AddressInfo).port}`;
  const email = `verify-${randomBytes(4).toString('hex')}@example.com`;
  const password = 'correct horse battery';
  const login = await cli(['login', '--register', '--email', email, '--password', password]);
  expect(login.code, login.stderr).toBe(0);
  const viaLiar = await cli(['login', '--email', email, '--password', password], liarUrl);
  expect(viaLiar.code, viaLiar.stderr).toBe(0);
});

afterAll(async () => {
  await new Promise<void>((resolve) => liar?.close(() => resolve()));
  await rt?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

describe('stratus upload when the service verifies in the background (202)', () => {
  it('shows "verifying … N%" after the parts, then the upload line; the bytes are committed', async () => {
    const data = randomBytes(20 * MiB + 99);
    const local = path.join(work, 'big.bin');
    await fs.writeFile(local, data);
    const r = await onTerminal(['upload', local, '/big.bin']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const screen = r.stdout.replaceAll('\r', '\n');
    const uploading = screen.search(/uploading +\[/);
    const verifying = screen.search(/verifying +\[[#.]+\] +\d+%/);
    expect(uploading).toBeGreaterThanOrEqual(0);
    expect(verifying).toBeGreaterThan(uploading);
    // From the session's progress as the 202 gave it (nothing read yet) to all of it.
    expect(screen).toMatch(/verifying +\[\.+\] +0% +0 B\/20 MiB/);
    expect(screen).toMatch(/verifying +\[#+\] +100%/);
    expect(screen.indexOf('uploaded /big.bin')).toBeGreaterThan(verifying);

    const out = path.join(work, 'big-back.bin');
    const down = await json<{ sha256: string }>(['download', '/big.bin', out]);
    expect(down.sha256).toBe(sha256(data));
    expect(sha256(await fs.readFile(out))).toBe(sha256(data));
  });

  it('--json gets the committed result the 201 would have carried', async () => {
    const data = randomBytes(6 * MiB);
    const local = path.join(work, 'small.bin');
    await fs.writeFile(local, data);
    const up = await json<{ path: string; size: number; sha256: string; fileId: string; versionId: string }>([
      'upload',
      local,
      '/small.bin',
    ]);
    expect(up).toMatchObject({ path: '/small.bin', size: data.length, sha256: sha256(data) });
    const versions = await json<{ items: { versionId: string; current: boolean }[] }>([
      'versions',
      '/small.bin',
    ]);
    expect(versions.items).toEqual([expect.objectContaining({ versionId: up.versionId, current: true })]);
  });

  it('a refusal ends the upload with the service’s reason: exit 6, its type in --json, nothing to resume', async () => {
    const data = randomBytes(9 * MiB);
    const local = path.join(work, 'refused.bin');
    await fs.writeFile(local, data);
    const r = await cli(['upload', local, '/refused.bin', '--json'], liarUrl);
    expect(r.code).toBe(6);
    expect(r.stderr).toMatch(/^stratus: verification failed: .*SHA-256/);
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 6, type: 'checksum-mismatch' } });
    // The refused session is forgotten: a re-run starts a new upload rather than waiting on it.
    expect(JSON.parse(await fs.readFile(path.join(liarConfigDir, 'uploads.json'), 'utf8'))).toEqual({});
    const ls = await json<{ items: { name: string }[] }>(['ls', '/']);
    expect(ls.items.map((i) => i.name)).not.toContain('refused.bin');
    // Straight to the API, the same file goes in.
    const ok = await json<{ sha256: string }>(['upload', local, '/refused.bin']);
    expect(ok.sha256).toBe(sha256(data));
  });
});
