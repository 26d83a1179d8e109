/** `npm start` as a user runs it: a real child process, configured only by the environment. */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort, ROOT } from '../support/services.ts';

function run(env: Record<string, string>) {
  const child = spawn(process.execPath, [path.join(ROOT, 'local', 'main.ts')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, exited, output: () => out, errors: () => err };
}

describe('the start command', () => {
  it('serves on PORT with data in STRATUS_DATA_DIR, prints its URL, and stops on SIGTERM', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-start-'));
    const port = await freePort();
    const p = run({ PORT: String(port), STRATUS_DATA_DIR: dir, STRATUS_LOG_LEVEL: 'warn' });
    const deadline = Date.now() + 30_000;
    while (!p.output().includes('running at') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect(p.output()).toContain(`http://127.0.0.1:${port}`);
    const health = await fetch(`http://127.0.0.1:${port}/health`);
    expect(health.status).toBe(200);
    expect(await fs.readdir(dir)).toEqual(expect.arrayContaining(['pglite', 'nodes', 'keys']));
    // The embedded default: three storage nodes, every version on two of them.
    expect((await fs.readdir(path.join(dir, 'nodes'))).sort()).toEqual(['local-1', 'local-2', 'local-3']);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
  });

  it('stops at start-up with one clear line when a setting is bad', async () => {
    const p = run({ PORT: 'eighty' });
    expect(await p.exited).toBe(2);
    const lines = p.errors().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^stratus: invalid configuration: PORT="eighty": /);
  });
});
