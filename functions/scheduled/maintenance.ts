/**
 * The scheduled Lambda (EventBridge): node canaries, reconciliation, retention and rescans of
 * quarantined versions. The same services run on timers in the local runtime.
 */
import { awsContainer } from '../aws-container.ts';
import type { Container } from '../container.ts';

export async function runMaintenance(c: Container, task: string) {
  switch (task) {
    case 'health':
      return { health: await c.health.checkAll() };
    case 'reconcile':
      return { reconcile: await c.reconciler.sweep() };
    default:
      return { retention: await c.tree.sweep(), rescanned: await c.uploads.rescanPending() };
  }
}

export const handler = async (event: { task?: string }) =>
  runMaintenance(await awsContainer(), event?.task ?? 'retention');
