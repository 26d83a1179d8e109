/**
 * The DynamoDB adapter of the StateStore port. One table, keys `pk`/`sk`, the TTL attribute `ttl`
 * (epoch seconds), an item version `ver` for optimistic concurrency, and the payload under `data`.
 * Reads filter items whose TTL has passed, since DynamoDB deletes them only eventually.
 */
import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
} from '@aws-sdk/lib-dynamodb';
import { ConditionFailedError, errors } from '../../domain/errors.ts';
import type { StateItem, StateStore, WriteCondition } from '../../ports/state-store.ts';

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

  async ping() {
    await this.call(() =>
      this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: '#ping', sk: '#ping' } })),
    );
  }
}
