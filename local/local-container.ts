/** The embedded profile's adapters: PGlite (or STRATUS_DATABASE_URL), local nodes and state under the data dir. */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  applyNodeCatalog,
  assemble,
  type Container,
  guardDutyRefused,
  LOCAL_CLIENT_ID,
} from '../functions/container.ts';
import { LocalIdentityProvider } from '../shared/adapters/local-idp/local-identity-provider.ts';
import { loadOrCreateSigningKey } from '../shared/adapters/local-idp/signing-keys.ts';
import { LocalFsBlobStore } from '../shared/adapters/localfs/localfs-blob-store.ts';
import { resolveNodeRoot } from '../shared/adapters/localfs/node-root.ts';
import { MemoryCache } from '../shared/adapters/memory/memory-cache.ts';
import { MemoryThrottleStore } from '../shared/adapters/memory/memory-throttle-store.ts';
import { migrate } from '../shared/adapters/postgres/migrations.ts';
import { openPgDatabase } from '../shared/adapters/postgres/pg-database.ts';
import { openPgliteDatabase } from '../shared/adapters/postgres/pglite-database.ts';
import { SqlStateStore } from '../shared/adapters/postgres/sql-state-store.ts';
import { PrometheusMetrics } from '../shared/adapters/prometheus/prometheus-metrics.ts';
import { RedisCache } from '../shared/adapters/redis/redis-cache.ts';
import { openRedis } from '../shared/adapters/redis/redis-client.ts';
import { RedisRateLimiter } from '../shared/adapters/redis/redis-rate-limiter.ts';
import { RedisThrottleStore } from '../shared/adapters/redis/redis-throttle-store.ts';
import { s3Node } from '../shared/adapters/s3/s3-node.ts';
import { createAccessTokenVerifier } from '../shared/auth/access-token-verifier.ts';
import type { LocalConfig } from '../shared/config/config.ts';
import { errors, InvalidInputError } from '../shared/domain/errors.ts';
import { createLogger, type Logger } from '../shared/observability/logger.ts';
import type { Cache } from '../shared/ports/cache.ts';
import type { Database } from '../shared/ports/database.ts';
import type { Scanner } from '../shared/ports/scanner.ts';
import type { ThrottleStore } from '../shared/ports/throttle-store.ts';
import { AdminBootstrap } from '../shared/services/admin-bootstrap.ts';
import { Jobs } from '../shared/services/jobs.ts';
import type { NodeSpec } from '../shared/services/node-catalog.ts';
import { NodeRegistry, type StorageNode } from '../shared/services/node-registry.ts';

async function secretFile(file: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await fs
    .writeFile(file, randomBytes(32), { mode: 0o600, flag: 'wx' })
    .catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  return fs.readFile(file);
}

/** A node directory refused (outside the allowed roots, a symlinked tmp/): a 400 naming `body.path`. */
async function refusingPath<T>(build: () => Promise<T>): Promise<T> {
  try {
    return await build();
  } catch (err) {
    if (err instanceof InvalidInputError)
      throw errors.validation(`path: ${err.message}`, [{ path: 'body.path', message: err.message }]);
    throw err;
  }
}

export interface LocalOverrides {
  db?: Database;
  throttleStore?: ThrottleStore;
  cache?: Cache;
  scanner?: Scanner;
  log?: Logger;
}

export async function createLocalContainer(config: LocalConfig, o: LocalOverrides = {}): Promise<Container> {
  // GuardDuty scans S3 buckets in AWS; versions here land on local directories it never sees, so
  // they would stay quarantined for good. Refused before anything is opened.
  if (config.STRATUS_SCANNER === 'guardduty' && !o.scanner) throw guardDutyRefused();
  const format = config.STRATUS_LOG_FORMAT ?? (process.stdout.isTTY ? 'pretty' : 'json');
  const log = o.log ?? createLogger(config.STRATUS_LOG_LEVEL, { service: 'stratus' }, undefined, format);
  const dir = config.STRATUS_DATA_DIR;
  await fs.mkdir(dir, { recursive: true });
  const db =
    o.db ??
    (config.STRATUS_DATABASE_URL
      ? await openPgDatabase({ connectionString: config.STRATUS_DATABASE_URL })
      : await openPgliteDatabase(path.join(dir, 'pglite')));
  await migrate(db);
  const state = new SqlStateStore(db);
  const secret = await secretFile(path.join(dir, 'keys', 'url-signing.key'));
  const localNodes: LocalFsBlobStore[] = [];
  for (let i = 1; i <= config.STRATUS_LOCAL_NODES; i++) {
    const id = `local-${i}`;
    localNodes.push(
      await new LocalFsBlobStore(
        id,
        path.join(dir, 'nodes', id),
        `${config.publicUrl}/storage/${id}`,
        secret,
      ).init(),
    );
  }
  const node = localNodes[0] as LocalFsBlobStore;
  const nodes = new NodeRegistry(
    localNodes.map((n) => ({
      id: n.nodeId,
      kind: 'localfs' as const,
      region: 'local',
      weight: 1,
      store: n,
      health: 'healthy' as const,
      draining: false,
    })),
    config.STRATUS_REPLICATION_FACTOR,
  );
  const key = await loadOrCreateSigningKey(dir);
  const issuer = config.publicUrl;
  const idp = new LocalIdentityProvider(db, state, key, {
    issuer,
    clientId: LOCAL_CLIENT_ID,
    accessTokenTtlSeconds: config.STRATUS_ACCESS_TOKEN_TTL_SECONDS,
    refreshTokenTtlSeconds: config.STRATUS_REFRESH_TOKEN_TTL_SECONDS,
    kdfCost: config.STRATUS_KDF_COST,
  });
  const jwks = idp.jwks();
  const verifier = createAccessTokenVerifier({
    issuer,
    clientId: LOCAL_CLIENT_ID,
    jwksUri: `${issuer}/.well-known/jwks.json`,
    jwks,
  });
  /**
   * Nodes added at run time: a directory (relative paths live under the data dir) or an S3
   * endpoint. A directory an admin asks for (or the node catalog replays) must resolve, symlinks
   * followed, strictly under STRATUS_LOCAL_NODE_ROOTS and apart from every other local node; the
   * operator's own STRATUS_NODES entries are taken as written.
   */
  const factory = async (spec: NodeSpec): Promise<StorageNode> => {
    if (spec.kind === 'localfs') {
      const requested = path.resolve(dir, spec.path);
      const configured = config.STRATUS_NODES.some(
        (n) => n.kind === 'localfs' && n.id === spec.id && n.path === spec.path,
      );
      const store = await refusingPath(async () => {
        const root = configured
          ? requested
          : await resolveNodeRoot(
              requested,
              config.STRATUS_LOCAL_NODE_ROOTS,
              localNodes.map((n) => n.root),
            );
        return new LocalFsBlobStore(spec.id, root, `${config.publicUrl}/storage/${spec.id}`, secret).init();
      });
      localNodes.push(store);
      return {
        id: spec.id,
        kind: 'localfs',
        region: spec.region ?? 'local',
        weight: spec.weight ?? 1,
        store,
        health: 'healthy',
        draining: false,
      };
    }
    return s3Node(spec);
  };
  const prometheus = localMetrics(db, state, () => nodes);
  // Fails fast while disconnected: reported through the ports' 503s and fail-open reads.
  const redis = config.STRATUS_REDIS_URL ? openRedis(config.STRATUS_REDIS_URL) : undefined;
  // Without an offline queue, commands before the first connect fail: connect before serving.
  await redis
    ?.connect()
    .catch((err: unknown) => log.warn('Redis is not answering at start-up', { err: String(err) }));
  const c = assemble(
    config,
    {
      db,
      state,
      blobs: node,
      nodes,
      nodeFactory: factory,
      throttleStore: o.throttleStore ?? (redis ? new RedisThrottleStore(redis) : new MemoryThrottleStore()),
      cache: o.cache ?? (redis ? new RedisCache(redis) : new MemoryCache()),
      ...(redis ? { rateLimiter: new RedisRateLimiter(redis) } : {}),
      metrics: prometheus,
      ...(o.scanner ? { scanner: o.scanner } : {}),
      idp,
      log,
    },
    { verifier, jwks, localNodes, prometheus },
    async () => {
      redis?.disconnect();
      if (!o.db) await db.close();
    },
  );
  await applyNodeCatalog(c, factory);
  // The operator's first admin, before the gateway serves a request (registration never grants it).
  if (config.STRATUS_ADMIN_EMAIL && config.STRATUS_ADMIN_PASSWORD)
    await new AdminBootstrap({ auth: c.auth, users: c.users, idp, audit: c.audit, log }).run(
      config.STRATUS_ADMIN_EMAIL,
      config.STRATUS_ADMIN_PASSWORD,
    );
  // The local change feed does what DynamoDB Streams -> Lambda does in AWS; the reaper, what TTL does.
  const jobs = new Jobs(c);
  state.onChange(
    (change) => jobs.onStateChange(change),
    (err) => log.error('state change handler failed', { err: String((err as Error)?.stack ?? err) }),
  );
  c.reapExpiredState = () => state.reapExpired();
  // PGlite runs no autovacuum: without ANALYZE the planner keeps the empty-table statistics of the
  // first start and sorts whole folders for every page; without VACUUM dead rows pile up.
  if (!o.db && !config.STRATUS_DATABASE_URL) {
    c.maintainDatabase = () => db.exec('vacuum analyze');
    await db.exec('analyze');
  }
  return c;
}

/** The local registry, with gauges computed from the database at scrape time. */
function localMetrics(db: Database, state: SqlStateStore, registry: () => NodeRegistry): PrometheusMetrics {
  return new PrometheusMetrics()
    .describe('stratus_http_requests_total', 'API requests by route and status')
    .describe('stratus_http_request_duration_seconds', 'API latency by route')
    .describe('stratus_http_errors_total', 'API responses with status 5xx')
    .describe('stratus_http_bytes_in_total', 'API request body bytes')
    .describe('stratus_http_bytes_out_total', 'API response body bytes')
    .describe('stratus_storage_bytes_in_total', 'bytes received by storage nodes (uploads)')
    .describe('stratus_storage_bytes_out_total', 'bytes sent by storage nodes (downloads)')
    .describe('stratus_rate_limit_rejections_total', 'requests refused by the rate limiter')
    .collect(async () => {
      // One aggregate, no per-user series: user ids are not for a scrape endpoint (per-user usage is
      // GET /v1/admin/usage, behind the admin role like the rest of the API).
      const users = await db.query<{ n: string; used: string }>(
        'select count(*)::text as n, coalesce(sum(used_bytes), 0)::text as used from users',
      );
      const nodes = await db.query<{ node_id: string; bytes: string }>(
        'select node_id, coalesce(sum(size), 0)::text as bytes from versions group by node_id',
      );
      const sessions = await state.countMatching('upload#', 'state', ['uploading', 'completing']);
      // The replica ledger's pending index (see replica-ledger.ts).
      const pending = await db.query<{ n: string; oldest: string | null }>(
        `select count(*)::text as n, min(data::json->>'createdAt') as oldest from state_items where pk = 'ledger-pending'`,
      );
      return [
        {
          name: 'stratus_storage_used_bytes',
          help: 'storage used by all users together (retained versions)',
          values: [{ labels: {}, value: Number(users[0]?.used ?? 0) }],
        },
        {
          name: 'stratus_users',
          help: 'user accounts',
          values: [{ labels: {}, value: Number(users[0]?.n ?? 0) }],
        },
        {
          name: 'stratus_node_stored_bytes',
          help: 'bytes of versions stored per node',
          values: nodes.map((n) => ({ labels: { node: n.node_id }, value: Number(n.bytes) })),
        },
        {
          name: 'stratus_upload_sessions_open',
          help: 'upload sessions uploading or completing',
          values: [{ labels: {}, value: sessions }],
        },
        {
          name: 'stratus_node_health',
          help: 'node health: 1 healthy, 0.5 degraded, 0 down',
          values: registry()
            .all()
            .map((n) => ({
              labels: { node: n.id },
              value: n.health === 'healthy' ? 1 : n.health === 'degraded' ? 0.5 : 0,
            })),
        },
        {
          name: 'stratus_replicas_pending',
          help: 'replicas waiting to be copied or verified',
          values: [{ labels: {}, value: Number(pending[0]?.n ?? 0) }],
        },
        {
          name: 'stratus_replication_lag_seconds',
          help: 'age of the oldest pending replica',
          values: [
            {
              labels: {},
              value: pending[0]?.oldest
                ? Math.max(0, (Date.now() - Date.parse(pending[0].oldest)) / 1000)
                : 0,
            },
          ],
        },
      ];
    });
}
