/**
 * The scheduled Lambda (EventBridge): node canaries, reconciliation, retention and rescans of
 * quarantined versions, and the operator's first-admin task. The jobs themselves live in
 * shared/services/jobs.ts, which the local runtime's timers and the admin routes run too.
 */
import { Jobs } from '../../shared/services/jobs.ts';
import { awsContainer } from '../aws-container.ts';
import type { Container } from '../container.ts';

export async function runMaintenance(c: Container, task: string, event: { email?: string } = {}) {
  return new Jobs(c).run(task, event);
}

export const handler = async (event: { task?: string; email?: string }) =>
  runMaintenance(await awsContainer(), event?.task ?? 'retention', event ?? {});
