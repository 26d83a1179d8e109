/**
 * The DynamoDB adapter of the StateStore port. One table, keys `pk`/`sk`, the TTL attribute `ttl`
 * (epoch seconds), an item version `ver` for optimistic concurrency, and the payload under `data`.
 * Reads filter items whose TTL has passed, since DynamoDB deletes them only eventually.
 */
import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
} from '@aws-sdk/lib-dynamodb';
import { ConditionFailedError, errors } from '../../domain/errors.ts';
import type { StateItem, StateStore, StateWrite, WriteCondition } from '../../ports/state-store.ts';

type TransactItems = NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']>;

/** Counters are top-level number attributes (`ADD` updates no nested path of a missing map). */
const COUNTER_PREFIX = 'c:';
/** Transactions cancelled only because another one held an item are tried again, this often. */
const CONFLICT_ATTEMPTS = 6;

interface Stored {
  pk: string;
  sk: string;
  data: unknown;
  ttl?: number;
  ver: number;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

function toItem<T>(s: Stored): StateItem<T> {
  return {
    pk: s.pk,
    sk: s.sk,
    data: s.data as T,
    ...(s.ttl === undefined ? {} : { expiresAt: s.ttl }),
    version: s.ver,
  };
}

function isLive(s: Stored): boolean {
  return s.ttl === undefined || s.ttl > nowSeconds();
}

export class DynamoDbStateStore implements StateStore {
  private readonly doc: DynamoDBDocumentClient;

  private readonly tableName: string;

  constructor(client: DynamoDBClient, tableName: string) {
    this.tableName = tableName;
    this.doc = DynamoDBDocumentClient.from(client, {
      marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
    });
  }

  private async call<R>(op: () => Promise<R>): Promise<R> {
    try {
      return await op();
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) throw new ConditionFailedError(err.message);
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (e.name === 'ProvisionedThroughputExceededException' || (e.$metadata?.httpStatusCode ?? 0) >= 500) {
        throw errors.unavailable('state store');
      }
      if (e.name === 'TimeoutError' || (err as { code?: string }).code === 'ECONNREFUSED') {
        throw errors.unavailable('state store');
      }
      throw err;
    }
  }

  async get<T>(pk: string, sk: string) {
    const res = await this.call(() =>
      this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk, sk }, ConsistentRead: true })),
    );
    const s = res.Item as Stored | undefined;
    return s && isLive(s) ? toItem<T>(s) : undefined;
  }

  async put<T>(item: { pk: string; sk: string; data: T; expiresAt?: number }, condition?: WriteCondition) {
    const previous = await this.get(item.pk, item.sk);
    const ver = condition?.kind === 'version' ? condition.version + 1 : (previous?.version ?? 0) + 1;
    const stored: Stored = {
      pk: item.pk,
      sk: item.sk,
      data: item.data,
      ver,
      ...(item.expiresAt === undefined ? {} : { ttl: item.expiresAt }),
    };
    const now = nowSeconds();
    let cond: Partial<
      Pick<
        ConstructorParameters<typeof PutCommand>[0],
        'ConditionExpression' | 'ExpressionAttributeNames' | 'ExpressionAttributeValues'
      >
    > = {};
    if (condition?.kind === 'absent') {
      cond = {
        ConditionExpression: 'attribute_not_exists(pk) OR (attribute_exists(#ttl) AND #ttl <= :now)',
        ExpressionAttributeNames: { '#ttl': 'ttl' },
        ExpressionAttributeValues: { ':now': now },
      };
    } else if (condition?.kind === 'version') {
      cond = {
        ConditionExpression: '#ver = :ver AND (attribute_not_exists(#ttl) OR #ttl > :now)',
        ExpressionAttributeNames: { '#ver': 'ver', '#ttl': 'ttl' },
        ExpressionAttributeValues: { ':ver': condition.version, ':now': now },
      };
    }
    await this.call(() =>
      this.doc.send(new PutCommand({ TableName: this.tableName, Item: stored, ...cond })),
    );
    return toItem<T>(stored);
  }

  async delete(pk: string, sk: string) {
    await this.call(() => this.doc.send(new DeleteCommand({ TableName: this.tableName, Key: { pk, sk } })));
  }

  async query<T>(pk: string, opts: { skPrefix?: string; limit?: number } = {}) {
    const res = await this.call(() =>
      this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: opts.skPrefix ? 'pk = :pk AND begins_with(sk, :p)' : 'pk = :pk',
          ExpressionAttributeValues: { ':pk': pk, ...(opts.skPrefix ? { ':p': opts.skPrefix } : {}) },
          ConsistentRead: true,
          Limit: opts.limit ?? 1000,
        }),
      ),
    );
    return ((res.Items ?? []) as Stored[]).filter(isLive).map((s) => toItem<T>(s));
  }

  /** Sixteen Query requests in flight at a time (BatchGetItem needs every sort key up front). */
  async queryMany<T>(pks: readonly string[]) {
    const unique = [...new Set(pks)];
    const out = new Map<string, StateItem<T>[]>(pks.map((pk) => [pk, []]));
    let next = 0;
    const worker = async () => {
      while (next < unique.length) {
        const pk = unique[next++] as string;
        out.set(pk, await this.query<T>(pk));
      }
    };
    await Promise.all(Array.from({ length: Math.min(16, unique.length) }, worker));
    return out;
  }

  async count(pk: string) {
    let total = 0;
    let start: Record<string, unknown> | undefined;
    do {
      const res = await this.call(() =>
        this.doc.send(
          new QueryCommand({
            TableName: this.tableName,
            KeyConditionExpression: 'pk = :pk',
            FilterExpression: 'attribute_not_exists(#ttl) OR #ttl > :now',
            ExpressionAttributeNames: { '#ttl': 'ttl' },
            ExpressionAttributeValues: { ':pk': pk, ':now': nowSeconds() },
            Select: 'COUNT',
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        ),
      );
      total += res.Count ?? 0;
      start = res.LastEvaluatedKey;
    } while (start);
    return total;
  }

  /**
   * TransactWriteItems. The SDK gives each command a ClientRequestToken and reuses it on its own
   * retries, so a retry after a lost answer is not applied twice. A cancellation caused only by a
   * concurrent transaction on one of the items (TransactionConflict: counter items are shared) is
   * tried again with jitter; a failed condition is ConditionFailedError.
   */
  async transact(writes: readonly StateWrite[]) {
    if (writes.length === 0) return;
    const items: TransactItems = writes.map((w) => this.transactItem(w));
    for (let attempt = 1; ; attempt++) {
      try {
        await this.doc.send(new TransactWriteCommand({ TransactItems: items }));
        return;
      } catch (err) {
        if (!(err instanceof TransactionCanceledException)) return this.call(() => Promise.reject(err));
        const codes = (err.CancellationReasons ?? []).map((r) => r.Code ?? 'None');
        if (codes.includes('ConditionalCheckFailed')) throw new ConditionFailedError(err.message);
        const conflictOnly =
          codes.some((c) => c === 'TransactionConflict') &&
          codes.every((c) => c === 'TransactionConflict' || c === 'None');
        if (!conflictOnly || attempt >= CONFLICT_ATTEMPTS) throw errors.unavailable('state store', 1, err);
        await new Promise((r) => setTimeout(r, Math.random() * 25 * 2 ** attempt));
      }
    }
  }

  private transactItem(w: StateWrite): TransactItems[number] {
    const now = nowSeconds();
    const absent = {
      ConditionExpression: 'attribute_not_exists(pk) OR (attribute_exists(#ttl) AND #ttl <= :now)',
      ExpressionAttributeNames: { '#ttl': 'ttl' },
      ExpressionAttributeValues: { ':now': now },
    };
    const version = (v: number) => ({
      ConditionExpression: '#ver = :ver AND (attribute_not_exists(#ttl) OR #ttl > :now)',
      ExpressionAttributeNames: { '#ver': 'ver', '#ttl': 'ttl' },
      ExpressionAttributeValues: { ':ver': v, ':now': now },
    });
    const condition = (c: WriteCondition) => (c.kind === 'absent' ? absent : version(c.version));
    switch (w.op) {
      case 'put': {
        const { pk, sk, data, expiresAt } = w.item;
        const ttl = expiresAt === undefined ? {} : { ttl: expiresAt };
        if (w.condition) {
          const ver = w.condition.kind === 'version' ? w.condition.version + 1 : 1;
          return {
            Put: {
              TableName: this.tableName,
              Item: { pk, sk, data, ver, ...ttl },
              ...condition(w.condition),
            },
          };
        }
        // Unconditional: the version goes up by one wherever it stood, without reading it first.
        return {
          Update: {
            TableName: this.tableName,
            Key: { pk, sk },
            UpdateExpression: `SET #data = :data, #ver = if_not_exists(#ver, :zero) + :one${
              expiresAt === undefined ? ' REMOVE #ttl' : ', #ttl = :ttl'
            }`,
            ExpressionAttributeNames: { '#data': 'data', '#ver': 'ver', '#ttl': 'ttl' },
            ExpressionAttributeValues: {
              ':data': data,
              ':zero': 0,
              ':one': 1,
              ...(expiresAt === undefined ? {} : { ':ttl': expiresAt }),
            },
          },
        };
      }
      case 'delete':
        return {
          Delete: {
            TableName: this.tableName,
            Key: { pk: w.pk, sk: w.sk },
            ...(w.condition ? version(w.condition.version) : {}),
          },
        };
      case 'check':
        return {
          ConditionCheck: {
            TableName: this.tableName,
            Key: { pk: w.pk, sk: w.sk },
            ...condition(w.condition),
          },
        };
      case 'add': {
        const entries = Object.entries(w.deltas);
        if (entries.length === 0) throw new Error('an add with no counters');
        return {
          Update: {
            TableName: this.tableName,
            Key: { pk: w.pk, sk: w.sk },
            UpdateExpression: `ADD ${entries.map((_, i) => `#c${i} :c${i}`).join(', ')}`,
            ExpressionAttributeNames: Object.fromEntries(
              entries.map(([n], i) => [`#c${i}`, COUNTER_PREFIX + n]),
            ),
            ExpressionAttributeValues: Object.fromEntries(entries.map(([, d], i) => [`:c${i}`, d])),
          },
        };
      }
    }
  }

  async counters(pk: string) {
    const out: Record<string, number> = {};
    let start: Record<string, unknown> | undefined;
    do {
      const res = await this.call(() =>
        this.doc.send(
          new QueryCommand({
            TableName: this.tableName,
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: { ':pk': pk },
            ConsistentRead: true,
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        ),
      );
      for (const item of res.Items ?? [])
        for (const [name, value] of Object.entries(item))
          if (name.startsWith(COUNTER_PREFIX) && typeof value === 'number') {
            const key = name.slice(COUNTER_PREFIX.length);
            out[key] = (out[key] ?? 0) + value;
          }
      start = res.LastEvaluatedKey;
    } while (start);
    return out;
  }

  async ping() {
    await this.call(() =>
      this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: '#ping', sk: '#ping' } })),
    );
  }
}
