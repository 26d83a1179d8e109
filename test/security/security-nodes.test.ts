/**
 * Attacks on `POST /v1/admin/nodes {kind: 'localfs', path}` over HTTP (issue 18, item 2). A local
 * node's start-up clears its `tmp/`, so a node placed at an arbitrary host path deleted host files.
 * An admin-added node must resolve, symlinks followed, strictly under one of
 * STRATUS_LOCAL_NODE_ROOTS (default: the data directory's `nodes/`); and a node never follows a
 * symlinked `tmp`, `objects` or `multipart`. Every refusal is a 400 naming `body.path`, and a
 * sentinel file outside the allowed root survives each attempt.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeCatalog } from '../../shared/services/node-catalog.ts';
import { Client, type Runtime, startRuntime } from '../support/local-runtime.ts';

const ADMIN = 'nodes-admin@example.com';
const PASSWORD = 'correct horse battery';

let rt: Runtime;
let admin: Client;
let sandbox: string;
let nodesRoot: string;

const exists = (p: string) =>
  fs.lstat(p).then(
    () => true,
    () => false,
  );

/** A directory outside the allowed root holding `tmp/sentinel.txt` (what a node's init would remove). */
async function victim(name: string): Promise<{ dir: string; sentinel: string }> {
  const dir = path.join(sandbox, 'outside', name);
  await fs.mkdir(path.join(dir, 'tmp'), { recursive: true });
  const sentinel = path.join(dir, 'tmp', 'sentinel.txt');
  await fs.writeFile(sentinel, 'must survive');
  return { dir, sentinel };
}

beforeAll(async () => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-e2e-nodes-'));
  sandbox = dataDir;
  nodesRoot = path.join(dataDir, 'nodes');
  rt = await startRuntime(
    {
      STRATUS_LOCAL_NODES: '1',
      STRATUS_REPLICATION_FACTOR: '1',
      STRATUS_ADMIN_EMAIL: ADMIN,
      STRATUS_ADMIN_PASSWORD: PASSWORD,
      STRATUS_HEALTH_INTERVAL_SECONDS: '0',
      STRATUS_RECONCILE_INTERVAL_SECONDS: '0',
    },
    dataDir,
  );
  admin = new Client(rt.url);
  // The admin exists from start-up (STRATUS_ADMIN_EMAIL + STRATUS_ADMIN_PASSWORD).
  await admin.signInAdmin(ADMIN, PASSWORD);
  expect((await admin.call('GET', '/v1/admin/nodes')).status).toBe(200);
});

afterAll(async () => {
  await rt?.stop();
  if (sandbox) {
    await fs.rm(sandbox, { recursive: true, force: true });
    await fs.rm(`${sandbox}-beside`, { recursive: true, force: true });
  }
});

let seq = 0;
const addNode = (p: string) =>
  admin.call('POST', '/v1/admin/nodes', { id: `attack-${++seq}`, kind: 'localfs', path: p });

function expectPathRefused(res: Awaited<ReturnType<typeof addNode>>, what: string) {
  // Soft: a wrongly accepted path still goes on to the check that the sentinel survived.
  expect.soft(res.status, `${what}: ${JSON.stringify(res.json)}`).toBe(400);
  expect.soft(res.json.type, what).toBe('urn:stratus:problem:validation-error');
  expect
    .soft(
      (res.json.errors as { path: string }[] | undefined)?.map((e) => e.path),
      what,
    )
    .toEqual(['body.path']);
}

describe('admin-added local nodes (sandbox attacks)', () => {
  it('refuses a `..` escape out of the allowed root, relative or absolute', async () => {
    const v = await victim('dotdot');
    const beside = `../${path.basename(sandbox)}-beside`;
    for (const p of ['nodes/../outside/dotdot', `${nodesRoot}/../outside/dotdot`, beside]) {
      expectPathRefused(await addNode(p), p);
      expect(await exists(v.sentinel), p).toBe(true);
    }
    expect(await exists(path.join(v.dir, 'objects'))).toBe(false);
    expect(await exists(path.resolve(sandbox, beside))).toBe(false);
  });

  it('refuses a symlink inside the allowed root that points outside it', async () => {
    const v = await victim('linked');
    await fs.mkdir(nodesRoot, { recursive: true });
    await fs.symlink(v.dir, path.join(nodesRoot, 'escape'));
    for (const p of ['nodes/escape', 'nodes/escape/deeper/new', path.join(nodesRoot, 'escape')]) {
      expectPathRefused(await addNode(p), p);
      expect(await exists(v.sentinel), p).toBe(true);
    }
    expect(await exists(path.join(v.dir, 'objects'))).toBe(false);
    expect(await exists(path.join(v.dir, 'deeper'))).toBe(false);
  });

  it('refuses a node directory whose tmp, objects or multipart is a symlink, following none', async () => {
    for (const sub of ['tmp', 'objects', 'multipart']) {
      const v = await victim(`sub-${sub}`);
      const dir = path.join(nodesRoot, `trap-${sub}`);
      await fs.mkdir(dir, { recursive: true });
      // The symlink points at the victim's tmp/, where the sentinel lives.
      await fs.symlink(path.join(v.dir, 'tmp'), path.join(dir, sub));
      expectPathRefused(await addNode(`nodes/trap-${sub}`), sub);
      expect(await exists(v.sentinel), sub).toBe(true);
      expect((await fs.lstat(path.join(dir, sub))).isSymbolicLink(), sub).toBe(true);
    }
  });

  it('refuses the allowed root itself and another node\u2019s directory', async () => {
    const before = await fs.readdir(path.join(nodesRoot, 'local-1', 'objects'));
    for (const p of ['nodes', nodesRoot, 'nodes/local-1', 'nodes/local-1/objects/x']) {
      expectPathRefused(await addNode(p), p);
    }
    expect(await fs.readdir(path.join(nodesRoot, 'local-1', 'objects'))).toEqual(before);
  });

  it('adds a node strictly under the allowed root (relative or absolute), which then serves', async () => {
    const rel = await admin.call('POST', '/v1/admin/nodes', {
      id: 'extra-rel',
      kind: 'localfs',
      path: 'nodes/extra-rel',
    });
    expect(rel.status, JSON.stringify(rel.json)).toBe(201);
    const abs = await admin.call('POST', '/v1/admin/nodes', {
      id: 'extra-abs',
      kind: 'localfs',
      path: path.join(nodesRoot, 'deep', 'extra-abs'),
    });
    expect(abs.status, JSON.stringify(abs.json)).toBe(201);
    for (const d of ['tmp', 'objects', 'multipart']) {
      expect((await fs.lstat(path.join(nodesRoot, 'extra-rel', d))).isDirectory()).toBe(true);
      expect((await fs.lstat(path.join(nodesRoot, 'deep', 'extra-abs', d))).isDirectory()).toBe(true);
    }
    const listed = (await admin.call('GET', '/v1/admin/nodes')).json.items as { id: string }[];
    expect(listed.map((n) => n.id)).toEqual(expect.arrayContaining(['extra-rel', 'extra-abs']));
    // A refused attempt registered nothing.
    expect(listed.map((n) => n.id).filter((id) => id.startsWith('attack-'))).toEqual([]);
  });
});

describe('admin-added local nodes (host paths)', () => {
  // Not run against the unfixed code: there, `/` removes the host's /tmp and `/etc` gains
  // objects/, multipart/ and tmp/ (the sandbox cases above show the same flaw safely).
  it('refuses /, /etc and /tmp, deleting and creating nothing there', async () => {
    const v = await victim('host');
    for (const p of ['/', '/etc', '/tmp', os.tmpdir(), '/etc/../tmp']) {
      expectPathRefused(await addNode(p), p);
      expect(await exists(v.sentinel), p).toBe(true);
    }
    for (const d of ['objects', 'multipart']) {
      expect(await exists(path.join('/etc', d)), `/etc/${d}`).toBe(false);
      expect(await exists(path.join('/', d)), `/${d}`).toBe(false);
    }
  });
});

describe('a cataloged node the roots no longer allow', () => {
  it('stops start-up with a line naming the node and the setting, and deletes nothing', async () => {
    // What an upgrade finds: a node added at run time, before the roots check, outside the roots.
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-e2e-catalog-'));
    const outside = path.join(dataDir, 'elsewhere');
    await fs.mkdir(path.join(outside, 'tmp'), { recursive: true });
    await fs.writeFile(path.join(outside, 'tmp', 'sentinel.txt'), 'must survive');
    const first = await startRuntime({ STRATUS_LOCAL_NODES: '1', STRATUS_REPLICATION_FACTOR: '1' }, dataDir);
    await new NodeCatalog(first.container.state).save('old-node', {
      spec: { id: 'old-node', kind: 'localfs', path: outside },
      draining: false,
    });
    await first.stop();
    await expect(
      startRuntime({ STRATUS_LOCAL_NODES: '1', STRATUS_REPLICATION_FACTOR: '1' }, dataDir),
    ).rejects.toThrow(/storage node old-node .*node catalog.*STRATUS_LOCAL_NODE_ROOTS/);
    expect(await exists(path.join(outside, 'tmp', 'sentinel.txt'))).toBe(true);
  });
});
