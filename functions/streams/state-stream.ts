/**
 * The state table's DynamoDB Stream -> Lambda: each record becomes a StateChange for the services
 * that follow state (shared/services/jobs.ts: upload-session cleanup, replication). Failures are
 * reported per record (partial batch response), so one bad record is retried without replaying
 * the batch.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import type { StateChange, StateItem } from '../../shared/ports/state-store.ts';
import { Jobs } from '../../shared/services/jobs.ts';
import { awsContainer } from '../aws-container.ts';
import type { Container } from '../container.ts';

/** A stream record as a StateChange; undefined for records no one follows. */
export function toStateChange(record: DynamoDBRecord): StateChange | undefined {
  const image = (record.eventName === 'REMOVE' ? record.dynamodb?.OldImage : record.dynamodb?.NewImage) as
    | Record<string, AttributeValue>
    | undefined;
  if (!image) return undefined;
  const raw = unmarshall(image) as {
    pk: string;
    sk: string;
    data: Record<string, unknown>;
    ttl?: number;
    ver: number;
  };
  const item: StateItem = {
    pk: raw.pk,
    sk: raw.sk,
    data: raw.data,
    ...(raw.ttl === undefined ? {} : { expiresAt: Number(raw.ttl) }),
    version: Number(raw.ver),
  };
  if (record.eventName === 'REMOVE') {
    // TTL deletions are made by the DynamoDB service principal.
    const expired =
      record.userIdentity?.type === 'Service' &&
      record.userIdentity?.principalId === 'dynamodb.amazonaws.com';
    return { kind: 'remove', item, expired };
  }
  return { kind: 'upsert', item };
}

export function createStateStreamHandler(c: Container) {
  const jobs = new Jobs(c);
  return async (event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> => {
    const batchItemFailures: { itemIdentifier: string }[] = [];
    for (const record of event.Records) {
      try {
        const change = toStateChange(record);
        if (change) await jobs.onStateChange(change);
      } catch (err) {
        c.log.error('stream record failed', {
          eventId: record.eventID,
          err: String((err as Error)?.stack ?? err),
        });
        batchItemFailures.push({ itemIdentifier: record.dynamodb?.SequenceNumber ?? record.eventID ?? '' });
      }
    }
    return { batchItemFailures };
  };
}

let built: Promise<ReturnType<typeof createStateStreamHandler>> | undefined;
export const handler = async (event: DynamoDBStreamEvent) => {
  built ??= awsContainer().then(createStateStreamHandler);
  return (await built)(event);
};
