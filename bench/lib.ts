/** Small helpers of the benchmark harness: statistics, timing, a child runtime, plots. */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { StratusApi } from '../clients/api.ts';
import { httpPutPart, nodeHasher, openFileSource } from '../clients/node-io.ts';
import { hashSource, uploadFile } from '../clients/upload.ts';
import { startNodeArgs } from '../scripts/start-command.ts';

/** Part bodies over node:http, as the CLI sends them (clients/node-io.ts). */
const benchPutPart = httpPutPart();

export const MiB = 1024 * 1024;
export const ROOT = path.resolve(import.meta.dirname, '..');

export interface Spread {
  median: number;
  min: number;
  max: number;
  runs: number;
}

export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] as number;
}

export function spread(values: number[]): Spread {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
  return { median, min: s[0] as number, max: s.at(-1) as number, runs: s.length };
}

export function latency(samplesMs: number[]) {
  const s = [...samplesMs].sort((a, b) => a - b);
  const total = s.reduce((a, b) => a + b, 0);
  return {
    p50: round(quantile(s, 0.5)),
    p99: round(quantile(s, 0.99)),
    max: round(s.at(-1) ?? Number.NaN),
    opsPerSecond: round(s.length / (total / 1000)),
    samples: s.length,
  };
}

export const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
export const mbps = (bytes: number, ms: number) => round(bytes / MiB / (ms / 1000));

export async function timed<T>(run: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await run();
  return { ms: performance.now() - t0, value };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Writes `size` pseudo-random bytes (fast: one random 8 MiB block, varied per chunk). */
export async function makeFile(file: string, size: number, seed = 1): Promise<void> {
  const block = createHash('sha512').update(String(seed)).digest();
  const chunk = Buffer.alloc(8 * MiB);
  for (let i = 0; i < chunk.length; i += block.length) block.copy(chunk, i);
  const fh = await fs.open(file, 'w');
  try {
    for (let off = 0, n = 0; off < size; off += chunk.length, n++) {
      chunk.writeUInt32LE(n, 0);
      chunk.writeUInt32LE(seed, 4);
      await fh.write(chunk, 0, Math.min(chunk.length, size - off));
    }
  } finally {
    await fh.close();
  }
}

/** Uploads a local file with the same engine as the CLI; hashing happens before the clock starts. */
export async function uploadTimed(
  api: StratusApi,
  file: string,
  parentId: string,
  name: string,
  o: { concurrency?: number; baseVersionId?: string | null } = {},
) {
  const { source, close } = await openFileSource(file);
  try {
    const hashes = await hashSource(source, nodeHasher);
    const t = await timed(() =>
      uploadFile({
        api,
        source,
        parentId,
        name,
        newHasher: nodeHasher,
        putPart: benchPutPart,
        concurrency: o.concurrency ?? 4,
        hashes,
        ...(o.baseVersionId !== undefined ? { baseVersionId: o.baseVersionId } : {}),
      }),
    );
    return { ms: t.ms, result: t.value };
  } finally {
    await close();
  }
}

/**
 * Watches the API client's requests for `POST /v1/uploads/{id}/complete`: when it was sent, when
 * its answer came and with which status. Seen from the wire, so it holds whatever the upload
 * engine does after a 202 (wait for the commit itself or not).
 */
export class CompleteProbe {
  uploadId: string | undefined;
  sentAt = Number.NaN;
  answeredAt = Number.NaN;
  status = 0;
  /** Runs just before complete is sent (e.g. to read the runtime's CPU time then). */
  beforeComplete: (() => Promise<void>) | undefined;

  readonly fetch: typeof fetch = async (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    const m = /\/v1\/uploads\/([^/?]+)\/complete(?:\?|$)/.exec(url);
    if (!m || (init?.method ?? 'GET').toUpperCase() !== 'POST') return fetch(input, init);
    this.uploadId = m[1];
    await this.beforeComplete?.();
    this.sentAt = performance.now();
    const res = await fetch(input, init);
    this.answeredAt = performance.now();
    this.status = res.status;
    return res;
  };

  reset(): void {
    this.uploadId = undefined;
    this.sentAt = Number.NaN;
    this.answeredAt = Number.NaN;
    this.status = 0;
  }
}

/** Polls the session until it is committed (at once after a 201); throws when verification refused it. */
export async function waitCommitted(api: StratusApi, uploadId: string, timeoutMs = 900_000) {
  const t0 = performance.now();
  for (;;) {
    const s = await api.upload(uploadId);
    if (s.state === 'committed' && s.fileId) return { at: performance.now(), fileId: s.fileId };
    if (s.state !== 'verifying' && s.state !== 'completing')
      throw new Error(`upload ${uploadId} is ${s.state}${s.error ? `: ${s.error.detail}` : ''}`);
    if (performance.now() - t0 > timeoutMs) throw new Error(`upload ${uploadId} not committed in time`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * An upload as the CLI does it (hash pass, then parts 4 at a time, then complete), with the time of
 * each phase: the client's hashing, the transfer until complete answers (201 or 202), complete's
 * own latency, and until the session is committed (later than the answer after a 202). `api` must
 * send through `probe.fetch`.
 */
export async function uploadPhased(
  api: StratusApi,
  probe: CompleteProbe,
  file: string,
  parentId: string,
  name: string,
  o: { concurrency?: number; baseVersionId?: string | null } = {},
) {
  probe.reset();
  const { source, close } = await openFileSource(file);
  try {
    const t0 = performance.now();
    const hashes = await hashSource(source, nodeHasher);
    const t1 = performance.now();
    const result = await uploadFile({
      api,
      source,
      parentId,
      name,
      newHasher: nodeHasher,
      putPart: benchPutPart,
      concurrency: o.concurrency ?? 4,
      hashes,
      ...(o.baseVersionId !== undefined ? { baseVersionId: o.baseVersionId } : {}),
    });
    if (!probe.uploadId) throw new Error('the upload never called complete');
    const committed = await waitCommitted(api, probe.uploadId);
    return {
      size: source.size,
      fileId: committed.fileId,
      bytesSent: result.bytesSent,
      completeStatus: probe.status,
      hashMs: t1 - t0,
      /** From the first request after hashing until complete answered. */
      transferMs: probe.answeredAt - t1,
      completeMs: probe.answeredAt - probe.sentAt,
      /** From complete's request until the session showed committed. */
      completeToCommittedMs: committed.at - probe.sentAt,
      /** Hashing included, until committed: what a user of the CLI waits. */
      endToEndMs: committed.at - t0,
    };
  } finally {
    await close();
  }
}

export interface ChildRuntime {
  url: string;
  pid: number;
  /** Resident set size now (VmRSS), in MiB. */
  rssMiB(): Promise<number>;
  /** CPU time the process has used so far (user + system, all its threads), in seconds. */
  cpuSeconds(): Promise<number>;
  stop(): Promise<void>;
}

/** `npm start`'s entry point in its own process (with its Node flags), on a fresh data directory. */
export async function startChildRuntime(
  dataDir: string,
  env: Record<string, string>,
  nodeArgs: string[] = startNodeArgs(),
): Promise<ChildRuntime> {
  const port = await freePort();
  const limits = Object.fromEntries(
    ['auth', 'read', 'write', 'public'].map((k) => [
      k,
      { perIp: { capacity: 1e6, refillPerSecond: 1e6 }, perUser: { capacity: 1e6, refillPerSecond: 1e6 } },
    ]),
  );
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, path.join(ROOT, 'local', 'main.ts')], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      STRATUS_DATA_DIR: dataDir,
      STRATUS_LOG_LEVEL: 'error',
      STRATUS_KDF_COST: '10',
      STRATUS_RATE_LIMITS: JSON.stringify(limits),
      STRATUS_SWEEP_INTERVAL_SECONDS: '0',
      STRATUS_RECONCILE_INTERVAL_SECONDS: '0',
      // Benchmarks move many GiB through one account; the 10 GiB default quota is not what they measure.
      STRATUS_DEFAULT_QUOTA_BYTES: String(2 ** 50),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`runtime exited with ${code}`)));
    child.stdout?.on('data', (c: Buffer) => {
      if (c.toString().includes('Stratus is running')) resolve();
    });
  });
  return {
    url,
    pid: child.pid as number,
    async rssMiB() {
      const status = await fs.readFile(`/proc/${child.pid}/status`, 'utf8');
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
      return round(kb / 1024, 1);
    },
    cpuSeconds: () => cpuSecondsOf(child.pid as number),
    async stop() {
      child.removeAllListeners('exit');
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** A process's user + system CPU time from /proc (clock ticks of 1/100 s, as on Linux). */
export async function cpuSecondsOf(pid: number): Promise<number> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces, so split after its closing parenthesis).
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** Signs in as the admin the runtime created at start-up (STRATUS_ADMIN_EMAIL + STRATUS_ADMIN_PASSWORD). */
export async function signInAdmin(url: string, email: string, doFetch?: typeof fetch): Promise<StratusApi> {
  const api = new StratusApi({ endpoint: url, ...(doFetch ? { fetch: doFetch } : {}) });
  await api.login(email, 'correct horse battery');
  return api;
}

export async function signUp(url: string, email: string, doFetch?: typeof fetch): Promise<StratusApi> {
  const api = new StratusApi({ endpoint: url, ...(doFetch ? { fetch: doFetch } : {}) });
  await api.register(email, 'correct horse battery');
  await api.login(email, 'correct horse battery');
  return api;
}

/** Reads a response body to the end without keeping it. */
export async function drain(res: Response): Promise<number> {
  let n = 0;
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return n;
    n += value.length;
  }
}

/** A line plot as a standalone SVG (log-scaled x when the range is wide). */
export function svgPlot(o: {
  title: string;
  xLabel: string;
  yLabel: string;
  series: { name: string; points: [number, number][] }[];
}): string {
  const W = 640;
  const H = 360;
  const m = { l: 70, r: 20, t: 40, b: 50 };
  const all = o.series.flatMap((s) => s.points);
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs);
  const logX = xMax / Math.max(xMin, 1e-9) > 20;
  const yMax = Math.max(...ys) * 1.1 || 1;
  const fx = (x: number) =>
    m.l +
    ((logX ? Math.log10(x) - Math.log10(xMin) : x - xMin) /
      ((logX ? Math.log10(xMax) - Math.log10(xMin) : xMax - xMin) || 1)) *
      (W - m.l - m.r);
  const fy = (y: number) => H - m.b - (y / yMax) * (H - m.t - m.b);
  const colors = ['#1d5fd1', '#c2410c', '#177245', '#7c3aed'];
  const fmt = (n: number) => (n >= 1e6 ? `${n / 1e6}M` : n >= 1e3 ? `${n / 1e3}k` : String(round(n)));
  const ticksY = Array.from({ length: 5 }, (_, i) => (yMax / 4) * i);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<title>${esc(o.title)}</title>`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(o.title)}</text>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="#333"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="#333"/>`,
    ...ticksY.map(
      (t) =>
        `<line x1="${m.l}" y1="${fy(t)}" x2="${W - m.r}" y2="${fy(t)}" stroke="#eee"/><text x="${m.l - 6}" y="${fy(t) + 4}" text-anchor="end">${fmt(t)}</text>`,
    ),
    ...[...new Set(xs)].map(
      (x) =>
        `<text x="${fx(x)}" y="${H - m.b + 16}" text-anchor="middle">${fmt(x)}</text><line x1="${fx(x)}" y1="${H - m.b}" x2="${fx(x)}" y2="${H - m.b + 4}" stroke="#333"/>`,
    ),
    `<text x="${W / 2}" y="${H - 10}" text-anchor="middle">${esc(o.xLabel)}${logX ? ' (log scale)' : ''}</text>`,
    `<text x="16" y="${H / 2}" text-anchor="middle" transform="rotate(-90 16 ${H / 2})">${esc(o.yLabel)}</text>`,
  ];
  o.series.forEach((s, i) => {
    const c = colors[i % colors.length];
    const pts = s.points.map(([x, y]) => `${fx(x).toFixed(1)},${fy(y).toFixed(1)}`).join(' ');
    parts.push(`<polyline points="${pts}" fill="none" stroke="${c}" stroke-width="2"/>`);
    for (const [x, y] of s.points) parts.push(`<circle cx="${fx(x)}" cy="${fy(y)}" r="3" fill="${c}"/>`);
    parts.push(
      `<rect x="${m.l + 10}" y="${m.t + 4 + i * 16}" width="10" height="10" fill="${c}"/><text x="${m.l + 26}" y="${m.t + 13 + i * 16}">${esc(s.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Samples a process's RSS every 20 ms while `run` runs; returns the peak seen. */
export async function peakRssDuring(rt: ChildRuntime, run: () => Promise<unknown>): Promise<number> {
  let peak = await rt.rssMiB();
  let stop = false;
  const sampler = (async () => {
    while (!stop) {
      peak = Math.max(peak, await rt.rssMiB().catch(() => peak));
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    await run();
  } finally {
    stop = true;
    await sampler;
  }
  return peak;
}

/** Starts a single-PUT upload of `body` and sends the bytes; the caller times the completion. */
export async function putSmall(api: StratusApi, parentId: string, name: string, body: Buffer) {
  const sha256 = createHash('sha256').update(body).digest('hex');
  const created = await api.createUpload({ parentId, name, size: body.length, sha256 });
  const part = created.parts[0];
  if (!part) throw new Error('no part URL');
  const put = await fetch(part.url, { method: 'PUT', headers: part.headers, body });
  if (!put.ok) throw new Error(`PUT ${put.status}`);
  const parts = [{ partNumber: 1, etag: put.headers.get('etag') ?? '' }];
  return { complete: () => api.completeUpload(created.uploadId, parts) };
}
