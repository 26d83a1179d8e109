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
  /**
   * moto 5 cancels a transaction by putting back a copy of the whole table taken when it began,
   * which undoes the writes other requests made meanwhile (real DynamoDB cancels only its own): on
   * the emulator, transactions that fail a condition are sent one at a time.
   */
  cancelsApart?: false;
}

const backends: Backend[] = [
  {
    name: 'dynamodb (emulator)',
    async open() {
      const ddb = dynamoClient();
      const table = await createStateTable(ddb);
      return { store: new DynamoDbStateStore(ddb, table), dispose: async () => ddb.destroy() };
    },
    cancelsApart: false,
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

  it('reads several partitions at once, each in sort-key order, live items only', async () => {
    for (const [pk, sk] of [
      ['ledger#b', 'n2'],
      ['ledger#a', 'n3'],
      ['ledger#a', 'n1'],
      ['ledger#c', 'n1'],
      ['ledger#b', 'n1'],
    ])
      await store.put({ pk: pk as string, sk: sk as string, data: { pk, sk } });
    await store.put({ pk: 'ledger#a', sk: 'n2', data: {}, expiresAt: now() - 5 });
    const many = await store.queryMany<{ pk: string; sk: string }>([
      'ledger#a',
      'ledger#b',
      'ledger#none',
      'ledger#a',
    ]);
    expect([...many.keys()].sort()).toEqual(['ledger#a', 'ledger#b', 'ledger#none']);
    expect(many.get('ledger#a')?.map((i) => i.sk)).toEqual(['n1', 'n3']);
    expect(many.get('ledger#b')?.map((i) => i.sk)).toEqual(['n1', 'n2']);
    expect(many.get('ledger#none')).toEqual([]);
    // Each partition reads as `query` reads it, versions included; the one not asked for stays out.
    expect(many.get('ledger#b')).toEqual(await store.query('ledger#b'));
    expect(JSON.stringify([...many.values()])).not.toContain('ledger#c');
    expect((await store.queryMany([])).size).toBe(0);
  });

  it('deletes', async () => {
    await store.put({ pk: 'f', sk: 's', data: {} });
    await store.delete('f', 's');
    expect(await store.get('f', 's')).toBeUndefined();
    await store.delete('f', 's'); // idempotent
  });

  it('applies a transaction whole: puts, deletes, checks and counter adds', async () => {
    const kept = await store.put({ pk: 't', sk: 'kept', data: { v: 1 } });
    await store.put({ pk: 't', sk: 'gone', data: {} });
    await store.transact([
      { op: 'put', item: { pk: 't', sk: 'new', data: { v: 'n' } }, condition: { kind: 'absent' } },
      {
        op: 'put',
        item: { pk: 't', sk: 'kept', data: { v: 2 } },
        condition: { kind: 'version', version: kept.version },
      },
      { op: 'put', item: { pk: 't', sk: 'free', data: { v: 'f' } } },
      { op: 'delete', pk: 't', sk: 'gone' },
      { op: 'check', pk: 't', sk: 'never', condition: { kind: 'absent' } },
      { op: 'add', pk: 'counters', sk: 'one', deltas: { a: 2, b: -1 } },
    ]);
    expect((await store.query('t')).map((i) => [i.sk, i.data, i.version])).toEqual([
      ['free', { v: 'f' }, 1],
      ['kept', { v: 2 }, kept.version + 1],
      ['new', { v: 'n' }, 1],
    ]);
    await store.transact([{ op: 'add', pk: 'counters', sk: 'two', deltas: { a: 5, c: 1 } }]);
    // Summed over the partition's items; another partition is apart.
    await store.transact([{ op: 'add', pk: 'elsewhere', sk: 'one', deltas: { a: 100 } }]);
    expect(await store.counters('counters')).toEqual({ a: 7, b: -1, c: 1 });
    expect(await store.counters('nothing')).toEqual({});
  });

  it('writes nothing when one condition of a transaction fails', async () => {
    const a = await store.put({ pk: 'u', sk: 'a', data: { v: 1 } });
    const b = await store.put({ pk: 'u', sk: 'b', data: { v: 1 } });
    const d = await store.put({ pk: 'u', sk: 'd', data: { v: 1 } });
    const attempts: Parameters<StateStore['transact']>[0][] = [
      [
        {
          op: 'put',
          item: { pk: 'u', sk: 'a', data: { v: 9 } },
          condition: { kind: 'version', version: a.version + 1 },
        },
      ],
      [{ op: 'put', item: { pk: 'u', sk: 'b', data: { v: 9 } }, condition: { kind: 'absent' } }],
      [{ op: 'delete', pk: 'u', sk: 'b', condition: { kind: 'version', version: b.version + 7 } }],
      [{ op: 'check', pk: 'u', sk: 'a', condition: { kind: 'absent' } }],
      [{ op: 'check', pk: 'u', sk: 'none', condition: { kind: 'version', version: 1 } }],
    ];
    for (const failing of attempts)
      await expect(
        store.transact([
          { op: 'add', pk: 'counts', sk: 'x', deltas: { n: 1 } },
          { op: 'put', item: { pk: 'u', sk: 'c', data: { v: 1 } } },
          { op: 'delete', pk: 'u', sk: 'd' },
          ...failing,
        ]),
      ).rejects.toBeInstanceOf(ConditionFailedError);
    expect((await store.query('u')).map((i) => [i.sk, i.data, i.version])).toEqual([
      ['a', { v: 1 }, a.version],
      ['b', { v: 1 }, b.version],
      ['d', { v: 1 }, d.version],
    ]);
    expect(await store.counters('counts')).toEqual({});
    // A versioned delete on the version read goes through.
    await store.transact([
      { op: 'delete', pk: 'u', sk: 'b', condition: { kind: 'version', version: b.version } },
    ]);
    expect(await store.get('u', 'b')).toBeUndefined();
  });

  it('loses no counter update, and lets one conditional write win, under concurrent transactions', async () => {
    const item = await store.put({ pk: 'race', sk: 'item', data: { by: 'nobody' } });
    // 40 writers add to the same counters at once (as ledger transitions do on a counter shard), and
    // each also tries the same versioned write: exactly one may win it, with its counter add.
    const attempt = (i: number) =>
      store.transact([
        {
          op: 'put',
          item: { pk: 'race', sk: 'item', data: { by: i } },
          condition: { kind: 'version', version: item.version },
        },
        { op: 'add', pk: 'race-counts', sk: `won-${i % 2}`, deltas: { won: 1 } },
      ]);
    const adds = () =>
      Promise.allSettled(
        Array.from({ length: 40 }, (_, i) =>
          store.transact([
            { op: 'add', pk: 'race-counts', sk: `shard-${i % 3}`, deltas: { hits: 1, bytes: 10 } },
          ]),
        ),
      );
    let added: PromiseSettledResult<void>[];
    let results: PromiseSettledResult<void>[] = [];
    if (backend.cancelsApart !== false)
      [added, results] = await Promise.all([
        adds(),
        Promise.allSettled(Array.from({ length: 40 }, (_, i) => attempt(i))),
      ]);
    else {
      added = await adds();
      for (let i = 0; i < 40; i++) results.push(...(await Promise.allSettled([attempt(i)])));
    }
    expect(added.filter((r) => r.status === 'rejected')).toEqual([]);
    const won = results.filter((r) => r.status === 'fulfilled').length;
    const lost = results.filter((r) => r.status === 'rejected');
    for (const r of lost) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(ConditionFailedError);
    expect(won).toBe(1);
    expect(await store.counters('race-counts')).toEqual({ hits: 40, bytes: 400, won: 1 });
    expect((await store.get('race', 'item'))?.version).toBe(item.version + 1);
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
