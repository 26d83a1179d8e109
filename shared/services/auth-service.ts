/**
 * Use cases of identity: register, login, refresh, logout, password reset. Wraps an IdentityProvider (local or
 * Cognito) with what is ours in every profile: the first admin, login throttling, the revocation
 * list that API Gateway's authorizer cannot know about, provisioning the user's metadata, and the
 * security audit trail (logins, failures, token reuse).
 *
 * The users table is the system of record for roles. Every request's principal takes its role from
 * it (`roleOf`, cached a few seconds per process), not from the token's `cognito:groups`, so a
 * demotion reaches access tokens already issued; refresh issues tokens with the current role; and
 * `updateUser` (the admin API) changes the table first, then the provider's groups.
 */

import { errors, UnauthenticatedError } from '../domain/errors.ts';
import type { Principal, User } from '../domain/model.ts';
import type { Logger } from '../observability/logger.ts';
import type { IdentityProvider, TokenSet } from '../ports/identity-provider.ts';
import type { AuditLog, UserStore } from '../ports/metadata.ts';
import type { LoginThrottle } from './login-throttle.ts';
import type { RevocationList } from './revocation-list.ts';

export interface AuthServiceOptions {
  defaultQuotaBytes: number;
  accessTokenTtlSeconds: number;
  /** How long a refresh token lives (default 30 days): how long a bodyless logout's revocation is kept. */
  refreshTokenTtlSeconds?: number;
  /** How long a process trusts a role it read from the users table (default 5 s). */
  roleCacheSeconds?: number;
  /** Runs once an account exists (the container hands it the invitations to its address). */
  onAccountCreated?: (user: User) => Promise<unknown>;
}

/** The `origin_jti` (family) of an access token the provider just issued (no need to verify our own fetch). */
function originOf(accessToken: string): string | undefined {
  try {
    const payload = JSON.parse(
      Buffer.from(accessToken.split('.')[1] ?? '', 'base64url').toString('utf8'),
    ) as {
      origin_jti?: unknown;
    };
    return typeof payload.origin_jti === 'string' ? payload.origin_jti : undefined;
  } catch {
    return undefined;
  }
}

const ROLE_CACHE_MAX = 10_000;

export class AuthService {
  private readonly idp: IdentityProvider & { familyOf?(refreshToken: string): Promise<string | undefined> };
  private readonly users: UserStore;
  private readonly throttle: LoginThrottle;
  private readonly revocations: RevocationList;
  private readonly audit: AuditLog;
  private readonly log: Logger;
  private readonly opts: AuthServiceOptions;
  private readonly roles = new Map<string, { role: 'admin' | 'user'; until: number }>();

  constructor(
    idp: IdentityProvider & { familyOf?(refreshToken: string): Promise<string | undefined> },
    users: UserStore,
    throttle: LoginThrottle,
    revocations: RevocationList,
    audit: AuditLog,
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

  /** A new account; registration over the API always makes a user (admins come from the operator). */
  async register(email: string, password: string, ip: string): Promise<User> {
    return this.createAccount(email, password, 'user', { ip });
  }

  /**
   * Creates an account with the provider and the users table, undoing the provider's half when the
   * table refuses. `register` and the operator's admin bootstrap (admin-bootstrap.ts) both use it.
   */
  async createAccount(
    email: string,
    password: string,
    role: 'admin' | 'user',
    detail: Record<string, unknown>,
  ): Promise<User> {
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
      detail: { ...detail, role },
    });
    this.log.info('user registered', { userId, role });
    // The account exists whatever happens next; what waited for it (invitations) is retried by
    // nothing, so a failure here is logged loudly.
    await this.opts
      .onAccountCreated?.(user)
      .catch((err: unknown) =>
        this.log.error('a new account could not take what waited for it', { userId, err: String(err) }),
      );
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
        role: 'user',
        quotaBytes: this.opts.defaultQuotaBytes,
      });
      await this.audit.record({
        actorId: tokens.userId,
        ownerId: tokens.userId,
        itemId: null,
        action: 'auth.login',
        detail: { ip },
      });
      await this.rememberFamilies(tokens, []);
      this.log.info('login', { userId: tokens.userId });
      return {
        accessToken: tokens.accessToken,
        refreshToken: tokens.refreshToken,
        expiresIn: tokens.expiresIn,
      };
    } catch (err) {
      if (err instanceof UnauthenticatedError) {
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
    // A family ended by a logout that did not present this token (logout names the family by the
    // access token's origin_jti): refused here, whatever the provider would say.
    const families = await this.revocations.familiesOf(refreshToken);
    if (families.length > 0 && (await this.revocations.isRevoked(families)))
      return this.refuseRevokedFamily(refreshToken);
    let tokens: TokenSet;
    try {
      tokens = await this.idp.refresh(refreshToken);
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
    const origin = originOf(tokens.accessToken);
    if (origin && (await this.revocations.isRevoked([origin])))
      return this.refuseRevokedFamily(tokens.refreshToken, refreshToken);
    await this.rememberFamilies(tokens, families);
    return tokens;
  }

  /** Revokes the tokens at the provider too (best effort: the revocation list already refuses them). */
  private async refuseRevokedFamily(...refreshTokens: string[]): Promise<never> {
    for (const t of new Set(refreshTokens))
      await this.idp
        .revokeRefreshToken(t)
        .catch((err: unknown) =>
          this.log.warn('could not revoke a logged-out refresh token', { err: String(err) }),
        );
    throw errors.unauthorized('the refresh token is invalid');
  }

  /**
   * Records the family of the new access token (and the one before it: Cognito need not keep
   * `origin_jti` across rotations) against the refresh token issued with it.
   */
  private async rememberFamilies(tokens: TokenSet, previous: string[]): Promise<void> {
    const origin = originOf(tokens.accessToken);
    const families = [...new Set([...(origin ? [origin] : []), ...previous])].slice(0, 2);
    if (families.length === 0) return;
    await this.revocations.rememberRefreshToken(tokens.refreshToken, families, this.refreshTokenHorizon());
  }

  /**
   * Ends the session: the access token, the refresh-token family it names (`origin_jti`), and the
   * refresh token in the body if one came (with its own family). Without a refresh token the
   * family is revoked at the provider when it can (local), and in every profile put on the
   * revocation list until a refresh token could still live, which access tokens (the authorizer)
   * and refreshes through the API both consult. Cognito cannot revoke by family and a global
   * sign-out would end the user's other devices too, so there the list is what ends it.
   */
  async logout(principal: Principal, refreshToken: string | undefined): Promise<void> {
    await this.revocations.revoke(principal.tokenId, principal.expiresAt, 'logout');
    const family = principal.originTokenId;
    if (family) {
      await this.idp.revokeFamily?.({ familyId: family, userId: principal.userId });
      await this.revocations.revoke(family, this.refreshTokenHorizon(), 'logout');
    }
    if (refreshToken) {
      const own = await this.idp.familyOf?.(refreshToken);
      await this.idp.revokeRefreshToken(refreshToken);
      if (own && own !== family) await this.revocations.revoke(own, this.accessTokenHorizon(), 'logout');
    }
    await this.audit.record({
      actorId: principal.userId,
      ownerId: principal.userId,
      itemId: null,
      action: 'auth.logout',
      detail: { refreshToken: refreshToken ? 'presented' : 'by family' },
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

  /**
   * The caller's current role, from the users table (cached `roleCacheSeconds` per process, so a
   * role change reaches every Lambda within that). No row: `user`.
   */
  async roleOf(userId: string): Promise<'admin' | 'user'> {
    const now = Date.now();
    const hit = this.roles.get(userId);
    if (hit && hit.until > now) return hit.role;
    const role = (await this.users.roleOf(userId)) ?? 'user';
    if (this.roles.size >= ROLE_CACHE_MAX) this.roles.clear();
    this.roles.set(userId, { role, until: now + (this.opts.roleCacheSeconds ?? 5) * 1000 });
    return role;
  }

  /**
   * The admin API: changes a user's role and/or quota. The users table changes first (it is the
   * system of record, so authorization follows at once), then the provider's groups (so tokens
   * issued from now on carry the role); the call is idempotent, so a retry after a provider failure
   * repairs the groups. Leaving no admin is a 409.
   */
  async updateUser(
    actor: Principal,
    userId: string,
    patch: { role?: 'admin' | 'user'; quotaBytes?: number },
  ): Promise<User> {
    const res = await this.users.update(userId, patch);
    if (res === 'not-found') throw errors.notFound('user');
    if (res === 'last-admin')
      throw errors.conflict('the last admin cannot be demoted; promote another admin first');
    const { user, previous } = res;
    this.roles.delete(userId);
    await this.audit.record({
      actorId: actor.userId,
      ownerId: user.id,
      itemId: null,
      action: 'admin.user_updated',
      detail: {
        ...(patch.role === undefined ? {} : { role: { from: previous.role, to: user.role } }),
        ...(patch.quotaBytes === undefined
          ? {}
          : { quotaBytes: { from: previous.quotaBytes, to: user.quotaBytes } }),
      },
    });
    this.log.info('user updated', { actorId: actor.userId, userId: user.id, role: user.role });
    if (patch.role !== undefined && this.idp.setRole) {
      try {
        await this.idp.setRole({ userId: user.id, email: user.email, role: user.role });
      } catch (err) {
        this.log.error('role saved, but the identity provider groups were not updated', {
          userId: user.id,
          err: String(err),
        });
        throw err;
      }
    }
    return user;
  }

  private refreshTokenHorizon(): number {
    return Math.floor(Date.now() / 1000) + (this.opts.refreshTokenTtlSeconds ?? 30 * 86_400) + 60;
  }

  private accessTokenHorizon(): number {
    return Math.floor(Date.now() / 1000) + this.opts.accessTokenTtlSeconds + 60;
  }
}
