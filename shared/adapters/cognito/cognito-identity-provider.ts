/**
 * The identity port on Amazon Cognito (the aws profile). Sign-up goes through the API, which creates
 * a confirmed user with AdminCreateUser (no invitation email) and a permanent password, so the user
 * signs in at once as in the local profile, and puts it in the `admin` or `user` group; the access token's `cognito:groups` claim carries the role to the API's
 * authorizer. Login is USER_PASSWORD_AUTH. Refresh uses GetTokensFromRefreshToken when the app
 * client has refresh-token rotation (a new refresh token each time; Cognito rejects the old one
 * after its grace period), else REFRESH_TOKEN_AUTH, which returns no new refresh token, so the old
 * one is kept. Revocation is RevokeToken (the token and the access tokens issued from it).
 * Cognito's errors become domain errors; its messages never reach clients (no user enumeration).
 */
import {
  AdminAddUserToGroupCommand,
  AdminCreateUserCommand,
  AdminSetUserPasswordCommand,
  type CognitoIdentityProviderClient,
  GetTokensFromRefreshTokenCommand,
  InitiateAuthCommand,
  RevokeTokenCommand,
} from '@aws-sdk/client-cognito-identity-provider';
import { DomainError, errors } from '../../domain/errors.ts';
import type { IdentityProvider, TokenSet } from '../../ports/identity-provider.ts';

export interface CognitoOptions {
  userPoolId: string;
  clientId: string;
  /** The app client rotates refresh tokens (GetTokensFromRefreshToken); false on emulators without it. */
  rotation: boolean;
}

const name = (err: unknown) => (err as { name?: string })?.name ?? '';

/** Reads the `sub` of a token Cognito just issued over TLS (no need to verify our own fetch). */
function subjectOf(jwt: string): string {
  const payload = jwt.split('.')[1];
  if (!payload) throw new Error('Cognito returned a malformed token');
  const sub = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: unknown }).sub;
  if (typeof sub !== 'string') throw new Error('Cognito token without sub');
  return sub;
}

export class CognitoIdentityProvider implements IdentityProvider {
  private readonly client: CognitoIdentityProviderClient;
  private readonly opts: CognitoOptions;

  constructor(client: CognitoIdentityProviderClient, opts: CognitoOptions) {
    this.client = client;
    this.opts = opts;
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
      this.translate(err);
    }
  }

  async login(input: { email: string; password: string }): Promise<TokenSet & { userId: string }> {
    try {
      const res = await this.client.send(
        new InitiateAuthCommand({
          ClientId: this.opts.clientId,
          AuthFlow: 'USER_PASSWORD_AUTH',
          AuthParameters: { USERNAME: input.email, PASSWORD: input.password },
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
      const res = this.opts.rotation
        ? await this.client.send(
            new GetTokensFromRefreshTokenCommand({
              ClientId: this.opts.clientId,
              RefreshToken: refreshToken,
            }),
          )
        : await this.client.send(
            new InitiateAuthCommand({
              ClientId: this.opts.clientId,
              AuthFlow: 'REFRESH_TOKEN_AUTH',
              AuthParameters: { REFRESH_TOKEN: refreshToken },
            }),
          );
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
      await this.client.send(new RevokeTokenCommand({ ClientId: this.opts.clientId, Token: refreshToken }));
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
}
