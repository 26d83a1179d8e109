/** The SQL layer on PGlite and on PostgreSQL 15: migrations, repositories, transactions, errors. */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ItemRepository } from '../../shared/adapters/postgres/item-repository.ts';
import { migrate } from '../../shared/adapters/postgres/migrations.ts';
import { UserRepository } from '../../shared/adapters/postgres/user-repository.ts';
import { UniqueViolationError } from '../../shared/domain/errors.ts';
import { nameKey } from '../../shared/domain/names.ts';
import type { Database } from '../../shared/ports/database.ts';
import { sqlBackends } from '../support/fixtures.ts';

describe.each(sqlBackends)('SQL contract: $name', (backend) => {
  let db: Database;
  let dispose: () => Promise<void>;
  beforeEach(async () => {
    ({ db, dispose } = await backend.open());
  });
  afterEach(async () => {
    await dispose();
  });

  it('runs migrations once: a second run applies nothing', async () => {
    expect(await migrate(db)).toBe(0);
    const rows = await db.query<{ version: number }>('select version from schema_migrations');
    expect(rows.map((r) => Number(r.version))).toContain(1);
  });

  it('creates a user with a root folder, idempotently', async () => {
    const users = new UserRepository(db);
    const id = randomUUID();
    const a = await users.ensure({ id, email: 'a@x.io', role: 'user', quotaBytes: 1000 });
    const b = await users.ensure({ id, email: 'a@x.io', role: 'user', quotaBytes: 1000 });
    expect(b).toEqual(a);
    const root = await new ItemRepository(db).get(a.rootFolderId);
    expect(root).toMatchObject({ kind: 'folder', ownerId: id, parentId: null });
    expect(a.quotaBytes).toBe(1000);
    expect(typeof a.usedBytes).toBe('number');
  });

  it('keeps names unique per folder, case-insensitively, and names the constraint', async () => {
    const users = new UserRepository(db);
    const items = new ItemRepository(db);
    const u = await users.ensure({ id: randomUUID(), email: 'b@x.io', role: 'user', quotaBytes: 1 });
    await items.insertFolder({
      id: randomUUID(),
      ownerId: u.id,
      parentId: u.rootFolderId,
      name: 'Docs',
      nameKey: nameKey('Docs'),
    });
    const clash = items.insertFolder({
      id: randomUUID(),
      ownerId: u.id,
      parentId: u.rootFolderId,
      name: 'DOCS',
      nameKey: nameKey('DOCS'),
    });
    await expect(clash).rejects.toBeInstanceOf(UniqueViolationError);
    await expect(clash).rejects.toMatchObject({ constraint: 'items_name_unique' });
  });

  it('pages children by keyset without gaps or repeats', async () => {
    const users = new UserRepository(db);
    const items = new ItemRepository(db);
    const u = await users.ensure({ id: randomUUID(), email: 'c@x.io', role: 'user', quotaBytes: 1 });
    const names = Array.from({ length: 23 }, (_, i) => `f${String(i).padStart(2, '0')}`);
    for (const name of [...names].reverse()) {
      await items.insertFolder({
        id: randomUUID(),
        ownerId: u.id,
        parentId: u.rootFolderId,
        name,
        nameKey: nameKey(name),
      });
    }
    for (const dir of ['asc', 'desc'] as const) {
      const seen: string[] = [];
      let after: { value: string; id: string } | undefined;
      for (;;) {
        const page = await items.listChildren(u.rootFolderId, { by: 'name', dir }, after, 5);
        if (page.length === 0) break;
        seen.push(...page.map((p) => p.item.name));
        after = page[page.length - 1]?.cursor;
      }
      expect(seen).toEqual(dir === 'asc' ? names : [...names].reverse());
    }
  });

  it('rolls a failed transaction back completely', async () => {
    const users = new UserRepository(db);
    const u = await users.ensure({ id: randomUUID(), email: 'd@x.io', role: 'user', quotaBytes: 1 });
    await expect(
      db.transaction(async (tx) => {
        await new ItemRepository(tx).addUsage(u.id, 500);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect((await users.get(u.id))?.usedBytes).toBe(0);
    await db.transaction(async (tx) => new ItemRepository(tx).addUsage(u.id, 7));
    expect((await users.get(u.id))?.usedBytes).toBe(7);
  });
});

describe('PGlite transactions', () => {
  it('fail fast, instead of deadlocking, when code queries outside the transaction it is in', async () => {
    const pglite = sqlBackends.find((b) => b.name === 'pglite');
    if (!pglite) throw new Error('no pglite backend');
    const { db, dispose } = await pglite.open();
    try {
      await expect(db.transaction(async () => db.query('select 1'))).rejects.toThrow(/inside a transaction/);
      await expect(db.transaction(async (tx) => tx.query('select 1 as one'))).resolves.toEqual([{ one: 1 }]);
    } finally {
      await dispose();
    }
  });
});
