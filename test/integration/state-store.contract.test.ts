/** One contract, every StateStore adapter: DynamoDB (emulator), SQL (PGlite, PostgreSQL 15), memory. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DynamoDbStateStore } from '../../shared/adapters/dynamodb/dynamodb-state-store.ts';
import { MemoryStateStore } from '../../shared/adapters/memory/memory-state-store.ts';
import { SqlStateStore } from '../../shared/adapters/postgres/sql-state-store.ts';
import { ConditionFailedError } from '../../shared/domain/errors.ts';
import type { StateStore } from '../../shared/ports/state-store.ts';
import { RevocationList } from '../../shared/services/revocation-list.ts';
import { createStateTable, dynamoClient, sqlBackends } from '../support/fixtures.ts';

interface Backend {
  name: string;
  open(): Promise<{ store: StateStore; dispose(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'dynamodb (emulator)',
    async open() {
      const ddb = dynamoClient();
      const table = await createStateTable(ddb);
      return { store: new DynamoDbStateStore(ddb, table), dispose: async () => ddb.destroy() };
    },
  },
  ...sqlBackends.map((b) => ({
    name: `sql (${b.name})`,
    async open() {
      const { db, dispose } = await b.open();
      return { store: new SqlStateStore(db), dispose };
    },
  })),
  { name: 'memory', open: async () => ({ store: new MemoryStateStore(), dispose: async () => undefined }) },
];

const now = () => Math.floor(Date.now() / 1000);

describe.each(backends)('StateStore contract: $name', (backend) => {
  let store: StateStore;
  let dispose: () => Promise<void>;

  beforeEach(async () => {
    ({ store, dispose } = await backend.open());
  });
  afterEach(async () => {
    await dispose();
  });

  it('stores and reads an item, counting versions', async () => {
    const first = await store.put({ pk: 'a', sk: '1', data: { n: 1, nested: { s: 'x' } } });
    expect(first.version).toBe(1);
    const second = await store.put({ pk: 'a', sk: '1', data: { n: 2, nested: { s: 'y' } } });
    expect(second.version).toBe(2);
    const got = await store.get<{ n: number; nested: { s: string } }>('a', '1');
    expect(got?.data).toEqual({ n: 2, nested: { s: 'y' } });
    expect(got?.version).toBe(2);
    expect(await store.get('a', '2')).toBeUndefined();
  });

  it('refuses a create-if-absent over a live item', async () => {
    await store.put({ pk: 'b', sk: 's', data: { v: 1 } }, { kind: 'absent' });
    await expect(store.put({ pk: 'b', sk: 's', data: { v: 2 } }, { kind: 'absent' })).rejects.toBeInstanceOf(
      ConditionFailedError,
    );
    expect((await store.get<{ v: number }>('b', 's'))?.data.v).toBe(1);
  });

  it('applies a versioned write only on the version it read', async () => {
    const v1 = await store.put({ pk: 'c', sk: 's', data: { v: 1 } });
    const v2 = await store.put(
      { pk: 'c', sk: 's', data: { v: 2 } },
      { kind: 'version', version: v1.version },
    );
    expect(v2.version).toBe(v1.version + 1);
    await expect(
      store.put({ pk: 'c', sk: 's', data: { v: 3 } }, { kind: 'version', version: v1.version }),
    ).rejects.toBeInstanceOf(ConditionFailedError);
    expect((await store.get<{ v: number }>('c', 's'))?.data.v).toBe(2);
  });

  it('hides expired items from reads and lets create-if-absent replace them', async () => {
    await store.put({ pk: 'd', sk: 's', data: { v: 'old' }, expiresAt: now() - 5 });
    expect(await store.get('d', 's')).toBeUndefined();
    expect(await store.query('d')).toEqual([]);
    await store.put({ pk: 'd', sk: 's', data: { v: 'new' }, expiresAt: now() + 60 }, { kind: 'absent' });
    expect((await store.get<{ v: string }>('d', 's'))?.data.v).toBe('new');
  });

  it('refuses a versioned write to an expired item', async () => {
    const it1 = await store.put({ pk: 'e', sk: 's', data: {}, expiresAt: now() - 1 });
    await expect(
      store.put({ pk: 'e', sk: 's', data: {} }, { kind: 'version', version: it1.version }),
    ).rejects.toBeInstanceOf(ConditionFailedError);
  });

  it('queries a partition by sort-key prefix, in order', async () => {
    for (const sk of ['part#0002', 'part#0001', 'meta', 'part#0003'])
      await store.put({ pk: 'p', sk, data: { sk } });
    await store.put({ pk: 'other', sk: 'part#0001', data: {} });
    const parts = await store.query<{ sk: string }>('p', { skPrefix: 'part#' });
    expect(parts.map((p) => p.sk)).toEqual(['part#0001', 'part#0002', 'part#0003']);
    expect((await store.query('p')).length).toBe(4);
  });

  it('deletes', async () => {
    await store.put({ pk: 'f', sk: 's', data: {} });
    await store.delete('f', 's');
    expect(await store.get('f', 's')).toBeUndefined();
    await store.delete('f', 's'); // idempotent
  });

  it('backs the revocation list: revoked until the token would have expired', async () => {
    const list = new RevocationList(store);
    await list.revoke('jti-1', now() + 600, 'logout');
    await list.revoke('jti-old', now() - 1, 'logout');
    expect(await list.isRevoked(['jti-1'])).toBe(true);
    expect(await list.isRevoked(['jti-2', 'jti-1'])).toBe(true);
    expect(await list.isRevoked(['jti-2', undefined])).toBe(false);
    expect(await list.isRevoked(['jti-old'])).toBe(false);
  });
});
