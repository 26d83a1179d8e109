/**
 * Deployment choices read from CDK context (`-c key=value` or cdk.json), validated once so a typo
 * fails synthesis with one clear line instead of deploying something else. docs/deploy.md lists
 * them with their costs.
 */
import type { App } from 'aws-cdk-lib';

export type MetadataStore = 'dsql' | 'aurora' | 'external';
export type CacheChoice = 'valkey' | 'none' | 'external';

export interface DeployOptions {
  stage: string;
  /** Every region with a blob bucket; the first holds the rest of the stack. */
  regions: string[];
  primary: string;
  replicationRtc: boolean;
  /** Where the metadata lives: Aurora DSQL (default), Aurora Serverless v2, or a PostgreSQL you run. */
  metadataStore: MetadataStore;
  /** Only with metadataStore=external: the URL the functions connect with. */
  databaseUrl?: string;
  /** Shared rate limits, throttles and cache: ElastiCache Serverless (Valkey), none, or your Redis. */
  cache: CacheChoice;
  redisUrl?: string;
  /** DynamoDB global-table replicas of the state table in every other region. */
  globalTable: boolean;
  /** Customer-managed KMS keys (rotated yearly) for blobs, state, metadata and the cache. */
  kms: boolean;
}

const STAGE = /^[a-z][a-z0-9-]{0,19}$/;
const REGION = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$/;

function fail(message: string): never {
  throw new Error(`stratus: ${message}`);
}

function flag(app: App, key: string): boolean {
  const raw = app.node.tryGetContext(key);
  if (raw === undefined || raw === null || raw === '') return false;
  const v = String(raw).toLowerCase();
  if (v === 'true') return true;
  if (v === 'false') return false;
  return fail(`-c ${key}=${String(raw)}: expected true or false`);
}

function oneOf<T extends string>(app: App, key: string, allowed: readonly T[], fallback: T): T {
  const raw = app.node.tryGetContext(key);
  if (raw === undefined || raw === null || raw === '') return fallback;
  if ((allowed as readonly string[]).includes(String(raw))) return String(raw) as T;
  return fail(`-c ${key}=${String(raw)}: expected one of ${allowed.join(', ')}`);
}

function text(app: App, key: string): string | undefined {
  const raw = app.node.tryGetContext(key);
  return raw === undefined || raw === null || raw === '' ? undefined : String(raw);
}

export function readOptions(app: App): DeployOptions {
  const stage = text(app, 'stage') ?? 'dev';
  if (!STAGE.test(stage)) fail(`-c stage=${stage}: lower-case letters, digits and dashes, at most 20`);
  const region = text(app, 'region') ?? process.env.CDK_DEFAULT_REGION ?? 'us-east-1';
  const regions = (text(app, 'regions') ?? region)
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean);
  for (const r of regions) if (!REGION.test(r)) fail(`-c regions: "${r}" is not a region name`);
  if (new Set(regions).size !== regions.length) fail('-c regions: a region is listed twice');
  const primary = regions[0] ?? region;

  const databaseUrl = text(app, 'databaseUrl');
  const metadataStore = oneOf<MetadataStore>(
    app,
    'metadataStore',
    ['dsql', 'aurora', 'external'],
    databaseUrl ? 'external' : 'dsql',
  );
  if (metadataStore === 'external') {
    if (!databaseUrl) fail('-c metadataStore=external needs -c databaseUrl=postgres://…');
    if (!/^postgres(ql)?:\/\//.test(databaseUrl)) fail('-c databaseUrl must be a postgres:// URL');
  } else if (databaseUrl) {
    fail(`-c databaseUrl is only used with -c metadataStore=external (not ${metadataStore})`);
  }

  const redisUrl = text(app, 'redisUrl');
  const cache = oneOf<CacheChoice>(
    app,
    'cache',
    ['valkey', 'none', 'external'],
    redisUrl ? 'external' : 'valkey',
  );
  if (cache === 'external') {
    if (!redisUrl) fail('-c cache=external needs -c redisUrl=redis://…');
    if (!/^rediss?:\/\//.test(redisUrl)) fail('-c redisUrl must be a redis:// or rediss:// URL');
  } else if (redisUrl) {
    fail(`-c redisUrl is only used with -c cache=external (not ${cache})`);
  }

  const globalTable = flag(app, 'globalTable');
  if (globalTable && regions.length < 2) fail('-c globalTable=true needs at least two -c regions');

  return {
    stage,
    regions,
    primary,
    replicationRtc: flag(app, 'replicationRtc'),
    metadataStore,
    ...(databaseUrl ? { databaseUrl } : {}),
    cache,
    ...(redisUrl ? { redisUrl } : {}),
    globalTable,
    kms: flag(app, 'kms'),
  };
}
