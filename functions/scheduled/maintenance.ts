/**
 * The scheduled Lambda (EventBridge): node canaries, reconciliation, retention and rescans of
 * quarantined versions. The same services run on timers in the local runtime.
 */
import { awsContainer } from '../aws-container.ts';
import type { Container } from '../container.ts';

export async function runMaintenance(c: Container, task: string, event: { email?: string } = {}) {
  switch (task) {
    case 'promote-admin':
      return { admin: await promoteAdmin(c, event.email) };
    case 'health':
      return { health: await c.health.checkAll() };
    case 'reconcile':
      return { reconcile: await c.reconciler.sweep() };
    default:
      return { retention: await c.tree.sweep(), rescanned: await c.uploads.rescanPending() };
  }
}

/**
 * The first admin of a deployment: whoever may invoke this function (the AWS account's operator,
 * through IAM; nobody over HTTP) promotes a registered account. Roles live in the users table, so
 * this is the one way in before any admin exists; later admins use PATCH /v1/admin/users/{id}.
 */
async function promoteAdmin(c: Container, email: string | undefined) {
  const address = email?.trim().toLowerCase();
  if (!address) throw new Error('promote-admin needs {"email": "..."} of a registered account');
  const user = await c.users.byEmail(address);
  if (!user) throw new Error(`no registered account has the email ${address}`);
  const updated = await c.auth.updateUser(
    { userId: user.id, role: 'admin', tokenId: 'operator', expiresAt: Math.floor(Date.now() / 1000) + 60 },
    user.id,
    { role: 'admin' },
  );
  c.log.info('admin promoted by the account operator', { userId: updated.id });
  return { id: updated.id, email: updated.email, role: updated.role };
}

export const handler = async (event: { task?: string; email?: string }) =>
  runMaintenance(await awsContainer(), event?.task ?? 'retention', event ?? {});
