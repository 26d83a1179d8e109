/**
 * `stratus sync` of 1,000 small files against a runtime with the service's real, built-in rate
 * limits (the other suites lift them). Each file costs two `write` tokens (create, complete) from a
 * bucket of 300 refilled at 10 per second, so the run must pass the limit many times over: it
 * finishes only if the CLI waits out every 429 (Retry-After) and repeats what is safe to repeat.
 * Its length is set by that arithmetic: (2,000 - 300) / 10 = 170 s of tokens at the least.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Runtime, scrapeMetrics, sha256, startRuntime } from '../support/local-runtime.ts';

const BIN = path.resolve('bin/stratus.js');
const FILES = 1000;

let rt: Runtime;
let work: string;

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, STRATUS_ENDPOINT: rt.url, STRATUS_CONFIG_DIR: path.join(work, 'config') },
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

/** Requests the runtime refused with 429 so far, per its Prometheus counter. */
async function rejections(): Promise<number> {
  const text = await (await scrapeMetrics(rt)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('stratus_rate_limit_rejections_total'))
    .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
}

beforeAll(async () => {
  // '{}' is the setting's own default: no overrides, the built-in limits of request-limits.ts.
  rt = await startRuntime({ STRATUS_RATE_LIMITS: '{}' });
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-cli-bulk-'));
});

afterAll(async () => {
  await rt?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

describe('stratus sync with the default rate limits', () => {
  it('uploads 1,000 small files with 0 errors, waiting out every 429', async () => {
    const dir = path.join(work, 'many');
    const contents = new Map<string, Buffer>();
    for (let i = 0; i < FILES; i++) {
      const sub = `d${i % 4}`;
      const name = `f${String(i).padStart(4, '0')}.txt`;
      const bytes = Buffer.concat([Buffer.from(`${sub}/${name}\n`), randomBytes(32 + (i % 97))]);
      contents.set(`${sub}/${name}`, bytes);
      await fs.mkdir(path.join(dir, sub), { recursive: true });
      await fs.writeFile(path.join(dir, sub, name), bytes);
    }
    const email = `bulk-${randomBytes(4).toString('hex')}@example.com`;
    const login = await cli(['login', '--register', '--email', email, '--password', 'correct horse battery']);
    expect(login.code, login.stderr).toBe(0);

    const started = Date.now();
    const r = await cli(['sync', dir, '/Bulk', '--json']);
    const seconds = (Date.now() - started) / 1000;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as {
      uploaded: { path: string; sha256: string }[];
      folders: number;
    };
    expect(summary.uploaded).toHaveLength(FILES);
    expect(summary.folders).toBe(4);
    for (const u of summary.uploaded)
      expect(u.sha256).toBe(sha256(contents.get(u.path.replace('/Bulk/', '')) as Buffer));
    // The limit was really in the way (else this test proves nothing about it).
    expect(await rejections()).toBeGreaterThan(20);

    // Everything is there, byte for byte.
    const listed = await Promise.all(
      [0, 1, 2, 3].map(async (d) => {
        const ls = await cli(['ls', `/Bulk/d${d}`, '--json']);
        expect(ls.code, ls.stderr).toBe(0);
        return (JSON.parse(ls.stdout) as { items: unknown[] }).items.length;
      }),
    );
    expect(listed.reduce((a, b) => a + b, 0)).toBe(FILES);
    const sample = path.join(work, 'sample.txt');
    const down = await cli(['download', '/Bulk/d3/f0999.txt', sample]);
    expect(down.code, down.stderr).toBe(0);
    expect(await fs.readFile(sample)).toEqual(contents.get('d3/f0999.txt'));
    console.log(`sync of ${FILES} files with default limits: ${seconds.toFixed(0)} s`);
  }, 420_000);
});
