/**
 * The local adapter of the StateStore port: a table in the embedded database, so sessions and
 * revocations survive restarts of the local runtime. Conditional writes are single statements.
 * It also plays DynamoDB's other two parts: a change feed (listeners get every write and removal)
 * and TTL deletion (`reapExpired`, which the local runtime calls on a timer).
 */
import { ConditionFailedError } from '../../domain/errors.ts';
import type { Database, SqlExecutor } from '../../ports/database.ts';
import type { StateChange, StateItem, StateStore, StateWrite } from '../../ports/state-store.ts';

interface Row {
  pk: string;
  sk: string;
  data: string;
  expires_at: number | string | null;
  version: number;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

function toItem<T>(r: Row): StateItem<T> {
  return {
    pk: r.pk,
    sk: r.sk,
    data: JSON.parse(r.data) as T,
    ...(r.expires_at === null ? {} : { expiresAt: Number(r.expires_at) }),
    version: Number(r.version),
  };
}

export type ChangeListener = (change: StateChange) => Promise<void> | void;

export class SqlStateStore implements StateStore {
  private readonly db: Database;
  private readonly listeners: ChangeListener[] = [];
  private onListenerError: (err: unknown) => void = () => undefined;

  /** Subscribes to the change feed. Listener failures are reported, never thrown at the writer. */
  onChange(listener: ChangeListener, onError?: (err: unknown) => void): void {
    this.listeners.push(listener);
    if (onError) this.onListenerError = onError;
  }

  private emit(change: StateChange): Promise<void> {
    return Promise.all(
      this.listeners.map(async (l) => {
        try {
          await l(change);
        } catch (err) {
          this.onListenerError(err);
        }
      }),
    ).then(() => undefined);
  }

  /** Deletes items whose TTL has passed and reports them as expired removals. Returns how many. */
  async reapExpired(limit = 500): Promise<number> {
    const rows = await this.db.query<Row>(
      `delete from state_items where (pk, sk) in (
         select pk, sk from state_items where expires_at is not null and expires_at <= $1 limit $2
       ) returning *`,
      [nowSeconds(), limit],
    );
    for (const r of rows) await this.emit({ kind: 'remove', item: toItem(r), expired: true });
    return rows.length;
  }

  constructor(db: Database) {
    this.db = db;
  }

  async get<T>(pk: string, sk: string) {
    const rows = await this.db.query<Row>(
      'select * from state_items where pk = $1 and sk = $2 and (expires_at is null or expires_at > $3)',
      [pk, sk, nowSeconds()],
    );
    return rows[0] ? toItem<T>(rows[0]) : undefined;
  }

  async put<T>(
    item: { pk: string; sk: string; data: T; expiresAt?: number },
    condition?: { kind: 'absent' } | { kind: 'version'; version: number },
  ) {
    const data = JSON.stringify(item.data);
    const exp = item.expiresAt ?? null;
    let rows: Row[];
    if (condition?.kind === 'version') {
      rows = await this.db.query<Row>(
        `update state_items set data = $3, expires_at = $4, version = version + 1
         where pk = $1 and sk = $2 and version = $5 and (expires_at is null or expires_at > $6) returning *`,
        [item.pk, item.sk, data, exp, condition.version, nowSeconds()],
      );
    } else {
      // An expired row still present counts as absent, as with DynamoDB TTL lag.
      const guard =
        condition?.kind === 'absent'
          ? 'where state_items.expires_at is not null and state_items.expires_at <= $5'
          : '';
      rows = await this.db.query<Row>(
        `insert into state_items (pk, sk, data, expires_at, version) values ($1, $2, $3, $4, 1)
         on conflict (pk, sk) do update set data = excluded.data, expires_at = excluded.expires_at,
           version = state_items.version + 1 ${guard} returning *`,
        condition?.kind === 'absent'
          ? [item.pk, item.sk, data, exp, nowSeconds()]
          : [item.pk, item.sk, data, exp],
      );
    }
    const row = rows[0];
    if (!row) throw new ConditionFailedError(`condition failed for ${item.pk}/${item.sk}`);
    const stored = toItem<T>(row);
    if (this.listeners.length) void this.emit({ kind: 'upsert', item: stored as StateItem });
    return stored;
  }

  async delete(pk: string, sk: string) {
    const rows = await this.db.query<Row>('delete from state_items where pk = $1 and sk = $2 returning *', [
      pk,
      sk,
    ]);
    for (const r of rows) await this.emit({ kind: 'remove', item: toItem(r), expired: false });
  }

  async query<T>(pk: string, opts: { skPrefix?: string; limit?: number } = {}) {
    const rows = await this.db.query<Row>(
      `select * from state_items where pk = $1 and starts_with(sk, $2) and (expires_at is null or expires_at > $3)
       order by sk limit $4`,
      [pk, opts.skPrefix ?? '', nowSeconds(), opts.limit ?? 1000],
    );
    return rows.map((r) => toItem<T>(r));
  }

  async queryMany<T>(pks: readonly string[]) {
    const out = new Map<string, StateItem<T>[]>(pks.map((pk) => [pk, []]));
    if (pks.length === 0) return out;
    const unique = [...new Set(pks)];
    const list = unique.map((_, i) => `$${i + 2}`).join(', ');
    const rows = await this.db.query<Row>(
      `select * from state_items where pk in (${list}) and (expires_at is null or expires_at > $1)
       order by pk, sk`,
      [nowSeconds(), ...unique],
    );
    for (const r of rows) out.get(r.pk)?.push(toItem<T>(r));
    return out;
  }

  async count(pk: string) {
    const rows = await this.db.query<{ n: string }>(
      'select count(*)::text as n from state_items where pk = $1 and (expires_at is null or expires_at > $2)',
      [pk, nowSeconds()],
    );
    return Number(rows[0]?.n ?? 0);
  }

  /**
   * One transaction; a condition that does not hold throws ConditionFailedError and rolls it back.
   * Counters live in `state_counters`, a row per (item, name), each `add` one upsert per name (in
   * name order, so two transactions lock shared rows in the same order). The change feed hears of
   * the puts and deletes once the transaction has committed.
   */
  async transact(writes: readonly StateWrite[]) {
    const changes = await this.db.transaction(async (tx) => {
      const out: StateChange[] = [];
      for (const w of writes) {
        if (w.op === 'put') out.push({ kind: 'upsert', item: await this.putIn(tx, w) });
        else if (w.op === 'delete') {
          const rows = await tx.query<Row>(
            `delete from state_items where pk = $1 and sk = $2 ${
              w.condition ? 'and version = $3 and (expires_at is null or expires_at > $4)' : ''
            } returning *`,
            w.condition ? [w.pk, w.sk, w.condition.version, nowSeconds()] : [w.pk, w.sk],
          );
          if (w.condition && rows.length === 0)
            throw new ConditionFailedError(`condition failed for ${w.pk}/${w.sk}`);
          for (const r of rows) out.push({ kind: 'remove', item: toItem(r), expired: false });
        } else if (w.op === 'check') {
          const [row] = await tx.query<Row>(
            'select * from state_items where pk = $1 and sk = $2 and (expires_at is null or expires_at > $3)',
            [w.pk, w.sk, nowSeconds()],
          );
          const holds =
            w.condition.kind === 'absent' ? row === undefined : Number(row?.version) === w.condition.version;
          if (!holds) throw new ConditionFailedError(`condition failed for ${w.pk}/${w.sk}`);
        } else {
          for (const [name, delta] of Object.entries(w.deltas).sort(([a], [b]) => (a < b ? -1 : 1)))
            await tx.query(
              `insert into state_counters (pk, sk, name, value) values ($1, $2, $3, $4::bigint)
               on conflict (pk, sk, name) do update set value = state_counters.value + excluded.value`,
              [w.pk, w.sk, name, delta],
            );
        }
      }
      return out;
    });
    for (const change of changes)
      if (change.kind === 'upsert') {
        if (this.listeners.length) void this.emit(change);
      } else await this.emit(change);
  }

  private async putIn(tx: SqlExecutor, w: Extract<StateWrite, { op: 'put' }>): Promise<StateItem> {
    const { item, condition } = w;
    const data = JSON.stringify(item.data);
    const exp = item.expiresAt ?? null;
    const rows =
      condition?.kind === 'version'
        ? await tx.query<Row>(
            `update state_items set data = $3, expires_at = $4, version = version + 1
             where pk = $1 and sk = $2 and version = $5 and (expires_at is null or expires_at > $6) returning *`,
            [item.pk, item.sk, data, exp, condition.version, nowSeconds()],
          )
        : await tx.query<Row>(
            condition?.kind === 'absent'
              ? `insert into state_items (pk, sk, data, expires_at, version) values ($1, $2, $3, $4, 1)
                 on conflict (pk, sk) do update set data = excluded.data, expires_at = excluded.expires_at, version = 1
                 where state_items.expires_at is not null and state_items.expires_at <= $5 returning *`
              : `insert into state_items (pk, sk, data, expires_at, version) values ($1, $2, $3, $4, 1)
                 on conflict (pk, sk) do update set data = excluded.data, expires_at = excluded.expires_at,
                   version = state_items.version + 1 returning *`,
            condition?.kind === 'absent'
              ? [item.pk, item.sk, data, exp, nowSeconds()]
              : [item.pk, item.sk, data, exp],
          );
    const row = rows[0];
    if (!row) throw new ConditionFailedError(`condition failed for ${item.pk}/${item.sk}`);
    return toItem(row);
  }

  async counters(pk: string) {
    const rows = await this.db.query<{ name: string; value: string | number }>(
      'select name, sum(value)::text as value from state_counters where pk = $1 group by name',
      [pk],
    );
    return Object.fromEntries(rows.map((r) => [r.name, Number(r.value)]));
  }

  /**
   * How many live items, in every partition whose key starts with `pkPrefix`, hold one of `values`
   * in the top-level `field` of their data. Not on the port: DynamoDB would answer it with a scan.
   * The local runtime's gauges use it (open upload sessions).
   */
  async countMatching(pkPrefix: string, field: string, values: readonly string[]): Promise<number> {
    if (values.length === 0) return 0;
    const placeholders = values.map((_, i) => `$${i + 4}`).join(', ');
    const rows = await this.db.query<{ n: string }>(
      `select count(*)::text as n from state_items
       where starts_with(pk, $1) and (expires_at is null or expires_at > $2)
         and (data::json ->> $3) in (${placeholders})`,
      [pkPrefix, nowSeconds(), field, ...values],
    );
    return Number(rows[0]?.n ?? 0);
  }

  async ping() {
    await this.db.ping();
  }
}
