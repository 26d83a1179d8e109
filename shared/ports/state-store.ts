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
  /** How many live items a partition holds. */
  count(pk: string): Promise<number>;
  ping(): Promise<void>;
}

/**
 * A change to the store, as DynamoDB Streams reports it (NEW_AND_OLD_IMAGES). `expired` marks a
 * removal by TTL rather than by a caller. The backbone for work that follows a state change:
 * upload-session cleanup now, replication later.
 */
export type StateChange =
  | { kind: 'upsert'; item: StateItem }
  | { kind: 'remove'; item: StateItem; expired: boolean };
