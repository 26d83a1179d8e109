/**
 * Use cases of identity: register, login, refresh, logout. Wraps an IdentityProvider (local or
 * Cognito) with what is ours in every profile: the first admin, login throttling, the revocation
 * list that API Gateway's authorizer cannot know about, provisioning the user's metadata, and the
 * security audit trail (logins, failures, token reuse).
 */
import type { AuditRepository } from '../adapters/postgres/audit-repository.ts';
import type { User, UserRepository } from '../adapters/postgres/user-repository.ts';
import { DomainError } from '../domain/errors.ts';
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
    const user = await this.users.ensure({
      id: userId,
      email,
      role,
      quotaBytes: this.opts.defaultQuotaBytes,
    });
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

  private accessTokenHorizon(): number {
    return Math.floor(Date.now() / 1000) + this.opts.accessTokenTtlSeconds + 60;
  }
}
