/**
 * The `stratus` CLI, run as a real child process (the `bin` shim, as a user runs it) against the
 * local runtime. Every command, its --json output and its exit codes; an upload interrupted with
 * SIGINT and resumed; a download killed mid-way and resumed with a Range request (storage counts
 * the bytes it sent), or started over when the file changed meanwhile; delta re-upload; sync
 * sending only what changed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Runtime, scrapeMetrics, sha256, startRuntime } from '../support/local-runtime.ts';

const BIN = path.resolve('bin/stratus.js');
const MiB = 1024 * 1024;

let rt: Runtime;
let work: string;
let configDir: string;
const email = `cli-${randomBytes(4).toString('hex')}@example.com`;
const password = 'correct horse battery';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function start(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, STRATUS_ENDPOINT: rt.url, STRATUS_CONFIG_DIR: configDir, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

function finish(child: ChildProcess, input?: string): Promise<Run> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  if (input !== undefined) child.stdin?.end(input);
  else child.stdin?.end();
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

const cli = (args: string[], o: { input?: string; env?: Record<string, string> } = {}) =>
  finish(start(args, o.env), o.input);

async function json<T = Record<string, unknown>>(args: string[]): Promise<T> {
  const r = await cli([...args, '--json']);
  if (r.code !== 0) throw new Error(`stratus ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as T;
}

/** Bytes the storage nodes have sent in answers to signed GETs, per their Prometheus counter. */
async function storageBytesOut(): Promise<number> {
  const text = await (await scrapeMetrics(rt)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('stratus_storage_bytes_out_total'))
    .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
}

/** Starts `download` slowed to 8 MiB/s and stops it (with `signal`) once the partial holds `atLeast` bytes. */
async function interruptedDownload(remote: string, out: string, atLeast: number, signal: NodeJS.Signals) {
  const child = start(['download', remote, out, '--limit-rate', '8M', '--json']);
  const done = finish(child);
  const partial = `${out}.stratus-partial`;
  let have = 0;
  for (let i = 0; i < 400 && have < atLeast; i++) {
    await new Promise((r) => setTimeout(r, 10));
    have = (await fs.stat(partial).catch(() => undefined))?.size ?? 0;
  }
  child.kill(signal);
  const run = await done;
  return { run, kept: (await fs.stat(partial)).size };
}

async function localFile(name: string, bytes: Buffer) {
  const p = path.join(work, name);
  await fs.mkdir(path.dirname(p), { recursive: true });
  await fs.writeFile(p, bytes);
  return p;
}

beforeAll(async () => {
  rt = await startRuntime();
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-cli-'));
  configDir = path.join(work, 'config');
});

afterAll(async () => {
  await rt?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

describe('stratus CLI', () => {
  it('refuses commands before login with exit code 3 and a clear line', async () => {
    const r = await cli(['ls', '/']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/not signed in .*stratus login/);
  });

  it('prints usage and exits 2 on unknown commands and bad arguments', async () => {
    const unknown = await cli(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command');
    const missing = await cli(['upload', 'only-one-arg']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('usage: stratus upload LOCAL REMOTE_PATH');
  });

  it('login --register creates the account; credentials are stored with mode 0600', async () => {
    const r = await cli(['login', '--register', '--email', email, '--password', password]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`signed in to ${rt.url} as ${email}`);
    const stat = await fs.stat(path.join(configDir, 'credentials.json'));
    expect(stat.mode & 0o777).toBe(0o600);
    const saved = JSON.parse(await fs.readFile(path.join(configDir, 'credentials.json'), 'utf8'));
    expect(saved.email).toBe(email);
    expect(saved.tokens.refreshToken).toEqual(expect.any(String));
  });

  it('login prompts for what is missing (answers piped on stdin) and rejects a wrong password', async () => {
    const ok = await cli(['login', '--json'], { input: `${email}\n${password}\n` });
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ email, role: expect.any(String) });
    const bad = await cli(['login', '--email', email, '--password', 'wrong password here'], {
      env: { STRATUS_CONFIG_DIR: path.join(work, 'other-config') },
    });
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/^stratus: /);
  });

  it('whoami, mkdir -p, and ls --json of a folder', async () => {
    expect((await json(['whoami'])).email).toBe(email);
    const made = await json(['mkdir', '-p', '/Docs/Reports/2026']);
    expect(made).toMatchObject({ name: '2026', type: 'folder' });
    expect((await cli(['mkdir', '-p', '/Docs/Reports/2026'])).code).toBe(0); // -p: exists is fine
    const again = await cli(['mkdir', '/Docs/Reports/2026']);
    expect(again.code).toBe(5);
    const noParent = await cli(['mkdir', '/Nope/child']);
    expect(noParent.code).toBe(4);
    const ls = await json<{ items: { name: string; type: string }[] }>(['ls', '/Docs']);
    expect(ls.items).toEqual([expect.objectContaining({ name: 'Reports', type: 'folder' })]);
    const human = await cli(['ls', '/Docs/Reports']);
    expect(human.stdout).toMatch(/^d\s+-\s+\S+ \S+\s+2026\/$/m);
  });

  it('upload sends parts in parallel; download verifies the hash; ls shows the file', async () => {
    const data = randomBytes(21 * MiB + 12_345);
    const local = await localFile('report.bin', data);
    const up = await json<{ path: string; size: number; sha256: string; bytesSent: number }>([
      'upload',
      local,
      '/Docs/report.bin',
    ]);
    expect(up).toMatchObject({ path: '/Docs/report.bin', size: data.length, sha256: sha256(data) });
    expect(up.bytesSent).toBe(data.length);
    const ls = await json<{ items: { name: string; size: number }[] }>(['ls', '/Docs']);
    expect(ls.items).toContainEqual(expect.objectContaining({ name: 'report.bin', size: data.length }));
    // Upload into a folder keeps the local name.
    const into = await json<{ path: string }>(['upload', local, '/Docs/Reports/']);
    expect(into.path).toBe('/Docs/Reports/report.bin');

    const out = path.join(work, 'downloaded.bin');
    const down = await json<{ sha256: string; verified: boolean }>(['download', '/Docs/report.bin', out]);
    expect(down).toMatchObject({ sha256: sha256(data), verified: true });
    expect(sha256(await fs.readFile(out))).toBe(sha256(data));
    const missing = await cli(['download', '/Docs/none.bin', out]);
    expect(missing.code).toBe(4);
    const folder = await cli(['download', '/Docs', out]);
    expect(folder.code).toBe(2);
  });

  it('a trailing slash names a folder: a missing one is refused with exit 4, -p creates it', async () => {
    const local = await localFile('note.txt', Buffer.from('a note\n'));
    const refused = await cli(['upload', local, '/NoDir/']);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toBe(
      'stratus: no such folder: /NoDir/ (a trailing slash names a folder); nothing uploaded (-p creates missing folders)\n',
    );
    // Nothing was created: no file named NoDir, no folder either.
    const root = await json<{ items: { name: string }[] }>(['ls', '/']);
    expect(root.items.map((i) => i.name)).not.toContain('NoDir');
    // The same for a missing parent of a file path.
    const noParent = await cli(['upload', local, '/NoDir/renamed.txt', '--json']);
    expect(noParent.code).toBe(4);
    expect(JSON.parse(noParent.stdout)).toMatchObject({ error: { code: 4 } });
    // A trailing slash on a file is not a folder either.
    await json(['upload', local, '/plain.txt']);
    expect((await cli(['upload', local, '/plain.txt/'])).code).toBe(5);
    // -p creates the folders and keeps the local name.
    const made = await json<{ path: string; size: number }>(['upload', '-p', local, '/NoDir/Deeper/']);
    expect(made).toMatchObject({ path: '/NoDir/Deeper/note.txt', size: 7 });
    const ls = await json<{ items: { name: string; type: string }[] }>(['ls', '/NoDir/Deeper']);
    expect(ls.items).toEqual([expect.objectContaining({ name: 'note.txt', type: 'file' })]);
    const folder = await json<{ items: { name: string; type: string }[] }>(['ls', '/']);
    expect(folder.items).toContainEqual(expect.objectContaining({ name: 'NoDir', type: 'folder' }));
  });

  it('a new version re-sends only the changed part (delta) and versions lists both', async () => {
    const data = randomBytes(40 * MiB);
    const local = await localFile('big.bin', data);
    const first = await json<{ bytesSent: number }>(['upload', local, '/big.bin']);
    expect(first.bytesSent).toBe(data.length);
    data.write('a 1 MiB change would do; a few bytes suffice', 17 * MiB);
    await fs.writeFile(local, data);
    const second = await json<{ bytesSent: number; bytesSkipped: number; sha256: string }>([
      'upload',
      local,
      '/big.bin',
    ]);
    expect(second.sha256).toBe(sha256(data));
    expect(second.bytesSent).toBe(8 * MiB); // one 8 MiB part of five
    expect(second.bytesSkipped).toBe(data.length - 8 * MiB);
    const out = path.join(work, 'big-back.bin');
    await json(['download', '/big.bin', out]);
    expect(sha256(await fs.readFile(out))).toBe(sha256(data));
    const versions = await json<{ items: { current: boolean }[] }>(['versions', '/big.bin']);
    expect(versions.items).toHaveLength(2);
    expect(versions.items[0]?.current).toBe(true);
  });

  it('an upload interrupted with SIGINT exits 130 and the same command resumes it', async () => {
    const data = randomBytes(40 * MiB);
    const local = await localFile('resume.bin', data);
    // One part at a time at 8 MiB/s: slow enough to interrupt after the first part is stored.
    const child = start(['upload', local, '/resume.bin', '--parallel', '1', '--limit-rate', '8M', '--json']);
    const done = finish(child);
    const pendingFile = path.join(configDir, 'uploads.json');
    let uploadId: string | undefined;
    for (let i = 0; i < 200 && !uploadId; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const pending = await fs.readFile(pendingFile, 'utf8').catch(() => '{}');
      uploadId = (Object.values(JSON.parse(pending)) as { uploadId: string }[])[0]?.uploadId;
    }
    expect(uploadId).toBeDefined();
    const token = JSON.parse(await fs.readFile(path.join(configDir, 'credentials.json'), 'utf8')).tokens
      .accessToken as string;
    const received = async () => {
      const res = await fetch(`${rt.url}/v1/uploads/${uploadId}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      return ((await res.json()) as { receivedParts: unknown[] }).receivedParts.length;
    };
    for (let i = 0; i < 200 && (await received()) < 1; i++) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGINT');
    const stopped = await done;
    expect(stopped.code).toBe(130);
    expect(stopped.stderr).toContain('run the same command again to resume');
    const stored = await received();
    expect(stored).toBeGreaterThanOrEqual(1);
    expect(stored).toBeLessThan(5);

    const resumed = await json<{ resumed: boolean; bytesSent: number; sha256: string }>([
      'upload',
      local,
      '/resume.bin',
    ]);
    expect(resumed.resumed).toBe(true);
    expect(resumed.sha256).toBe(sha256(data));
    expect(resumed.bytesSent).toBeLessThanOrEqual(data.length - stored * 8 * MiB);
    expect(JSON.parse(await fs.readFile(pendingFile, 'utf8'))).toEqual({});
    const out = path.join(work, 'resume-back.bin');
    await json(['download', '/resume.bin', out]);
    expect(sha256(await fs.readFile(out))).toBe(sha256(data));
  });

  it('a download killed mid-way resumes from its partial: only the rest is fetched, the whole verified', async () => {
    const data = randomBytes(24 * MiB + 3);
    await json(['upload', await localFile('fetch-me.bin', data), '/fetch-me.bin']);
    const out = path.join(work, 'fetched.bin');
    const { run, kept } = await interruptedDownload('/fetch-me.bin', out, 4 * MiB, 'SIGKILL');
    expect(run.code).toBeNull(); // killed: no chance to clean up or say anything
    expect(kept).toBeGreaterThanOrEqual(4 * MiB);
    expect(kept).toBeLessThan(data.length);
    const sidecar = JSON.parse(await fs.readFile(`${out}.stratus-partial.json`, 'utf8'));
    expect(sidecar).toMatchObject({ size: data.length, sha256: sha256(data) });
    await expect(fs.stat(out)).rejects.toThrow();

    const before = await storageBytesOut();
    const resumed = await json<{
      resumedFrom: number;
      bytesFetched: number;
      sha256: string;
      verified: boolean;
    }>(['download', '/fetch-me.bin', out]);
    const sent = (await storageBytesOut()) - before;
    expect(resumed).toMatchObject({ sha256: sha256(data), verified: true, resumedFrom: kept });
    expect(resumed.bytesFetched).toBe(data.length - kept);
    // Storage's own count: it answered the Range with the rest only.
    expect(sent).toBe(data.length - kept);
    expect(sha256(await fs.readFile(out))).toBe(sha256(data));
    await expect(fs.stat(`${out}.stratus-partial`)).rejects.toThrow();
    await expect(fs.stat(`${out}.stratus-partial.json`)).rejects.toThrow();
  });

  it('a download interrupted with SIGINT exits 130; after the file changes, the re-run starts from 0', async () => {
    const v1 = randomBytes(16 * MiB);
    const local = await localFile('changing.bin', v1);
    await json(['upload', local, '/changing.bin']);
    const out = path.join(work, 'changing-back.bin');
    const { run, kept } = await interruptedDownload('/changing.bin', out, 2 * MiB, 'SIGINT');
    expect(run.code).toBe(130);
    expect(run.stderr).toContain('run the same command again to resume');
    expect(kept).toBeGreaterThan(0);

    const v2 = randomBytes(12 * MiB);
    await fs.writeFile(local, v2);
    await json(['upload', local, '/changing.bin']);
    const before = await storageBytesOut();
    const again = await json<{ resumedFrom: number; bytesFetched: number; sha256: string }>([
      'download',
      '/changing.bin',
      out,
    ]);
    expect(again).toMatchObject({ resumedFrom: 0, bytesFetched: v2.length, sha256: sha256(v2) });
    expect((await storageBytesOut()) - before).toBe(v2.length);
    expect(sha256(await fs.readFile(out))).toBe(sha256(v2));
  });

  it('a partial that is not what its sidecar claims fails the hash once and is fetched again whole', async () => {
    const data = randomBytes(10 * MiB);
    await json(['upload', await localFile('claims.bin', data), '/claims.bin']);
    const versions = await json<{ items: { versionId: string }[] }>(['versions', '/claims.bin']);
    const out = path.join(work, 'claims-back.bin');
    // Right length for a prefix, wrong bytes: as if the disk had torn it, or someone edited it.
    await fs.writeFile(`${out}.stratus-partial`, randomBytes(3 * MiB));
    await fs.writeFile(
      `${out}.stratus-partial.json`,
      JSON.stringify({ versionId: versions.items[0]?.versionId, size: data.length, sha256: sha256(data) }),
    );
    const r = await json<{ resumedFrom: number; bytesFetched: number; sha256: string }>([
      'download',
      '/claims.bin',
      out,
    ]);
    expect(r).toMatchObject({ resumedFrom: 0, sha256: sha256(data) });
    expect(r.bytesFetched).toBe(data.length - 3 * MiB + data.length); // the rest, then the whole
    expect(sha256(await fs.readFile(out))).toBe(sha256(data));
  });

  it('mv renames and moves, rm trashes, trash lists, restore brings back', async () => {
    const local = await localFile('notes.txt', Buffer.from('hello notes\n'));
    await json(['upload', local, '/notes.txt']);
    const renamed = await json<{ name: string }>(['mv', '/notes.txt', '/notes-2026.txt']);
    expect(renamed.name).toBe('notes-2026.txt');
    await json(['mv', '/notes-2026.txt', '/Docs']);
    const docs = await json<{ items: { name: string }[] }>(['ls', '/Docs']);
    expect(docs.items.map((i) => i.name)).toContain('notes-2026.txt');
    const clash = await cli(['mv', '/Docs/notes-2026.txt', '/Docs/report.bin']);
    expect(clash.code).toBe(5);

    await json(['rm', '/Docs/notes-2026.txt']);
    expect((await cli(['ls', '/Docs/notes-2026.txt'])).code).toBe(4);
    const trash = await json<{ items: { name: string }[] }>(['trash']);
    expect(trash.items.map((t) => t.name)).toContain('notes-2026.txt');
    await json(['restore', '/Docs/notes-2026.txt']);
    const back = await json<{ items: { name: string; size: number }[] }>(['ls', '/Docs/notes-2026.txt']);
    expect(back.items[0]).toMatchObject({ name: 'notes-2026.txt', size: 12 });
    expect((await cli(['restore', '/Docs/never-existed.txt'])).code).toBe(4);
  });

  it('restore --version makes an old version current', async () => {
    const local = await localFile('draft.txt', Buffer.from('version one\n'));
    await json(['upload', local, '/draft.txt']);
    await fs.writeFile(local, 'version two, longer\n');
    await json(['upload', local, '/draft.txt']);
    const versions = await json<{ items: { versionId: string; sha256: string }[] }>([
      'versions',
      '/draft.txt',
    ]);
    const oldest = versions.items.at(-1) as { versionId: string; sha256: string };
    expect(oldest.sha256).toBe(sha256(Buffer.from('version one\n')));
    await json(['restore', '/draft.txt', '--version', oldest.versionId]);
    const out = path.join(work, 'draft-back.txt');
    await json(['download', '/draft.txt', out]);
    expect(await fs.readFile(out, 'utf8')).toBe('version one\n');
  });

  it('share prints a link that works without signing in (and needs the password)', async () => {
    const link = await json<{ url: string; hasPassword: boolean }>([
      'share',
      '/Docs/report.bin',
      '--expires',
      '1h',
      '--password',
      'open sesame',
    ]);
    expect(link.hasPassword).toBe(true);
    expect(link.url.startsWith(`${rt.url}/s/`)).toBe(true);
    const without = await fetch(link.url, { redirect: 'manual', headers: { accept: 'application/json' } });
    expect(without.status).toBe(401);
    const withPw = await fetch(link.url, {
      redirect: 'manual',
      headers: { 'x-share-password': 'open sesame' },
    });
    expect(withPw.status).toBe(302);
    expect((await cli(['share', '/Docs/report.bin', '--expires', 'soon'])).code).toBe(2);
  });

  it('usage reports bytes used against the quota', async () => {
    const u = await json<{ usedBytes: number; quotaBytes: number }>(['usage']);
    expect(u.usedBytes).toBeGreaterThan(40 * MiB);
    expect(u.quotaBytes).toBeGreaterThan(u.usedBytes);
    expect((await cli(['usage'])).stdout).toMatch(/MiB of .* used/);
  });

  it('sync uploads new and changed files only', async () => {
    const dir = path.join(work, 'tree');
    await localFile('tree/a.txt', Buffer.from('alpha'));
    await localFile('tree/sub/b.txt', Buffer.from('bravo'));
    await localFile('tree/sub/deeper/c.bin', randomBytes(6 * MiB));
    const first = await json<{ uploaded: { path: string }[]; unchanged: number; folders: number }>([
      'sync',
      dir,
      '/Mirror',
    ]);
    expect(first.uploaded.map((u) => u.path).sort()).toEqual([
      '/Mirror/a.txt',
      '/Mirror/sub/b.txt',
      '/Mirror/sub/deeper/c.bin',
    ]);
    const second = await json<{ uploaded: unknown[]; unchanged: number }>(['sync', dir, '/Mirror']);
    expect(second).toMatchObject({ uploaded: [], unchanged: 3 });
    await fs.writeFile(path.join(dir, 'sub/b.txt'), 'bravo, edited');
    await fs.writeFile(path.join(dir, 'new.txt'), 'new');
    const third = await json<{ uploaded: { path: string }[]; unchanged: number }>(['sync', dir, '/Mirror']);
    expect(third.uploaded.map((u) => u.path).sort()).toEqual(['/Mirror/new.txt', '/Mirror/sub/b.txt']);
    expect(third.unchanged).toBe(2);
    const out = path.join(work, 'b-back.txt');
    await json(['download', '/Mirror/sub/b.txt', out]);
    expect(await fs.readFile(out, 'utf8')).toBe('bravo, edited');
  });

  it('--json errors carry the problem type; an unreachable endpoint is one clear line', async () => {
    const r = await cli(['ls', '/does/not/exist', '--json']);
    expect(r.code).toBe(4);
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 4, type: expect.any(String) } });
    const down = await cli(['ls', '/', '--endpoint', 'http://127.0.0.1:9'], {
      env: { STRATUS_CONFIG_DIR: path.join(work, 'down-config') },
    });
    expect(down.code).toBe(3); // no login for that endpoint
    const unreachable = await cli(
      ['login', '--email', email, '--password', password, '--endpoint', 'http://127.0.0.1:9'],
      {
        env: { STRATUS_CONFIG_DIR: path.join(work, 'down-config') },
      },
    );
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/^stratus: cannot reach http:\/\/127\.0\.0\.1:9/);
  });

  it('logout revokes the tokens and forgets them', async () => {
    const saved = JSON.parse(await fs.readFile(path.join(configDir, 'credentials.json'), 'utf8'));
    expect((await cli(['logout'])).code).toBe(0);
    await expect(fs.stat(path.join(configDir, 'credentials.json'))).rejects.toThrow();
    const res = await fetch(`${rt.url}/v1/me`, {
      headers: { authorization: `Bearer ${saved.tokens.accessToken}` },
    });
    expect(res.status).toBe(401);
    expect((await cli(['ls'])).code).toBe(3);
  });
});
