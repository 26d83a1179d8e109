/**
 * `npm exec -- node bench/scale-sim.ts [--versions N]`: the scale plan's simulation (docs/scale.md).
 *
 * Runs the real background code (the Reconciler with its OrphanSweep, the Replicator, the
 * ReplicaLedger, NodeRegistry and rendezvous placement, the ledger summaries the CounterAudit
 * checks) over a synthetic sample of versions drawn from the distribution of a 10^8-version
 * deployment, on in-process adapters that count what each call would cost on AWS: DynamoDB
 * request units (as the DynamoDB adapter issues them: a put reads first, a transaction costs two
 * units per item), SQL statements (with an estimate of Aurora DSQL's DPUs), and S3 requests and
 * bytes per bucket (HEAD, GET, PUT, CopyObject or UploadPartCopy, LIST, DELETE; inside or across
 * regions). A latency model turns the counts into wall time at the concurrency the code uses;
 * the CPU the planning takes is measured here. Everything is then extrapolated linearly to
 * `--target` versions (default 10^8): requests per sweep, wall time, hourly runs of the 600 s
 * budget a full pass needs, the rate on the hottest DynamoDB partition and S3 bucket, and
 * dollars per sweep at the public prices below.
 *
 * Why not the memory adapters: MemoryStateStore's query scans every item (fine for unit tests,
 * quadratic here) and MemoryBlobStore keeps bytes; the adapters here keep the same semantics
 * (conditions, versions, all-or-nothing transactions, counters; keys listed in order) with an
 * index per partition and sizes instead of bytes.
 *
 * Writes bench/results/<date>-scale-sim.json (`--no-write` to skip) and prints the tables
 * docs/scale.md quotes. Options: --versions (sample, default 50000), --target (1e8), --nodes (4),
 * --regions (2), --rf (2), --seed (1), --recent (2000 versions of the incremental window),
 * --events (5000 commits for the event path), --scenarios (comma list, default all), --out (the
 * JSON's path).
 */

import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { ConditionFailedError } from '../shared/domain/errors.ts';
import type { VersionRef } from '../shared/domain/model.ts';
import type { Logger } from '../shared/observability/logger.ts';
import type {
  BlobPage,
  BlobStore,
  CopyCheck,
  Leftover,
  ListedBlob,
  PresignedRequest,
  UploadedPart,
} from '../shared/ports/blob-store.ts';
import { compareBlobKeys, listPageLimit } from '../shared/ports/blob-store.ts';
import type { ItemStore, ReservationStore } from '../shared/ports/metadata.ts';
import { noMetrics } from '../shared/ports/metrics.ts';
import type { StateItem, StateStore, StateWrite, WriteCondition } from '../shared/ports/state-store.ts';
import { NodeRegistry, type StorageNode } from '../shared/services/node-registry.ts';
import { Reconciler } from '../shared/services/reconciler.ts';
import { ledgerPk, type Replica, ReplicaLedger } from '../shared/services/replica-ledger.ts';
import { Replicator } from '../shared/services/replicator.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

// ------------------------------------------------------------------ options

const { values: argv } = parseArgs({
  options: {
    versions: { type: 'string', default: '50000' },
    target: { type: 'string', default: '1e8' },
    nodes: { type: 'string', default: '4' },
    regions: { type: 'string', default: '2' },
    rf: { type: 'string', default: '2' },
    seed: { type: 'string', default: '1' },
    recent: { type: 'string', default: '2000' },
    events: { type: 'string', default: '5000' },
    scenarios: { type: 'string' },
    out: { type: 'string' },
    'no-write': { type: 'boolean', default: false },
  },
});
const positive = (name: keyof typeof argv) => {
  const n = Number(argv[name]);
  if (!Number.isFinite(n) || n <= 0)
    throw new Error(`--${name} must be a positive number, not ${argv[name]}`);
  return n;
};
const CFG = {
  sample: Math.round(positive('versions')),
  target: positive('target'),
  nodes: Math.round(positive('nodes')),
  regions: Math.round(positive('regions')),
  rf: Math.round(positive('rf')),
  seed: Math.round(positive('seed')),
  recent: Math.round(positive('recent')),
  events: Math.round(positive('events')),
  /** What the code uses: reconcilePage's concurrency, drain's, the page size, the AWS schedule. */
  passConcurrency: 8,
  drainConcurrency: 4,
  pageSize: 500,
  budgetSeconds: 600,
  lambdaTimeoutSeconds: 900,
  /** The maintenance function's memory (infra/stateless-stack.ts), the state-stream function's. */
  maintenanceGb: 1,
  streamGb: 0.5,
  /** CounterAudit.run's default budget per reconcile run. */
  auditBudgetSeconds: 20,
};
const ALL_SCENARIOS = [
  'full',
  'incremental',
  'verify',
  'node-added',
  'node-drained',
  'event-copy',
  'event-crr',
  'audit',
] as const;
type Scenario = (typeof ALL_SCENARIOS)[number];
const scenarios: Scenario[] = argv.scenarios
  ? argv.scenarios.split(',').map((s) => {
      if (!(ALL_SCENARIOS as readonly string[]).includes(s))
        throw new Error(`unknown scenario ${s} (one of ${ALL_SCENARIOS.join(', ')})`);
      return s as Scenario;
    })
  : [...ALL_SCENARIOS];

// ------------------------------------------------------------------ assumptions

/** Public prices, us-east-1, read 2026-12-02 (docs/scale.md cites the pages). */
const PRICES = {
  date: '2026-12-02',
  region: 'us-east-1',
  s3ClassAPer1000: 0.005, // PUT, COPY, POST, LIST (CopyObject, UploadPartCopy, ListObjectsV2, ListMultipartUploads)
  s3ClassBPer1000: 0.0004, // GET, HEAD, GetObjectAttributes and all other requests; DELETE is free
  s3InterRegionPerGb: 0.02, // data transferred out of S3 (or a Lambda) to another AWS region
  ddbWruPerMillion: 0.625, // on-demand write request unit (1 KB; a transactional write costs 2)
  ddbRruPerMillion: 0.125, // on-demand read request unit (4 KB strongly consistent)
  lambdaGbSecond: 0.0000133334, // arm64
  lambdaPerMillionRequests: 0.2,
  dsqlPerMillionDpu: 8,
  sources: {
    s3: 'https://aws.amazon.com/s3/pricing/',
    dynamodb: 'https://aws.amazon.com/dynamodb/pricing/on-demand/',
    lambda: 'https://aws.amazon.com/lambda/pricing/',
    dsql: 'https://aws.amazon.com/rds/aurora/dsql/pricing/',
  },
};

/**
 * Latency of one request from a Lambda in the home region (ms), and throughput per stream: round
 * numbers, not measurements (docs/scale.md says so). Requests to a bucket in another region pay
 * one more round trip and stream slower.
 */
const LATENCY = {
  ddbRead: 5,
  ddbWrite: 8,
  ddbTransact: 15,
  sqlPoint: 4,
  sqlPage: 15,
  s3Head: 15,
  s3GetFirstByte: 25,
  s3Put: 35,
  s3List: 80,
  s3Delete: 20,
  s3CopyRequest: 40,
  crossRegionRtt: 70,
  s3StreamMBps: 90,
  crossRegionStreamMBps: 50,
  s3CopyMBps: 150,
  crossRegionCopyMBps: 50,
  /** UploadPartCopy requests in flight (S3_COPY_DEFAULTS.concurrency). */
  partCopyParallel: 8,
  /** CPU of one AWS SDK / pg request in the function (marshalling, signing, TLS), serial on one core. */
  sdkCpuMsPerRequest: 0.3,
};

/**
 * `select 1 from versions where blob_key = $1` (ItemStore.blobKeyInUse, the orphan sweep's) has no
 * index to use: versions_by_blob is (node_id, blob_key), and PostgreSQL 16 (DSQL's dialect) has no
 * skip scan. So each call reads every version row (or index entry): modeled at this many rows a
 * second, optimistic for a distributed scan.
 */
const SCAN_ROWS_PER_SECOND = 1_000_000;

/**
 * Aurora DSQL DPUs per statement: the DSQL guide's EXPLAIN ANALYZE VERBOSE example (a 120-row index
 * scan: 0.016 compute + 0.043 read DPU) fitted as a fixed part and a part per row. An estimate.
 */
const dsqlDpu = (rows: number) => 0.01 + 0.0004 * rows;

/** The synthetic 10^8-version deployment: what each version is and what state its replicas are in. */
const DISTRIBUTION = {
  /** Size mixture (lognormal: share, median, sigma). */
  sizes: [
    { share: 0.55, median: 64 * KiB, sigma: 1.5, label: 'documents' },
    { share: 0.4198, median: 3 * MiB, sigma: 1.2, label: 'photos, audio' },
    { share: 0.03, median: 100 * MiB, sigma: 1.0, label: 'video, archives' },
    { share: 0.0002, median: 4 * GiB, sigma: 1.0, label: 'huge' },
  ],
  maxSize: 5 * 1024 * GiB,
  /** Versions accumulated over this many years, the yearly volume doubling. */
  years: 3,
  /** Replica states of the versions (the rest: every home replica verified). */
  states: {
    noLedger: 0.0001, // committed, but the commit died before planning replicas
    pending: 0.001, // one replica still pending (the stream failed on it)
    failed: 0.0002, // one replica failed five times
    missing: 0.0002, // the ledger says verified, the object is gone from that node
    standIn: 0.0005, // a stand-in from an old outage: one home replica never made, one off home
    corrupt: 0.0001, // verified, but the bytes rotted (only a verifying pass reads them)
  },
  /** Objects on a node that no version owns (the orphan sweep's work). */
  orphans: 0.0001,
};

// ------------------------------------------------------------------ randomness

function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function uuid(rand: () => number): string {
  const b = Array.from({ length: 16 }, () => Math.floor(rand() * 256));
  b[6] = ((b[6] as number) & 0x0f) | 0x40;
  b[8] = ((b[8] as number) & 0x3f) | 0x80;
  const h = b.map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function normal(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/** A size from the mixture; `u` picks the class (stratified by the caller, so rare classes show up). */
function drawSize(rand: () => number, u0 = rand()): number {
  let u = u0;
  for (const c of DISTRIBUTION.sizes) {
    if (u < c.share || c === DISTRIBUTION.sizes.at(-1)) {
      const s = Math.round(c.median * Math.exp(c.sigma * normal(rand)));
      return Math.max(1, Math.min(DISTRIBUTION.maxSize, s));
    }
    u -= c.share;
  }
  return 1;
}

const HOUR_MS = 3_600_000;
const YEAR_H = 8766;
/** Age (ms) of a version: volume doubling yearly, so the density falls as 2^(-age/year). */
function drawAgeMs(rand: () => number): number {
  const span = 1 - 2 ** -DISTRIBUTION.years;
  return -Math.log2(1 - rand() * span) * YEAR_H * HOUR_MS;
}
/** Versions committed per hour now, per version in the deployment (the density at age 0). */
const newPerHourPerVersion = Math.LN2 / (YEAR_H * (1 - 2 ** -DISTRIBUTION.years));

// ------------------------------------------------------------------ accounting

type Lane = 'seq' | 'par' | 'drain';
type Phase = 'setup' | 'pass' | 'drain' | 'tail' | 'event' | 'audit';

interface Acc {
  requests: Record<string, number>;
  rru: number;
  wru: number;
  dpu: number;
  sqlRows: number;
  s3ClassA: number;
  s3ClassB: number;
  /** Bytes read through the function, copied inside S3, written from the function. */
  bytesRead: number;
  bytesCopied: number;
  bytesWritten: number;
  /** Bytes that crossed a region boundary (charged as inter-region transfer). */
  bytesCrossRegion: number;
  /** Latency summed per lane (ms), and per lane and request kind. */
  lanes: Record<Lane, number>;
  laneByOp: Record<Lane, Record<string, number>>;
  /** Write and read units per DynamoDB partition key (per-version partitions summed by kind). */
  partitions: Record<string, { wru: number; rru: number; max?: number }>;
  /** S3 requests per bucket. */
  buckets: Record<string, { classA: number; classB: number }>;
  cpuMs: number;
}

/** The entry of `rec` under `key`, made first if absent. */
function slot<T>(rec: Record<string, T>, key: string, make: () => T): T {
  let v = rec[key];
  if (v === undefined) {
    v = make();
    rec[key] = v;
  }
  return v;
}

const emptyAcc = (): Acc => ({
  requests: {},
  rru: 0,
  wru: 0,
  dpu: 0,
  sqlRows: 0,
  s3ClassA: 0,
  s3ClassB: 0,
  bytesRead: 0,
  bytesCopied: 0,
  bytesWritten: 0,
  bytesCrossRegion: 0,
  lanes: { seq: 0, par: 0, drain: 0 },
  laneByOp: { seq: {}, par: {}, drain: {} },
  partitions: {},
  buckets: {},
  cpuMs: 0,
});

/** Where costs go: the phase the sweep is in decides the accumulator and how requests overlap. */
class Meter {
  private current: Phase = 'setup';
  private cpuMark = process.cpuUsage();
  readonly byPhase = new Map<Phase, Acc>();

  get phase(): Phase {
    return this.current;
  }

  /** Switching phase books the CPU used since the last switch to the phase that used it. */
  set phase(next: Phase) {
    const now = process.cpuUsage();
    const a = this.acc();
    if (a) a.cpuMs += (now.user - this.cpuMark.user + now.system - this.cpuMark.system) / 1000;
    this.cpuMark = now;
    this.current = next;
  }

  acc(): Acc | undefined {
    if (this.current === 'setup') return undefined;
    let a = this.byPhase.get(this.current);
    if (!a) {
      a = emptyAcc();
      this.byPhase.set(this.current, a);
    }
    return a;
  }

  /** Which lane a request runs in: the page's own requests one at a time, the versions' in parallel. */
  private lane(sequential: boolean): Lane {
    if (this.phase === 'pass') return sequential ? 'seq' : 'par';
    if (this.phase === 'drain') return sequential ? 'seq' : 'drain';
    if (this.phase === 'event') return 'par';
    return 'seq';
  }

  request(
    op: string,
    ms: number,
    o: {
      sequential?: boolean;
      rru?: number;
      wru?: number;
      partition?: string;
      perVersionPartition?: boolean;
      dpu?: number;
      rows?: number;
      classA?: number;
      classB?: number;
      bucket?: string;
    } = {},
  ) {
    const a = this.acc();
    if (!a) return;
    a.requests[op] = (a.requests[op] ?? 0) + 1;
    const lane = this.lane(o.sequential ?? false);
    a.lanes[lane] += ms;
    a.laneByOp[lane][op] = (a.laneByOp[lane][op] ?? 0) + ms;
    a.rru += o.rru ?? 0;
    a.wru += o.wru ?? 0;
    a.dpu += o.dpu ?? 0;
    a.sqlRows += o.rows ?? 0;
    a.s3ClassA += o.classA ?? 0;
    a.s3ClassB += o.classB ?? 0;
    if (o.partition) {
      const p = slot(a.partitions, o.partition, () => ({ wru: 0, rru: 0 }));
      p.wru += o.wru ?? 0;
      p.rru += o.rru ?? 0;
    }
    if (o.bucket) {
      const b = slot(a.buckets, o.bucket, () => ({ classA: 0, classB: 0 }));
      b.classA += o.classA ?? 0;
      b.classB += o.classB ?? 0;
    }
  }

  bytes(kind: 'read' | 'copied' | 'written', n: number, crossRegion: boolean) {
    const a = this.acc();
    if (!a) return;
    if (kind === 'read') a.bytesRead += n;
    else if (kind === 'copied') a.bytesCopied += n;
    else a.bytesWritten += n;
    if (crossRegion) a.bytesCrossRegion += n;
  }
}

// ------------------------------------------------------------------ the state store (DynamoDB)

interface Stored {
  pk: string;
  sk: string;
  data: unknown;
  version: number;
  expiresAt?: number;
  size: number;
}

/** A partition name for the hot-key check: per-version partitions are summed by their prefix. */
function partitionOf(pk: string): { name: string; perVersion: boolean } {
  for (const prefix of ['ledger#', 'ledger-summary#', 'upload#', 'verify#'])
    if (pk.startsWith(prefix)) return { name: `${prefix}<id>`, perVersion: true };
  return { name: pk, perVersion: false };
}

/** Item size as DynamoDB counts it, near enough: attribute names and values. Cached per kind. */
const sizeCache = new Map<string, number>();
function itemSize(pk: string, sk: string, data: unknown): number {
  const kind = `${partitionOf(pk).name}|${(data as { state?: string } | null)?.state ?? ''}`;
  const known = sizeCache.get(kind);
  if (known !== undefined && !pk.startsWith('reconcile#')) return known;
  const n = pk.length + sk.length + JSON.stringify(data ?? null).length + 24;
  sizeCache.set(kind, n);
  return n;
}
const rruOf = (bytes: number) => Math.max(1, Math.ceil(bytes / (4 * KiB)));
const wruOf = (bytes: number) => Math.max(1, Math.ceil(bytes / KiB));

/**
 * The StateStore port with DynamoDB's semantics and costs, as shared/adapters/dynamodb issues them:
 * strongly consistent reads, a `put` that reads the item first, transactions at two write units
 * per item (deletes of absent items included), COUNT queries that read every item (eventually
 * consistent).
 */
class MeteredStateStore implements StateStore {
  private readonly parts = new Map<string, Map<string, Stored>>();
  private readonly counterItems = new Map<string, Map<string, Map<string, number>>>();
  private readonly meter: Meter;

  constructor(meter: Meter) {
    this.meter = meter;
  }

  private partition(pk: string) {
    let p = this.parts.get(pk);
    if (!p) {
      p = new Map();
      this.parts.set(pk, p);
    }
    return p;
  }

  private live(pk: string, sk: string): Stored | undefined {
    const it = this.parts.get(pk)?.get(sk);
    if (!it) return undefined;
    if (it.expiresAt !== undefined && it.expiresAt <= Math.floor(Date.now() / 1000)) return undefined;
    return it;
  }

  private out<T>(s: Stored): StateItem<T> {
    // Ledger items are flat and never changed in place; the sweep state is nested and is.
    const data = s.pk.startsWith('reconcile#') ? structuredClone(s.data) : s.data;
    return {
      pk: s.pk,
      sk: s.sk,
      data: data as T,
      version: s.version,
      ...(s.expiresAt === undefined ? {} : { expiresAt: s.expiresAt }),
    };
  }

  private seqFor(pk: string) {
    return pk.startsWith('reconcile#');
  }

  private store(pk: string, sk: string, data: unknown, version: number, expiresAt?: number) {
    const stored: Stored = {
      pk,
      sk,
      data: pk.startsWith('reconcile#') ? structuredClone(data) : data,
      version,
      size: itemSize(pk, sk, data),
      ...(expiresAt === undefined ? {} : { expiresAt }),
    };
    this.partition(pk).set(sk, stored);
    return stored;
  }

  async get<T>(pk: string, sk: string) {
    const it = this.live(pk, sk);
    const p = partitionOf(pk);
    this.meter.request('ddb.GetItem', LATENCY.ddbRead, {
      sequential: this.seqFor(pk),
      rru: rruOf(it?.size ?? 1),
      partition: p.name,
    });
    return it ? this.out<T>(it) : undefined;
  }

  async put<T>(item: { pk: string; sk: string; data: T; expiresAt?: number }, condition?: WriteCondition) {
    const current = await this.get(item.pk, item.sk); // the adapter reads before it writes
    const size = itemSize(item.pk, item.sk, item.data);
    this.meter.request('ddb.PutItem', LATENCY.ddbWrite, {
      sequential: this.seqFor(item.pk),
      wru: wruOf(size),
      partition: partitionOf(item.pk).name,
    });
    if (condition?.kind === 'absent' && current) throw new ConditionFailedError('exists');
    if (condition?.kind === 'version' && current?.version !== condition.version)
      throw new ConditionFailedError('version');
    const version = condition?.kind === 'version' ? condition.version + 1 : (current?.version ?? 0) + 1;
    return this.out<T>(this.store(item.pk, item.sk, item.data, version, item.expiresAt));
  }

  async delete(pk: string, sk: string) {
    const it = this.parts.get(pk)?.get(sk);
    this.meter.request('ddb.DeleteItem', LATENCY.ddbWrite, {
      wru: wruOf(it?.size ?? 1),
      partition: partitionOf(pk).name,
    });
    this.parts.get(pk)?.delete(sk);
  }

  async query<T>(pk: string, opts: { skPrefix?: string; limit?: number } = {}) {
    const p = this.parts.get(pk);
    const all = p ? [...p.values()] : [];
    const items = all
      .filter((i) => i.sk.startsWith(opts.skPrefix ?? '') && this.live(i.pk, i.sk))
      .sort((a, b) => (a.sk < b.sk ? -1 : a.sk > b.sk ? 1 : 0))
      .slice(0, opts.limit ?? 1000);
    // The PENDING query is the drain's own, one at a time before each batch.
    const sequential = pk.startsWith('ledger-pending') || this.seqFor(pk);
    this.meter.request('ddb.Query', LATENCY.ddbRead, {
      sequential,
      rru: rruOf(items.reduce((s, i) => s + i.size, 0)),
      partition: partitionOf(pk).name,
    });
    return items.map((i) => this.out<T>(i));
  }

  /** As the DynamoDB adapter does it: a Query per partition (sixteen in flight). */
  async queryMany<T>(pks: readonly string[]) {
    const out = new Map<string, StateItem<T>[]>();
    for (const pk of pks) out.set(pk, out.get(pk) ?? (await this.query<T>(pk)));
    return out;
  }

  async count(pk: string) {
    const items = [...(this.parts.get(pk)?.values() ?? [])];
    const bytes = items.reduce((s, i) => s + i.size, 0);
    const pages = Math.max(1, Math.ceil(bytes / MiB));
    // The adapter's COUNT query is eventually consistent: half a unit per 4 KB read.
    for (let i = 0; i < pages; i++)
      this.meter.request('ddb.Query(COUNT)', LATENCY.ddbRead, {
        sequential: true,
        rru: rruOf(Math.min(MiB, bytes - i * MiB)) / 2,
        partition: partitionOf(pk).name,
      });
    return items.length;
  }

  async transact(writes: readonly StateWrite[]) {
    let wru = 0;
    const keys = new Set<string>();
    for (const w of writes) {
      const pk = w.op === 'put' ? w.item.pk : w.pk;
      const sk = w.op === 'put' ? w.item.sk : w.sk;
      const key = `${pk}\u0000${sk}`;
      if (keys.has(key)) throw new Error(`two writes to one item in a transaction: ${key}`);
      keys.add(key);
      const size =
        w.op === 'put' ? itemSize(pk, sk, w.item.data) : (this.parts.get(pk)?.get(sk)?.size ?? 200);
      const units = 2 * wruOf(size);
      wru += units;
      // Per-item units against each partition, for the hot-key check.
      const p = partitionOf(pk);
      const a = this.meter.acc();
      if (a) {
        const part = slot(a.partitions, p.name, () => ({ wru: 0, rru: 0 }));
        part.wru += units;
      }
    }
    this.meter.request('ddb.TransactWriteItems', LATENCY.ddbTransact, { wru });
    const a = this.meter.acc();
    if (a)
      a.requests['ddb.TransactWriteItems(items)'] =
        (a.requests['ddb.TransactWriteItems(items)'] ?? 0) + writes.length;
    for (const w of writes) {
      if (w.op === 'add') continue;
      const condition = w.condition;
      const current = w.op === 'put' ? this.live(w.item.pk, w.item.sk) : this.live(w.pk, w.sk);
      if (condition?.kind === 'absent' && current) throw new ConditionFailedError('exists');
      if (condition?.kind === 'version' && current?.version !== condition.version)
        throw new ConditionFailedError('version');
    }
    for (const w of writes) {
      if (w.op === 'put') {
        const prev = this.parts.get(w.item.pk)?.get(w.item.sk);
        const version =
          w.condition?.kind === 'absent'
            ? 1
            : w.condition?.kind === 'version'
              ? w.condition.version + 1
              : (prev?.version ?? 0) + 1;
        this.store(w.item.pk, w.item.sk, w.item.data, version, w.item.expiresAt);
      } else if (w.op === 'delete') this.parts.get(w.pk)?.delete(w.sk);
      else if (w.op === 'add') {
        let byPk = this.counterItems.get(w.pk);
        if (!byPk) {
          byPk = new Map();
          this.counterItems.set(w.pk, byPk);
        }
        let values = byPk.get(w.sk);
        if (!values) {
          values = new Map();
          byPk.set(w.sk, values);
        }
        for (const [name, d] of Object.entries(w.deltas)) values.set(name, (values.get(name) ?? 0) + d);
      }
    }
  }

  async counters(pk: string) {
    this.meter.request('ddb.Query', LATENCY.ddbRead, { rru: 1, partition: pk });
    const out: Record<string, number> = {};
    for (const values of this.counterItems.get(pk)?.values() ?? [])
      for (const [name, v] of values) out[name] = (out[name] ?? 0) + v;
    return out;
  }

  async ping() {}

  /** Items in a partition (for the report, not metered). */
  size(pk: string) {
    return this.parts.get(pk)?.size ?? 0;
  }
}

// ------------------------------------------------------------------ storage nodes (S3 buckets)

const OK_BYTES = Buffer.from('stratus scale simulation: the bytes every good replica holds');
const BAD_BYTES = Buffer.from('stratus scale simulation: rotted bytes');
const OK_SHA = createHash('sha256').update(OK_BYTES).digest('hex');
const BAD_SHA = createHash('sha256').update(BAD_BYTES).digest('hex');
const HOME_REGION = 'r0';

interface SimObject {
  size: number;
  modifiedAt: Date;
  corrupt?: boolean;
}

/**
 * An S3 bucket that keeps sizes, not bytes, and meters each call as the S3 adapter issues it:
 * stat is HeadObject, read GetObject, writeStream PutObject or a multipart upload of 64 MiB parts,
 * copyFrom HeadObject on the source plus CopyObject (up to 5 GiB) or UploadPartCopy of 256 MiB
 * parts (s3-server-side-copy.ts), listPage ListObjectsV2, leftovers ListMultipartUploads.
 */
class MeteredBucket implements BlobStore {
  readonly nodeId: string;
  readonly region: string;
  readonly objects = new Map<string, SimObject>();
  private sorted: string[] | undefined;
  private readonly meter: Meter;

  constructor(nodeId: string, region: string, meter: Meter) {
    this.nodeId = nodeId;
    this.region = region;
    this.meter = meter;
  }

  private get cross() {
    return this.region !== HOME_REGION;
  }

  private rtt(ms: number) {
    return ms + (this.cross ? LATENCY.crossRegionRtt : 0);
  }

  private req(op: string, ms: number, cls: 'A' | 'B' | 'free', sequential = false) {
    this.meter.request(op, this.rtt(ms), {
      sequential,
      ...(cls === 'A' ? { classA: 1 } : cls === 'B' ? { classB: 1 } : {}),
      bucket: this.nodeId,
    });
  }

  put(key: string, o: SimObject) {
    if (!this.objects.has(key)) this.sorted = undefined;
    this.objects.set(key, o);
  }

  private notSimulated(): never {
    throw new Error('not part of the simulation');
  }
  async presignPut(): Promise<PresignedRequest> {
    return this.notSimulated();
  }
  async createMultipartUpload(): Promise<string> {
    return this.notSimulated();
  }
  async presignUploadPart(): Promise<PresignedRequest> {
    return this.notSimulated();
  }
  async listParts(): Promise<UploadedPart[]> {
    return this.notSimulated();
  }
  async completeMultipartUpload(): Promise<void> {
    this.notSimulated();
  }
  async abortMultipartUpload(): Promise<void> {}
  async presignGet(): Promise<PresignedRequest> {
    return this.notSimulated();
  }
  async copyPart(): Promise<UploadedPart> {
    return this.notSimulated();
  }
  async write(): Promise<void> {
    this.notSimulated();
  }

  async stat(key: string) {
    this.req('s3.HeadObject', LATENCY.s3Head, 'B');
    const o = this.objects.get(key);
    return o ? { size: o.size } : undefined;
  }

  async read(key: string) {
    const o = this.objects.get(key);
    const mbps = this.cross ? LATENCY.crossRegionStreamMBps : LATENCY.s3StreamMBps;
    this.req('s3.GetObject', LATENCY.s3GetFirstByte + ((o?.size ?? 0) / (mbps * 1e6)) * 1000, 'B');
    if (!o) throw new Error('object not found');
    this.meter.bytes('read', o.size, this.cross);
    return Readable.from([o.corrupt ? BAD_BYTES : OK_BYTES]);
  }

  async writeStream(key: string, body: Readable, size: number) {
    const h = createHash('sha256');
    for await (const c of body) h.update(c as Buffer);
    const sha = h.digest('hex');
    const mbps = this.cross ? LATENCY.crossRegionStreamMBps : LATENCY.s3StreamMBps;
    const transfer = (size / (mbps * 1e6)) * 1000;
    if (size <= 64 * MiB) this.req('s3.PutObject', LATENCY.s3Put + transfer, 'A');
    else {
      const parts = Math.ceil(size / (64 * MiB));
      this.req('s3.CreateMultipartUpload', LATENCY.s3Put, 'A');
      for (let i = 0; i < parts; i++)
        this.req('s3.UploadPart', LATENCY.s3Put + transfer / Math.min(4, parts) / parts, 'A');
      this.req('s3.CompleteMultipartUpload', LATENCY.s3Put, 'A');
    }
    this.meter.bytes('written', size, this.cross);
    this.put(key, { size, modifiedAt: new Date(), ...(sha === BAD_SHA ? { corrupt: true } : {}) });
    return { sha256: sha };
  }

  async delete(key: string) {
    this.req('s3.DeleteObject', LATENCY.s3Delete, 'free');
    if (this.objects.delete(key)) this.sorted = undefined;
  }

  async listPage(prefix: string, opts: { startAfter?: string; limit?: number } = {}): Promise<BlobPage> {
    this.req('s3.ListObjectsV2', LATENCY.s3List, 'A', true);
    const limit = listPageLimit(opts.limit);
    this.sorted ??= [...this.objects.keys()].sort(compareBlobKeys);
    const keys = this.sorted;
    let lo = 0;
    let hi = keys.length;
    const after = opts.startAfter;
    if (after !== undefined)
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (compareBlobKeys(keys[mid] as string, after) <= 0) lo = mid + 1;
        else hi = mid;
      }
    const items: ListedBlob[] = [];
    let i = lo;
    for (; i < keys.length && items.length < limit; i++) {
      const k = keys[i] as string;
      if (!k.startsWith(prefix)) continue;
      const o = this.objects.get(k);
      if (o) items.push({ key: k, size: o.size, modifiedAt: o.modifiedAt });
    }
    const last = items.at(-1);
    return i < keys.length && last ? { items, next: last.key } : { items };
  }

  async leftovers(): Promise<Leftover[]> {
    this.req('s3.ListMultipartUploads', LATENCY.s3List, 'A', true);
    return [];
  }
  async removeLeftover(): Promise<void> {}
  async ping(): Promise<void> {}

  async copyFrom(source: BlobStore, key: string, size: number): Promise<CopyCheck | undefined> {
    if (!(source instanceof MeteredBucket) || source === this) return undefined;
    const head = await source.stat(key);
    if (head?.size !== size) throw new Error(`the source holds ${head?.size ?? 0} bytes, not ${size}`);
    const src = source.objects.get(key);
    const crossing = source.region !== this.region;
    const mbps = crossing ? LATENCY.crossRegionCopyMBps : LATENCY.s3CopyMBps;
    const extra = crossing ? LATENCY.crossRegionRtt : 0;
    let check: CopyCheck;
    if (size <= 5 * GiB) {
      this.req('s3.CopyObject', LATENCY.s3CopyRequest + extra + (size / (mbps * 1e6)) * 1000, 'A');
      check = { kind: 'sha256', sha256: src?.corrupt ? BAD_SHA : OK_SHA };
    } else {
      const parts = Math.ceil(size / (256 * MiB));
      this.req('s3.CreateMultipartUpload', LATENCY.s3Put, 'A');
      const perPart = LATENCY.s3CopyRequest + extra + ((256 * MiB) / (mbps * 1e6)) * 1000;
      for (let i = 0; i < parts; i++) this.req('s3.UploadPartCopy', perPart / LATENCY.partCopyParallel, 'A');
      this.req('s3.CompleteMultipartUpload', LATENCY.s3Put, 'A');
      check = { kind: 'same-as-source', by: 'crc64nvme' };
    }
    this.meter.bytes('copied', size, crossing);
    this.put(key, { size, modifiedAt: new Date(), ...(src?.corrupt ? { corrupt: true } : {}) });
    return check;
  }
}

// ------------------------------------------------------------------ the metadata store (SQL)

interface SimVersion extends VersionRef {
  createdAt: number;
  at: string;
}

/** The few ItemStore and ReservationStore calls the sweeps make, one SQL statement each. */
class SampleMetadata {
  private readonly byId: SimVersion[];
  private readonly byCreated: SimVersion[];
  private readonly byKey = new Map<string, SimVersion>();
  private readonly meter: Meter;

  constructor(versions: SimVersion[], meter: Meter) {
    this.meter = meter;
    this.byId = [...versions].sort((a, b) => (a.id < b.id ? -1 : 1));
    this.byCreated = [...versions].sort((a, b) =>
      a.at < b.at ? -1 : a.at > b.at ? 1 : a.id < b.id ? -1 : 1,
    );
    for (const v of versions) this.byKey.set(v.blobKey, v);
  }

  private page(rows: number) {
    this.meter.request('sql.page', LATENCY.sqlPage, { sequential: true, dpu: dsqlDpu(rows), rows });
  }
  private point(op: string) {
    this.meter.request(op, LATENCY.sqlPoint, { dpu: dsqlDpu(1), rows: 1 });
  }

  async versionsAfter(afterId: string, limit: number, upTo?: string): Promise<VersionRef[]> {
    let lo = 0;
    let hi = this.byId.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.byId[mid] as SimVersion).id <= afterId) lo = mid + 1;
      else hi = mid;
    }
    const rows = this.byId.slice(lo, lo + limit).filter((v) => upTo === undefined || v.id <= upTo);
    this.page(rows.length);
    return rows.map(({ id, nodeId, blobKey, size, sha256 }) => ({ id, nodeId, blobKey, size, sha256 }));
  }

  async versionsCreatedSince(
    since: Date,
    after: { at: string; id: string } | undefined,
    limit: number,
    ids?: { after: string; upTo: string },
  ) {
    const from = since.toISOString();
    const rows = this.byCreated
      .filter((v) => v.at >= from && (!after || v.at > after.at || (v.at === after.at && v.id > after.id)))
      .filter((v) => !ids || (v.id > ids.after && v.id <= ids.upTo))
      .slice(0, limit);
    this.page(rows.length);
    return rows.map(({ id, nodeId, blobKey, size, sha256, at }) => ({
      id,
      nodeId,
      blobKey,
      size,
      sha256,
      at,
    }));
  }

  async countVersions() {
    this.point('sql.count');
    return this.byId.length;
  }

  async blobReferenced(nodeId: string, blobKey: string) {
    this.point('sql.blobReferenced');
    return this.byKey.get(blobKey)?.nodeId === nodeId;
  }

  async blobKeyInUse(blobKey: string) {
    this.point('sql.blobKeyInUse');
    return this.byKey.has(blobKey);
  }

  async heldByOpenUpload(_blobKey: string) {
    this.point('sql.heldByOpenUpload');
    return false;
  }
}

// ------------------------------------------------------------------ a world

const silent: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silent,
};

interface World {
  meter: Meter;
  state: MeteredStateStore;
  ledger: ReplicaLedger;
  registry: NodeRegistry;
  buckets: Map<string, MeteredBucket>;
  replicator: Replicator;
  reconciler: Reconciler;
  versions: SimVersion[];
}

function makeNodes(count: number, meter: Meter, offset = 0): { node: StorageNode; bucket: MeteredBucket }[] {
  return Array.from({ length: count }, (_, i) => {
    const id = `n${offset + i}`;
    const region = `r${(offset + i) % CFG.regions}`;
    const bucket = new MeteredBucket(id, region, meter);
    return {
      bucket,
      node: { id, kind: 's3', region, weight: 1, store: bucket, health: 'healthy', draining: false },
    };
  });
}

function shuffle<T>(xs: T[], rand: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [xs[i], xs[j]] = [xs[j] as T, xs[i] as T];
  }
  return xs;
}

function drawVersions(count: number, seed: number, ages: (rand: () => number) => number): SimVersion[] {
  const rand = prng(seed);
  const now = Date.now();
  // Stratified: the k-th version's size class comes from [k/n, (k+1)/n), so a sample of 20,000
  // holds the 0.02% of huge files as 4 versions, not 0 or 10.
  const strata = shuffle(
    Array.from({ length: count }, (_, k) => (k + rand()) / count),
    rand,
  );
  return strata.map((u) => {
    const id = uuid(rand);
    const createdAt = now - ages(rand);
    return {
      id,
      nodeId: '',
      blobKey: `v/${id}`,
      size: drawSize(rand, u),
      sha256: OK_SHA,
      createdAt,
      at: new Date(createdAt).toISOString(),
    };
  });
}

type Kind = 'settled' | keyof typeof DISTRIBUTION.states;
/** The replica states of `count` versions, each in its exact share (a fraction rounded at random). */
function drawKinds(count: number, rand: () => number): Kind[] {
  const kinds: Kind[] = [];
  for (const [k, p] of Object.entries(DISTRIBUTION.states)) {
    const n = p * count;
    const whole = Math.floor(n) + (rand() < n - Math.floor(n) ? 1 : 0);
    for (let i = 0; i < whole; i++) kinds.push(k as Kind);
  }
  while (kinds.length < count) kinds.push('settled');
  return shuffle(kinds, rand);
}

/**
 * Lays the sample out as a settled deployment would have it (the setup is not metered): each
 * version's bytes on its home nodes and the ledger saying so, through the real ReplicaLedger, with
 * the small fractions of trouble DISTRIBUTION.states describes, and a few orphans per node.
 */
async function buildWorld(versions: SimVersion[], seed: number): Promise<World> {
  const meter = new Meter();
  const state = new MeteredStateStore(meter);
  const ledger = new ReplicaLedger(state);
  const made = makeNodes(CFG.nodes, meter);
  const registry = new NodeRegistry(
    made.map((m) => m.node),
    CFG.rf,
  );
  const buckets = new Map(made.map((m) => [m.node.id, m.bucket]));
  const rand = prng(seed ^ 0x5eed);
  const kinds = drawKinds(versions.length, rand);
  for (const [i, v] of versions.entries()) {
    const home = registry.home(v.id).map((n) => n.id);
    const primary = home[0] as string;
    v.nodeId = primary;
    const kind = kinds[i] ?? 'settled';
    const ref = { versionId: v.id, blobKey: v.blobKey, size: v.size, sha256: v.sha256 };
    const old = new Date(v.createdAt);
    const place = (nodeId: string, o: Partial<SimObject> = {}) =>
      buckets.get(nodeId)?.put(v.blobKey, { size: v.size, modifiedAt: old, ...o });
    place(primary);
    if (kind === 'noLedger') continue;
    let others = home.slice(1);
    if (kind === 'standIn') {
      // The second home node was down at the commit: a stand-in took the copy and still has it.
      const standIn = registry
        .all()
        .map((n) => n.id)
        .find((id) => !home.includes(id));
      others = standIn ? [standIn] : others;
    }
    await ledger.plan(ref, primary, others);
    for (const item of await ledger.forVersion(v.id)) {
      if (item.data.state !== 'pending') continue;
      const last = others.at(-1) === item.data.nodeId;
      if (kind === 'pending' && last) continue;
      if (kind === 'failed' && last) {
        await ledger.update(item, { state: 'failed', attempts: 5, lastError: 'simulated' });
        continue;
      }
      await ledger.update(item, { state: 'verified', checksum: v.sha256, lastCheck: old.toISOString() });
      if (kind === 'missing' && last) continue; // verified once, gone since
      place(item.data.nodeId, kind === 'corrupt' && last ? { corrupt: true } : {});
    }
  }
  // Orphans: objects of versions that no longer exist, old enough for the sweep.
  const orphans = Math.max(1, Math.round(versions.length * CFG.rf * DISTRIBUTION.orphans));
  for (let i = 0; i < orphans; i++) {
    const id = uuid(rand);
    const node = made[i % made.length]?.bucket;
    node?.put(`v/${id}`, { size: drawSize(rand), modifiedAt: new Date(Date.now() - 30 * 86_400_000) });
  }
  const replicator = new Replicator(ledger, registry, silent, noMetrics);
  const reconciler = makeReconciler({ versions, meter, state, registry, replicator });
  return { meter, state, ledger, registry, buckets, replicator, reconciler, versions };
}

function makeReconciler(w: {
  versions: SimVersion[];
  meter: Meter;
  state: StateStore;
  registry: NodeRegistry;
  replicator: Replicator;
}) {
  const meta = new SampleMetadata(w.versions, w.meter);
  // The phases of one sweep, told apart by the calls that start them: the first query of the pending
  // index is drain(), reapExpired comes next, then the orphan and leftover listings.
  const meter = w.meter;
  const state = new Proxy(w.state, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (prop === 'query' && typeof v === 'function')
        return (pk: string, opts?: { skPrefix?: string; limit?: number }) => {
          if (pk.startsWith('ledger-pending') && meter.phase === 'pass') meter.phase = 'drain';
          return v.call(target, pk, opts);
        };
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return new Reconciler({
    items: meta as unknown as ItemStore,
    reservations: meta as unknown as ReservationStore,
    nodes: w.registry,
    ledger: new ReplicaLedger(state),
    replicator: w.replicator,
    state,
    log: silent,
    reapExpired: async () => {
      meter.phase = 'tail';
      return 0;
    },
    pageSize: CFG.pageSize,
  });
}

function topologyOf(registry: NodeRegistry) {
  return registry
    .all()
    .map((n) => `${n.id}${n.draining ? ':draining' : ''}${n.health === 'down' ? ':down' : ''}`)
    .sort()
    .join(',');
}

/** Runs one sweep, its costs (and the CPU it takes) metered by phase. */
async function sweep(w: World, opts: Parameters<Reconciler['sweep']>[0]) {
  w.meter.phase = 'pass';
  const t0 = performance.now();
  const report = await w.reconciler.sweep(opts);
  w.meter.phase = 'setup';
  return { report, wallMs: performance.now() - t0 };
}

// ------------------------------------------------------------------ extrapolation

interface Extrapolated {
  scenario: string;
  what: string;
  /** How many versions (or commits, or replicas) of the sample the costs are over, and of the target. */
  sampleUnits: number;
  targetUnits: number;
  unit: string;
  /** Every request kind per unit (DynamoDB, SQL, S3), for the formulas in docs/scale.md. */
  requestsPerUnit: Record<string, number>;
  perUnit: {
    ddbRequests: number;
    rru: number;
    wru: number;
    sqlStatements: number;
    s3Head: number;
    s3Get: number;
    s3ClassA: number;
    bytesMoved: number;
    cpuMs: number;
  };
  atTarget: {
    ddbRequests: number;
    rru: number;
    wru: number;
    sqlStatements: number;
    dpu: number;
    s3ClassA: number;
    s3ClassB: number;
    bytesRead: number;
    bytesCopied: number;
    bytesCrossRegion: number;
    wallSeconds: number;
    /** Hourly runs of the 600 s budget the work needs (null where the work is not budgeted). */
    hourlyRuns: number | null;
    dollars: { s3: number; transfer: number; dynamodb: number; dsql: number; lambda: number; total: number };
  };
  hottest: {
    partition: string;
    wruPerSecond: number;
    rruPerSecond: number;
    bucket: string;
    classBPerSecond: number;
    classAPerSecond: number;
  };
  binding: string;
}

function sumAcc(accs: (Acc | undefined)[]): Acc {
  const out = emptyAcc();
  for (const a of accs) {
    if (!a) continue;
    for (const [k, v] of Object.entries(a.requests)) out.requests[k] = (out.requests[k] ?? 0) + v;
    for (const f of [
      'rru',
      'wru',
      'dpu',
      'sqlRows',
      's3ClassA',
      's3ClassB',
      'bytesRead',
      'bytesCopied',
      'bytesWritten',
      'bytesCrossRegion',
      'cpuMs',
    ] as const)
      out[f] += a[f];
    for (const lane of ['seq', 'par', 'drain'] as const) {
      out.lanes[lane] += a.lanes[lane];
      for (const [k, v] of Object.entries(a.laneByOp[lane]))
        out.laneByOp[lane][k] = (out.laneByOp[lane][k] ?? 0) + v;
    }
    for (const [k, v] of Object.entries(a.partitions)) {
      const p = slot(out.partitions, k, () => ({ wru: 0, rru: 0 }));
      p.wru += v.wru;
      p.rru += v.rru;
    }
    for (const [k, v] of Object.entries(a.buckets)) {
      const b = slot(out.buckets, k, () => ({ classA: 0, classB: 0 }));
      b.classA += v.classA;
      b.classB += v.classB;
    }
  }
  return out;
}

const count = (a: Acc, prefix: string) =>
  Object.entries(a.requests)
    .filter(([k]) => k.startsWith(prefix) && !k.endsWith('(items)'))
    .reduce((s, [, v]) => s + v, 0);

/**
 * Wall time of the metered requests (ms): the sequential lane, the parallel lanes shared by their
 * workers, plus the CPU (measured, and per request for the SDK), which one event loop runs
 * serially. `serial`: every request one after another (one stream record at a time).
 */
function wallMs(a: Acc, serial = false, concurrency = CFG.passConcurrency) {
  const requests = Object.entries(a.requests)
    .filter(([k]) => !k.endsWith('(items)'))
    .reduce((s, [, v]) => s + v, 0);
  const cpu = a.cpuMs + requests * LATENCY.sdkCpuMsPerRequest;
  if (serial) return a.lanes.seq + a.lanes.par + a.lanes.drain + cpu;
  return a.lanes.seq + a.lanes.par / concurrency + a.lanes.drain / CFG.drainConcurrency + cpu;
}

function dollars(a: Acc, scale: number, wallSeconds: number, runs: number, gb: number) {
  const s3 =
    ((a.s3ClassA * scale) / 1000) * PRICES.s3ClassAPer1000 +
    ((a.s3ClassB * scale) / 1000) * PRICES.s3ClassBPer1000;
  const transfer = ((a.bytesCrossRegion * scale) / 1e9) * PRICES.s3InterRegionPerGb;
  const dynamodb =
    ((a.rru * scale) / 1e6) * PRICES.ddbRruPerMillion + ((a.wru * scale) / 1e6) * PRICES.ddbWruPerMillion;
  const dsql = ((a.dpu * scale) / 1e6) * PRICES.dsqlPerMillionDpu;
  const lambda = wallSeconds * gb * PRICES.lambdaGbSecond + (runs / 1e6) * PRICES.lambdaPerMillionRequests;
  const total = s3 + transfer + dynamodb + dsql + lambda;
  const r = (n: number) => round(n, n < 1 ? 4 : 2);
  return {
    s3: r(s3),
    transfer: r(transfer),
    dynamodb: r(dynamodb),
    dsql: r(dsql),
    lambda: r(lambda),
    total: r(total),
  };
}

function extrapolate(o: {
  scenario: string;
  what: string;
  acc: Acc;
  sampleUnits: number;
  targetUnits: number;
  unit: string;
  budgeted: boolean;
  gb: number;
  serial?: boolean;
  binding?: (x: Omit<Extrapolated, 'binding'>) => string;
}): Extrapolated {
  const a = o.acc;
  const scale = o.targetUnits / o.sampleUnits;
  const wallSeconds = (wallMs(a, o.serial) / 1000) * scale;
  const hourlyRuns = o.budgeted ? Math.ceil(wallSeconds / CFG.budgetSeconds) : null;
  const per = (n: number) => round(n / o.sampleUnits, 4);
  const ddb = count(a, 'ddb.');
  const sql = count(a, 'sql.');
  const hotPartition = Object.entries(a.partitions)
    .filter(([k]) => !k.endsWith('<id>'))
    .sort((x, y) => y[1].wru - x[1].wru)[0];
  const hotBucket = Object.entries(a.buckets).sort(
    (x, y) => y[1].classA + y[1].classB - (x[1].classA + x[1].classB),
  )[0];
  const sampleWall = wallMs(a, o.serial) / 1000 || 1;
  const base: Omit<Extrapolated, 'binding'> = {
    scenario: o.scenario,
    what: o.what,
    sampleUnits: o.sampleUnits,
    targetUnits: o.targetUnits,
    unit: o.unit,
    requestsPerUnit: Object.fromEntries(
      Object.entries(a.requests)
        .sort(([x], [y]) => (x < y ? -1 : 1))
        .map(([k, v]) => [k, per(v)]),
    ),
    perUnit: {
      ddbRequests: per(ddb),
      rru: per(a.rru),
      wru: per(a.wru),
      sqlStatements: per(sql),
      s3Head: per(a.requests['s3.HeadObject'] ?? 0),
      s3Get: per(a.requests['s3.GetObject'] ?? 0),
      s3ClassA: per(a.s3ClassA),
      bytesMoved: per(a.bytesRead + a.bytesCopied + a.bytesWritten),
      cpuMs: per(a.cpuMs),
    },
    atTarget: {
      ddbRequests: Math.round(ddb * scale),
      rru: Math.round(a.rru * scale),
      wru: Math.round(a.wru * scale),
      sqlStatements: Math.round(sql * scale),
      dpu: Math.round(a.dpu * scale),
      s3ClassA: Math.round(a.s3ClassA * scale),
      s3ClassB: Math.round(a.s3ClassB * scale),
      bytesRead: Math.round(a.bytesRead * scale),
      bytesCopied: Math.round(a.bytesCopied * scale),
      bytesCrossRegion: Math.round(a.bytesCrossRegion * scale),
      wallSeconds: Math.round(wallSeconds),
      hourlyRuns,
      dollars: dollars(a, scale, wallSeconds, hourlyRuns ?? 1, o.gb),
    },
    hottest: {
      partition: hotPartition?.[0] ?? '-',
      // Rates do not depend on the scale: units and wall time grow together.
      wruPerSecond: round((hotPartition?.[1].wru ?? 0) / sampleWall, 1),
      rruPerSecond: round((hotPartition?.[1].rru ?? 0) / sampleWall, 1),
      bucket: hotBucket?.[0] ?? '-',
      classBPerSecond: round((hotBucket?.[1].classB ?? 0) / sampleWall, 1),
      classAPerSecond: round((hotBucket?.[1].classA ?? 0) / sampleWall, 1),
    },
  };
  return { ...base, binding: o.binding?.(base) ?? '' };
}

/** What binds a budgeted full pass: the hourly budget, a DynamoDB partition, or an S3 prefix. */
function bindingOfPass(x: Omit<Extrapolated, 'binding'>): string {
  const days = (x.atTarget.hourlyRuns ?? 0) / 24;
  const limits: [string, number][] = [
    [
      `time: ${(x.atTarget.hourlyRuns ?? 0).toLocaleString('en-US')} hourly runs of ${CFG.budgetSeconds} s = ${round(days, 1)} days, against the 1-day full-pass period (${round(days, 0)}×)`,
      days,
    ],
    [
      `DynamoDB partition ${x.hottest.partition}: ${x.hottest.wruPerSecond} WRU/s of 1,000 (${round(x.hottest.wruPerSecond / 10, 1)}%)`,
      x.hottest.wruPerSecond / 1000,
    ],
    [
      `S3 ${x.hottest.bucket}: ${x.hottest.classBPerSecond} GET/HEAD/s of 5,500 per prefix partition (${round(x.hottest.classBPerSecond / 55, 1)}%)`,
      x.hottest.classBPerSecond / 5500,
    ],
    [
      `S3 ${x.hottest.bucket}: ${x.hottest.classAPerSecond} PUT/COPY/LIST/s of 3,500 per prefix partition (${round(x.hottest.classAPerSecond / 35, 1)}%)`,
      x.hottest.classAPerSecond / 3500,
    ],
  ];
  limits.sort((p, q) => q[1] - p[1]);
  return (limits[0] as [string, number])[0];
}

interface Lever {
  sweep: string;
  lever: string;
  versionsPerRun: number;
  daysPerPass: number;
  pendingWruPerSecond: number;
  tableWruPerSecond: number;
  tableRruPerSecond: number;
  hottestBucketRequestsPerSecond: number;
  binding: string;
}

/**
 * What-ifs on a measured pass: more concurrency inside the function, the id range split over
 * parallel workers (each a function with its own cursor), and per-version work cut (no HEAD per
 * replica: an S3 Inventory merge-join instead; one ledger read per version instead of four).
 */
function levers(sweepName: string, a: Acc, sampleUnits: number, targetUnits: number): Lever[] {
  const totalRequests = Object.entries(a.requests)
    .filter(([k]) => !k.endsWith('(items)'))
    .reduce((s, [, v]) => s + v, 0);
  const queries = a.requests['ddb.Query'] ?? 0;
  const heads = a.requests['s3.HeadObject'] ?? 0;
  // The busiest partition of the pending index (16 shards, and the legacy one).
  const pending = Math.max(
    0,
    ...Object.entries(a.partitions)
      .filter(([k]) => k.startsWith('ledger-pending'))
      .map(([, v]) => v.wru),
  );
  const hottestBucket = Math.max(0, ...Object.values(a.buckets).map((b) => b.classA + b.classB));
  const headsPerBucket = heads / Math.max(1, Object.keys(a.buckets).length);
  const variant = (lever: string, concurrency: number, workers: number, lean: boolean): Lever => {
    let par = a.lanes.par;
    let requests = totalRequests;
    let bucketRequests = hottestBucket;
    if (lean) {
      par -= (a.laneByOp.par['s3.HeadObject'] ?? 0) + 0.75 * (a.laneByOp.par['ddb.Query'] ?? 0);
      requests -= heads + 0.75 * queries;
      bucketRequests -= headsPerBucket;
    }
    const cpu = a.cpuMs + requests * LATENCY.sdkCpuMsPerRequest;
    // Each worker takes 1/workers of the versions, all at once.
    const wall = (a.lanes.seq + par / concurrency + a.lanes.drain / CFG.drainConcurrency + cpu) / workers;
    const versionsPerRun = (sampleUnits / wall) * CFG.budgetSeconds * 1000;
    const daysPerPass = targetUnits / versionsPerRun / 24;
    const pendingWruPerSecond = round(pending / (wall / 1000), 0);
    const rru = lean ? a.rru - 0.75 * queries : a.rru;
    const tableWruPerSecond = round(a.wru / (wall / 1000), 0);
    const tableRruPerSecond = round(rru / (wall / 1000), 0);
    const hottestBucketRequestsPerSecond = round(bucketRequests / (wall / 1000), 0);
    const loads: [string, number][] = [
      [`time, ${round(daysPerPass, 1)} days a pass`, daysPerPass],
      [`a ledger-pending shard at ${pendingWruPerSecond} WRU/s`, pendingWruPerSecond / 1000],
      // A new on-demand table's warm throughput; it grows past that, but not at once.
      [`the table at ${tableWruPerSecond} WRU/s`, tableWruPerSecond / 4000],
      [`the table at ${tableRruPerSecond} RRU/s`, tableRruPerSecond / 12000],
      [`a bucket at ${hottestBucketRequestsPerSecond} req/s`, hottestBucketRequestsPerSecond / 5500],
    ];
    loads.sort((p, q) => q[1] - p[1]);
    const [what, load] = loads[0] as [string, number];
    return {
      sweep: sweepName,
      lever,
      versionsPerRun: Math.round(versionsPerRun),
      daysPerPass: round(daysPerPass, 2),
      pendingWruPerSecond,
      tableWruPerSecond,
      tableRruPerSecond,
      hottestBucketRequestsPerSecond,
      binding: `${what}: ${round(load * 100, 0)}% of its limit`,
    };
  };
  return [
    variant('as built: 1 function, 8 versions at once', CFG.passConcurrency, 1, false),
    variant('64 at once in the function', 64, 1, false),
    variant('16 workers × 8 at once (id-range shards)', CFG.passConcurrency, 16, false),
    variant('no HEAD per replica, 1 ledger read per version', CFG.passConcurrency, 1, true),
    variant('16 workers × 64, lean', 64, 16, true),
  ];
}

const leverRows: Lever[] = [];

// ------------------------------------------------------------------ scenarios

const results: Extrapolated[] = [];
const notes: Record<string, unknown> = {};
const log = (msg: string) => process.stderr.write(`[scale-sim] ${msg}\n`);

function sampleVersions() {
  return drawVersions(CFG.sample, CFG.seed, drawAgeMs);
}

/** The sweep state of a deployment whose last full pass ended an hour ago under today's topology. */
async function settledSweepState(w: World) {
  const now = Date.now();
  await w.state.put({
    pk: 'reconcile#sweep',
    sk: 'state',
    data: {
      lastFull: {
        startedAt: new Date(now - 2 * HOUR_MS).toISOString(),
        completedAt: new Date(now - HOUR_MS).toISOString(),
        topology: topologyOf(w.registry),
      },
      watermark: new Date(now - HOUR_MS).toISOString(),
    },
  });
}

async function fullScenario(name: 'full' | 'verify') {
  const w = await buildWorld(sampleVersions(), CFG.seed);
  log(`${name}: sweeping ${CFG.sample} versions`);
  const { report } = await sweep(w, {
    full: true,
    ...(name === 'verify' ? { verifyChecksums: true, orphanGraceSeconds: 1e12 } : {}),
  });
  const pass = sumAcc([w.meter.byPhase.get('pass'), w.meter.byPhase.get('drain')]);
  if (name === 'full') leverRows.push(...levers('full pass', pass, CFG.sample, CFG.target));
  results.push(
    extrapolate({
      scenario: name === 'full' ? 'full pass' : 'full pass, verifyChecksums',
      what:
        name === 'full'
          ? 'every version: ledger read, HEAD of each verified replica, plan, copy, rebalance'
          : 'as the full pass, and every verified replica read back and hashed',
      acc: pass,
      sampleUnits: CFG.sample,
      targetUnits: CFG.target,
      unit: 'version',
      budgeted: true,
      gb: CFG.maintenanceGb,
      binding: bindingOfPass,
    }),
  );
  notes[`${name}Report`] = report;
  if (name === 'full') {
    const tail = w.meter.byPhase.get('tail') ?? emptyAcc();
    const orphanRow = (acc: Acc, scenario: string, what: string) =>
      extrapolate({
        scenario,
        what,
        acc,
        sampleUnits: CFG.sample,
        targetUnits: CFG.target,
        unit: 'version',
        budgeted: false,
        gb: CFG.maintenanceGb,
        binding: (x) =>
          `not budgeted, not resumable: ${duration(x.atTarget.wallSeconds)} in one run after the pass, against the ${CFG.lambdaTimeoutSeconds - CFG.budgetSeconds} s the function has left (${Math.round(x.atTarget.wallSeconds / (CFG.lambdaTimeoutSeconds - CFG.budgetSeconds)).toLocaleString('en-US')}×)`,
      });
    results.push(
      orphanRow(
        tail,
        'orphan + leftover sweep, with an index on versions(blob_key)',
        'after a complete full pass: list every node; per object older than the grace, SQL and ledger lookups',
      ),
    );
    // As the code is: every blobKeyInUse call a scan of the versions at the target's size.
    const calls = tail.requests['sql.blobKeyInUse'] ?? 0;
    const scanned = sumAcc([tail]);
    scanned.dpu += calls * (dsqlDpu(CFG.target) - dsqlDpu(1));
    scanned.lanes.seq += calls * ((CFG.target / SCAN_ROWS_PER_SECOND) * 1000 - LATENCY.sqlPoint);
    results.push(
      orphanRow(
        scanned,
        'orphan + leftover sweep, as built',
        'the same, each blobKeyInUse a scan of every version (no index on blob_key alone)',
      ),
    );
  }
}

async function incrementalScenario() {
  const base = sampleVersions();
  const recent = drawVersions(CFG.recent, CFG.seed + 7, (rand) => rand() * 70 * 60_000);
  const w = await buildWorld([...base, ...recent], CFG.seed);
  await settledSweepState(w);
  log(`incremental: ${CFG.recent} versions in the last 70 minutes over ${CFG.sample} older ones`);
  const { report } = await sweep(w, {});
  if (report.pass !== 'incremental') throw new Error(`expected an incremental pass, got ${report.pass}`);
  const windowAtTarget = CFG.target * newPerHourPerVersion * (70 / 60);
  results.push(
    extrapolate({
      scenario: 'incremental pass',
      what: 'versions created since the last pass began (minus 10 min slack), then the pending drain',
      acc: sumAcc([w.meter.byPhase.get('pass')]),
      sampleUnits: CFG.recent,
      targetUnits: windowAtTarget,
      unit: 'version in the window',
      budgeted: true,
      gb: CFG.maintenanceGb,
      binding: (x) =>
        `${Math.round(windowAtTarget).toLocaleString('en-US')} versions an hour at ${CFG.target.toExponential(0)}: ${x.atTarget.wallSeconds} s of the ${CFG.budgetSeconds} s budget; never runs while a full pass is under way`,
    }),
  );
  const drain = w.meter.byPhase.get('drain');
  if (drain && report.replicated > 0)
    notes.drainPerReplica = {
      replicas: report.replicated,
      ddbRequests: round(count(drain, 'ddb.') / report.replicated, 2),
      s3Requests: round(count(drain, 's3.') / report.replicated, 2),
      capPerRun: 20 * CFG.drainConcurrency * 25,
    };
  notes.incrementalReport = report;
}

async function topologyScenario(kind: 'node-added' | 'node-drained') {
  const w = await buildWorld(sampleVersions(), CFG.seed);
  await settledSweepState(w);
  if (kind === 'node-added') {
    const [added] = makeNodes(1, w.meter, CFG.nodes);
    if (!added) throw new Error('no node');
    w.registry.add(added.node);
    w.buckets.set(added.node.id, added.bucket);
  } else w.registry.drain('n0');
  log(`${kind}: sweeping ${CFG.sample} versions after the topology changed`);
  const { report } = await sweep(w, { orphanGraceSeconds: 1e12 });
  if (report.pass !== 'full') throw new Error(`expected a full pass, got ${report.pass}`);
  const acc = sumAcc([w.meter.byPhase.get('pass'), w.meter.byPhase.get('drain')]);
  if (kind === 'node-added') leverRows.push(...levers('node added', acc, CFG.sample, CFG.target));
  results.push(
    extrapolate({
      scenario: kind === 'node-added' ? `node added (${CFG.nodes}→${CFG.nodes + 1})` : 'node drained',
      what:
        kind === 'node-added'
          ? 'full pass: about rf/(n+1) of the replicas copied to the new node, the surplus deleted'
          : "full pass: every replica on the draining node copied to the version's new home, then deleted",
      acc,
      sampleUnits: CFG.sample,
      targetUnits: CFG.target,
      unit: 'version',
      budgeted: true,
      gb: CFG.maintenanceGb,
      binding: bindingOfPass,
    }),
  );
  notes[`${kind}Report`] = report;
}

/**
 * The event path per committed version: the commit plans its replicas (ledger.plan), the stream
 * hands each pending replica to the replicator. `crr`: S3 replication copied the bytes first, so the
 * replicator verifies (HEAD, then reads the whole object back); otherwise it copies server-side.
 */
async function eventScenario(crr: boolean) {
  const versions = drawVersions(CFG.events, CFG.seed + 11, () => 0);
  const w = await buildWorld([], CFG.seed);
  const meter = w.meter;
  log(`event path (${crr ? 'with S3 replication' : 'server-side copy'}): ${CFG.events} commits`);
  for (const v of versions) {
    const home = w.registry.placement(v.id).map((n) => n.id);
    const primary = home[0] as string;
    v.nodeId = primary;
    meter.phase = 'setup';
    w.buckets.get(primary)?.put(v.blobKey, { size: v.size, modifiedAt: new Date() });
    if (crr)
      for (const id of home.slice(1))
        w.buckets.get(id)?.put(v.blobKey, { size: v.size, modifiedAt: new Date() });
    meter.phase = 'event';
    await w.ledger.plan(
      { versionId: v.id, blobKey: v.blobKey, size: v.size, sha256: v.sha256 },
      primary,
      home.slice(1),
    );
    // What the stream delivers: the INSERT of each pending replica (the delivery itself is free).
    meter.phase = 'setup';
    const inserted = (await w.state.query<Replica>(ledgerPk(v.id))).filter((i) => i.data.state === 'pending');
    meter.phase = 'event';
    for (const item of inserted)
      await w.replicator.handle({ kind: 'upsert', item: item as unknown as StateItem });
  }
  meter.phase = 'setup';
  const acc = meter.byPhase.get('event') ?? emptyAcc();
  const perDay = CFG.target * newPerHourPerVersion * 24;
  results.push(
    extrapolate({
      scenario: crr ? 'replicator, S3 replication on' : 'replicator, server-side copy',
      what: crr
        ? 'per commit: plan, stream, HEAD the replica, read it back whole and hash it, verified'
        : 'per commit: plan, stream, HEAD, ledger read, CopyObject/UploadPartCopy, verified',
      acc,
      sampleUnits: CFG.events,
      targetUnits: perDay,
      unit: 'commit (a day of them at the target)',
      budgeted: false,
      gb: CFG.streamGb,
      serial: true,
      binding: () => {
        // The state-stream function's timeout is 60 s: the longest single replication it can finish.
        const gb = (mbps: number) => round((60 * mbps) / 1000, 1);
        return crr
          ? `the 60 s state-stream function reads a replica back at ~${LATENCY.crossRegionStreamMBps} MB/s across regions: replicas over ~${gb(LATENCY.crossRegionStreamMBps)} GB time out and wait for the reconciler`
          : `the 60 s state-stream function: a cross-region CopyObject at ~${LATENCY.crossRegionCopyMBps} MB/s ends near ${gb(LATENCY.crossRegionCopyMBps)} GB (it copies up to 5 GiB), ${LATENCY.partCopyParallel} UploadPartCopy at once near ${gb(LATENCY.crossRegionCopyMBps * LATENCY.partCopyParallel)} GB; bigger ones wait for the reconciler`;
      },
    }),
  );
}

/** The CounterAudit's ledger walk: one summary check per version (ReplicaLedger.reconcileSummary). */
async function auditScenario() {
  const w = await buildWorld(sampleVersions(), CFG.seed);
  log(`audit: checking ${CFG.sample} ledger summaries`);
  w.meter.phase = 'audit';
  for (const v of w.versions) await w.ledger.reconcileSummary(v.id);
  w.meter.phase = 'setup';
  const acc = w.meter.byPhase.get('audit') ?? emptyAcc();
  results.push(
    extrapolate({
      scenario: 'counter audit (ledger walk)',
      what: 'per version: read the summary, query the replicas, compare (writes only on drift)',
      acc,
      sampleUnits: CFG.sample,
      targetUnits: CFG.target,
      unit: 'version',
      budgeted: false,
      gb: CFG.maintenanceGb,
      binding: (x) => {
        const runs = x.atTarget.wallSeconds / CFG.auditBudgetSeconds;
        return `${CFG.auditBudgetSeconds} s per hourly run: a cycle takes ${Math.round(runs).toLocaleString('en-US')} runs (${round(runs / 24 / 365, 1)} years), against the daily cycle it is meant to have`;
      },
    }),
  );
}

/** CPU of the placement alone (what reconcileVersion and rebalance compute: home twice, placement once). */
function placementCpu() {
  const out: Record<string, number> = {};
  for (const n of [CFG.nodes, 16, 64]) {
    const meter = new Meter();
    const reg = new NodeRegistry(
      makeNodes(n, meter).map((m) => m.node),
      CFG.rf,
    );
    const rand = prng(99);
    const ids = Array.from({ length: 5_000 }, () => uuid(rand));
    const t0 = process.cpuUsage();
    for (const id of ids) {
      reg.home(id);
      reg.placement(id);
      reg.home(id);
    }
    const t = process.cpuUsage(t0);
    out[`${n} nodes`] = round((t.user + t.system) / ids.length, 1);
  }
  return out;
}

// ------------------------------------------------------------------ output

const fmt = (n: number) => {
  const a = Math.abs(n);
  if (a >= 1e12) return `${round(n / 1e12, 1)}T`;
  if (a >= 1e9) return `${round(n / 1e9, 1)}G`;
  if (a >= 1e6) return `${round(n / 1e6, 1)}M`;
  if (a >= 1e4) return `${round(n / 1e3, 0)}k`;
  return String(round(n, 2));
};
const bytes = (n: number) => {
  if (n >= 1e15) return `${round(n / 1e15, 2)} PB`;
  if (n >= 1e12) return `${round(n / 1e12, 1)} TB`;
  if (n >= 1e9) return `${round(n / 1e9, 1)} GB`;
  if (n >= 1e6) return `${round(n / 1e6, 1)} MB`;
  return `${Math.round(n / 1e3)} kB`;
};
const duration = (s: number) => {
  if (s >= 86_400 * 730) return `${fmt(s / (86_400 * 365.25))} years`;
  if (s >= 86_400 * 2) return `${round(s / 86_400, 1)} d`;
  if (s >= 7200) return `${round(s / 3600, 1)} h`;
  if (s >= 120) return `${round(s / 60, 1)} min`;
  return `${round(s, 1)} s`;
};

function table(rows: Extrapolated[]): string {
  const head = [
    'sweep',
    'per unit: DDB req (RRU/WRU)',
    'SQL',
    'S3 HEAD/GET/PUT-class',
    'bytes moved',
    'at target: requests (DDB/SQL/S3)',
    'moved (cross-region)',
    'wall (event path: Lambda time)',
    'hourly runs',
    '$',
  ];
  const lines = rows.map((r) => {
    const p = r.perUnit;
    const t = r.atTarget;
    return [
      `${r.scenario} (per ${r.unit})`,
      `${p.ddbRequests} (${p.rru}/${p.wru})`,
      String(p.sqlStatements),
      `${p.s3Head}/${p.s3Get}/${p.s3ClassA}`,
      bytes(p.bytesMoved),
      `${fmt(t.ddbRequests)}/${fmt(t.sqlStatements)}/${fmt(t.s3ClassA + t.s3ClassB)}`,
      `${bytes(t.bytesRead + t.bytesCopied)} (${bytes(t.bytesCrossRegion)})`,
      duration(t.wallSeconds),
      t.hourlyRuns === null ? '-' : t.hourlyRuns.toLocaleString('en-US'),
      `$${t.dollars.total.toLocaleString('en-US')}`,
    ];
  });
  const md = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [md(head), md(head.map(() => '---')), ...lines.map(md)].join('\n');
}

function bindingTable(rows: Extrapolated[]): string {
  const md = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [
    md([
      'sweep',
      'what binds at the target',
      'hottest DynamoDB partition',
      '$ by service (S3 / transfer / DDB / DSQL / Lambda)',
    ]),
    md(['---', '---', '---', '---']),
    ...rows.map((r) => {
      const d = r.atTarget.dollars;
      return md([
        r.scenario,
        r.binding,
        `${r.hottest.partition}: ${r.hottest.wruPerSecond} WRU/s, ${r.hottest.rruPerSecond} RRU/s`,
        `${d.s3} / ${d.transfer} / ${d.dynamodb} / ${d.dsql} / ${d.lambda}`,
      ]);
    }),
  ].join('\n');
}

function leverTable(rows: Lever[]): string {
  const md = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [
    md([
      'sweep',
      'lever',
      'versions per 600 s run',
      'days per full pass',
      'busiest ledger-pending shard WRU/s',
      'table WRU/s, RRU/s',
      'busiest bucket req/s',
      'binds first (of: 1 pass a day; 1,000 WRU/s a partition; 4,000 WRU/s and 12,000 RRU/s, a new table; 5,500 req/s a prefix partition)',
    ]),
    md(['---', '---', '---', '---', '---', '---', '---', '---']),
    ...rows.map((r) =>
      md([
        r.sweep,
        r.lever,
        r.versionsPerRun.toLocaleString('en-US'),
        String(r.daysPerPass),
        String(r.pendingWruPerSecond),
        `${r.tableWruPerSecond}, ${r.tableRruPerSecond}`,
        String(r.hottestBucketRequestsPerSecond),
        r.binding,
      ]),
    ),
  ].join('\n');
}

async function main() {
  const started = performance.now();
  log(
    `sample ${CFG.sample} versions of ${CFG.target.toExponential(0)}, ${CFG.nodes} nodes in ${CFG.regions} regions, rf ${CFG.rf}`,
  );
  for (const s of scenarios) {
    if (s === 'full' || s === 'verify') await fullScenario(s);
    else if (s === 'incremental') await incrementalScenario();
    else if (s === 'node-added' || s === 'node-drained') await topologyScenario(s);
    else if (s === 'event-copy' || s === 'event-crr') await eventScenario(s === 'event-crr');
    else if (s === 'audit') await auditScenario();
  }
  const placement = placementCpu();
  const sample = sampleVersions();
  const totalBytes = sample.reduce((s, v) => s + v.size, 0);
  const meanSize = totalBytes / sample.length;
  const summary = {
    meanVersionBytes: Math.round(meanSize),
    logicalBytesAtTarget: Math.round(meanSize * CFG.target),
    storedBytesAtTarget: Math.round(meanSize * CFG.target * CFG.rf),
    commitsPerHourAtTarget: Math.round(CFG.target * newPerHourPerVersion),
    placementCpuMicrosecondsPerVersion: placement,
  };
  const durationSeconds = round((performance.now() - started) / 1000, 1);
  const out = {
    date: new Date().toISOString(),
    config: CFG,
    assumptions: {
      prices: PRICES,
      latency: LATENCY,
      distribution: DISTRIBUTION,
      dsqlDpu: '0.01 + 0.0004 × rows',
    },
    summary,
    scenarios: results,
    levers: leverRows,
    notes,
    durationSeconds,
  };
  process.stdout.write(
    [
      `Scale simulation: ${CFG.sample.toLocaleString('en-US')} sampled versions extrapolated to ${CFG.target.toExponential(0)}; ${CFG.nodes} S3 nodes in ${CFG.regions} regions, replication factor ${CFG.rf}; prices ${PRICES.region} of ${PRICES.date}.`,
      `Mean version ${bytes(meanSize)}: ${bytes(summary.logicalBytesAtTarget)} logical, ${bytes(summary.storedBytesAtTarget)} stored; ${summary.commitsPerHourAtTarget.toLocaleString('en-US')} commits an hour now.`,
      `Placement CPU (home, placement, home per version): ${Object.entries(placement)
        .map(([k, v]) => `${v} µs at ${k}`)
        .join(', ')}.`,
      '',
      table(results),
      '',
      bindingTable(results),
      '',
      leverTable(leverRows),
      '',
      `Done in ${durationSeconds} s.`,
      '',
    ].join('\n'),
  );
  if (!argv['no-write']) {
    const dir = path.join(ROOT, 'bench', 'results');
    await fs.mkdir(dir, { recursive: true });
    const file = argv.out
      ? path.resolve(argv.out)
      : path.join(dir, `${out.date.slice(0, 10)}-scale-sim.json`);
    await fs.writeFile(file, `${JSON.stringify(out, null, 2)}\n`);
    log(`wrote ${path.relative(ROOT, file)}`);
  }
}

await main();
