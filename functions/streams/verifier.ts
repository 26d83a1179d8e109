/**
 * The background verifier in AWS: the state table's stream -> this function, through an event source
 * mapping of its own filtered to the `verify#<uploadId>` triggers that a 202 complete writes. Each
 * is one upload read whole, checked and committed (shared/services/upload-completion.ts,
 * `verifyInBackground`). It runs apart from the state-stream function so that a verification of
 * minutes (15 at most) never holds up the stream's cleanup and replication; the mapping's
 * parallelization factor lets one shard verify several uploads at once.
 *
 * The same mapping brings the `purgejob#<jobId>` triggers of purges too big for a request
 * (shared/services/purge-jobs.ts): a run deletes batches for STRATUS_PURGE_RUN_SECONDS, then
 * triggers the next run, so a tree of any size is purged across 15-minute runs.
 */
import type { Context, DynamoDBStreamEvent } from 'aws-lambda';
import { type AwsModules, awsContainer } from '../aws-container.ts';
import { s3Storage } from '../aws-storage.ts';
import type { Container } from '../container.ts';
import { createStreamHandler } from './state-stream.ts';

/** It reads the object and commits it, or deletes purged blobs; nothing here calls Cognito. */
export const modules: AwsModules = { storage: s3Storage };

export function createVerifierHandler(c: Container) {
  return createStreamHandler(c, async (jobs, change) => {
    await jobs.verifyUpload(change);
    await jobs.runPurgeJob(change);
  });
}

let built: Promise<ReturnType<typeof createVerifierHandler>> | undefined;
export const handler = async (event: DynamoDBStreamEvent, context: Context) => {
  built ??= awsContainer(modules).then(createVerifierHandler);
  return (await built)(event, context);
};
