/**
 * PGlite has no autovacuum: the local runtime analyzes at start and on its sweep timer. Without it
 * the planner kept empty-table estimates and sorted a whole folder for every page (the benchmark's
 * list curve found 75 ms pages at 100,000 entries).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../functions/container.ts';
import { createLocalContainer } from '../../local/local-container.ts';
import { type LocalConfig, loadConfig } from '../../shared/config/config.ts';
import type { SqlValue } from '../../shared/ports/database.ts';

let c: Container;
let dir: string;

const plan = async (sql: string, params: SqlValue[]) =>
  (await c.db.query<{ 'QUERY PLAN': string }>(`explain ${sql}`, params))
    .map((r) => r['QUERY PLAN'])
    .join('\n');

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-hk-'));
  c = await createLocalContainer(
    loadConfig({
      STRATUS_DATA_DIR: dir,
      STRATUS_LOG_LEVEL: 'silent',
      STRATUS_LOCAL_NODES: '1',
      STRATUS_REPLICATION_FACTOR: '1',
    }) as LocalConfig,
  );
});
afterAll(async () => {
  await c?.close();
  await fs.rm(dir, { recursive: true, force: true });
});

describe('embedded database housekeeping', () => {
  it('after a big folder appears, maintenance lets a name-sorted page read 100 rows from the index', async () => {
    const owner = '00000000-0000-4000-8000-000000000001';
    const parent = '00000000-0000-4000-8000-000000000002';
    await c.db.query(
      `insert into items (id, owner_id, parent_id, kind, name, name_key, size, created_at, updated_at)
       select gen_random_uuid(), $1::uuid, $2::uuid, 'folder', 'e-' || lpad(i::text, 6, '0'),
              'e-' || lpad(i::text, 6, '0'), 0, now(), now()
       from generate_series(1, 20000) as i`,
      [owner, parent],
    );
    const plan = async () =>
      (
        await c.db.query<{ 'QUERY PLAN': string }>(
          'explain select * from items where parent_id = $1 and deleted_at is null order by name_key, id limit 100',
          [parent],
        )
      )
        .map((r) => r['QUERY PLAN'])
        .join('\n');
    expect(c.maintainDatabase).toBeTypeOf('function');
    await c.maintainDatabase?.();
    const after = await plan();
    expect(after).toContain('Index Scan using items_by_parent_name');
    expect(after).not.toMatch(/\bSort\b/);
  });
});

describe('version queries of the background jobs', () => {
  // The reconciler's and the orphan sweep's queries read an index, not the table: at 10^8 versions
  // (docs/scale.md) a scan per listed object or per pass would never finish.
  beforeAll(async () => {
    await c.db.query(
      `insert into versions (id, file_id, node_id, blob_key, size, sha256, content_type, created_by, created_at)
       select gen_random_uuid(), gen_random_uuid(), 'local-1', 'v/' || gen_random_uuid(), 1, 'x',
              'application/octet-stream', gen_random_uuid(), now() - make_interval(secs => i)
       from generate_series(1, 20000) as i`,
    );
    await c.maintainDatabase?.();
  });

  it('whether a blob key is in use reads versions_by_blob_key', async () => {
    const p = await plan('select 1 from versions where blob_key = $1 limit 1', ['v/nothing']);
    expect(p).toMatch(/Index Only Scan using versions_by_blob_key|Index Scan using versions_by_blob_key/);
    expect(p).not.toContain('Seq Scan');
  });

  it('the incremental pass walks versions_by_created', async () => {
    const p = await plan(
      `select id from versions where created_at >= $1
       and (created_at > $2::timestamptz or (created_at = $2::timestamptz and id > $3))
       order by created_at, id limit 500`,
      [
        new Date(Date.now() - 60_000),
        new Date(Date.now() - 30_000).toISOString(),
        '00000000-0000-0000-0000-000000000000',
      ],
    );
    expect(p).toContain('versions_by_created');
    expect(p).not.toContain('Seq Scan');
  });
});
