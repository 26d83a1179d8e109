/** The embedded PGlite adapter of the Database port (local profile). */
import { AsyncLocalStorage } from 'node:async_hooks';
import { PGlite } from '@electric-sql/pglite';
import type { Database, SqlExecutor, SqlValue } from '../../ports/database.ts';
import { translateSqlError } from './sql-errors.ts';

type Queryable = Pick<PGlite, 'query'>;

function executor(q: Queryable): SqlExecutor {
  return {
    async query<Row>(sql: string, params: readonly SqlValue[] = []) {
      try {
        const res = await q.query<Row>(sql, params as SqlValue[]);
        return res.rows;
      } catch (err) {
        throw translateSqlError(err);
      }
    },
  };
}

/** Opens (creating if needed) a PGlite database in `dataDir`, or in memory when it is undefined. */
export async function openPgliteDatabase(dataDir?: string): Promise<Database> {
  const db = dataDir ? await PGlite.create(dataDir) : await PGlite.create();
  const inner = executor(db);
  // PGlite is one connection: a query through the outer handle from inside a transaction waits for
  // that transaction forever. Code doing so is a bug (it must use `tx`); fail fast instead of hanging.
  const insideTx = new AsyncLocalStorage<boolean>();
  const base: SqlExecutor = {
    query(sql, params) {
      if (insideTx.getStore()) {
        return Promise.reject(
          new Error("query on the database handle inside a transaction: use the transaction's executor"),
        );
      }
      return inner.query(sql, params);
    },
  };
  return {
    dialect: 'pglite',
    query: base.query,
    async transaction(work) {
      try {
        return await db.transaction((tx) => insideTx.run(true, () => work(executor(tx))));
      } catch (err) {
        throw translateSqlError(err);
      }
    },
    async exec(sql) {
      await db.exec(sql);
    },
    async ping() {
      await db.query('select 1');
    },
    async close() {
      await db.close();
    },
  };
}
