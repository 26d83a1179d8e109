/**
 * `npm run bench [-- --quick]`: measures Stratus against this machine's own limits, measured first
 * in the same run (disk with fdatasync, disk read, a bare Node HTTP server on loopback), and against
 * a peer (@tus/server + @tus/file-store). Writes bench/results/<date>.json, SVG plots beside it,
 * and the table in bench/README.md. `--quick` shrinks every size so the whole run takes under
 * three minutes (CI runs it so the harness cannot rot); only full runs are meant to be quoted.
 */

import { execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { StratusApi } from '../clients/api.ts';
import { postgresMetadata } from '../functions/container.ts';
import { NodeRegistry } from '../shared/services/node-registry.ts';
import { OrphanSweep } from '../shared/services/orphan-sweep.ts';
import { seedLocalObjects } from '../test/support/local-node.ts';
import { startRuntime } from '../test/support/local-runtime.ts';
import { PG_URL } from '../test/support/services.ts';
import { COLD_RUNS, coldStart, describeColdStart } from './cold-start.ts';
import {
  CompleteProbe,
  drain,
  freePort,
  latency,
  MiB,
  makeFile,
  mbps,
  peakRssDuring,
  putSmall,
  ROOT,
  round,
  signInAdmin,
  signUp,
  spread,
  startChildRuntime,
  svgPlot,
  timed,
  uploadPhased,
  uploadTimed,
} from './lib.ts';
import { writeReport } from './report.ts';
import { tusPeer } from './tus-peer.ts';

const quick = process.argv.includes('--quick');
/**
 * `--only=data-path`: the baselines, throughput, the peer, memory and the complete curve alone, at
 * the mode's sizes, written to <date>[-quick]-data-path.json; the README is left as it is.
 */
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const SIZES = quick
  ? {
      big: 128 * MiB,
      runs: 2,
      memory: 256 * MiB,
      folder: 2_000,
      samples: 60,
      versions: 200,
      concurrencySeconds: 5,
      coldRuns: COLD_RUNS.quick,
      delta: 64 * MiB,
      curveSizes: [16, 64, 128].map((n) => n * MiB),
      listSizes: [100, 1_000, 3_000],
      sweepSizes: [300, 1_000, 2_000],
      orphanObjects: 2_500,
    }
  : {
      big: 1024 * MiB,
      runs: 3,
      memory: 2048 * MiB,
      folder: 10_000,
      samples: 300,
      versions: 1_000,
      concurrencySeconds: 30,
      coldRuns: COLD_RUNS.full,
      delta: 256 * MiB,
      curveSizes: [16, 64, 256, 1024, 4096].map((n) => n * MiB),
      listSizes: [100, 1_000, 10_000, 100_000],
      sweepSizes: [1_000, 10_000, 100_000],
      orphanObjects: 25_000,
    };

// Under the system's temporary directory (big files: up to 4 GiB and its stored copy), removed at the end.
const work = path.join(os.tmpdir(), `stratus-bench-${process.pid}`);
let last = performance.now();
const log = (m: string) => {
  const now = performance.now();
  process.stdout.write(`bench: ${m} (+${round((now - last) / 1000, 1)} s)\n`);
  last = now;
};

// ------------------------------------------------------------------ baselines

async function diskBaseline() {
  const file = path.join(work, 'disk-baseline.bin');
  const chunk = Buffer.alloc(8 * MiB, 0x5a);
  const writes: number[] = [];
  const reads: number[] = [];
  for (let r = 0; r < SIZES.runs; r++) {
    await fs.rm(file, { force: true });
    const w = await timed(async () => {
      const fh = await fs.open(file, 'w');
      for (let off = 0; off < SIZES.big; off += chunk.length) await fh.write(chunk);
      await fh.datasync();
      await fh.close();
    });
    writes.push(mbps(SIZES.big, w.ms));
    const rd = await timed(async () => {
      const fh = await fs.open(file, 'r');
      const buf = Buffer.allocUnsafe(8 * MiB);
      for (;;) if ((await fh.read(buf, 0, buf.length)).bytesRead === 0) break;
      await fh.close();
    });
    reads.push(mbps(SIZES.big, rd.ms));
  }
  await fs.rm(file, { force: true });
  return { writeMBps: spread(writes), readMBps: spread(reads) };
}

/** A bare Node HTTP server: what loopback HTTP costs with nothing else in the way. */
async function loopbackBaseline() {
  const payload = Buffer.alloc(8 * MiB, 0x33);
  const server = http.createServer((req, res) => {
    if (req.method === 'PUT') {
      req.on('data', () => undefined);
      req.on('end', () => res.writeHead(200, { etag: '"x"' }).end());
      return;
    }
    const total = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('bytes'));
    res.writeHead(200, { 'content-length': String(total) });
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        const n = Math.min(payload.length, total - sent);
        sent += n;
        if (!res.write(n === payload.length ? payload : payload.subarray(0, n)))
          return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const url = `http://127.0.0.1:${port}`;
  const ups: number[] = [];
  const downs: number[] = [];
  for (let r = 0; r < SIZES.runs; r++) {
    const parts = SIZES.big / payload.length;
    let next = 0;
    const up = await timed(() =>
      Promise.all(
        Array.from({ length: 4 }, async () => {
          while (next < parts) {
            next++;
            const res = await fetch(`${url}/put`, { method: 'PUT', body: payload });
            await res.arrayBuffer();
          }
        }),
      ),
    );
    ups.push(mbps(SIZES.big, up.ms));
    const down = await timed(async () => drain(await fetch(`${url}/get?bytes=${SIZES.big}`)));
    downs.push(mbps(SIZES.big, down.ms));
  }
  await new Promise((r) => server.close(r));
  return { uploadMBps: spread(ups), downloadMBps: spread(downs) };
}

// ------------------------------------------------------------------ throughput

async function throughput(bigFile: string) {
  const out: Record<string, unknown> = {};
  for (const rf of [1, 2]) {
    const dir = path.join(work, `rt-rf${rf}`);
    await fs.rm(dir, { recursive: true, force: true });
    const email = `bench-rf${rf}@example.com`;
    const rt = await startChildRuntime(dir, {
      STRATUS_LOCAL_NODES: String(rf),
      STRATUS_REPLICATION_FACTOR: String(rf),
      // An admin, to read /v1/admin/replication.
      STRATUS_ADMIN_EMAIL: email,
      STRATUS_ADMIN_PASSWORD: 'correct horse battery',
    });
    try {
      const probe = new CompleteProbe();
      const api = await signInAdmin(rt.url, email, probe.fetch);
      const ups: number[] = [];
      const endToEnd: number[] = [];
      const downs: number[] = [];
      const cpuUp: number[] = [];
      const cpuDown: number[] = [];
      const gib = SIZES.big / 1024 ** 3;
      let replicatedMs: number | undefined;
      for (let r = 0; r < SIZES.runs; r++) {
        const c0 = await rt.cpuSeconds();
        const up = await uploadPhased(api, probe, bigFile, 'root', `big-${r}.bin`);
        const c1 = await rt.cpuSeconds();
        ups.push(mbps(SIZES.big, up.transferMs));
        endToEnd.push(mbps(SIZES.big, up.endToEndMs));
        cpuUp.push(round((c1 - c0) / gib));
        if (rf > 1 && r === 0) replicatedMs = await timeToReplicate(api, up.transferMs);
        const c2 = await rt.cpuSeconds();
        const d = await timed(async () => {
          const { url } = await api.downloadUrl(up.fileId);
          return drain(await fetch(url));
        });
        cpuDown.push(round(((await rt.cpuSeconds()) - c2) / gib));
        if (d.value !== SIZES.big) throw new Error(`download returned ${d.value} bytes`);
        downs.push(mbps(SIZES.big, d.ms));
      }
      out[`rf${rf}`] = {
        // Parts sent until complete answered (201, or 202 with verification left to the background),
        // the client's hashes known beforehand; then the CLI's whole wait, its hashing pass and
        // the wait for the commit included.
        uploadMBps: spread(ups),
        endToEndMBps: spread(endToEnd),
        downloadMBps: spread(downs),
        runtimeCpuSecondsPerGiB: { upload: spread(cpuUp), download: spread(cpuDown) },
        ...(replicatedMs !== undefined ? { secondsUntilReplicated: round(replicatedMs / 1000) } : {}),
      };
    } finally {
      await rt.stop();
      await fs.rm(dir, { recursive: true, force: true });
    }
  }
  return out;
}

/** From the start of the upload until the admin view says every version is at the factor. */
async function timeToReplicate(api: StratusApi, uploadMs: number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const r = await api.replication();
    if (r.belowReplicationFactor === 0) return uploadMs + (performance.now() - t0);
    if (performance.now() - t0 > 600_000) throw new Error('not replicated after 10 minutes');
    await new Promise((res) => setTimeout(res, 100));
  }
}

// ------------------------------------------------------------------ memory

/** A throwaway database on the machine's PostgreSQL for one scenario. */
async function withPgDatabase<T>(run: (url: string) => Promise<T>): Promise<T> {
  const name = `stratus_bench_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const u = new URL(PG_URL);
  u.pathname = `/${name}`;
  try {
    return await run(u.toString());
  } finally {
    const again = new pg.Client({ connectionString: PG_URL });
    await again.connect();
    await again.query(`drop database if exists ${name} with (force)`);
    await again.end();
  }
}

/**
 * `npm start` as users run it (package.json's Node flags, three local nodes at replication factor
 * 2, metadata in PGlite), idle on a fresh data directory: the highest of ten readings 0.5 s apart,
 * once start-up work (first health checks, first sweep) is done. Its target: < 250 MB.
 */
async function startIdleRss(): Promise<number> {
  const dir = path.join(work, 'rt-start-idle');
  await fs.rm(dir, { recursive: true, force: true });
  const rt = await startChildRuntime(dir, {
    STRATUS_LOCAL_NODES: '3',
    STRATUS_REPLICATION_FACTOR: '2',
    STRATUS_KDF_COST: '17',
  });
  try {
    await new Promise((r) => setTimeout(r, 10_000));
    let peak = 0;
    for (let i = 0; i < 10; i++) {
      peak = Math.max(peak, await rt.rssMiB());
      await new Promise((r) => setTimeout(r, 500));
    }
    return peak;
  } finally {
    await rt.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/**
 * RSS of the runtime process, sampled every 20 ms, while it receives and then serves a big file.
 * The runtime keeps metadata in PostgreSQL here: PGlite lives in the same process and its
 * WebAssembly heap would hide the transfer path (its idle RSS is reported separately).
 */
async function memory() {
  const file = path.join(work, 'memory.bin');
  await makeFile(file, SIZES.memory, 7);
  const measure = async (env: Record<string, string>, transfer: boolean) => {
    const dir = path.join(work, 'rt-memory');
    await fs.rm(dir, { recursive: true, force: true });
    const rt = await startChildRuntime(dir, {
      STRATUS_LOCAL_NODES: '1',
      STRATUS_REPLICATION_FACTOR: '1',
      ...env,
    });
    try {
      await new Promise((r) => setTimeout(r, 1000));
      const idle = await rt.rssMiB();
      if (!transfer) return { idleRssMiB: idle };
      const probe = new CompleteProbe();
      const api = await signUp(rt.url, 'bench-memory@example.com', probe.fetch);
      let fileId = '';
      // Until committed: background verification of a big upload runs in this process too.
      const upload = await peakRssDuring(rt, async () => {
        fileId = (await uploadPhased(api, probe, file, 'root', 'memory.bin')).fileId;
      });
      const download = await peakRssDuring(rt, async () => {
        const { url } = await api.downloadUrl(fileId);
        if ((await drain(await fetch(url))) !== SIZES.memory) throw new Error('short download');
      });
      return { idleRssMiB: idle, peakRssUploadMiB: upload, peakRssDownloadMiB: download };
    } finally {
      await rt.stop();
      await fs.rm(dir, { recursive: true, force: true });
    }
  };
  try {
    const withPg = await withPgDatabase((url) => measure({ STRATUS_DATABASE_URL: url }, true));
    const pglite = await measure({}, false);
    const start = await startIdleRss();
    return {
      bytes: SIZES.memory,
      metadataStore: 'PostgreSQL',
      ...withPg,
      peakRssMiB: Math.max(withPg.peakRssUploadMiB ?? 0, withPg.peakRssDownloadMiB ?? 0),
      pgliteIdleRssMiB: pglite.idleRssMiB,
      startIdleRssMiB: start,
    };
  } finally {
    await fs.rm(file, { force: true });
  }
}

// ------------------------------------------------------------------ metadata

async function seedFolder(
  db: { query: (sql: string, p?: unknown[]) => Promise<unknown[]> },
  owner: string,
  parent: string,
  n: number,
) {
  // Bulk rows straight into the items table (the list path is what is measured, not the seeding).
  for (let start = 1; start <= n; start += 5_000) {
    const end = Math.min(n, start + 4_999);
    await db.query(
      `insert into items (id, owner_id, parent_id, kind, name, name_key, size, created_at, updated_at)
       select gen_random_uuid(), $1::uuid, $2::uuid, 'folder', 'entry-' || lpad(i::text, 7, '0'),
              'entry-' || lpad(i::text, 7, '0'), 0, now(), now()
       from generate_series($3::int, $4::int) as i`,
      [owner, parent, start, end],
    );
  }
}

async function metadata(backend: 'pglite' | 'postgres') {
  if (backend === 'postgres')
    return withPgDatabase((url) => metadataOn(backend, { STRATUS_DATABASE_URL: url }));
  return metadataOn(backend, {});
}

async function metadataOn(backend: string, extra: Record<string, string>) {
  const env: Record<string, string> = { STRATUS_LOG_LEVEL: 'silent', ...extra };
  const rt = await startRuntime(env, path.join(work, `meta-${backend}`));
  try {
    const api = await signUp(rt.url, `bench-meta-${backend}@example.com`);
    const me = await api.me();
    const db = rt.container.db as unknown as { query: (sql: string, p?: unknown[]) => Promise<unknown[]> };

    // Upload commit: the complete call of small uploads (verify + metadata transaction).
    const commit: number[] = [];
    for (let i = 0; i < SIZES.samples; i++) {
      const pending = await putSmall(
        api,
        'root',
        `c-${i}.txt`,
        Buffer.from(`commit sample ${i} ${randomUUID()}`),
      );
      const t = await timed(pending.complete);
      commit.push(t.ms);
    }

    // List a 100-item page of a big folder: walk it page by page (every page distinct, uncached).
    const big = await api.createFolder('root', 'big-folder');
    await seedFolder(db, me.id, big.id, SIZES.folder);
    await db.query('analyze items'); // what autovacuum (PostgreSQL) or the local housekeeping timer (PGlite) does
    const list: number[] = [];
    while (list.length < SIZES.samples) {
      let cursor: string | undefined;
      do {
        const t = await timed(() => api.children(big.id, { cursor, limit: 100 }));
        list.push(t.ms);
        cursor = t.value.nextCursor ?? undefined;
      } while (cursor && list.length < SIZES.samples);
    }

    // Resolve a path at depth 10.
    let parent = 'root';
    const names: string[] = [];
    for (let d = 1; d <= 10; d++) {
      names.push(`level-${d}`);
      parent = (await api.createFolder(parent, `level-${d}`)).id;
    }
    const resolve: number[] = [];
    for (let i = 0; i < SIZES.samples; i++)
      resolve.push((await timed(() => api.resolve(`/${names.join('/')}`))).ms);

    // A version list of many versions.
    let fileId = '';
    for (let v = 0; v < SIZES.versions; v++) {
      const pending = await putSmall(api, 'root', 'versioned.txt', Buffer.from(`version ${v}`));
      fileId = (await pending.complete()).fileId;
    }
    const versions: number[] = [];
    for (let i = 0; i < Math.min(SIZES.samples, 100); i++) {
      const t = await timed(() => api.versions(fileId));
      if (t.value.length !== SIZES.versions)
        throw new Error(`expected ${SIZES.versions} versions, got ${t.value.length}`);
      versions.push(t.ms);
    }
    return {
      folderEntries: SIZES.folder,
      versionCount: SIZES.versions,
      commitMs: latency(commit),
      listPageMs: latency(list),
      resolveDepth10Ms: latency(resolve),
      versionListMs: latency(versions),
    };
  } finally {
    await rt.stop();
    await fs.rm(path.join(work, `meta-${backend}`), { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ concurrency

async function concurrency() {
  const dir = path.join(work, 'rt-concurrency');
  await fs.rm(dir, { recursive: true, force: true });
  const rt = await startChildRuntime(dir, { STRATUS_LOCAL_NODES: '1', STRATUS_REPLICATION_FACTOR: '1' });
  try {
    const clients = await Promise.all(
      Array.from({ length: 50 }, (_, i) => signUp(rt.url, `bench-c${i}@example.com`)),
    );
    const lat: number[] = [];
    const failures = new Map<string, number>();
    let errors = 0;
    const stopAt = performance.now() + SIZES.concurrencySeconds * 1000;
    const t0 = performance.now();
    await Promise.all(
      clients.map(async (api, c) => {
        const body = Buffer.alloc(MiB); // each client its own bytes: they change between uploads
        for (let i = 0; performance.now() < stopAt; i++) {
          body.writeUInt32LE(c, 0);
          body.writeUInt32LE(i, 4);
          const s = performance.now();
          try {
            await (await putSmall(api, 'root', `f-${i}.bin`, body)).complete();
            lat.push(performance.now() - s);
          } catch (err) {
            errors++;
            const key = String((err as Error)?.message ?? err).slice(0, 120);
            failures.set(key, (failures.get(key) ?? 0) + 1);
          }
        }
      }),
    );
    const elapsed = performance.now() - t0;
    const l = latency(lat);
    return {
      clients: 50,
      seconds: SIZES.concurrencySeconds,
      uploads: lat.length,
      errors,
      uploadsPerSecond: round(lat.length / (elapsed / 1000)),
      MBps: mbps(lat.length * MiB, elapsed),
      p50Ms: l.p50,
      p99Ms: l.p99,
      ...(failures.size ? { failures: Object.fromEntries(failures) } : {}),
    };
  } finally {
    await rt.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ delta

async function delta() {
  const dir = path.join(work, 'rt-delta');
  await fs.rm(dir, { recursive: true, force: true });
  const file = path.join(work, 'delta.bin');
  await makeFile(file, SIZES.delta, 11);
  const rt = await startChildRuntime(dir, { STRATUS_LOCAL_NODES: '1', STRATUS_REPLICATION_FACTOR: '1' });
  try {
    const api = await signUp(rt.url, 'bench-delta@example.com');
    const first = await uploadTimed(api, file, 'root', 'delta.bin');
    // Change 1 MiB in the middle of the file.
    const fh = await fs.open(file, 'r+');
    await fh.write(Buffer.alloc(MiB, 0xee), 0, MiB, Math.floor(SIZES.delta / 2 / MiB) * MiB + 512 * 1024);
    await fh.close();
    const second = await uploadTimed(api, file, 'root', 'delta.bin', {
      baseVersionId: first.result.versionId,
    });
    return {
      fileBytes: SIZES.delta,
      changedBytes: MiB,
      fullUploadBytesSent: first.result.bytesSent,
      deltaBytesSent: second.result.bytesSent,
      ratio: round(second.result.bytesSent / first.result.bytesSent, 4),
      fullSeconds: round(first.ms / 1000),
      deltaSeconds: round(second.ms / 1000),
    };
  } finally {
    await rt.stop();
    await fs.rm(dir, { recursive: true, force: true });
    await fs.rm(file, { force: true });
  }
}

// ------------------------------------------------------------------ scaling curves

async function curves(uploadOnly = false) {
  // Upload time against file size.
  const dir = path.join(work, 'rt-curve');
  await fs.rm(dir, { recursive: true, force: true });
  const rt = await startChildRuntime(dir, { STRATUS_LOCAL_NODES: '1', STRATUS_REPLICATION_FACTOR: '1' });
  const uploadCurve: [number, number][] = [];
  const completeCurve: [number, number][] = [];
  const committedCurve: [number, number][] = [];
  const completeStatus: [number, number][] = [];
  try {
    const probe = new CompleteProbe();
    const api = await signUp(rt.url, 'bench-curve@example.com', probe.fetch);
    for (const size of SIZES.curveSizes) {
      const file = path.join(work, `curve-${size}.bin`);
      await makeFile(file, size, size / MiB);
      try {
        const up = await uploadPhased(api, probe, file, 'root', `curve-${size}.bin`);
        uploadCurve.push([size / MiB, round(up.transferMs / 1000, 3)]);
        completeCurve.push([size / MiB, round(up.completeMs, 1)]);
        committedCurve.push([size / MiB, round(up.completeToCommittedMs, 1)]);
        completeStatus.push([size / MiB, up.completeStatus]);
        log(`curve: ${size / MiB} MiB, complete ${up.completeStatus} in ${round(up.completeMs)} ms`);
      } finally {
        await fs.rm(file, { force: true });
      }
    }
  } finally {
    await rt.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }

  if (uploadOnly)
    return {
      uploadSecondsBySizeMiB: uploadCurve,
      completeMsBySizeMiB: completeCurve,
      completeStatusBySizeMiB: completeStatus,
      committedMsBySizeMiB: committedCurve,
    };
  // List latency (p50 of a 100-item page) against folder size, and reconciler sweeps against versions.
  // Replication factor 3 on the three nodes: the sweep's versions share one blob, and with every
  // node home to every version no rebalance deletes that blob from under the others (which would
  // measure copies, not the sweep).
  const meta = await startRuntime(
    { STRATUS_LOG_LEVEL: 'silent', STRATUS_REPLICATION_FACTOR: '3' },
    path.join(work, 'curve-meta'),
  );
  const listCurve: [number, number][] = [];
  const sweepCurve: [number, number][] = [];
  const quietSweepCurve: [number, number][] = [];
  let orphans: Awaited<ReturnType<typeof orphanSweepOver>> | undefined;
  try {
    const api = await signUp(meta.url, 'bench-curve-meta@example.com');
    const me = await api.me();
    const db = meta.container.db as unknown as { query: (sql: string, p?: unknown[]) => Promise<unknown[]> };
    for (const n of SIZES.listSizes) {
      const folder = await api.createFolder('root', `list-${n}`);
      await seedFolder(db, me.id, folder.id, n);
      await db.query('analyze items');
      const samples: number[] = [];
      let cursor: string | undefined;
      for (let i = 0; i < 30; i++) {
        const t = await timed(() => api.children(folder.id, { cursor, limit: 100 }));
        samples.push(t.ms);
        cursor = t.value.nextCursor ?? undefined;
      }
      listCurve.push([n, latency(samples).p50]);
    }

    // Versions for the sweep: one real blob, then version rows pointing at it (the sweep's cost is
    // per version: ledger lookups and a stat on the node), seeded in bulk.
    const body = Buffer.from('sweep');
    const sha = createHash('sha256').update(body).digest('hex');
    const done = await (await putSmall(api, 'root', 'sweep.bin', body)).complete();
    const [blob] = (await db.query('select node_id, blob_key from versions where id = $1', [
      done.versionId,
    ])) as {
      node_id: string;
      blob_key: string;
    }[];
    let have = 1;
    for (const n of SIZES.sweepSizes) {
      for (let start = have; start < n; start += 5_000) {
        const end = Math.min(n - 1, start + 4_999);
        await db.query(
          `insert into versions (id, file_id, node_id, blob_key, size, sha256, content_type, created_by, created_at)
           select gen_random_uuid(), $1::uuid, $2, $3, $4, $5, 'application/octet-stream', $6::uuid,
                  now() - interval '1 day'
           from generate_series($7::int, $8::int)`,
          [done.fileId, blob?.node_id, blob?.blob_key, body.length, sha, me.id, start, end],
        );
      }
      have = n;
      await db.query('analyze versions');
      // The first pass plans ledger rows for the new versions; then a full pass over settled
      // versions (what a node added, or the daily pass, costs) and a sweep with nothing changed
      // (what the hourly schedule costs on most runs).
      await meta.container.reconciler.sweep({ full: true });
      // What the runtime's housekeeping timer does (PGlite has no autovacuum): without statistics
      // on the state table the planner reads the whole table for a page's ledgers.
      await meta.container.maintainDatabase?.();
      const t = await timed(() => meta.container.reconciler.sweep({ full: true }));
      if (t.value.versions !== n) throw new Error(`sweep saw ${t.value.versions} versions, expected ${n}`);
      sweepCurve.push([n, round(t.ms / 1000, 3)]);
      const quiet = await timed(() => meta.container.reconciler.sweep());
      if (quiet.value.pass !== 'incremental')
        throw new Error(`expected an incremental pass, got ${quiet.value.pass}`);
      quietSweepCurve.push([n, round(quiet.ms / 1000, 3)]);
    }
    orphans = await orphanSweepOver(meta, { fileId: done.fileId, userId: me.id, sha });
  } finally {
    await meta.stop();
    await fs.rm(path.join(work, 'curve-meta'), { recursive: true, force: true });
  }
  return {
    uploadSecondsBySizeMiB: uploadCurve,
    /** POST …/complete until its answer (ms), and its status (201 inline, 202 background). */
    completeMsBySizeMiB: completeCurve,
    completeStatusBySizeMiB: completeStatus,
    /** From sending complete until the session showed `committed` (ms). */
    committedMsBySizeMiB: committedCurve,
    listP50MsByEntries: listCurve,
    /** A full reconcile pass over settled versions (seconds). */
    sweepSecondsByVersions: sweepCurve,
    /** A sweep with nothing changed since the last pass: incremental (seconds). */
    quietSweepSecondsByVersions: quietSweepCurve,
    /** The orphan sweep over one local node of SIZES.orphanObjects objects. */
    orphanSweep: orphans,
  };
}

/**
 * The orphan sweep over a node holding SIZES.orphanObjects objects (issue 19: it used to see only
 * the first 10,000 keys of a node). One of the runtime's local nodes gets that many objects in its
 * own layout, a version row owning each but one in a thousand (spread over the whole key space);
 * the sweep runs over the real metadata (PGlite) with no grace period. Counts what it listed,
 * checks that exactly the unowned objects went and every owned one stayed.
 */
async function orphanSweepOver(
  rt: Awaited<ReturnType<typeof startRuntime>>,
  seed: { fileId: string; userId: string; sha: string },
) {
  const node = rt.container.localNodes[0];
  if (!node) throw new Error('the runtime has no local node');
  const total = SIZES.orphanObjects;
  const ids = Array.from({ length: total }, () => randomUUID()).sort();
  const keys = ids.map((id) => `v/${id}`);
  const orphanSet = new Set(keys.filter((_, i) => i % 1_000 === 500 || i === 0 || i === total - 1));
  const owned = ids.filter((id) => !orphanSet.has(`v/${id}`));
  const db = rt.container.db as unknown as { query: (sql: string, p?: unknown[]) => Promise<unknown[]> };
  for (let i = 0; i < owned.length; i += 5_000)
    await db.query(
      `insert into versions (id, file_id, node_id, blob_key, size, sha256, content_type, created_by, created_at)
       select k.id::uuid, $1::uuid, $2, 'v/' || k.id, 1, $3, 'application/octet-stream', $4::uuid, now() - interval '1 day'
       from unnest($5::text[]) as k(id)`,
      [seed.fileId, node.nodeId, seed.sha, seed.userId, owned.slice(i, i + 5_000)],
    );
  await seedLocalObjects(node, keys);
  const listed = new Set<string>();
  let pages = 0;
  const counted = Object.assign(Object.create(node) as typeof node, {
    listPage: async (prefix: string, opts?: { startAfter?: string; limit?: number }) => {
      pages++;
      const page = await node.listPage(prefix, opts);
      for (const o of page.items) listed.add(o.key);
      return page;
    },
  });
  const stores = postgresMetadata(rt.container.db);
  const only = rt.container.nodes.get(node.nodeId);
  if (!only) throw new Error(`node ${node.nodeId} is not in the registry`);
  const sweep = new OrphanSweep({
    items: stores.items,
    reservations: stores.reservations,
    nodes: new NodeRegistry([{ ...only, store: counted }], 1),
    ledger: rt.container.ledger,
    log: rt.container.log,
  });
  const t = await timed(() =>
    sweep.sweepOrphans(0, {}, { nodes: [node.nodeId] }, Number.POSITIVE_INFINITY, async () => {}),
  );
  const missed = keys.filter((k) => !listed.has(k)).length;
  let kept = 0;
  let left = 0;
  for (const key of keys) {
    const there = (await node.stat(key)) !== undefined;
    if (orphanSet.has(key)) left += there ? 1 : 0;
    else kept += there ? 1 : 0;
  }
  if (!t.value.done || missed > 0 || left > 0 || kept !== owned.length || t.value.deleted !== orphanSet.size)
    throw new Error(
      `orphan sweep: done ${t.value.done}, ${missed} keys not listed, ${left} orphans left, ` +
        `${owned.length - kept} owned objects lost, ${t.value.deleted} deleted of ${orphanSet.size}`,
    );
  return {
    objects: total,
    keysListed: keys.length - missed,
    pages,
    orphansPlanted: orphanSet.size,
    orphansDeleted: t.value.deleted,
    ownedKept: kept,
    seconds: round(t.ms / 1000, 2),
  };
}

// ------------------------------------------------------------------ main

async function main() {
  const started = Date.now();
  await fs.rm(work, { recursive: true, force: true });
  await fs.mkdir(work, { recursive: true });
  const machine = {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: round(os.totalmem() / 1024 ** 3, 1),
    node: process.version,
    filesystem: execFileSync('df', ['-hT', work]).toString().trim().split('\n').at(-1),
  };
  log(`${quick ? 'quick' : 'full'} run on ${machine.cpus} CPUs, ${machine.node}`);
  log('baselines: disk');
  const disk = await diskBaseline();
  log('baselines: loopback HTTP');
  const loopback = await loopbackBaseline();
  const bigFile = path.join(work, 'big.bin');
  await makeFile(bigFile, SIZES.big, 3);
  log('upload and download at replication factor 1 and 2');
  const stratus = await throughput(bigFile);
  log('peer: @tus/server driven by tus-js-client');
  const tus = await tusPeer(bigFile, work, SIZES.runs);
  await fs.rm(bigFile, { force: true });
  log('memory');
  const mem = await memory();
  if (only === 'data-path') {
    log('scaling curves (upload and complete only)');
    const curve = await curves(true);
    await fs.rm(work, { recursive: true, force: true });
    const results = {
      date: new Date().toISOString(),
      mode: quick ? 'quick' : 'full',
      only,
      machine,
      sizes: { fileBytes: SIZES.big, runs: SIZES.runs },
      baselines: { disk, loopback },
      upload: { ...stratus, tus },
      memory: mem,
      curves: curve,
      durationSeconds: round((Date.now() - started) / 1000, 0),
    };
    const outDir = path.join(ROOT, 'bench', 'results');
    const stem = `${results.date.slice(0, 10)}${quick ? '-quick' : ''}-data-path`;
    await fs.writeFile(path.join(outDir, `${stem}.json`), `${JSON.stringify(results, null, 2)}\n`);
    await fs.writeFile(
      path.join(outDir, `${stem}-complete.svg`),
      svgPlot({
        title: 'Complete latency against file size (RF 1)',
        xLabel: 'file size (MiB)',
        yLabel: 'milliseconds',
        series: [
          { name: 'POST complete until its answer', points: curve.completeMsBySizeMiB },
          { name: 'until committed', points: curve.committedMsBySizeMiB },
        ],
      }),
    );
    log(`done in ${results.durationSeconds} s: bench/results/${stem}.json`);
    return;
  }
  log('metadata on PGlite');
  const metaPglite = await metadata('pglite');
  log('metadata on PostgreSQL');
  const metaPg = await metadata('postgres');
  log('concurrency');
  const conc = await concurrency();
  log('cold start');
  const cold = await coldStart(SIZES.coldRuns, log);
  process.stdout.write(`${describeColdStart(cold)}\n`);
  log('delta re-upload');
  const del = await delta();
  log('scaling curves');
  const curve = await curves();
  await fs.rm(work, { recursive: true, force: true });

  const results = {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    machine,
    sizes: { fileBytes: SIZES.big, runs: SIZES.runs },
    baselines: { disk, loopback },
    upload: { ...stratus, tus },
    memory: mem,
    metadata: { pglite: metaPglite, postgres: metaPg },
    concurrency: conc,
    coldStart: cold,
    delta: del,
    curves: curve,
    durationSeconds: round((Date.now() - started) / 1000, 0),
  };
  const outDir = path.join(ROOT, 'bench', 'results');
  await fs.mkdir(outDir, { recursive: true });
  const stem = quick ? `${results.date.slice(0, 10)}-quick` : results.date.slice(0, 10);
  await fs.writeFile(path.join(outDir, `${stem}.json`), `${JSON.stringify(results, null, 2)}\n`);
  const plots = {
    upload: svgPlot({
      title: 'Upload time against file size (RF 1)',
      xLabel: 'file size (MiB)',
      yLabel: 'seconds',
      series: [{ name: 'upload', points: curve.uploadSecondsBySizeMiB }],
    }),
    complete: svgPlot({
      title: 'Complete latency against file size (RF 1)',
      xLabel: 'file size (MiB)',
      yLabel: 'milliseconds',
      series: [
        { name: 'POST complete until its answer', points: curve.completeMsBySizeMiB },
        { name: 'until committed', points: curve.committedMsBySizeMiB },
      ],
    }),
    list: svgPlot({
      title: 'List latency (p50, 100-item page) against folder size',
      xLabel: 'entries in the folder',
      yLabel: 'milliseconds',
      series: [{ name: 'PGlite', points: curve.listP50MsByEntries ?? [] }],
    }),
    sweep: svgPlot({
      title: 'Reconciler sweep time against versions',
      xLabel: 'versions',
      yLabel: 'seconds',
      series: [
        { name: 'full pass', points: curve.sweepSecondsByVersions ?? [] },
        { name: 'nothing changed', points: curve.quietSweepSecondsByVersions ?? [] },
      ],
    }),
  };
  for (const [name, svg] of Object.entries(plots))
    await fs.writeFile(path.join(outDir, `${stem}-${name}.svg`), svg);
  if (!quick) await writeReport(results, stem);
  log(
    `done in ${results.durationSeconds} s: bench/results/${stem}.json${quick ? ' (quick: README table left as is)' : ''}`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: failed: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
