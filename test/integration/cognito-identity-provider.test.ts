/**
 * The Cognito adapter of the identity port against the emulator's cognito-idp (moto): sign-up into a
 * group, login, refresh, errors; the access token checked by the same aws-jwt-verify verifier the
 * API uses, with the emulator's JWKS. Emulator gaps (moto 5.2): no RevokeToken and no
 * GetTokensFromRefreshToken (refresh-token rotation), so the adapter runs with `rotation: false`
 * here and revocation is not exercised (see docs/architecture.md).
 */

import http from 'node:http';
import {
  CognitoIdentityProviderClient,
  CreateGroupCommand,
  CreateUserPoolClientCommand,
  CreateUserPoolCommand,
} from '@aws-sdk/client-cognito-identity-provider';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { CognitoIdentityProvider } from '../../shared/adapters/cognito/cognito-identity-provider.ts';
import { createAccessTokenVerifier } from '../../shared/auth/access-token-verifier.ts';
import { DomainError } from '../../shared/domain/errors.ts';
import { REGION, uid } from '../support/fixtures.ts';

const client = new CognitoIdentityProviderClient({
  region: REGION,
  endpoint: inject('awsEndpoint'),
  credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
});

let idp: CognitoIdentityProvider;
let poolId: string;
let clientId: string;

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
  const pool = await client.send(
    new CreateUserPoolCommand({
      PoolName: uid('stratus-'),
      UsernameAttributes: ['email'],
      Policies: {
        PasswordPolicy: {
          MinimumLength: 8,
          RequireSymbols: false,
          RequireUppercase: false,
          RequireLowercase: false,
          RequireNumbers: false,
        },
      },
    }),
  );
  poolId = pool.UserPool?.Id as string;
  const app = await client.send(
    new CreateUserPoolClientCommand({
      UserPoolId: poolId,
      ClientName: 'api',
      ExplicitAuthFlows: ['ALLOW_USER_PASSWORD_AUTH', 'ALLOW_REFRESH_TOKEN_AUTH'],
    }),
  );
  clientId = app.UserPoolClient?.ClientId as string;
  for (const GroupName of ['admin', 'user'])
    await client.send(new CreateGroupCommand({ UserPoolId: poolId, GroupName }));
  idp = new CognitoIdentityProvider(client, { userPoolId: poolId, clientId, rotation: false });
});

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
    expect([err.slug, err.status]).toEqual(['email-taken', 409]);
  });

  it('a wrong password and an unknown email are the same 401, saying nothing more', async () => {
    const email = `${uid('u')}@example.com`;
    await idp.register({ email, password: 'correct horse battery', role: 'user' });
    const wrong = await rejection(idp.login({ email, password: 'not the password' }));
    const unknown = await rejection(
      idp.login({ email: `${uid('nobody')}@example.com`, password: 'whatever12' }),
    );
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
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
    expect(err.status).toBe(401);
  });
});
