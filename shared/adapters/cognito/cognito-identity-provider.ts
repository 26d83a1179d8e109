/**
 * The identity port on Amazon Cognito (the aws profile). Sign-up goes through the API, which creates
 * a confirmed user with AdminCreateUser (no invitation email) and a permanent password, so the user
 * signs in at once as in the local profile, and puts it in the `admin` or `user` group; the access
 * token's `cognito:groups` claim carries the role to the API's authorizer. If a step after
 * AdminCreateUser fails, AdminDeleteUser undoes the half-created user, so the email can register
 * again. Login is USER_PASSWORD_AUTH. Refresh uses GetTokensFromRefreshToken when the app client has
 * refresh-token rotation (a new refresh token each time; Cognito rejects the old one after its grace
 * period), else REFRESH_TOKEN_AUTH, which returns no new refresh token, so the old one is kept.
 * Revocation is RevokeToken (the token and the access tokens issued from it). Password reset is
 * Cognito's own: ForgotPassword emails a code, ConfirmForgotPassword sets the password, and
 * AdminUserGlobalSignOut then ends every session of the user.
 *
 * Roles: the users table is the system of record (the API reads the principal's role from it);
 * `setRole` makes the Cognito groups follow it (AdminAddUserToGroup for the new role, then
 * AdminRemoveUserFromGroup for the other), so tokens Cognito issues afterwards, refreshes
 * included, carry the current role. Logout without a refresh token has no Cognito call: RevokeToken
 * needs the token, and AdminUserGlobalSignOut would end the user's other devices too, so the
 * service's revocation list ends that family (see AuthService.logout).
 *
 * The app client has a secret, so nobody can call InitiateAuth (or ForgotPassword) with only the
 * public client id and skip the API's throttles: every client-side call carries
 * SECRET_HASH = Base64(HMAC-SHA256(secret, username + clientId)), or the secret itself where the
 * API takes it (GetTokensFromRefreshToken, RevokeToken). Without `clientSecret` in the options the
 * adapter reads it once with DescribeUserPoolClient (IAM-guarded, granted to the auth function only)
 * and keeps it in memory, so the secret is in no template, environment or parameter.
 * Cognito's errors become domain errors; its messages never reach clients (no user enumeration).
 */
import { createHmac } from 'node:crypto';
import {
  AdminAddUserToGroupCommand,
  AdminCreateUserCommand,
  AdminDeleteUserCommand,
  AdminRemoveUserFromGroupCommand,
  AdminSetUserPasswordCommand,
  AdminUserGlobalSignOutCommand,
  type AuthenticationResultType,
  type CognitoIdentityProviderClient,
  ConfirmForgotPasswordCommand,
  DescribeUserPoolClientCommand,
  ForgotPasswordCommand,
  GetTokensFromRefreshTokenCommand,
  InitiateAuthCommand,
  RevokeTokenCommand,
} from '@aws-sdk/client-cognito-identity-provider';
import { DomainError, errors } from '../../domain/errors.ts';
import type { IdentityProvider, PasswordResetDelivery, TokenSet } from '../../ports/identity-provider.ts';

export interface CognitoOptions {
  userPoolId: string;
  clientId: string;
  /** The app client rotates refresh tokens (GetTokensFromRefreshToken); false on emulators without it. */
  rotation: boolean;
  /**
   * The app client's secret. Absent: read once with DescribeUserPoolClient on first use (the
   * deployed stack); a client without a secret then sends none. `null`: the client has no secret.
   */
  clientSecret?: string | null;
}

const name = (err: unknown) => (err as { name?: string })?.name ?? '';

/** SECRET_HASH as Cognito defines it: Base64(HMAC-SHA256(key = client secret, username + client id)). */
export function secretHash(clientSecret: string, username: string, clientId: string): string {
  return createHmac('sha256', clientSecret)
    .update(username + clientId)
    .digest('base64');
}

/** Reads the `sub` of a token Cognito just issued over TLS (no need to verify our own fetch). */
function subjectOf(jwt: string): string {
  const payload = jwt.split('.')[1];
  if (!payload) throw new Error('Cognito returned a malformed token');
  const sub = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: unknown }).sub;
  if (typeof sub !== 'string') throw new Error('Cognito token without sub');
  return sub;
}

const invalidCode = () =>
  errors.validation('the code is wrong, has expired or was already used; ask for a new one', [
    { path: 'body.code', message: 'invalid or expired code' },
  ]);

export class CognitoIdentityProvider implements IdentityProvider {
  private readonly client: CognitoIdentityProviderClient;
  private readonly opts: CognitoOptions;
  private secret: Promise<string | undefined> | undefined;

  constructor(client: CognitoIdentityProviderClient, opts: CognitoOptions) {
    this.client = client;
    this.opts = opts;
    if (opts.clientSecret !== undefined) this.secret = Promise.resolve(opts.clientSecret ?? undefined);
  }

  /** The client secret, read once per execution environment (a failed read is retried next time). */
  private clientSecret(): Promise<string | undefined> {
    this.secret ??= this.client
      .send(
        new DescribeUserPoolClientCommand({ UserPoolId: this.opts.userPoolId, ClientId: this.opts.clientId }),
      )
      .then((r) => r.UserPoolClient?.ClientSecret ?? undefined);
    const pending = this.secret;
    pending.catch(() => {
      if (this.secret === pending) this.secret = undefined;
    });
    return pending;
  }

  /** `{SECRET_HASH}` for AuthParameters when the client has a secret, else nothing. */
  private async hashFor(username: string): Promise<string | undefined> {
    const secret = await this.clientSecret();
    return secret === undefined ? undefined : secretHash(secret, username, this.opts.clientId);
  }

  private translate(err: unknown): never {
    if (err instanceof DomainError) throw err;
    switch (name(err)) {
      case 'UsernameExistsException':
      case 'AliasExistsException':
        throw errors.emailTaken();
      case 'InvalidPasswordException':
        throw errors.validation('the password does not meet the policy', [
          { path: 'body.password', message: 'too weak for the user pool policy' },
        ]);
      case 'NotAuthorizedException':
      case 'UserNotFoundException':
      case 'UserNotConfirmedException':
      case 'PasswordResetRequiredException':
        throw errors.unauthorized('bad email or password');
      case 'TooManyRequestsException':
      case 'LimitExceededException':
      case 'TooManyFailedAttemptsException':
        throw errors.tooManyAttempts(1);
      default:
        throw errors.unavailable('identity provider');
    }
  }

  async register(input: {
    email: string;
    password: string;
    role: 'admin' | 'user';
  }): Promise<{ userId: string }> {
    let createdName: string | undefined;
    try {
      // Created by the API (self sign-up stays off, so nobody bypasses its throttles), with no
      // invitation email, then given its permanent password and its group.
      const created = await this.client.send(
        new AdminCreateUserCommand({
          UserPoolId: this.opts.userPoolId,
          Username: input.email,
          MessageAction: 'SUPPRESS',
          UserAttributes: [
            { Name: 'email', Value: input.email },
            { Name: 'email_verified', Value: 'true' },
          ],
        }),
      );
      const username = created.User?.Username ?? input.email;
      createdName = username;
      await this.client.send(
        new AdminSetUserPasswordCommand({
          UserPoolId: this.opts.userPoolId,
          Username: username,
          Password: input.password,
          Permanent: true,
        }),
      );
      await this.client.send(
        new AdminAddUserToGroupCommand({
          UserPoolId: this.opts.userPoolId,
          Username: username,
          GroupName: input.role,
        }),
      );
      const sub = created.User?.Attributes?.find((a) => a.Name === 'sub')?.Value;
      if (!sub) throw new Error('Cognito AdminCreateUser returned no sub');
      return { userId: sub };
    } catch (err) {
      // Undo only a user this call created (never one that existed: UsernameExists leaves
      // createdName unset). Without the undo, the address could neither register (taken) nor sign
      // in (no password, or no group).
      if (createdName !== undefined) await this.deleteUser(createdName).catch(() => undefined);
      this.translate(err);
    }
  }

  async deleteAccount(email: string): Promise<void> {
    try {
      await this.deleteUser(email);
    } catch (err) {
      if (name(err) === 'UserNotFoundException') return;
      this.translate(err);
    }
  }

  private async deleteUser(username: string): Promise<void> {
    await this.client.send(
      new AdminDeleteUserCommand({ UserPoolId: this.opts.userPoolId, Username: username }),
    );
  }

  async login(input: { email: string; password: string }): Promise<TokenSet & { userId: string }> {
    try {
      const hash = await this.hashFor(input.email);
      const res = await this.client.send(
        new InitiateAuthCommand({
          ClientId: this.opts.clientId,
          AuthFlow: 'USER_PASSWORD_AUTH',
          AuthParameters: {
            USERNAME: input.email,
            PASSWORD: input.password,
            ...(hash === undefined ? {} : { SECRET_HASH: hash }),
          },
        }),
      );
      const r = res.AuthenticationResult;
      if (!r?.AccessToken || !r.RefreshToken) throw errors.unauthorized('bad email or password');
      return {
        accessToken: r.AccessToken,
        refreshToken: r.RefreshToken,
        expiresIn: r.ExpiresIn ?? 900,
        userId: subjectOf(r.AccessToken),
      };
    } catch (err) {
      this.translate(err);
    }
  }

  async refresh(refreshToken: string): Promise<TokenSet> {
    try {
      const secret = await this.clientSecret();
      let res: { AuthenticationResult?: AuthenticationResultType | undefined };
      if (this.opts.rotation) {
        res = await this.client.send(
          new GetTokensFromRefreshTokenCommand({
            ClientId: this.opts.clientId,
            RefreshToken: refreshToken,
            ...(secret === undefined ? {} : { ClientSecret: secret }),
          }),
        );
      } else {
        // REFRESH_TOKEN_AUTH's SECRET_HASH is keyed by the user's name, which a refresh token alone
        // does not tell: that path serves emulators with secretless clients only.
        if (secret !== undefined)
          throw new Error('REFRESH_TOKEN_AUTH cannot sign for a client with a secret; enable rotation');
        res = await this.client.send(
          new InitiateAuthCommand({
            ClientId: this.opts.clientId,
            AuthFlow: 'REFRESH_TOKEN_AUTH',
            AuthParameters: { REFRESH_TOKEN: refreshToken },
          }),
        );
      }
      const r = res.AuthenticationResult;
      if (!r?.AccessToken) throw errors.unauthorized('invalid refresh token');
      // Without rotation Cognito returns no new refresh token: the old one stays valid.
      return {
        accessToken: r.AccessToken,
        refreshToken: r.RefreshToken ?? refreshToken,
        expiresIn: r.ExpiresIn ?? 900,
      };
    } catch (err) {
      this.translate(err);
    }
  }

  async revokeRefreshToken(refreshToken: string): Promise<void> {
    try {
      const secret = await this.clientSecret();
      await this.client.send(
        new RevokeTokenCommand({
          ClientId: this.opts.clientId,
          Token: refreshToken,
          ...(secret === undefined ? {} : { ClientSecret: secret }),
        }),
      );
    } catch (err) {
      // Unknown or already revoked tokens are ignored (the port's contract).
      if (
        ['NotAuthorizedException', 'UnsupportedTokenTypeException', 'InvalidParameterException'].includes(
          name(err),
        )
      )
        return;
      this.translate(err);
    }
  }

  async requestPasswordReset(email: string): Promise<PasswordResetDelivery> {
    try {
      const hash = await this.hashFor(email);
      // Cognito emails the code. With PreventUserExistenceErrors it answers an unknown address as
      // it answers a known one.
      await this.client.send(
        new ForgotPasswordCommand({
          ClientId: this.opts.clientId,
          Username: email,
          ...(hash === undefined ? {} : { SecretHash: hash }),
        }),
      );
      return { by: 'provider' };
    } catch (err) {
      // Whatever Cognito says about this one account (unknown, disabled, no verified email, its
      // own per-user limit) must not reach the client: the API answers 202 for every address.
      if (
        [
          'UserNotFoundException',
          'NotAuthorizedException',
          'InvalidParameterException',
          'UserNotConfirmedException',
          'LimitExceededException',
          'CodeDeliveryFailureException',
          'InvalidEmailRoleAccessPolicyException',
        ].includes(name(err))
      )
        return { by: 'provider' };
      this.translate(err);
    }
  }

  async confirmPasswordReset(input: { email: string; code: string; newPassword: string }): Promise<void> {
    try {
      const hash = await this.hashFor(input.email);
      await this.client.send(
        new ConfirmForgotPasswordCommand({
          ClientId: this.opts.clientId,
          Username: input.email,
          ConfirmationCode: input.code,
          Password: input.newPassword,
          ...(hash === undefined ? {} : { SecretHash: hash }),
        }),
      );
    } catch (err) {
      switch (name(err)) {
        case 'CodeMismatchException':
        case 'ExpiredCodeException':
        // An unknown address is answered as a wrong code (no account oracle).
        case 'UserNotFoundException':
        case 'NotAuthorizedException':
          throw invalidCode();
        case 'InvalidPasswordException':
          throw errors.validation('the password does not meet the policy', [
            { path: 'body.newPassword', message: 'too weak for the user pool policy' },
          ]);
        default:
          this.translate(err);
      }
    }
  }

  async setRole(input: { userId: string; email: string; role: 'admin' | 'user' }): Promise<void> {
    const other = input.role === 'admin' ? 'user' : 'admin';
    try {
      // Added first: a failure in between leaves the user in both groups, never in none (and the
      // API's authorization reads the users table anyway). Both calls are idempotent in Cognito.
      await this.client.send(
        new AdminAddUserToGroupCommand({
          UserPoolId: this.opts.userPoolId,
          Username: input.email,
          GroupName: input.role,
        }),
      );
      await this.client.send(
        new AdminRemoveUserFromGroupCommand({
          UserPoolId: this.opts.userPoolId,
          Username: input.email,
          GroupName: other,
        }),
      );
    } catch (err) {
      if (name(err) === 'UserNotFoundException') throw errors.notFound('user');
      this.translate(err);
    }
  }

  async signOutEverywhere(input: { userId: string; email: string }): Promise<string[]> {
    try {
      // Revokes every refresh token of the user. Cognito does not say which families (origin_jti)
      // they were, so access tokens already issued live out their lifetime (15 minutes).
      await this.client.send(
        new AdminUserGlobalSignOutCommand({ UserPoolId: this.opts.userPoolId, Username: input.email }),
      );
      return [];
    } catch (err) {
      if (name(err) === 'UserNotFoundException') return [];
      this.translate(err);
    }
  }
}
