/**
 * Fast serverless state with expiry and optimistic concurrency, shaped after a DynamoDB item
 * (partition key + sort key). DynamoDB in AWS (TTL attribute, Streams); locally a SQL table in the
 * embedded database. Expired items are invisible even before the backend removes them.
 */
export interface StateItem<T = Record<string, unknown>> {
  pk: string;
  sk: string;
  data: T;
  /** Epoch seconds after which the item no longer exists. */
  expiresAt?: number;
  /** Incremented on every write; used for conditional updates. */
  version: number;
}

export type WriteCondition = { kind: 'absent' } | { kind: 'version'; version: number };

export interface StateStore {
  get<T = Record<string, unknown>>(pk: string, sk: string): Promise<StateItem<T> | undefined>;
  /** Writes the item; throws ConditionFailedError when `condition` does not hold. */
  put<T = Record<string, unknown>>(
    item: { pk: string; sk: string; data: T; expiresAt?: number },
    condition?: WriteCondition,
  ): Promise<StateItem<T>>;
  delete(pk: string, sk: string): Promise<void>;
  query<T = Record<string, unknown>>(
    pk: string,
    opts?: { skPrefix?: string; limit?: number },
  ): Promise<StateItem<T>[]>;
  /**
   * The live items of several partitions (each as `query` without a prefix answers it), by pk; a
   * partition with none maps to []. One statement where the store can (SQL); where it cannot
   * (DynamoDB has no query across partitions), queries a few partitions at a time. For a page of
   * versions' ledgers: a page costs one round trip, not one per version.
   */
  queryMany<T = Record<string, unknown>>(pks: readonly string[]): Promise<Map<string, StateItem<T>[]>>;
  /** How many live items a partition holds. */
  count(pk: string): Promise<number>;
  /**
   * Applies every write or none (DynamoDB TransactWriteItems; one SQL transaction). Throws
   * ConditionFailedError, having written nothing, when a condition does not hold. Counter updates
   * (`add`) ride on the conditional writes they account for, so a transition is counted exactly
   * once however often it is retried: a retry of a write that landed fails its condition. At most
   * 25 writes, each to a different item.
   */
  transact(writes: readonly StateWrite[]): Promise<void>;
  /**
   * The counters `add` keeps in a partition, summed over its items: name -> total (a name never
   * added is absent). Counter partitions hold counters only; `get` and `query` are not for them.
   */
  counters(pk: string): Promise<Record<string, number>>;
  ping(): Promise<void>;
}

/**
 * One write of `StateStore.transact`. A put's stored version is the read version + 1 under a
 * `version` condition, 1 under `absent`, and one more than before otherwise. `check` writes
 * nothing: it only makes the transaction depend on another item. `add` adds each delta to a named
 * counter of a counter item, creating it (and the item) at zero.
 */
export type StateWrite =
  | {
      op: 'put';
      item: { pk: string; sk: string; data: unknown; expiresAt?: number };
      condition?: WriteCondition;
    }
  | { op: 'delete'; pk: string; sk: string; condition?: { kind: 'version'; version: number } }
  | { op: 'check'; pk: string; sk: string; condition: WriteCondition }
  | { op: 'add'; pk: string; sk: string; deltas: Readonly<Record<string, number>> };

/**
 * A change to the store, as DynamoDB Streams reports it (NEW_AND_OLD_IMAGES). `expired` marks a
 * removal by TTL rather than by a caller. The backbone for work that follows a state change:
 * upload-session cleanup now, replication later.
 */
export type StateChange =
  | { kind: 'upsert'; item: StateItem }
  | { kind: 'remove'; item: StateItem; expired: boolean };
