/**
 * The Postgres-compatible system of record (PGlite locally, PostgreSQL 15 in tests and
 * self-hosting, Aurora DSQL / Aurora Serverless v2 in AWS). Adapters translate driver errors:
 * a unique violation surfaces as UniqueViolationError with the constraint name.
 */
export type SqlValue = string | number | bigint | boolean | null | Date | Uint8Array;

export interface SqlExecutor {
  query<Row = Record<string, unknown>>(sql: string, params?: readonly SqlValue[]): Promise<Row[]>;
}

export interface Database extends SqlExecutor {
  /** Runs `work` in one transaction; commits on return, rolls back on throw. */
  transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Runs a multi-statement script without parameters (migrations). */
  exec(sql: string): Promise<void>;
  /** Cheap liveness probe. */
  ping(): Promise<void>;
  close(): Promise<void>;
  readonly dialect: 'pglite' | 'postgres' | 'dsql' | 'memory';
}
