/**
 * The first admin, from the operator's configuration (STRATUS_ADMIN_EMAIL + STRATUS_ADMIN_PASSWORD),
 * at start-up and before the API serves anything, as MinIO's root user or Grafana's admin password
 * work. Registration never grants admin, so whoever registers the configured address first gains
 * nothing:
 * - no account has the address: it is created as an admin with the configured password;
 * - an admin has it: nothing changes (its password may have changed since; the configuration is a
 *   bootstrap, not a second way in);
 * - a user has it: promoted only when the configured password signs in as that account (the
 *   operator registered it before configuring); otherwise it stays a user and the start-up log says
 *   why, loudly, without stopping the service.
 */
import { UnauthenticatedError } from '../domain/errors.ts';
import type { User } from '../domain/model.ts';
import type { Logger } from '../observability/logger.ts';
import type { IdentityProvider } from '../ports/identity-provider.ts';
import type { AuditLog, UserStore } from '../ports/metadata.ts';
import type { AuthService } from './auth-service.ts';

export type BootstrapOutcome = 'created' | 'promoted' | 'unchanged' | 'refused';

export class AdminBootstrap {
  private readonly deps: {
    auth: AuthService;
    users: UserStore;
    idp: Pick<IdentityProvider, 'login' | 'revokeRefreshToken'>;
    audit: AuditLog;
    log: Logger;
  };

  constructor(deps: AdminBootstrap['deps']) {
    this.deps = deps;
  }

  async run(email: string, password: string): Promise<{ outcome: BootstrapOutcome; user?: User }> {
    const { auth, users, idp, audit, log } = this.deps;
    const existing = await users.byEmail(email);
    if (!existing) {
      const user = await auth.createAccount(email, password, 'admin', { via: 'STRATUS_ADMIN_EMAIL' });
      log.info('first admin created from STRATUS_ADMIN_EMAIL', { userId: user.id });
      return { outcome: 'created', user };
    }
    if (existing.role === 'admin') return { outcome: 'unchanged', user: existing };
    const proven = await idp.login({ email, password }).then(
      async (tokens) => {
        // The check's own session ends at once.
        await idp.revokeRefreshToken(tokens.refreshToken).catch(() => undefined);
        return true;
      },
      (err: unknown) => {
        if (err instanceof UnauthenticatedError) return false;
        throw err;
      },
    );
    if (!proven) {
      log.error(
        'STRATUS_ADMIN_EMAIL names an account that STRATUS_ADMIN_PASSWORD does not sign in to: it stays a user. Sign in to it and change its password to the configured one, or configure another address',
        { userId: existing.id },
      );
      await audit.record({
        actorId: null,
        ownerId: existing.id,
        itemId: null,
        action: 'admin.bootstrap_refused',
        detail: { reason: 'password does not match' },
      });
      return { outcome: 'refused' };
    }
    const user = await auth.updateUser(
      {
        userId: existing.id,
        role: 'admin',
        tokenId: 'operator',
        expiresAt: Math.floor(Date.now() / 1000) + 60,
      },
      existing.id,
      { role: 'admin' },
    );
    log.info('account promoted to admin from STRATUS_ADMIN_EMAIL', { userId: user.id });
    return { outcome: 'promoted', user };
  }
}
