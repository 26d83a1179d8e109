/**
 * Deployment choices read from CDK context (`-c key=value` or cdk.json), validated once so a typo
 * fails synthesis with one clear line instead of deploying something else. docs/deploy.md lists
 * them with their costs.
 */
import type { App } from 'aws-cdk-lib';

export type MetadataStore = 'dsql' | 'aurora' | 'external';
export type CacheChoice = 'valkey' | 'none' | 'external';
export type MalwareScanner = 'eicar' | 'guardduty';

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
  /**
   * Multi-Region Aurora DSQL: the witness region (`-c dsqlWitness=`, with exactly two `regions`),
   * and once both clusters exist, their ARNs to peer them (`-c dsqlPeers=arn1,arn2`).
   */
  dsqlWitness?: string;
  dsqlPeers?: string[];
  /**
   * Days S3 keeps a blob after the application purged it (a noncurrent version of the versioned
   * bucket) before the lifecycle rule removes it for good: an operator's window to undo a purge.
   */
  purgeGraceDays: number;
  /**
   * Uploads up to this many MiB are verified inside the complete request; larger ones answer 202
   * and go to the verifier function (STRATUS_INLINE_VERIFY_BYTES). 0 to 1024, default 64.
   */
  inlineVerifyMiB: number;
  /**
   * The functions' malware scanner: the reference EICAR detector (default), or GuardDuty Malware
   * Protection for S3 (a plan on every blob bucket, STRATUS_SCANNER=guardduty; docs/deploy.md,
   * "Malware scanning").
   */
  malwareScanner: MalwareScanner;
  /**
   * Shares of the version-id space the hourly reconcile sweep is split into, run at once by a Step
   * Functions Distributed Map (one maintenance invocation each). 1 to 256, default 8.
   */
  reconcilePartitions: number;
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

/**
 * A store choice whose `external` value takes a URL (`-c databaseUrl=`, `-c redisUrl=`): giving the
 * URL implies `external`; `external` without it, or the URL with another choice, is refused.
 */
function choiceWithUrl<T extends string>(
  app: App,
  choice: { key: string; choices: readonly T[]; fallback: T },
  url: { key: string; pattern: RegExp; example: string },
): [T, string | undefined] {
  const value = text(app, url.key);
  const chosen = oneOf<T>(app, choice.key, choice.choices, value ? ('external' as T) : choice.fallback);
  if (chosen === 'external') {
    if (!value) fail(`-c ${choice.key}=external needs -c ${url.key}=${url.example.split(' ')[0]}…`);
    if (!url.pattern.test(value)) fail(`-c ${url.key} must be a ${url.example} URL`);
  } else if (value) {
    fail(`-c ${url.key} is only used with -c ${choice.key}=external (not ${chosen})`);
  }
  return [chosen, value];
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

  const [metadataStore, databaseUrl] = choiceWithUrl<MetadataStore>(
    app,
    { key: 'metadataStore', choices: ['dsql', 'aurora', 'external'], fallback: 'dsql' },
    { key: 'databaseUrl', pattern: /^postgres(ql)?:\/\//, example: 'postgres://' },
  );
  const [cache, redisUrl] = choiceWithUrl<CacheChoice>(
    app,
    { key: 'cache', choices: ['valkey', 'none', 'external'], fallback: 'valkey' },
    { key: 'redisUrl', pattern: /^rediss?:\/\//, example: 'redis:// or rediss://' },
  );

  const dsqlWitness = text(app, 'dsqlWitness');
  const dsqlPeers = text(app, 'dsqlPeers')
    ?.split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  if (dsqlWitness) {
    if (metadataStore !== 'dsql') fail('-c dsqlWitness is for -c metadataStore=dsql');
    if (!REGION.test(dsqlWitness)) fail(`-c dsqlWitness: "${dsqlWitness}" is not a region name`);
    if (regions.length !== 2) fail('-c dsqlWitness needs exactly two -c regions (DSQL peers two regions)');
    if (regions.includes(dsqlWitness)) fail('-c dsqlWitness must be a third region, not one of -c regions');
  }
  if (dsqlPeers) {
    if (!dsqlWitness) fail('-c dsqlPeers needs -c dsqlWitness');
    const arn = /^arn:aws[a-z-]*:dsql:([a-z0-9-]+):\d{12}:cluster\/[a-z0-9]{26}$/;
    const peerRegions = dsqlPeers.map(
      (a) => arn.exec(a)?.[1] ?? fail(`-c dsqlPeers: "${a}" is not a DSQL cluster ARN`),
    );
    if ([...peerRegions].sort().join() !== [...regions].sort().join())
      fail(`-c dsqlPeers: one cluster ARN per region of -c regions (${regions.join(', ')})`);
  }

  const graceRaw = text(app, 'purgeGraceDays') ?? '7';
  const purgeGraceDays = Number(graceRaw);
  if (!/^\d+$/.test(graceRaw) || purgeGraceDays < 1 || purgeGraceDays > 365)
    fail(`-c purgeGraceDays=${graceRaw}: a whole number of days from 1 to 365`);

  const inlineRaw = text(app, 'inlineVerifyMiB') ?? '64';
  const inlineVerifyMiB = Number(inlineRaw);
  if (!/^\d+$/.test(inlineRaw) || inlineVerifyMiB > 1024)
    fail(`-c inlineVerifyMiB=${inlineRaw}: a whole number of MiB from 0 to 1024`);

  const partitionsRaw = text(app, 'reconcilePartitions') ?? '8';
  const reconcilePartitions = Number(partitionsRaw);
  if (!/^\d+$/.test(partitionsRaw) || reconcilePartitions < 1 || reconcilePartitions > 256)
    fail(`-c reconcilePartitions=${partitionsRaw}: a whole number from 1 to 256`);

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
    purgeGraceDays,
    ...(dsqlWitness ? { dsqlWitness } : {}),
    ...(dsqlPeers ? { dsqlPeers } : {}),
    inlineVerifyMiB,
    malwareScanner: oneOf<MalwareScanner>(app, 'malwareScanner', ['eicar', 'guardduty'], 'eicar'),
    reconcilePartitions,
  };
}
