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

let c: Container;
let dir: string;

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
