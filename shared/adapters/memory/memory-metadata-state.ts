/**
 * The state under the in-memory metadata adapters (memory-metadata.ts), and `MemoryDatabase`, the
 * memory adapter of the Database port that guards it.
 *
 * The tables are plain rows in Maps, shaped like the PostgreSQL schema (migrations.ts), with
 * timestamps kept as PostgreSQL keeps timestamptz: integer microseconds, so orders and cursors
 * behave as there (two statements a microsecond apart never tie; a returned Date is truncated to
 * the millisecond as the drivers do). Isolation comes from running one transaction at a time (a
 * promise-chain mutex); a statement outside a transaction waits its turn too, so it never sees or
 * loses another transaction's uncommitted writes. A transaction snapshots the tables first and
 * restores them if its work throws. As on PostgreSQL, `now()` is the transaction's start time, an
 * error raised by a statement aborts the transaction (later statements fail with 25P02 and the
 * commit becomes a rollback, reported as PGlite reports it), and malformed UUIDs, integers and
 * timestamps are refused with the server's SQLSTATE (memory-metadata-values.ts). As on PGlite,
 * using the database handle (an unbound store) inside a transaction fails fast instead of waiting
 * for that transaction forever.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { VERSION_SHARDS } from '../../domain/counter-shards.ts';
import type { Database, SqlExecutor, SqlValue } from '../../ports/database.ts';
import { isStatementError, MemorySqlError, type Micros, NO_SQL } from './memory-metadata-values.ts';

export interface UserRow {
  id: string;
  email: string;
  emailKey: string;
  role: string;
  rootFolderId: string;
  quotaBytes: number;
  usedBytes: number;
  createdAt: Micros;
  keepVersions: number | null;
  keepDays: number | null;
  trashDays: number | null;
}

export interface ItemRow {
  id: string;
  ownerId: string;
  parentId: string | null;
  kind: 'file' | 'folder';
  name: string;
  /** Null for the root and while in the trash: nulls never collide (items_name_unique). */
  nameKey: string | null;
  contentType: string | null;
  size: number;
  currentVersionId: string | null;
  revision: number;
  createdAt: Micros;
  updatedAt: Micros;
  deletedAt: Micros | null;
  deletedBy: string | null;
  originalParentId: string | null;
  scanState: string | null;
  purgeStartedAt: Micros | null;
  /** The purge job that claimed this trash root (purge_job_id). */
  purgeJobId: string | null;
}

export interface VersionRow {
  id: string;
  fileId: string;
  nodeId: string;
  blobKey: string;
  size: number;
  sha256: string;
  contentType: string;
  createdBy: string;
  createdAt: Micros;
  contentHash: string | null;
  partSize: number | null;
  /** JSON text, as stored by the SQL adapter. */
  partHashes: string | null;
  scanState: string | null;
}

export interface GrantRow {
  id: string;
  itemId: string;
  ownerId: string;
  granteeId: string;
  role: string;
  grantedBy: string;
  createdAt: Micros;
}

export interface InvitationRow {
  id: string;
  itemId: string;
  ownerId: string;
  email: string;
  role: string;
  grantedBy: string;
  createdAt: Micros;
  expiresAt: Micros;
}

export interface LinkRow {
  id: string;
  tokenHash: string;
  itemId: string;
  ownerId: string;
  createdBy: string;
  createdAt: Micros;
  expiresAt: Micros;
  passwordHash: string | null;
  maxDownloads: number | null;
  maxBytes: number | null;
  downloads: number;
  bytesServed: number;
  revokedAt: Micros | null;
}

export interface AuditRow {
  id: string;
  at: Micros;
  actorId: string | null;
  ownerId: string | null;
  itemId: string | null;
  action: string;
  /** JSON text. */
  detail: string;
}

export interface PurgeJobRow {
  id: string;
  operation: string;
  ownerId: string;
  requestedBy: string | null;
  rootId: string | null;
  reason: string;
  cutoff: Micros;
  state: string;
  phase: string;
  walkAt: string | null;
  totalRows: number | null;
  doneRows: number;
  items: number;
  versions: number;
  bytes: number;
  blobsReclaimed: number;
  failures: number;
  error: string | null;
  leaseOwner: string | null;
  leaseUntil: Micros | null;
  createdAt: Micros;
  updatedAt: Micros;
  finishedAt: Micros | null;
}

/** `version_counters`: versions and bytes per (shard, node), kept with every insert and delete. */
export interface VersionCounterRow {
  shard: string;
  nodeId: string;
  versions: number;
  bytes: number;
}

export interface ReservationRow {
  uploadId: string;
  ownerId: string;
  createdBy: string;
  size: number;
  blobKey: string;
  expiresAt: Micros;
}

/** Maps keep insertion order: an unordered query returns rows in it, like a fresh heap. */
export interface Tables {
  users: Map<string, UserRow>;
  items: Map<string, ItemRow>;
  versions: Map<string, VersionRow>;
  permissions: Map<string, GrantRow>;
  invitations: Map<string, InvitationRow>;
  shareLinks: Map<string, LinkRow>;
  auditEvents: Map<string, AuditRow>;
  reservations: Map<string, ReservationRow>;
  purgeJobs: Map<string, PurgeJobRow>;
  /** Keyed `shard\0nodeId`. */
  versionCounters: Map<string, VersionCounterRow>;
  /** `version_counter_shards`: shard -> counted_at. */
  countedShards: Map<string, Micros>;
}

const emptyTables = (): Tables => ({
  users: new Map(),
  items: new Map(),
  versions: new Map(),
  permissions: new Map(),
  invitations: new Map(),
  shareLinks: new Map(),
  auditEvents: new Map(),
  reservations: new Map(),
  purgeJobs: new Map(),
  versionCounters: new Map(),
  // As the migration seeds a fresh database: no versions, every shard counted.
  countedShards: new Map(VERSION_SHARDS.map((s) => [s, 0])),
});

/**
 * Microsecond `now()` from a millisecond clock: statements within one millisecond get increasing
 * microseconds (as PostgreSQL's clock gives them distinct times); a clock set back is followed.
 */
class MicroClock {
  private readonly ms: () => number;
  private lastMs = Number.NaN;
  private seq = 0;

  constructor(ms: () => number) {
    this.ms = ms;
  }

  next(): Micros {
    const ms = Math.floor(this.ms());
    if (ms === this.lastMs) this.seq = Math.min(this.seq + 1, 999);
    else {
      this.lastMs = ms;
      this.seq = 0;
    }
    return ms * 1000 + this.seq;
  }
}

/** The handle `MemoryDatabase.transaction` gives its work; stores bind to it with `with(tx)`. */
export class MemoryTx implements SqlExecutor {
  readonly db: MemoryDatabase;
  /** `now()` for every statement of the transaction: its start time. */
  readonly now: Micros;
  status: 'open' | 'aborted' | 'done' = 'open';

  constructor(db: MemoryDatabase, now: Micros) {
    this.db = db;
    this.now = now;
  }

  async query<Row = Record<string, unknown>>(_sql: string, _params?: readonly SqlValue[]): Promise<Row[]> {
    throw new Error(NO_SQL);
  }
}

export interface MemoryDatabaseOptions {
  /** The clock `now()` reads, in epoch milliseconds (tests move it). Default `Date.now`. */
  now?: () => number;
}

const noop = () => undefined;

export class MemoryDatabase implements Database {
  readonly dialect = 'memory' as const;
  private tables: Tables = emptyTables();
  private readonly clock: MicroClock;
  private tail: Promise<unknown> = Promise.resolve();
  private readonly current = new AsyncLocalStorage<MemoryTx>();

  constructor(opts: MemoryDatabaseOptions = {}) {
    this.clock = new MicroClock(opts.now ?? Date.now);
  }

  async query<Row = Record<string, unknown>>(_sql: string, _params?: readonly SqlValue[]): Promise<Row[]> {
    throw new Error(NO_SQL);
  }

  async exec(_sql: string): Promise<void> {
    throw new Error(NO_SQL);
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}

  /**
   * Runs `work` alone (transactions queue on a mutex), against a snapshot restored if it throws.
   * Work that caught a statement's error and returned still rolls back, as COMMIT does on the
   * server, and fails as PGlite's transaction does then (node-postgres would return the result).
   */
  transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    if (this.insideTransaction())
      return Promise.reject(
        new Error('a transaction inside a transaction: the memory database does not nest them'),
      );
    return this.exclusive(async () => {
      const snapshot = structuredClone(this.tables);
      const tx = new MemoryTx(this, this.clock.next());
      try {
        const result = await this.current.run(tx, () => work(tx));
        if (tx.status === 'aborted') {
          this.tables = snapshot;
          throw new MemorySqlError('25P02', 'Transaction was rolled back instead of committed');
        }
        return result;
      } catch (err) {
        this.tables = snapshot;
        throw err;
      } finally {
        tx.status = 'done';
      }
    });
  }

  /**
   * Runs one statement: in `tx` when given (the transaction holds the mutex), else alone in its
   * turn. `statement` is synchronous, so a statement is atomic; it must check before it writes.
   */
  run<T>(tx: MemoryTx | undefined, statement: (t: Tables, now: Micros) => T): Promise<T> {
    if (tx) {
      if (tx.db !== this) return Promise.reject(new Error('a transaction of another memory database'));
      if (tx.status === 'done') return Promise.reject(new Error('the transaction has ended'));
      if (tx.status === 'aborted')
        return Promise.reject(
          new MemorySqlError(
            '25P02',
            'current transaction is aborted, commands ignored until end of transaction block',
          ),
        );
      try {
        return Promise.resolve(statement(this.tables, tx.now));
      } catch (err) {
        if (isStatementError(err)) tx.status = 'aborted';
        return Promise.reject(err);
      }
    }
    if (this.insideTransaction())
      return Promise.reject(
        new Error("query on the database handle inside a transaction: use the transaction's executor"),
      );
    return this.exclusive(() => statement(this.tables, this.clock.next()));
  }

  /** The memory transaction a store is being bound to; anything else is a mistake. */
  txOf(tx: SqlExecutor | undefined): MemoryTx | undefined {
    if (tx === undefined) return undefined;
    if (!(tx instanceof MemoryTx) || tx.db !== this)
      throw new Error('memory stores bind only to transactions of their own MemoryDatabase');
    return tx;
  }

  private insideTransaction(): boolean {
    const tx = this.current.getStore();
    return tx !== undefined && tx.status !== 'done';
  }

  private exclusive<T>(fn: () => T | Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(noop, noop);
    return result;
  }
}

/** What every memory store shares: the database, and the transaction it is bound to, if any. */
export abstract class MemoryStore {
  protected readonly db: MemoryDatabase;
  protected readonly tx: MemoryTx | undefined;

  constructor(db: MemoryDatabase, tx?: MemoryTx) {
    this.db = db;
    this.tx = tx;
  }

  protected run<T>(statement: (t: Tables, now: Micros) => T): Promise<T> {
    return this.db.run(this.tx, statement);
  }
}
