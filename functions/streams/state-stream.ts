/**
 * The state table's DynamoDB Stream -> Lambda: each record becomes a StateChange for the services
 * that follow state (shared/services/jobs.ts: upload-session cleanup, replication). Powertools'
 * batch processor reports failures per record (partial batch response; the event source mapping
 * sets reportBatchItemFailures), so one bad record is retried without replaying the batch.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import type { StateChange, StateItem } from '../../shared/ports/state-store.ts';
import { Jobs } from '../../shared/services/jobs.ts';
import { type AwsModules, awsContainer } from '../aws-container.ts';
import { s3Storage } from '../aws-storage.ts';
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
  return createStreamHandler(c, (jobs, change) => jobs.onStateChange(change));
}

/**
 * A handler of the state table's stream records, each turned into a StateChange for `handle`: the
 * state-stream function's fan-out, or the verifier function's one job (functions/streams/verifier.ts).
 */
export function createStreamHandler(
  c: Container,
  handle: (jobs: Jobs, change: StateChange) => Promise<void>,
) {
  const jobs = new Jobs(c);
  const recordHandler = async (record: DynamoDBRecord): Promise<void> => {
    try {
      const change = toStateChange(record);
      if (change) await handle(jobs, change);
    } catch (err) {
      c.log.error('stream record failed', {
        eventId: record.eventID,
        err: String((err as Error)?.stack ?? err),
      });
      throw err; // the processor reports the record (its SequenceNumber) as a batch item failure
    }
  };
  return (event: DynamoDBStreamEvent, context?: Context): Promise<DynamoDBBatchResponse> =>
    // A processor per invocation: it holds the batch's records and outcomes while it runs.
    processPartialResponse(event, recordHandler, new BatchProcessor(EventType.DynamoDBStreams), {
      context,
      // In stream order, one at a time: records of one item must apply in the order they happened.
      processInParallel: false,
      // A batch whose every record failed is reported the same way (all of them), not thrown: the
      // event source retries it either way, and the function's error metric stays for crashes.
      throwOnFullBatchFailure: false,
    });
}

/** Replication and upload cleanup touch stored bytes; nothing here calls Cognito. */
export const modules: AwsModules = { storage: s3Storage };

let built: Promise<ReturnType<typeof createStateStreamHandler>> | undefined;
export const handler = async (event: DynamoDBStreamEvent, context: Context) => {
  built ??= awsContainer(modules).then(createStateStreamHandler);
  return (await built)(event, context);
};
