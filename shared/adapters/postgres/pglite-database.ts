/** The embedded PGlite adapter of the Database port (local profile). */
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
  const base = executor(db);
  return {
    dialect: 'pglite',
    query: base.query,
    async transaction(work) {
      try {
        return await db.transaction((tx) => work(executor(tx)));
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
