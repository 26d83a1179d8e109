/**
 * One zod-checked configuration object, built once at start-up from the environment.
 * A bad value stops start-up with a single line naming the setting (see `loadConfig`).
 */
import path from 'node:path';
import * as z from 'zod';
import { MAX_OBJECT } from '../domain/upload-session.ts';

const MiB = 1024 * 1024;

const list = (v: string) =>
  v
    .split(',')
    .map((x) => x.trim().toLowerCase())
    .filter(Boolean);

/** A setting holding JSON, checked by `schema`; `fallback` when unset. */
const json = <T extends z.ZodType>(fallback: string, schema: T) =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx) => {
      try {
        return JSON.parse(v) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'not JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);

const bucket = z.object({ capacity: z.number().int().min(1), refillPerSecond: z.number().positive() });
/** JSON: route ids or classes (auth, read, write, public) to {perIp, perUser?} token buckets. */
const rateLimits = json('{}', z.record(z.string(), z.object({ perIp: bucket, perUser: bucket.optional() })));

const nodeSpec = z.discriminatedUnion('kind', [
  z.object({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/),
    kind: z.literal('localfs'),
    path: z.string().min(1),
    region: z.string().min(1).optional(),
    weight: z.number().min(0).optional(),
  }),
  z.object({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/),
    kind: z.literal('s3'),
    bucket: z.string().min(3),
    region: z.string().min(1),
    endpoint: z.url().optional(),
    weight: z.number().min(0).optional(),
  }),
]);
/** JSON: storage nodes beyond the profile's own (local directories or S3 buckets/endpoints, any mix). */
const nodeList = json('[]', z.array(nodeSpec).max(64));

const intFrom = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const common = {
  /** log2 of the scrypt cost parameter N; 17 is OWASP's recommendation (128 MiB with r=8). */
  STRATUS_KDF_COST: intFrom(10, 20).default(17),
  STRATUS_ACCESS_TOKEN_TTL_SECONDS: intFrom(60, 86_400).default(900),
  STRATUS_REFRESH_TOKEN_TTL_SECONDS: intFrom(300, 90 * 86_400).default(30 * 86_400),
  STRATUS_URL_TTL_SECONDS: intFrom(10, 7 * 86_400).default(900),
  STRATUS_UPLOAD_TTL_SECONDS: intFrom(1, 30 * 86_400).default(86_400),
  /**
   * Uploads up to this size are verified inside the complete request (201); larger ones answer 202
   * and are verified in the background (0: every upload in the background).
   */
  STRATUS_INLINE_VERIFY_BYTES: intFrom(0, Number.MAX_SAFE_INTEGER).default(64 * MiB),
  /**
   * Seconds one background verification run reads before it stops at a checkpoint and hands over
   * to a new run (fractions allowed); 0, the default, is no limit. The AWS verifier function sets it
   * below its 15-minute timeout, so files of any size verify across runs.
   */
  STRATUS_VERIFY_RUN_SECONDS: z.coerce.number().min(0).max(86_400).default(0),
  /**
   * Seconds one reconcile run works before it stops at a page boundary, keeping its cursor for the
   * next run (0: no limit). The maintenance function sets it below its 15-minute timeout.
   */
  STRATUS_RECONCILE_BUDGET_SECONDS: intFrom(0, 86_400).default(0),
  /**
   * Shares of the version-id space a sweep is split into, each with its own cursor and lease
   * (shared/services/sweep-partitions.ts). Locally the timer sweeps them one after another; in AWS
   * a Step Functions Distributed Map runs one maintenance invocation per share at once.
   */
  STRATUS_RECONCILE_PARTITIONS: intFrom(1, 256).default(1),
  /**
   * Seconds one run of a purge job deletes batches before it hands over to the next run (0: until
   * done). The background function in AWS sets it below its 15-minute timeout.
   */
  STRATUS_PURGE_RUN_SECONDS: intFrom(0, 86_400).default(0),
  /** Rows one purge batch (one transaction) may change, its bookkeeping included; DSQL's cap is 3,000. */
  STRATUS_PURGE_BATCH_ROWS: intFrom(20, 2_000).default(500),
  /** A purge of up to this many rows (items and versions) runs in the request; bigger ones are jobs. */
  STRATUS_PURGE_INLINE_ROWS: intFrom(0, 10_000).default(500),
  /** How often a full pass re-reads every version even when nothing changed (a topology change always does). */
  STRATUS_FULL_SWEEP_EVERY_SECONDS: intFrom(60, 90 * 86_400).default(86_400),
  /** How long sharing with an address that has no account waits for it to register (30 days). */
  STRATUS_INVITATION_TTL_SECONDS: intFrom(60, 365 * 86_400).default(30 * 86_400),
  STRATUS_PART_SIZE_BYTES: intFrom(5 * MiB, 5 * 1024 * MiB).default(16 * MiB),
  /** Up to S3's largest object (10,000 parts of 5 GiB, 48.8 TiB), the default. */
  STRATUS_MAX_FILE_BYTES: intFrom(0, MAX_OBJECT).default(MAX_OBJECT),
  STRATUS_DEFAULT_QUOTA_BYTES: intFrom(0, Number.MAX_SAFE_INTEGER).default(10 * 1024 * MiB),
  /** At least 128 KiB: a batch of 1,000 part hashes (about 97 KB of JSON) must always fit. */
  STRATUS_MAX_BODY_BYTES: intFrom(128 * 1024, 10 * MiB).default(256 * 1024),
  STRATUS_MAX_OPEN_UPLOADS: intFrom(1, 1_000_000).default(1000),
  /** Comma-separated types refused outright, e.g. "executable,application/x-msdownload". */
  STRATUS_TYPE_DENY: z.string().default('').transform(list),
  /** Comma-separated types accepted, declared and as stored after sniffing (e.g. "image/*,application/pdf"); empty accepts all. */
  STRATUS_TYPE_ALLOW: z.string().default('').transform(list),
  /** The malware scanner: the reference EICAR detector, GuardDuty (aws profile: its S3 object tags), or none (all clean). */
  STRATUS_SCANNER: z.enum(['eicar', 'guardduty', 'none']).default('eicar'),
  STRATUS_RATE_LIMITS: rateLimits,
  STRATUS_NODES: nodeList,
  /** Log lines as JSON (default off a terminal) or readable text (default on one). */
  STRATUS_LOG_FORMAT: z.enum(['json', 'pretty']).optional(),
  STRATUS_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
};

const localSchema = z.object({
  STRATUS_PROFILE: z.literal('local'),
  /**
   * The first admin account, created (or, proven by this password, promoted) at start-up before
   * the API serves anything; both or neither. Registration never grants admin. In AWS the first
   * admin comes from the maintenance function's promote-admin task (docs/deploy.md).
   */
  STRATUS_ADMIN_EMAIL: z.string().trim().toLowerCase().pipe(z.email()).optional(),
  STRATUS_ADMIN_PASSWORD: z.string().min(8, 'at least 8 characters').max(256).optional(),
  PORT: intFrom(0, 65_535).default(8787),
  HOST: z.string().min(1).default('127.0.0.1'),
  STRATUS_DATA_DIR: z.string().min(1).default('./.stratus'),
  /** The URL clients use to reach this process; defaults to http://HOST:PORT. */
  STRATUS_PUBLIC_URL: z.url().optional(),
  /** Local storage nodes (directories under the data dir) and how many hold each version. */
  STRATUS_LOCAL_NODES: intFrom(1, 16).default(3),
  STRATUS_REPLICATION_FACTOR: intFrom(1, 16).default(2),
  /**
   * Comma-separated absolute directories under which an admin may add a local node
   * (`POST /v1/admin/nodes`); default (unset): the data directory's `nodes/`.
   */
  STRATUS_LOCAL_NODE_ROOTS: z
    .string()
    .transform((v) =>
      v
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    )
    .pipe(
      z
        .array(z.string().refine((p) => path.isAbsolute(p), 'each root must be an absolute path'))
        .min(1, 'at least one absolute path'),
    )
    .optional(),
  /** How often the local runtime deletes expired state (DynamoDB TTL's stand-in), in seconds. */
  STRATUS_REAPER_INTERVAL_SECONDS: intFrom(0, 86_400).default(30),
  /** Node canaries and reconciliation sweeps in the local runtime (0: never). */
  STRATUS_HEALTH_INTERVAL_SECONDS: intFrom(0, 86_400).default(15),
  STRATUS_RECONCILE_INTERVAL_SECONDS: intFrom(0, 7 * 86_400).default(300),
  /** How often the local runtime runs the retention sweep (0: never). */
  STRATUS_SWEEP_INTERVAL_SECONDS: intFrom(0, 7 * 86_400).default(600),
  /** Use Redis for the cache, rate limits and login throttling, as in AWS (default: in memory). */
  STRATUS_REDIS_URL: z.string().startsWith('redis').optional(),
  /** Use this PostgreSQL instead of the embedded PGlite. */
  STRATUS_DATABASE_URL: z.string().startsWith('postgres').optional(),
  ...common,
});

const awsSchema = z.object({
  STRATUS_PROFILE: z.literal('aws'),
  AWS_REGION: z.string().min(1),
  STRATUS_BUCKET: z.string().min(3),
  STRATUS_TABLE: z.string().min(1),
  STRATUS_DATABASE_URL: z.string().startsWith('postgres'),
  STRATUS_USER_POOL_ID: z.string().min(1),
  STRATUS_USER_POOL_CLIENT_ID: z.string().min(1),
  STRATUS_REDIS_URL: z.string().startsWith('redis').optional(),
  /** `cluster` for ElastiCache Serverless (cluster-mode only); `standalone` for one Redis server. */
  STRATUS_REDIS_MODE: z.enum(['standalone', 'cluster']).default('standalone'),
  ...common,
});

const schema = z.discriminatedUnion('STRATUS_PROFILE', [localSchema, awsSchema]);

export type LocalConfig = ReturnType<typeof toLocal>;
export type AwsConfig = z.infer<typeof awsSchema>;
export type Config = LocalConfig | AwsConfig;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

function toLocal(env: z.infer<typeof localSchema>) {
  const dataDir = path.resolve(env.STRATUS_DATA_DIR);
  return {
    ...env,
    STRATUS_DATA_DIR: dataDir,
    STRATUS_LOCAL_NODE_ROOTS: (env.STRATUS_LOCAL_NODE_ROOTS ?? [path.join(dataDir, 'nodes')]).map((r) =>
      path.resolve(r),
    ),
    publicUrl: (env.STRATUS_PUBLIC_URL ?? `http://${env.HOST}:${env.PORT}`).replace(/\/$/, ''),
  };
}

/** Parse the environment into a Config. Throws ConfigError whose message is one readable line. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const input: Record<string, string> = { STRATUS_PROFILE: 'local', ...stripEmpty(env) };
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = issue?.path.join('.') || 'config';
    // The bad value helps, except where it is a secret: a password never reaches a log or a terminal.
    const shown =
      typeof issue?.path[0] === 'string' && !/PASSWORD|SECRET|TOKEN/.test(issue.path[0])
        ? input[issue.path[0]]
        : undefined;
    throw new ConfigError(
      `invalid configuration: ${key}${shown === undefined ? '' : `=${JSON.stringify(shown)}`}: ${issue?.message ?? 'invalid'}`,
    );
  }
  const data = parsed.data;
  if (
    data.STRATUS_PROFILE === 'local' &&
    Boolean(data.STRATUS_ADMIN_EMAIL) !== Boolean(data.STRATUS_ADMIN_PASSWORD)
  )
    throw new ConfigError(
      data.STRATUS_ADMIN_EMAIL
        ? 'invalid configuration: STRATUS_ADMIN_PASSWORD: required with STRATUS_ADMIN_EMAIL (the first admin is created at start-up from both; registering that address grants nothing)'
        : 'invalid configuration: STRATUS_ADMIN_EMAIL: required with STRATUS_ADMIN_PASSWORD',
    );
  return data.STRATUS_PROFILE === 'local' ? toLocal(data) : data;
}

function stripEmpty(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') out[k] = v;
  return out;
}
