/**
 * The embedded default's footprint: `npm start` exactly as package.json runs it (its Node flags,
 * three local nodes at replication factor 2, metadata in PGlite), on a fresh data directory, idle.
 * Before the tuning (PGlite's 128 MB of shared buffers, initdb inside the serving process) this read
 * 467-512 MiB; with shared_buffers back at 128MB alone it reads about 300; without the
 * `--v8-pool-size=1` flag about 245 (one V8 worker thread instead of one per core, each with its
 * own heap arenas).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startNodeArgs } from '../../scripts/start-command.ts';
import { freePort, ROOT } from '../support/services.ts';

const rssMiB = async (pid: number) => {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 1024;
};

describe('npm start, idle', () => {
  it('stays under 250 MiB of resident memory on a fresh data directory', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-rss-'));
    const port = await freePort();
    const child = spawn(process.execPath, [...startNodeArgs(), path.join(ROOT, 'local', 'main.ts')], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), PORT: String(port), STRATUS_DATA_DIR: dir },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
      });
      const deadline = Date.now() + 120_000;
      while (!out.includes('running at') && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      expect(out).toContain('running at');
      const health = await fetch(`http://127.0.0.1:${port}/health`);
      expect(health.status).toBe(200);
      await health.arrayBuffer();
      // Idle: start-up work done (the first health checks, the first sweep), then sampled for 5 s.
      await new Promise((r) => setTimeout(r, 10_000));
      let peak = 0;
      for (let i = 0; i < 10; i++) {
        peak = Math.max(peak, await rssMiB(child.pid as number));
        await new Promise((r) => setTimeout(r, 500));
      }
      console.log(
        `npm start idle RSS: ${peak.toFixed(1)} MiB (flags: ${startNodeArgs().join(' ') || 'none'})`,
      );
      expect(peak).toBeGreaterThan(20); // a real reading, not a process that already left
      expect(peak).toBeLessThan(250);
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      await fs.rm(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
