/**
 * The Cognito adapter of the identity port against the emulator's cognito-idp (moto): sign-up into a
 * group, login, refresh, errors; the access token checked by the same aws-jwt-verify verifier the
 * API uses, with the emulator's JWKS. Emulator gaps (moto 5.2): no RevokeToken and no
 * GetTokensFromRefreshToken (refresh-token rotation), so the adapter runs with `rotation: false`
 * here and revocation is not exercised (see docs/architecture.md).
 *
 * The deployed app client has a secret. moto checks SECRET_HASH only on SRP and REFRESH_TOKEN_AUTH,
 * not on USER_PASSWORD_AUTH, ForgotPassword or ConfirmForgotPassword, so the suite records every
 * SDK call's input and recomputes the hash itself from the secret DescribeUserPoolClient returns.
 * moto hands out ForgotPassword's code in an `x-moto-forgot-password-confirmation-code` response
 * header (its stand-in for the email), which the recorder reads.
 */

import { createHmac } from 'node:crypto';
import http from 'node:http';
import {
  AdminGetUserCommand,
  CognitoIdentityProviderClient,
  CreateGroupCommand,
  CreateUserPoolClientCommand,
} from '@aws-sdk/client-cognito-identity-provider';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { CognitoIdentityProvider } from '../../shared/adapters/cognito/cognito-identity-provider.ts';
import { createAccessTokenVerifier } from '../../shared/auth/access-token-verifier.ts';
import { DomainError } from '../../shared/domain/errors.ts';
import { statusOf } from '../../shared/http/problem.ts';
import { createUserPool, REGION, uid } from '../support/fixtures.ts';

const cognitoClient = () =>
  new CognitoIdentityProviderClient({
    region: REGION,
    endpoint: inject('awsEndpoint'),
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
const client = cognitoClient();

interface Call {
  command: string;
  input: Record<string, unknown>;
  headers: Record<string, string>;
}

/**
 * A client that records every command's input and response headers, and can fail a chosen command
 * (before it is sent) to inject a failure at one step of a flow.
 */
function recordingClient() {
  const c = cognitoClient();
  const calls: Call[] = [];
  const failing = new Set<string>();
  c.middlewareStack.add(
    (next, context) => async (args) => {
      const command = String(context.commandName).replace(/Command$/, '');
      const call: Call = {
        command,
        input: structuredClone(args.input as Record<string, unknown>),
        headers: {},
      };
      calls.push(call);
      if (failing.has(command))
        throw Object.assign(new Error(`injected failure of ${command}`), { name: 'InternalErrorException' });
      const out = await next(args);
      call.headers = ((out.response as { headers?: Record<string, string> }).headers ?? {}) as Record<
        string,
        string
      >;
      return out;
    },
    { step: 'initialize', name: 'stratusRecorder' },
  );
  return { client: c, calls, failing, of: (command: string) => calls.filter((x) => x.command === command) };
}

/** SECRET_HASH recomputed here from Cognito's definition, independently of the adapter. */
const expectedHash = (secret: string, username: string, appClientId: string) =>
  createHmac('sha256', Buffer.from(secret, 'utf8'))
    .update(`${username}${appClientId}`, 'utf8')
    .digest('base64');

let idp: CognitoIdentityProvider;
let poolId: string;
let clientId: string;
/** The app client as deployed: with a secret. */
let secretClientId: string;
let secret: string;

const claims = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1] as string, 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >;

async function rejection(p: Promise<unknown>): Promise<DomainError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DomainError);
  return err as DomainError;
}

beforeAll(async () => {
  poolId = await createUserPool(client, 'stratus-');
  const app = await client.send(
    new CreateUserPoolClientCommand({
      UserPoolId: poolId,
      ClientName: 'api',
      ExplicitAuthFlows: ['ALLOW_USER_PASSWORD_AUTH', 'ALLOW_REFRESH_TOKEN_AUTH'],
    }),
  );
  clientId = app.UserPoolClient?.ClientId as string;
  const withSecret = await client.send(
    new CreateUserPoolClientCommand({
      UserPoolId: poolId,
      ClientName: 'api-with-secret',
      GenerateSecret: true,
      ExplicitAuthFlows: ['ALLOW_USER_PASSWORD_AUTH', 'ALLOW_REFRESH_TOKEN_AUTH'],
    }),
  );
  secretClientId = withSecret.UserPoolClient?.ClientId as string;
  secret = withSecret.UserPoolClient?.ClientSecret as string;
  expect(secret).toEqual(expect.any(String));
  for (const GroupName of ['admin', 'user'])
    await client.send(new CreateGroupCommand({ UserPoolId: poolId, GroupName }));
  idp = new CognitoIdentityProvider(client, {
    userPoolId: poolId,
    clientId,
    rotation: false,
    clientSecret: null,
  });
});

/** The adapter as the deployed stack builds it: no secret given, so it reads it from Cognito. */
function deployedIdp(rotation = false) {
  const rec = recordingClient();
  return {
    ...rec,
    idp: new CognitoIdentityProvider(rec.client, { userPoolId: poolId, clientId: secretClientId, rotation }),
  };
}

async function userExists(email: string): Promise<boolean> {
  return client.send(new AdminGetUserCommand({ UserPoolId: poolId, Username: email })).then(
    () => true,
    (e: { name?: string }) => {
      if (e.name === 'UserNotFoundException') return false;
      throw e;
    },
  );
}

describe('CognitoIdentityProvider (emulator cognito-idp)', () => {
  it('signs up a confirmed user in its group; login returns tokens for that subject', async () => {
    const email = `${uid('u')}@example.com`;
    const { userId } = await idp.register({ email, password: 'correct horse battery', role: 'admin' });
    expect(userId).toMatch(/^[0-9a-f-]{36}$/);
    const tokens = await idp.login({ email, password: 'correct horse battery' });
    expect(tokens.userId).toBe(userId);
    expect(tokens.expiresIn).toBeGreaterThan(0);
    const c = claims(tokens.accessToken);
    expect(c.sub).toBe(userId);
    expect(c.token_use).toBe('access');
    expect(c['cognito:groups']).toEqual(['admin']);
  });

  it("the API's aws-jwt-verify verifier accepts the access token (JWKS from the emulator)", async () => {
    const email = `${uid('u')}@example.com`;
    await idp.register({ email, password: 'correct horse battery', role: 'user' });
    const tokens = await idp.login({ email, password: 'correct horse battery' });
    const iss = claims(tokens.accessToken).iss as string;
    expect(iss.endsWith(`/${poolId}`)).toBe(true);
    // The emulator routes by Host: fetch its JWKS as cognito-idp, then hand the keys to the verifier.
    const endpoint = new URL(inject('awsEndpoint'));
    const jwks = await new Promise<{ keys: object[] }>((resolve, reject) => {
      http
        .get(
          {
            host: endpoint.hostname,
            port: endpoint.port,
            path: `/${poolId}/.well-known/jwks.json`,
            headers: { host: `cognito-idp.${REGION}.amazonaws.com` },
          },
          (res) => {
            let body = '';
            res.on('data', (c: Buffer) => {
              body += c.toString();
            });
            res.on('end', () => resolve(JSON.parse(body)));
          },
        )
        .on('error', reject);
    });
    expect(jwks.keys.length).toBeGreaterThan(0);
    const verifier = createAccessTokenVerifier({
      issuer: iss,
      clientId,
      jwksUri: `${iss}/.well-known/jwks.json`,
      jwks,
    });
    const verified = (await verifier.verify(tokens.accessToken)) as Record<string, unknown>;
    expect(verified.sub).toBe(tokens.userId);
    await expect(verifier.verify(`${tokens.accessToken.slice(0, -4)}AAAA`)).rejects.toThrow();
  });

  it('a second sign-up with the same email is email-taken (409)', async () => {
    const email = `${uid('u')}@example.com`;
    await idp.register({ email, password: 'correct horse battery', role: 'user' });
    const err = await rejection(idp.register({ email, password: 'another password', role: 'user' }));
    expect([err.slug, statusOf(err)]).toEqual(['email-taken', 409]);
  });

  it('a wrong password and an unknown email are the same 401, saying nothing more', async () => {
    const email = `${uid('u')}@example.com`;
    await idp.register({ email, password: 'correct horse battery', role: 'user' });
    const wrong = await rejection(idp.login({ email, password: 'not the password' }));
    const unknown = await rejection(
      idp.login({ email: `${uid('nobody')}@example.com`, password: 'whatever12' }),
    );
    expect(statusOf(wrong)).toBe(401);
    expect(statusOf(unknown)).toBe(401);
    expect(wrong.message).toBe(unknown.message);
  });

  it('refresh issues a new access token for the same subject; a bogus refresh token is 401', async () => {
    const email = `${uid('u')}@example.com`;
    await idp.register({ email, password: 'correct horse battery', role: 'user' });
    const first = await idp.login({ email, password: 'correct horse battery' });
    const next = await idp.refresh(first.refreshToken);
    expect(claims(next.accessToken).sub).toBe(first.userId);
    expect(next.refreshToken).toEqual(expect.any(String));
    const err = await rejection(idp.refresh('not-a-real-refresh-token-at-all'));
    expect(statusOf(err)).toBe(401);
  });
});

describe('the app client with a secret (as deployed)', () => {
  it('reads the secret once with DescribeUserPoolClient; InitiateAuth carries the right SECRET_HASH', async () => {
    const { idp: sidp, of } = deployedIdp();
    const email = `${uid('s')}@example.com`;
    const { userId } = await sidp.register({ email, password: 'correct horse battery', role: 'user' });
    const first = await sidp.login({ email, password: 'correct horse battery' });
    await sidp.login({ email, password: 'correct horse battery' });
    expect(first.userId).toBe(userId);
    expect(of('DescribeUserPoolClient')).toHaveLength(1);
    const auth = of('InitiateAuth');
    expect(auth).toHaveLength(2);
    for (const call of auth) {
      const params = call.input.AuthParameters as Record<string, string>;
      expect(params.USERNAME).toBe(email);
      expect(params.SECRET_HASH).toBe(expectedHash(secret, email, secretClientId));
    }
  });

  it('GetTokensFromRefreshToken and RevokeToken carry the client secret', async () => {
    const { idp: sidp, of } = deployedIdp(true);
    // moto has neither command: what matters here is what the adapter sends.
    await sidp.refresh('a-refresh-token-from-somewhere').catch(() => undefined);
    await sidp.revokeRefreshToken('a-refresh-token-from-somewhere').catch(() => undefined);
    expect(of('GetTokensFromRefreshToken')[0]?.input).toMatchObject({
      ClientId: secretClientId,
      ClientSecret: secret,
    });
    expect(of('RevokeToken')[0]?.input).toMatchObject({ ClientId: secretClientId, ClientSecret: secret });
  });

  it('password reset: ForgotPassword and ConfirmForgotPassword with SECRET_HASH; a wrong code is a 400', async () => {
    const { idp: sidp, of } = deployedIdp();
    const email = `${uid('r')}@example.com`;
    await sidp.register({ email, password: 'old password 1', role: 'user' });
    expect(await sidp.requestPasswordReset(email)).toEqual({ by: 'provider' });
    const forgot = of('ForgotPassword')[0];
    expect(forgot?.input).toMatchObject({
      ClientId: secretClientId,
      Username: email,
      SecretHash: expectedHash(secret, email, secretClientId),
    });
    const code = forgot?.headers['x-moto-forgot-password-confirmation-code'];
    expect(code).toMatch(/^moto-confirmation-code:\d{6}$/);

    const wrong = await rejection(
      sidp.confirmPasswordReset({
        email,
        code: 'moto-confirmation-code:000000',
        newPassword: 'new password 2',
      }),
    );
    expect([wrong.slug, statusOf(wrong)]).toEqual(['validation-error', 400]);
    await sidp.confirmPasswordReset({ email, code: code as string, newPassword: 'new password 2' });
    const confirm = of('ConfirmForgotPassword').at(-1);
    expect(confirm?.input).toMatchObject({
      Username: email,
      ConfirmationCode: code,
      SecretHash: expectedHash(secret, email, secretClientId),
    });
    expect((await sidp.login({ email, password: 'new password 2' })).accessToken).toEqual(expect.any(String));
    expect(statusOf(await rejection(sidp.login({ email, password: 'old password 1' })))).toBe(401);
  });

  it('a reset request for an unknown address answers exactly as for a known one', async () => {
    const { idp: sidp } = deployedIdp();
    expect(await sidp.requestPasswordReset(`${uid('nobody')}@example.com`)).toEqual({ by: 'provider' });
  });
});

describe('sessions and rollback', () => {
  it('signOutEverywhere (AdminUserGlobalSignOut) kills the refresh tokens of every login', async () => {
    const email = `${uid('g')}@example.com`;
    await idp.register({ email, password: 'correct horse battery', role: 'user' });
    const a = await idp.login({ email, password: 'correct horse battery' });
    const b = await idp.login({ email, password: 'correct horse battery' });
    await idp.refresh(a.refreshToken);
    expect(await idp.signOutEverywhere({ userId: a.userId, email })).toEqual([]);
    expect(statusOf(await rejection(idp.refresh(a.refreshToken)))).toBe(401);
    expect(statusOf(await rejection(idp.refresh(b.refreshToken)))).toBe(401);
  });

  it.each(['AdminSetUserPassword', 'AdminAddUserToGroup'])(
    'a registration failing at %s deletes the half-created user, so the email can register again',
    async (step) => {
      const rec = deployedIdp();
      const email = `${uid('h')}@example.com`;
      rec.failing.add(step);
      const err = await rejection(
        rec.idp.register({ email, password: 'correct horse battery', role: 'user' }),
      );
      expect(statusOf(err)).toBe(503);
      expect(rec.of('AdminDeleteUser')).toHaveLength(1);
      expect(await userExists(email)).toBe(false);
      rec.failing.clear();
      const { userId } = await rec.idp.register({ email, password: 'correct horse battery', role: 'user' });
      expect((await rec.idp.login({ email, password: 'correct horse battery' })).userId).toBe(userId);
    },
  );

  it('a duplicate registration never deletes the account that owns the email', async () => {
    const rec = deployedIdp();
    const email = `${uid('d')}@example.com`;
    await rec.idp.register({ email, password: 'correct horse battery', role: 'user' });
    const err = await rejection(rec.idp.register({ email, password: 'another password', role: 'user' }));
    expect(err.slug).toBe('email-taken');
    expect(rec.of('AdminDeleteUser')).toHaveLength(0);
    expect((await rec.idp.login({ email, password: 'correct horse battery' })).accessToken).toBeTruthy();
  });
});
