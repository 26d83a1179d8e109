/**
 * The scheduled Lambda (EventBridge): node canaries, reconciliation, retention and rescans of
 * quarantined versions, and the operator's first-admin task. The jobs themselves live in
 * shared/services/jobs.ts, which the local runtime's timers and the admin routes run too.
 */
import { Jobs } from '../../shared/services/jobs.ts';
import type { SweepPartition } from '../../shared/services/sweep-partitions.ts';
import { type AwsModules, awsContainer } from '../aws-container.ts';
import { cognitoIdentity } from '../aws-identity.ts';
import { s3Storage } from '../aws-storage.ts';
import type { Container } from '../container.ts';

export async function runMaintenance(
  c: Container,
  task: string,
  event: { email?: string; partition?: SweepPartition } = {},
) {
  return new Jobs(c).run(task, event);
}

/** Canaries, reconciliation and retention touch stored bytes; promote-admin sets a Cognito group. */
export const modules: AwsModules = { storage: s3Storage, identity: cognitoIdentity };

/** `{task}`; `{task: 'reconcile', partition: {index, count}}` from the sweep's Distributed Map. */
export const handler = async (event: { task?: string; email?: string; partition?: SweepPartition }) =>
  runMaintenance(await awsContainer(modules), event?.task ?? 'retention', event ?? {});
