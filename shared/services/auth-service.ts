/**
 * Use cases of identity: register, login, refresh, logout, password reset. Wraps an IdentityProvider (local or
 * Cognito) with what is ours in every profile: the first admin, login throttling, the revocation
 * list that API Gateway's authorizer cannot know about, provisioning the user's metadata, and the
 * security audit trail (logins, failures, token reuse).
 */
import type { AuditRepository } from '../adapters/postgres/audit-repository.ts';
import type { User, UserRepository } from '../adapters/postgres/user-repository.ts';
import { DomainError, errors } from '../domain/errors.ts';
import type { Principal } from '../http/api-handler.ts';
import type { Logger } from '../observability/logger.ts';
import type { IdentityProvider, TokenSet } from '../ports/identity-provider.ts';
import type { LoginThrottle } from './login-throttle.ts';
import type { RevocationList } from './revocation-list.ts';

export interface AuthServiceOptions {
  adminEmail: string | undefined;
  defaultQuotaBytes: number;
  accessTokenTtlSeconds: number;
}

export class AuthService {
  private readonly idp: IdentityProvider & { familyOf?(refreshToken: string): Promise<string | undefined> };
  private readonly users: UserRepository;
  private readonly throttle: LoginThrottle;
  private readonly revocations: RevocationList;
  private readonly audit: AuditRepository;
  private readonly log: Logger;
  private readonly opts: AuthServiceOptions;

  constructor(
    idp: IdentityProvider & { familyOf?(refreshToken: string): Promise<string | undefined> },
    users: UserRepository,
    throttle: LoginThrottle,
    revocations: RevocationList,
    audit: AuditRepository,
    log: Logger,
    opts: AuthServiceOptions,
  ) {
    this.idp = idp;
    this.users = users;
    this.throttle = throttle;
    this.revocations = revocations;
    this.audit = audit;
    this.log = log;
    this.opts = opts;
  }

  private roleFor(email: string): 'admin' | 'user' {
    return this.opts.adminEmail !== undefined && email === this.opts.adminEmail ? 'admin' : 'user';
  }

  async register(email: string, password: string, ip: string): Promise<User> {
    const role = this.roleFor(email);
    const { userId } = await this.idp.register({ email, password, role });
    let user: User;
    try {
      user = await this.users.ensure({
        id: userId,
        email,
        role,
        quotaBytes: this.opts.defaultQuotaBytes,
      });
    } catch (err) {
      // Undo the account the provider just created, so the address can register again.
      await this.idp.deleteAccount?.(email).catch((undoErr: unknown) =>
        this.log.error('registration failed and its account could not be undone', {
          userId,
          err: String(undoErr),
        }),
      );
      throw err;
    }
    await this.audit.record({
      actorId: userId,
      ownerId: userId,
      itemId: null,
      action: 'auth.register',
      detail: { ip, role },
    });
    this.log.info('user registered', { userId, role });
    return user;
  }

  async login(email: string, password: string, ip: string): Promise<TokenSet> {
    await this.throttle.assertAllowed(email, ip);
    try {
      const tokens = await this.idp.login({ email, password });
      await this.throttle.recordSuccess(email);
      // Users created outside this API (e.g. in the Cognito console) get their metadata now.
      await this.users.ensure({
        id: tokens.userId,
        email,
        role: this.roleFor(email),
        quotaBytes: this.opts.defaultQuotaBytes,
      });
      await this.audit.record({
        actorId: tokens.userId,
        ownerId: tokens.userId,
        itemId: null,
        action: 'auth.login',
        detail: { ip },
      });
      this.log.info('login', { userId: tokens.userId });
      return {
        accessToken: tokens.accessToken,
        refreshToken: tokens.refreshToken,
        expiresIn: tokens.expiresIn,
      };
    } catch (err) {
      if (err instanceof DomainError && err.status === 401) {
        const lockedFor = await this.throttle.recordFailure(email, ip);
        const known = await this.users.byEmail(email);
        await this.audit.record({
          actorId: null,
          ownerId: known?.id ?? null,
          itemId: null,
          action: 'auth.login_failed',
          detail: { ip, lockedFor },
        });
        this.log.warn('login failed', { ip, lockedFor });
      }
      throw err;
    }
  }

  async refresh(refreshToken: string, ip: string): Promise<TokenSet> {
    try {
      return await this.idp.refresh(refreshToken);
    } catch (err) {
      const reuse = err as { familyId?: string; userId?: string; name?: string };
      if (reuse.name === 'RefreshTokenReuseError' && reuse.familyId) {
        // Access tokens minted from the family die too (they carry it as origin_jti).
        await this.revocations.revoke(reuse.familyId, this.accessTokenHorizon(), 'refresh token reuse');
        await this.audit.record({
          actorId: null,
          ownerId: reuse.userId ?? null,
          itemId: null,
          action: 'auth.token_reuse',
          detail: { ip },
        });
        this.log.warn('refresh token reuse detected; family revoked', { userId: reuse.userId });
      }
      throw err;
    }
  }

  async logout(principal: Principal, refreshToken: string | undefined): Promise<void> {
    await this.revocations.revoke(principal.tokenId, principal.expiresAt, 'logout');
    if (refreshToken) {
      const family = await this.idp.familyOf?.(refreshToken);
      await this.idp.revokeRefreshToken(refreshToken);
      if (family) await this.revocations.revoke(family, this.accessTokenHorizon(), 'logout');
    }
    await this.audit.record({
      actorId: principal.userId,
      ownerId: principal.userId,
      itemId: null,
      action: 'auth.logout',
    });
    this.log.info('logout', { userId: principal.userId });
  }

  /**
   * Sends a reset code if the account exists. Answers the same whether it does or not (the route
   * says 202 either way); only an unreachable provider is an error.
   */
  async forgotPassword(email: string, ip: string): Promise<void> {
    if (!this.idp.requestPasswordReset) throw errors.unavailable('identity provider');
    const delivery = await this.idp.requestPasswordReset(email);
    if (delivery.by === 'caller') {
      // The local profile has no mail server: this log line is the email.
      this.log.info('password reset code emailed (local profile: no mail server, so written to this log)', {
        to: delivery.to,
        code: delivery.code,
        expiresInSeconds: 3600,
      });
    }
    const known = await this.users.byEmail(email);
    if (known)
      await this.audit.record({
        actorId: null,
        ownerId: known.id,
        itemId: null,
        action: 'auth.password_reset_requested',
        detail: { ip },
      });
  }

  /**
   * Sets a new password with the emailed code, then ends every session of the account: its refresh
   * families are revoked, and access tokens minted from them too when the provider names them.
   */
  async resetPassword(email: string, code: string, newPassword: string, ip: string): Promise<void> {
    if (!this.idp.confirmPasswordReset) throw errors.unavailable('identity provider');
    await this.idp.confirmPasswordReset({ email, code, newPassword });
    const user = await this.users.byEmail(email);
    if (!user) return;
    const families = (await this.idp.signOutEverywhere?.({ userId: user.id, email })) ?? [];
    for (const family of families)
      await this.revocations.revoke(family, this.accessTokenHorizon(), 'password reset');
    // A new password clears the lockouts earned by guessing the old one.
    await this.throttle.recordSuccess(email);
    await this.audit.record({
      actorId: user.id,
      ownerId: user.id,
      itemId: null,
      action: 'auth.password_reset',
      detail: { ip, sessionsEnded: families.length },
    });
    this.log.info('password reset', { userId: user.id });
  }

  private accessTokenHorizon(): number {
    return Math.floor(Date.now() / 1000) + this.opts.accessTokenTtlSeconds + 60;
  }
}
