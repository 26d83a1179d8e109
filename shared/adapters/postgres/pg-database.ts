/**
 * The node-postgres adapter of the Database port (PostgreSQL 15, Aurora Serverless v2, Aurora DSQL).
 * `schema` pins search_path for every pooled connection; tests use it for isolation.
 */
import pg from 'pg';
import type { Database, SqlExecutor, SqlValue } from '../../ports/database.ts';
import { isSerializationFailure, translateSqlError } from './sql-errors.ts';

// int8 (bigint) as a JS number: sizes stay far below 2^53 (5 TiB files).
pg.types.setTypeParser(20, (v) => Number(v));

export interface PgOptions {
  connectionString: string;
  schema?: string;
  max?: number;
  /** Supplies a fresh password per connection (Aurora DSQL IAM tokens). */
  password?: () => Promise<string>;
  /** 'dsql' when the server is Aurora DSQL (index DDL differs). */
  dialect?: 'postgres' | 'dsql';
  /** Write-conflict retries (40001); tests shorten the waits and count the conflicts. */
  retry?: Partial<RetryPolicy>;
}

export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Called with the attempt number each time a conflict is seen (metrics, tests). */
  onConflict?: (attempt: number) => void;
}

/** About 1.3 s of waiting at most: well inside API Gateway's 30 s. */
const DEFAULT_RETRY: RetryPolicy = { attempts: 6, baseDelayMs: 20, maxDelayMs: 640 };

/** A write conflict on its way out of a transaction body to the retry loop. */
class WriteConflict extends Error {
  override readonly name = 'WriteConflict';
  constructor(cause: unknown) {
    super('write conflict (SQLSTATE 40001)', { cause });
  }
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export async function openPgDatabase(opts: PgOptions): Promise<Database> {
  if (opts.schema !== undefined && !SCHEMA_NAME.test(opts.schema))
    throw new Error(`bad schema name ${opts.schema}`);
  const pool = new pg.Pool({
    connectionString: opts.connectionString,
    max: opts.max ?? 10,
    // Keep warm connections between invocations (a Lambda reuses its pool), and recycle each one
    // before Aurora DSQL closes it at 60 minutes.
    idleTimeoutMillis: 0,
    maxLifetimeSeconds: 55 * 60,
    ...(opts.password ? { password: opts.password } : {}),
    ...(opts.schema ? { options: `-c search_path=${opts.schema}` } : {}),
  });
  // An idle client's error (e.g. the server restarting) must not crash the process.
  pool.on('error', () => undefined);
  const retry = { ...DEFAULT_RETRY, ...opts.retry };
  const run = async <Row>(q: pg.Pool | pg.PoolClient, sql: string, params: readonly SqlValue[] = []) => {
    try {
      const res = await q.query(sql, params as SqlValue[]);
      return res.rows as Row[];
    } catch (err) {
      if (isSerializationFailure(err)) throw new WriteConflict(err);
      throw translateSqlError(err);
    }
  };
  /**
   * Runs `attempt` again while it fails on a write conflict (40001: DSQL resolves conflicts at
   * commit and expects the client to retry), with full-jitter exponential back-off, a bounded
   * number of times; then the conflict becomes a 503 with Retry-After.
   */
  const withRetry = async <T>(attempt: () => Promise<T>): Promise<T> => {
    for (let n = 1; ; n++) {
      try {
        return await attempt();
      } catch (err) {
        const conflict = err instanceof WriteConflict || isSerializationFailure(err);
        if (!conflict) throw err;
        retry.onConflict?.(n);
        if (n >= retry.attempts) throw translateSqlError(err instanceof WriteConflict ? err.cause : err);
        const cap = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (n - 1));
        await new Promise((r) => setTimeout(r, Math.random() * cap));
      }
    }
  };
  const once = async <T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T> => {
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      throw translateSqlError(err);
    }
    // A statement that lost a conflict aborted the whole transaction, so the attempt is retried
    // whatever the body made of the error (caught, wrapped or replaced).
    let conflict: unknown;
    const tx: SqlExecutor = {
      query: <Row>(sql: string, params?: readonly SqlValue[]) =>
        run<Row>(client, sql, params).catch((err: unknown) => {
          if (err instanceof WriteConflict) conflict ??= err;
          throw err;
        }),
    };
    try {
      await client.query('begin');
      const result = await work(tx);
      // A transaction in which a statement failed (and the work caught it) cannot commit: the
      // server answers COMMIT with ROLLBACK, which node-postgres reports as success. Returning the
      // work's result then would claim writes that are gone; fail as PGlite does.
      const committed = await client.query('commit');
      if (committed.command === 'ROLLBACK')
        throw Object.assign(new Error('Transaction was rolled back instead of committed'), { code: '25P02' });
      return result;
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      if (conflict) throw conflict;
      throw isSerializationFailure(err) ? new WriteConflict(err) : translateSqlError(err);
    } finally {
      client.release();
    }
  };
  if (opts.schema) await run(pool, `create schema if not exists ${opts.schema}`);
  return {
    dialect: opts.dialect ?? 'postgres',
    // A single statement commits alone; one that lost a conflict was rolled back whole, so it runs again.
    query: (sql, params) => withRetry(() => run(pool, sql, params)),
    transaction: (work) => withRetry(() => once(work)),
    async exec(sql) {
      await run(pool, sql);
    },
    async ping() {
      await run(pool, 'select 1');
    },
    async close() {
      await pool.end();
    },
  };
}
