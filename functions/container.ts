/**
 * The composition root's common half: given a profile's adapters, wires the services once per
 * process. The profiles live apart (aws-container.ts for Lambda, local/local-container.ts for the
 * embedded runtime) so that a Lambda bundle carries no local adapter and the local runtime no SDK
 * it does not use.
 */

import { wasmSha256 } from '../shared/adapters/hash-wasm/wasm-sha256.ts';
import type { LocalFsBlobStore } from '../shared/adapters/localfs/localfs-blob-store.ts';
import { MemoryRateLimiter } from '../shared/adapters/memory/memory-rate-limiter.ts';
import { AuditRepository } from '../shared/adapters/postgres/audit-repository.ts';
import { ItemRepository } from '../shared/adapters/postgres/item-repository.ts';
import { PermissionRepository } from '../shared/adapters/postgres/permission-repository.ts';
import { PurgeJobRepository } from '../shared/adapters/postgres/purge-job-repository.ts';
import { ReservationRepository } from '../shared/adapters/postgres/reservation-repository.ts';
import { ShareRepository } from '../shared/adapters/postgres/share-repository.ts';
import { UserRepository } from '../shared/adapters/postgres/user-repository.ts';
import type { PrometheusMetrics } from '../shared/adapters/prometheus/prometheus-metrics.ts';
import { EicarScanner } from '../shared/adapters/scanners/eicar-scanner.ts';
import type { AccessTokenVerifier } from '../shared/auth/access-token-verifier.ts';
import { type Config, ConfigError } from '../shared/config/config.ts';
import { errors } from '../shared/domain/errors.ts';
import { DEFAULT_BATCH_LIMITS } from '../shared/domain/purge-job.ts';
import type { ApiHandlerDeps } from '../shared/http/api-handler.ts';
import type { Logger } from '../shared/observability/logger.ts';
import type { BlobStore } from '../shared/ports/blob-store.ts';
import type { Cache } from '../shared/ports/cache.ts';
import type { Database } from '../shared/ports/database.ts';
import type { IdentityProvider } from '../shared/ports/identity-provider.ts';
import type {
  AuditLog,
  ItemStore,
  PermissionStore,
  ReservationStore,
  ShareStore,
  UserStore,
} from '../shared/ports/metadata.ts';
import { type Metrics, noMetrics } from '../shared/ports/metrics.ts';
import type { PurgeJobStore } from '../shared/ports/purge-job-store.ts';
import type { RateLimiter } from '../shared/ports/rate-limiter.ts';
import type { Scanner } from '../shared/ports/scanner.ts';
import type { StateStore } from '../shared/ports/state-store.ts';
import type { ThrottleStore } from '../shared/ports/throttle-store.ts';
import { AccessControl } from '../shared/services/access-control.ts';
import { AccountService } from '../shared/services/account-service.ts';
import { AuthService } from '../shared/services/auth-service.ts';
import { CounterAudit } from '../shared/services/counter-audit.ts';
import { DownloadLinks } from '../shared/services/download-links.ts';
import { DownloadService } from '../shared/services/download-service.ts';
import { FolderService } from '../shared/services/folder-service.ts';
import { HealthMonitor } from '../shared/services/health-monitor.ts';
import { LoginThrottle } from '../shared/services/login-throttle.ts';
import { MetadataCache } from '../shared/services/metadata-cache.ts';
import { NodeCatalog, type NodeSpec } from '../shared/services/node-catalog.ts';
import { NodeRegistry, type StorageNode } from '../shared/services/node-registry.ts';
import { OpsService } from '../shared/services/ops-service.ts';
import { PartHashRecords } from '../shared/services/part-hash-records.ts';
import { PermissionService } from '../shared/services/permission-service.ts';
import { PurgeJobs } from '../shared/services/purge-jobs.ts';
import { Purger } from '../shared/services/purger.ts';
import { Reconciler } from '../shared/services/reconciler.ts';
import { ReplicaLedger } from '../shared/services/replica-ledger.ts';
import { ReplicationStatus } from '../shared/services/replication-status.ts';
import { Replicator } from '../shared/services/replicator.ts';
import { RequestLimits } from '../shared/services/request-limits.ts';
import { RevocationList } from '../shared/services/revocation-list.ts';
import { SharePasswordThrottle } from '../shared/services/share-password-throttle.ts';
import { ShareService } from '../shared/services/share-service.ts';
import { UploadCommit } from '../shared/services/upload-commit.ts';
import { UploadCompletion } from '../shared/services/upload-completion.ts';
import { UploadService } from '../shared/services/upload-service.ts';
import { SessionRecords } from '../shared/services/upload-state.ts';
import { UploadStorage } from '../shared/services/upload-storage.ts';
import { UploadVerification } from '../shared/services/upload-verification.ts';
import { VersionService } from '../shared/services/version-service.ts';

export const VERSION = '0.1.0';
export const LOCAL_CLIENT_ID = 'stratus-local';

export interface Container {
  config: Config;
  log: Logger;
  db: Database;
  state: StateStore;
  /** The home storage node; absent in a function that holds no storage (auth in AWS). */
  blobs: BlobStore | undefined;
  cache: Cache;
  users: UserStore;
  auth: AuthService;
  folders: FolderService;
  versions: VersionService;
  /** Purges of trash trees, in the request or as batched jobs (`GET /v1/jobs/{id}`). */
  purges: PurgeJobs;
  permissions: PermissionService;
  account: AccountService;
  uploads: UploadService;
  verification: UploadVerification;
  /** The malware scanner verification uses (STRATUS_SCANNER); undefined: none, every version clean. */
  scanner: Scanner | undefined;
  /** Verifies and commits uploads that answered 202 (driven by the state change stream). */
  backgroundVerifier: UploadCompletion;
  downloads: DownloadService;
  shares: ShareService;
  ops: OpsService;
  nodes: NodeRegistry;
  ledger: ReplicaLedger;
  /** GET /v1/admin/replication, from the counters. */
  replication: ReplicationStatus;
  /** The counters' backfill and drift check (run after each reconciliation). */
  counters: CounterAudit;
  replicator: Replicator;
  health: HealthMonitor;
  reconciler: Reconciler;
  /** Adds a node (persisted in the node catalog) / marks it draining / forgets a drained one. */
  addNode(spec: NodeSpec): Promise<void>;
  drainNode(id: string): Promise<void>;
  removeNode(id: string): Promise<void>;
  audit: AuditLog;
  metrics: Metrics;
  limits: RequestLimits;
  metadataCache: MetadataCache;
  revocations: RevocationList;
  apiDeps: ApiHandlerDeps;
  /** Local profile only: verifies bearer tokens in the local gateway (API Gateway does it in AWS). */
  verifier?: AccessTokenVerifier;
  jwks?: { keys: object[] };
  localNodes: LocalFsBlobStore[];
  /** Local profile only: the registry that GET /metrics renders. */
  prometheus?: PrometheusMetrics;
  /** Local profile only: deletes expired state items and feeds their removal to the cleanup. */
  reapExpiredState?: () => Promise<number>;
  /** Embedded database housekeeping that a server's autovacuum does by itself (PGlite has none). */
  maintainDatabase?: () => Promise<void>;
  close(): Promise<void>;
}

/** The system of record behind the metadata ports. */
export interface MetadataStores {
  items: ItemStore;
  users: UserStore;
  permissions: PermissionStore;
  shares: ShareStore;
  audit: AuditLog;
  reservations: ReservationStore;
  purgeJobs: PurgeJobStore;
}

/** The PostgreSQL repositories over one database (PGlite, PostgreSQL, Aurora, DSQL). */
export function postgresMetadata(db: Database): MetadataStores {
  return {
    items: new ItemRepository(db),
    users: new UserRepository(db),
    permissions: new PermissionRepository(db),
    shares: new ShareRepository(db),
    audit: new AuditRepository(db),
    reservations: new ReservationRepository(db),
    purgeJobs: new PurgeJobRepository(db),
  };
}

export interface Parts {
  /** Transactions for the metadata stores (and the database health probe). */
  db: Database;
  /** Defaults to the PostgreSQL repositories over `db`; unit tests pass the in-memory ones. */
  metadata?: MetadataStores;
  state: StateStore;
  /**
   * The home storage node (the registry's only node unless `nodes` is given). Absent where the
   * composition holds no storage: an AWS function whose routes never touch stored bytes.
   */
  blobs?: BlobStore;
  throttleStore: ThrottleStore;
  cache: Cache;
  /** Defaults to the configured scanner; tests inject others. */
  scanner?: Scanner;
  /**
   * Builds the GuardDuty scanner over the composition's nodes (STRATUS_SCANNER=guardduty). Only a
   * profile whose nodes are S3 buckets has it (functions/aws-storage.ts).
   */
  guardDuty?: (nodes: NodeRegistry, log: Logger) => Scanner;
  /** Every storage node with the replication factor; defaults to `blobs` alone. */
  nodes?: NodeRegistry;
  /** Builds a node from a spec (nodes added at run time); the profile knows how. */
  nodeFactory?: (spec: NodeSpec) => Promise<StorageNode>;
  /** Defaults to an in-process limiter. */
  rateLimiter?: RateLimiter;
  /** Defaults to no metrics. */
  metrics?: Metrics;
  idp: IdentityProvider | undefined;
  log: Logger;
}

/** The one line a composition that cannot build the GuardDuty scanner stops with. */
export const guardDutyRefused = () =>
  new ConfigError(
    'invalid configuration: STRATUS_SCANNER="guardduty": GuardDuty Malware Protection scans S3 buckets in AWS, ' +
      'and this runtime stores versions on nodes it cannot scan (use eicar or none)',
  );

/** Where nothing is stored (the auth function in AWS) nothing is verified; should it be, nothing passes. */
const scannerWithoutStorage: Scanner = {
  name: 'guardduty',
  needsBytes: false,
  start: () => ({
    update() {},
    finish: () => Promise.reject(errors.unavailable('the malware scanner (this function holds no storage)')),
  }),
};

/**
 * The scanner STRATUS_SCANNER names. GuardDuty answers from S3 objects, so only a profile with S3
 * storage can build it (`Parts.guardDuty`); a composition that stores versions and cannot build it
 * refuses to start, rather than run with another scanner or none.
 */
function configuredScanner(config: Config, p: Parts, nodes: NodeRegistry): Scanner | undefined {
  if (p.scanner) return p.scanner;
  switch (config.STRATUS_SCANNER) {
    case 'eicar':
      return new EicarScanner();
    case 'none':
      return undefined;
    case 'guardduty':
      if (p.guardDuty) return p.guardDuty(nodes, p.log);
      if (!p.blobs && !p.nodes) return scannerWithoutStorage;
      throw guardDutyRefused();
  }
}

export function assemble(
  config: Config,
  p: Parts,
  extra: Partial<Container>,
  close: () => Promise<void>,
): Container {
  const metrics = p.metrics ?? noMetrics;
  const rateLimiter = p.rateLimiter ?? new MemoryRateLimiter();
  const meta = p.metadata ?? postgresMetadata(p.db);
  const { users, items, audit, reservations } = meta;
  const revocations = new RevocationList(p.state);
  const idp: IdentityProvider = p.idp ?? {
    register: () => Promise.reject(errors.unavailable('identity provider')),
    login: () => Promise.reject(errors.unavailable('identity provider')),
    refresh: () => Promise.reject(errors.unavailable('identity provider')),
    revokeRefreshToken: () => Promise.reject(errors.unavailable('identity provider')),
  };
  const auth = new AuthService(idp, users, new LoginThrottle(p.throttleStore), revocations, audit, p.log, {
    defaultQuotaBytes: config.STRATUS_DEFAULT_QUOTA_BYTES,
    accessTokenTtlSeconds: config.STRATUS_ACCESS_TOKEN_TTL_SECONDS,
    refreshTokenTtlSeconds: config.STRATUS_REFRESH_TOKEN_TTL_SECONDS,
    // Invitations to the new account's address become its grants (late-bound: built below).
    onAccountCreated: (user) => permissionService.acceptInvitations(user),
  });
  const { permissions } = meta;
  const metadataCache = new MetadataCache(p.cache, items, p.log);
  const access = new AccessControl(metadataCache, permissions);
  const home = p.blobs;
  const nodes =
    p.nodes ??
    new NodeRegistry(
      home
        ? [
            {
              id: home.nodeId,
              kind: home.nodeId.startsWith('s3') ? 's3' : 'localfs',
              region: 'default',
              weight: 1,
              store: home,
              health: 'healthy',
              draining: false,
            },
          ]
        : [],
      1,
    );
  const ledger = new ReplicaLedger(p.state);
  const counters = new CounterAudit({ items, ledger, state: p.state, log: p.log });
  const catalog = new NodeCatalog(p.state);
  const replicator = new Replicator(ledger, nodes, p.log, metrics);
  const links = new DownloadLinks({ nodes, ledger, log: p.log });
  const purger = new Purger(p.db, items, audit, nodes, ledger, p.log);
  const purges = new PurgeJobs({
    db: p.db,
    jobs: meta.purgeJobs,
    items,
    audit,
    access,
    purger,
    cache: metadataCache,
    state: p.state,
    log: p.log,
    opts: {
      runMs: config.STRATUS_PURGE_RUN_SECONDS * 1000,
      inlineRows: config.STRATUS_PURGE_INLINE_ROWS,
      limits: { ...DEFAULT_BATCH_LIMITS, rows: config.STRATUS_PURGE_BATCH_ROWS },
    },
  });
  const folders = new FolderService({
    db: p.db,
    items,
    users,
    audit,
    access,
    cache: metadataCache,
    claims: meta.purgeJobs,
  });
  const versions = new VersionService({
    db: p.db,
    items,
    users,
    audit,
    access,
    cache: metadataCache,
    purger,
    purges,
    folders,
    log: p.log,
  });
  const typePolicy = { deny: config.STRATUS_TYPE_DENY, allow: config.STRATUS_TYPE_ALLOW };
  const records = new SessionRecords(p.state);
  const partHashes = new PartHashRecords(p.state);
  const storage = new UploadStorage({
    nodes,
    ledger,
    items,
    partHashes,
    log: p.log,
    urlTtlSeconds: config.STRATUS_URL_TTL_SECONDS,
  });
  const scanner = configuredScanner(config, p, nodes);
  const verification = new UploadVerification({
    storage,
    items,
    cache: metadataCache,
    scanner,
    resumableSha256: wasmSha256,
    typePolicy,
    log: p.log,
  });
  const completion = new UploadCompletion({
    records,
    storage,
    verification,
    committer: new UploadCommit({
      db: p.db,
      items,
      users,
      audit,
      reservations,
      nodes,
      ledger,
      cache: metadataCache,
      folders,
      versions,
    }),
    reservations,
    folders,
    users,
    log: p.log,
    inlineVerifyBytes: config.STRATUS_INLINE_VERIFY_BYTES,
    verifyRunMs: config.STRATUS_VERIFY_RUN_SECONDS * 1000,
  });
  const uploads = new UploadService({
    db: p.db,
    items,
    users,
    reservations,
    records,
    partHashes,
    storage,
    completion,
    folders,
    log: p.log,
    opts: {
      maxOpenUploads: config.STRATUS_MAX_OPEN_UPLOADS,
      partSizeBytes: config.STRATUS_PART_SIZE_BYTES,
      maxFileBytes: config.STRATUS_MAX_FILE_BYTES,
      uploadTtlSeconds: config.STRATUS_UPLOAD_TTL_SECONDS,
      typePolicy,
    },
  });
  const downloads = new DownloadService({
    folders,
    items,
    links,
    urlTtlSeconds: config.STRATUS_URL_TTL_SECONDS,
  });
  const shares = new ShareService({
    shares: meta.shares,
    items,
    access,
    cache: metadataCache,
    audit,
    downloads: links,
    log: p.log,
    kdfCost: config.STRATUS_KDF_COST,
    passwordThrottle: new SharePasswordThrottle(p.throttleStore),
  });
  const permissionService = new PermissionService({
    db: p.db,
    users,
    permissions,
    audit,
    access,
    invitationTtlSeconds: config.STRATUS_INVITATION_TTL_SECONDS,
  });
  const limits = new RequestLimits(rateLimiter, p.log, {
    overrides: config.STRATUS_RATE_LIMITS,
    onReject: (routeId) => metrics.count('stratus_rate_limit_rejections_total', { route: routeId }),
  });
  const self: Container = {
    config,
    log: p.log,
    db: p.db,
    state: p.state,
    blobs: p.blobs,
    cache: p.cache,
    users,
    auth,
    folders,
    versions,
    purges,
    permissions: permissionService,
    account: new AccountService({ users, reservations, audit, access }),
    uploads,
    verification,
    scanner,
    backgroundVerifier: completion,
    downloads,
    metadataCache,
    revocations,
    shares,
    ops: new OpsService({
      db: p.db,
      users,
      items,
      cache: p.cache,
      state: p.state,
      nodes: () => nodes.all().map((n) => n.store),
      log: p.log,
      counters,
    }),
    nodes,
    ledger,
    replication: new ReplicationStatus({ items, ledger, nodes, audit: counters }),
    counters,
    replicator,
    health: new HealthMonitor(nodes, p.log, { store: p.state }),
    reconciler: new Reconciler({
      items,
      reservations,
      nodes,
      ledger,
      replicator,
      state: p.state,
      log: p.log,
      runBudgetMs: config.STRATUS_RECONCILE_BUDGET_SECONDS * 1000,
      fullPassEverySeconds: config.STRATUS_FULL_SWEEP_EVERY_SECONDS,
      partitions: config.STRATUS_RECONCILE_PARTITIONS,
      // Late-bound: the local profile attaches its reaper after assembly.
      reapExpired: () => self.reapExpiredState?.() ?? Promise.resolve(0),
    }),
    async addNode(spec) {
      if (!p.nodeFactory) throw errors.validation('this deployment adds nodes through its configuration');
      nodes.add(await p.nodeFactory(spec));
      await catalog.save(spec.id, { spec, draining: false });
    },
    async drainNode(id) {
      const n = nodes.drain(id);
      const entry = (await catalog.all())[id];
      await catalog.save(id, { spec: entry?.spec ?? null, draining: true });
      p.log.info('node draining', { nodeId: n.id });
    },
    async removeNode(id) {
      nodes.remove(id);
      await catalog.remove(id);
    },
    audit,
    metrics,
    limits,
    apiDeps: {
      log: p.log,
      revocations,
      // The principal's role comes from the users table, not the token (see AuthService.roleOf).
      roles: auth,
      maxBodyBytes: config.STRATUS_MAX_BODY_BYTES,
      limits,
      metrics,
    },
    localNodes: [],
    ...extra,
    close,
  };
  return self;
}

/**
 * Adds the nodes the configuration lists (STRATUS_NODES), then applies the node catalog (nodes
 * added or drained at run time) to a fresh container.
 */
export async function applyNodeCatalog(
  c: Container,
  factory?: (spec: NodeSpec) => Promise<StorageNode>,
): Promise<void> {
  for (const spec of c.config.STRATUS_NODES) {
    if (!factory) throw new Error('this profile cannot build configured nodes');
    if (!c.nodes.get(spec.id)) c.nodes.add(await factory(spec));
  }
  for (const [id, entry] of Object.entries(await new NodeCatalog(c.state).all())) {
    if (!c.nodes.get(id) && entry.spec && factory) {
      const spec = entry.spec;
      const node = await factory(spec).catch((err: unknown) => {
        // A node added at run time that this start-up refuses (its directory moved out of the
        // allowed roots, an upgrade that tightened the rules): stop with what to do, rather than
        // start without it and re-replicate its data elsewhere behind the operator's back.
        throw new Error(
          `storage node ${spec.id} (added at run time, in the node catalog) cannot start: ${(err as Error).message}`,
          { cause: err },
        );
      });
      c.nodes.add(node);
    }
    if (entry.draining && c.nodes.get(id)) c.nodes.drain(id);
  }
}
