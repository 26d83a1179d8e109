/**
 * Failure simulation on real processes and files: three local storage nodes at replication factor 2,
 * driven over HTTP. Each scenario injects faults, then reconciles and checks that every committed
 * version is downloadable, byte-identical and back at its replication factor. Ends with the line
 * "fault suite: S scenarios, F faults injected, V versions checked, L versions lost".
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { adminEnv, Client, type Runtime, sha256, startRuntime } from '../support/local-runtime.ts';
import { freePort, MOTO_SERVER, PG_URL, ROOT, tcpReachable } from '../support/services.ts';

const MiB = 1024 * 1024;
const tally = { scenarios: 0, faults: 0, versions: 0, lost: 0 };

afterAll(() => {
  const line = `fault suite: ${tally.scenarios} scenarios, ${tally.faults} faults injected, ${tally.versions} versions checked, ${tally.lost} versions lost`;
  console.log(line);
  expect(tally.lost).toBe(0);
});

interface Committed {
  fileId: string;
  versionId: string;
  sha: string;
}

/**
 * Reconciles, then checks every committed version: downloadable, identical, at the factor. Prints
 * one line per scenario naming each version and where its replicas are (node:state), and a full
 * line for any version lost, so a loss names itself.
 */
async function verifyAll(rt: Runtime, c: Client, files: Committed[]) {
  const report = await rt.container.reconciler.sweep({ verifyChecksums: true, orphanGraceSeconds: 3600 });
  const where: string[] = [];
  for (const f of files) {
    tally.versions++;
    const dl = await c.download(f.fileId);
    const replicas = (await rt.container.ledger.forVersion(f.versionId)).map((r) => r.data);
    const verified = replicas.filter((r) => r.state === 'verified');
    const placed = replicas.map((r) => `${r.nodeId}:${r.state}`).join(',');
    where.push(`${f.versionId.slice(0, 8)}@${placed}`);
    const ok = dl.status === 200 && sha256(dl.body ?? Buffer.alloc(0)) === f.sha && verified.length >= 2;
    if (!ok) {
      tally.lost++;
      console.log(
        `LOST ${expect.getState().currentTestName}: version ${f.versionId} (file ${f.fileId}) download ${dl.status}, replicas ${JSON.stringify(replicas)}, sweep ${JSON.stringify(report)}`,
      );
    }
  }
  console.log(`checked ${expect.getState().currentTestName}: ${files.length} versions ${where.join(' ')}`);
  for (const f of files) {
    const dl = await c.download(f.fileId);
    expect(dl.status, f.fileId).toBe(200);
    expect(sha256(dl.body ?? Buffer.alloc(0)), f.fileId).toBe(f.sha);
    const verified = (await rt.container.ledger.forVersion(f.versionId)).filter(
      (r) => r.data.state === 'verified',
    );
    expect(verified.length, f.versionId).toBeGreaterThanOrEqual(2);
  }
}

async function put(c: Client, name: string, size: number): Promise<Committed> {
  const data = randomBytes(size);
  const { complete } = await c.upload('root', name, data);
  if (complete?.status !== 201) throw new Error(`upload ${name}: ${complete?.status}`);
  return {
    fileId: complete.json.fileId as string,
    versionId: complete.json.versionId as string,
    sha: sha256(data),
  };
}

const nodeDir = (rt: Runtime, id: string) => path.join(rt.dataDir, 'nodes', id);

/** A node goes away: its directory vanishes and the health check has noticed. */
async function takeDown(rt: Runtime, id: string) {
  await fs.rename(nodeDir(rt, id), `${nodeDir(rt, id)}.down`);
  rt.container.nodes.setHealth(id, 'down');
  tally.faults++;
}
async function bringUp(rt: Runtime, id: string) {
  await fs.rename(`${nodeDir(rt, id)}.down`, nodeDir(rt, id));
  rt.container.nodes.setHealth(id, 'healthy');
}

describe('fault suite', () => {
  let rt: Runtime;
  let c: Client;
  const files: Committed[] = [];

  it('sets up three nodes at replication factor 2 with data on them', async () => {
    rt = await startRuntime({ STRATUS_LOCAL_NODES: '3', STRATUS_REPLICATION_FACTOR: '2' });
    c = new Client(rt.url);
    await c.signUp('faults@example.com');
    for (let i = 0; i < 6; i++) files.push(await put(c, `seed${i}.bin`, 200_000 + i));
    await verifyAll(rt, c, files);
  });

  it('a node down during an upload: the client starts over and the upload lands elsewhere', async () => {
    tally.scenarios++;
    const data = randomBytes(20 * MiB);
    const created = await c.call('POST', '/v1/uploads', {
      parentId: 'root',
      name: 'during-upload.bin',
      size: data.length,
      sha256: sha256(data),
    });
    const parts = created.json.parts as { partNumber: number; url: string }[];
    const partSize = created.json.partSize as number;
    const node = /\/storage\/([^/]+)\//.exec(parts[0]?.url ?? '')?.[1] ?? '';
    expect(
      (await fetch(parts[0]?.url ?? '', { method: 'PUT', body: data.subarray(0, partSize) })).status,
    ).toBe(200);
    await takeDown(rt, node);
    try {
      const second = await fetch(parts[1]?.url ?? '', { method: 'PUT', body: data.subarray(partSize) });
      expect(second.status).not.toBe(200);
      await c.call('DELETE', `/v1/uploads/${created.json.uploadId}`);
      const again = await c.upload('root', 'during-upload.bin', data);
      expect(again.complete?.status).toBe(201);
      expect(String((again.created.json.parts as { url: string }[])[0]?.url)).not.toContain(
        `/storage/${node}/`,
      );
      files.push({
        fileId: again.complete?.json.fileId as string,
        versionId: again.complete?.json.versionId as string,
        sha: sha256(data),
      });
    } finally {
      await bringUp(rt, node);
    }
    await verifyAll(rt, c, files);
  });

  it('a node down during a download: the next request is served by the other replica', async () => {
    tally.scenarios++;
    const f = files[0] as Committed;
    const first = await c.call('GET', `/v1/files/${f.fileId}/download`);
    const node = /\/storage\/([^/]+)\//.exec(first.headers.get('location') ?? '')?.[1] ?? '';
    await takeDown(rt, node);
    try {
      expect((await fetch(first.headers.get('location') ?? '')).status).not.toBe(200);
      const retry = await c.download(f.fileId);
      expect(retry.status).toBe(200);
      expect(sha256(retry.body ?? Buffer.alloc(0))).toBe(f.sha);
    } finally {
      await bringUp(rt, node);
    }
    await verifyAll(rt, c, files);
  });

  it("a node's data wiped", async () => {
    tally.scenarios++;
    const victim = 'local-2';
    await fs.rm(path.join(nodeDir(rt, victim), 'objects'), { recursive: true, force: true });
    await fs.mkdir(path.join(nodeDir(rt, victim), 'objects'), { recursive: true });
    tally.faults++;
    await verifyAll(rt, c, files);
    expect(await rt.container.ledger.countOn(victim)).toBeGreaterThan(0);
  });

  it('a bit flipped in one replica', async () => {
    tally.scenarios++;
    const f = files[1] as Committed;
    const holder =
      (await rt.container.ledger.forVersion(f.versionId)).find((r) => r.data.state === 'verified')?.data
        .nodeId ?? '';
    const part = path.join(nodeDir(rt, holder), 'objects', 'v', f.versionId, 'part.1');
    const bytes = await fs.readFile(part);
    bytes[123] = (bytes[123] ?? 0) ^ 0x10;
    await fs.writeFile(part, bytes);
    tally.faults++;
    const report = await rt.container.reconciler.sweep({ verifyChecksums: true });
    expect(report.corrupt).toBeGreaterThanOrEqual(1);
    await verifyAll(rt, c, files);
  });

  it('the replicator killed in the middle of a copy', async () => {
    tally.scenarios++;
    // Every copy, to whichever node, dies halfway: half the bytes in a temp file, nothing published.
    // Both ways a copy goes: streamed (writeStream) and, between local nodes, a file copy (copyFrom).
    const originals = new Map<string, (typeof rt.container.localNodes)[number]['writeStream']>();
    const originalCopies = new Map<string, (typeof rt.container.localNodes)[number]['copyFrom']>();
    for (const node of rt.container.localNodes) {
      originals.set(node.nodeId, node.writeStream.bind(node));
      originalCopies.set(node.nodeId, node.copyFrom?.bind(node));
      node.copyFrom = async (_source, key) => {
        await fs.writeFile(
          path.join(node.root, 'tmp', `killed-${Date.now()}-${Math.random()}`),
          'half a copy',
        );
        throw new Error(`replicator killed while copying ${key}`);
      };
      node.writeStream = async (key, body) => {
        const tmp = path.join(node.root, 'tmp', `killed-${Date.now()}-${Math.random()}`);
        let n = 0;
        for await (const chunk of body as AsyncIterable<Buffer>) {
          await fs.appendFile(tmp, chunk);
          n += chunk.length;
          if (n > 1000) throw new Error(`replicator killed while copying ${key}`);
        }
        throw new Error('replicator killed');
      };
    }
    tally.faults++;
    const written: Committed[] = [];
    for (let i = 0; i < 4; i++) written.push(await put(c, `mid-copy${i}.bin`, 300_000));
    await new Promise((r) => setTimeout(r, 300));
    const leftovers = async () =>
      (await Promise.all(rt.container.localNodes.map((n) => fs.readdir(path.join(n.root, 'tmp'))))).flat()
        .length;
    expect(await leftovers()).toBeGreaterThan(0);
    for (const w of written) {
      const states = (await rt.container.ledger.forVersion(w.versionId)).map((r) => r.data.state).sort();
      expect(states).toEqual(['pending', 'verified']);
    }
    // The nodes restart: half-written temp files are dropped; the reconciler finishes the copies.
    for (const node of rt.container.localNodes) {
      node.writeStream = originals.get(node.nodeId) ?? node.writeStream;
      node.copyFrom = originalCopies.get(node.nodeId) ?? node.copyFrom;
      await node.init();
    }
    expect(await leftovers()).toBe(0);
    files.push(...written);
    await verifyAll(rt, c, files);
  });

  it('the runtime killed (SIGKILL) during a commit, then restarted', async () => {
    tally.scenarios++;
    await rt.stop();
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-fault-'));
    const port = await freePort();
    const env = {
      PATH: process.env.PATH ?? '',
      HOME: os.tmpdir(),
      PORT: String(port),
      STRATUS_DATA_DIR: dir,
      STRATUS_KDF_COST: '10',
      STRATUS_LOG_LEVEL: 'error',
      STRATUS_LOCAL_NODES: '3',
      STRATUS_REPLICATION_FACTOR: '2',
      ...adminEnv('ops@example.com'),
    };
    const start = async (): Promise<ChildProcess> => {
      const child = spawn(process.execPath, [path.join(ROOT, 'local', 'main.ts')], {
        env,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      await new Promise<void>((resolve, reject) => {
        // Generous: PGlite's start is CPU-bound, and half the runs share the machine with busy loops.
        const t = setTimeout(() => reject(new Error('runtime did not start')), 120_000);
        child.stdout?.on('data', (d: Buffer) => {
          if (d.toString().includes('running at')) {
            clearTimeout(t);
            resolve();
          }
        });
      });
      return child;
    };
    let child = await start();
    const url = `http://127.0.0.1:${port}`;
    const ops = new Client(url);
    await ops.signInAdmin('ops@example.com');
    const data = randomBytes(40 * MiB);
    const created = await ops.call('POST', '/v1/uploads', {
      parentId: 'root',
      name: 'killed.bin',
      size: data.length,
      sha256: sha256(data),
    });
    const partSize = created.json.partSize as number;
    const etags = [];
    for (const p of created.json.parts as { partNumber: number; url: string }[]) {
      const res = await fetch(p.url, {
        method: 'PUT',
        body: data.subarray((p.partNumber - 1) * partSize, p.partNumber * partSize),
      });
      etags.push({ partNumber: p.partNumber, etag: res.headers.get('etag') });
    }
    const inflight = fetch(`${url}/v1/uploads/${created.json.uploadId}/complete`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ops.accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ parts: etags }),
    }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 40));
    child.kill('SIGKILL');
    await inflight;
    tally.faults++;
    child = await start();
    try {
      // The client retries its complete: it either finds the version committed or commits it now.
      // If the killed request held the upload (completing), the retry is told to wait until that
      // request's lease has passed, then takes over.
      let done = await ops.call('POST', `/v1/uploads/${created.json.uploadId}/complete`, { parts: etags });
      for (
        let i = 0;
        i < 10 && done.status === 409 && done.json.type === 'urn:stratus:problem:upload-in-progress';
        i++
      ) {
        await new Promise((r) => setTimeout(r, Number(done.headers.get('retry-after') ?? 1) * 1000));
        done = await ops.call('POST', `/v1/uploads/${created.json.uploadId}/complete`, { parts: etags });
      }
      expect(done.status, JSON.stringify(done.json)).toBe(201);
      expect((await ops.call('POST', '/v1/admin/reconcile')).status).toBe(200);
      tally.versions++;
      const dl = await ops.download(done.json.fileId as string);
      const ok = dl.status === 200 && sha256(dl.body ?? Buffer.alloc(0)) === sha256(data);
      if (!ok) tally.lost++;
      expect(ok).toBe(true);
      expect((await ops.call('GET', '/v1/admin/replication')).json).toMatchObject({
        belowReplicationFactor: 0,
        failed: 0,
      });
    } finally {
      child.kill('SIGTERM');
    }
  });
});

/** Polls until `check` holds (or throws after `ms`). */
async function eventually(check: () => Promise<boolean>, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('fault suite: services failing under the runtime', () => {
  it('Redis down: reads keep working, writes fail closed, and everything recovers', async () => {
    tally.scenarios++;
    const port = await freePort();
    const start = () =>
      spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        { stdio: 'ignore' },
      );
    let redis = start();
    await eventually(() => tcpReachable('127.0.0.1', port).then(() => true));
    const r = await startRuntime({
      STRATUS_REDIS_URL: `redis://127.0.0.1:${port}`,
      STRATUS_LOCAL_NODES: '3',
      STRATUS_REPLICATION_FACTOR: '2',
    });
    try {
      const cl = new Client(r.url);
      await cl.signUp('redis-fault@example.com');
      const files = [await put(cl, 'r1.bin', 100_000), await put(cl, 'r2.bin', 120_000)];
      redis.kill('SIGKILL');
      tally.faults++;
      await new Promise((res) => setTimeout(res, 300));
      // Reads fail open (cache and limiter), so every version stays downloadable.
      await verifyAll(r, cl, files);
      const write = await cl.call('POST', '/v1/folders', { parentId: 'root', name: 'while-redis-is-down' });
      expect(write.status).toBe(503);
      redis = start();
      await eventually(
        async () =>
          (await cl.call('POST', '/v1/folders', { parentId: 'root', name: 'after-redis' })).status === 201,
      );
      files.push(await put(cl, 'r3.bin', 90_000));
      await verifyAll(r, cl, files);
    } finally {
      await r.stop();
      redis.kill('SIGKILL');
    }
  });

  it('PostgreSQL restarted under a runtime that uses it', async () => {
    tally.scenarios++;
    const name = `fault_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    await admin.query(`create database ${name}`);
    await admin.end();
    const url = new URL(PG_URL);
    url.pathname = `/${name}`;
    const r = await startRuntime({
      STRATUS_DATABASE_URL: url.toString(),
      STRATUS_LOCAL_NODES: '3',
      STRATUS_REPLICATION_FACTOR: '2',
    });
    const cluster = (await fs.readdir('/etc/postgresql'))[0] ?? '15';
    try {
      const cl = new Client(r.url);
      await cl.signUp('pg-fault@example.com');
      const files = [await put(cl, 'p1.bin', 150_000), await put(cl, 'p2.bin', 160_000)];
      execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', cluster, 'main', 'restart'], {
        stdio: 'ignore',
      });
      tally.faults++;
      // Pooled connections died with the server; the pool reconnects and requests succeed again.
      await eventually(async () => (await cl.call('GET', '/v1/folders/root/children')).status === 200);
      files.push(await put(cl, 'p3.bin', 170_000));
      await verifyAll(r, cl, files);
    } finally {
      await r.stop();
      await tcpReachable('127.0.0.1', 5432).catch(() =>
        execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', cluster, 'main', 'start'], {
          stdio: 'ignore',
        }),
      );
      const cleanup = new pg.Client({ connectionString: PG_URL });
      await cleanup.connect();
      await cleanup.query(`drop database if exists ${name} with (force)`);
      await cleanup.end();
    }
  });

  it('the emulator restarted under an S3 node holding a replica of every version', async () => {
    tally.scenarios++;
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    const start = () => spawn(MOTO_SERVER, ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
    let moto = start();
    const up = () => eventually(async () => (await fetch(`${endpoint}/moto-api/`)).status < 500);
    await up();
    const s3 = new S3Client({
      region: 'us-east-1',
      endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    await s3.send(new CreateBucketCommand({ Bucket: 'fault-node' }));
    const r = await startRuntime({
      STRATUS_LOCAL_NODES: '3',
      STRATUS_REPLICATION_FACTOR: '2',
      ...adminEnv('ops-s3@example.com'),
    });
    try {
      const ops = new Client(r.url);
      await ops.signInAdmin('ops-s3@example.com');
      // Another region: placement puts one replica of every version there.
      const added = await ops.call('POST', '/v1/admin/nodes', {
        id: 's3-fault',
        kind: 's3',
        bucket: 'fault-node',
        region: 'us-east-1',
        endpoint,
      });
      expect(added.status).toBe(201);
      const files = [];
      for (let i = 0; i < 5; i++) files.push(await put(ops, `s${i}.bin`, 80_000 + i));
      await verifyAll(r, ops, files);
      expect(await r.container.ledger.countOn('s3-fault')).toBe(files.length);
      moto.kill('SIGKILL');
      moto = start();
      await up();
      tally.faults++;
      // The emulator lost everything; the operator recreates the bucket, the reconciler the replicas.
      await s3.send(new CreateBucketCommand({ Bucket: 'fault-node' }));
      expect((await s3.send(new ListObjectsV2Command({ Bucket: 'fault-node' }))).KeyCount ?? 0).toBe(0);
      await verifyAll(r, ops, files);
      expect((await s3.send(new ListObjectsV2Command({ Bucket: 'fault-node' }))).KeyCount).toBe(files.length);
    } finally {
      await r.stop();
      moto.kill('SIGKILL');
    }
  });
});
