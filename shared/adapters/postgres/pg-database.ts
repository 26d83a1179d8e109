/**
 * The node-postgres adapter of the Database port (PostgreSQL 15, Aurora Serverless v2, Aurora DSQL).
 * `schema` pins search_path for every pooled connection; tests use it for isolation.
 */
import pg from 'pg';
import type { Database, SqlExecutor, SqlValue } from '../../ports/database.ts';
import { translateSqlError } from './sql-errors.ts';

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
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export async function openPgDatabase(opts: PgOptions): Promise<Database> {
  if (opts.schema !== undefined && !SCHEMA_NAME.test(opts.schema))
    throw new Error(`bad schema name ${opts.schema}`);
  const pool = new pg.Pool({
    connectionString: opts.connectionString,
    max: opts.max ?? 10,
    ...(opts.password ? { password: opts.password } : {}),
    ...(opts.schema ? { options: `-c search_path=${opts.schema}` } : {}),
  });
  // An idle client's error (e.g. the server restarting) must not crash the process.
  pool.on('error', () => undefined);
  const run = async <Row>(q: pg.Pool | pg.PoolClient, sql: string, params: readonly SqlValue[] = []) => {
    try {
      const res = await q.query(sql, params as SqlValue[]);
      return res.rows as Row[];
    } catch (err) {
      throw translateSqlError(err);
    }
  };
  if (opts.schema) await run(pool, `create schema if not exists ${opts.schema}`);
  return {
    dialect: opts.dialect ?? 'postgres',
    query: (sql, params) => run(pool, sql, params),
    async transaction(work) {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        throw translateSqlError(err);
      }
      const tx: SqlExecutor = { query: (sql, params) => run(client, sql, params) };
      try {
        await client.query('begin');
        const result = await work(tx);
        await client.query('commit');
        return result;
      } catch (err) {
        await client.query('rollback').catch(() => undefined);
        throw translateSqlError(err);
      } finally {
        client.release();
      }
    },
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
