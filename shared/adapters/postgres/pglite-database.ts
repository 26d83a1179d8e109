/** The embedded PGlite adapter of the Database port (local profile). */
import { AsyncLocalStorage } from 'node:async_hooks';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite, type PGliteOptions } from '@electric-sql/pglite';
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

/**
 * PostgreSQL's server defaults size a dedicated machine (128 MB of shared buffers); PGlite keeps
 * them, inside the WebAssembly heap of this process, which only ever grows. The metadata of a local
 * store is a few MB, so a small buffer pool holds all of it (docs/architecture.md, "Memory").
 */
export const PGLITE_SETTINGS: Readonly<Record<string, string>> = {
  shared_buffers: '16MB',
};

export const pgliteOptions = (dataDir?: string): PGliteOptions => ({
  ...(dataDir ? { dataDir } : {}),
  startParams: [
    ...PGlite.defaultStartParams,
    ...Object.entries(PGLITE_SETTINGS).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
  ],
});

/**
 * Creates the database files of a new `dataDir` in a child process. initdb runs two more PostgreSQL
 * instances beside the one that serves (over 1 GB at its peak), and memory a process has used
 * stays with it: done here, the long-running process would keep about 150 MB of it.
 */
async function initializeDataDir(dataDir: string): Promise<void> {
  if (fs.existsSync(path.join(dataDir, 'PG_VERSION'))) return;
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), dataDir], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0) throw new Error(`PGlite could not create its database in ${dataDir}: ${stderr.trim()}`);
}

/** Opens (creating if needed) a PGlite database in `dataDir`, or in memory when it is undefined. */
export async function openPgliteDatabase(dataDir?: string): Promise<Database> {
  if (dataDir) await initializeDataDir(dataDir);
  const db = await PGlite.create(pgliteOptions(dataDir));
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

// The child process of initializeDataDir.
if (import.meta.main) {
  const dataDir = process.argv[2];
  if (!dataDir) throw new Error('usage: pglite-database.ts DATA_DIR');
  await (await PGlite.create(pgliteOptions(dataDir))).close();
}
