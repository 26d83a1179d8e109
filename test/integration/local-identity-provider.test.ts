/**
 * The local identity provider on real storage: credentials in SQL (PGlite and PostgreSQL 15),
 * refresh-token families in the StateStore (SQL table and DynamoDB on the emulator). Tokens are
 * checked by the aws-jwt-verify verifier that also checks Cognito's.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DynamoDbStateStore } from '../../shared/adapters/dynamodb/dynamodb-state-store.ts';
import {
  LocalIdentityProvider,
  RefreshTokenReuseError,
} from '../../shared/adapters/local-idp/local-identity-provider.ts';
import { generateSigningKey } from '../../shared/adapters/local-idp/signing-keys.ts';
import { SqlStateStore } from '../../shared/adapters/postgres/sql-state-store.ts';
import { UserRepository } from '../../shared/adapters/postgres/user-repository.ts';
import { createAccessTokenVerifier } from '../../shared/auth/access-token-verifier.ts';
import type { Database } from '../../shared/ports/database.ts';
import type { StateStore } from '../../shared/ports/state-store.ts';
import { createStateTable, dynamoClient, sqlBackends } from '../support/fixtures.ts';

const ISSUER = 'http://127.0.0.1:9/idp';
const CLIENT = 'stratus-test';

const variants = [
  ...sqlBackends.map((b) => ({ name: `${b.name} + sql state`, sql: b, dynamo: false })),
  { name: 'pglite + dynamodb state', sql: sqlBackends[0] as (typeof sqlBackends)[0], dynamo: true },
];

describe.each(variants)('LocalIdentityProvider: $name', (variant) => {
  let db: Database;
  let dispose: () => Promise<void>;
  let idp: LocalIdentityProvider;
  const key = generateSigningKey();
  const verifier = createAccessTokenVerifier({
    issuer: ISSUER,
    clientId: CLIENT,
    jwksUri: `${ISSUER}/jwks`,
    jwks: { keys: [key.publicJwk] },
  });

  beforeEach(async () => {
    ({ db, dispose } = await variant.sql.open());
    let state: StateStore = new SqlStateStore(db);
    if (variant.dynamo) {
      const ddb = dynamoClient();
      state = new DynamoDbStateStore(ddb, await createStateTable(ddb));
    }
    idp = new LocalIdentityProvider(db, state, key, {
      issuer: ISSUER,
      clientId: CLIENT,
      accessTokenTtlSeconds: 900,
      refreshTokenTtlSeconds: 3600,
      kdfCost: 10,
    });
  });
  afterEach(async () => {
    await dispose();
  });

  async function account(email = 'u@x.io', role: 'admin' | 'user' = 'user') {
    const { userId } = await idp.register({ email, password: 'correct horse', role });
    await new UserRepository(db).ensure({ id: userId, email, role, quotaBytes: 1 });
    return userId;
  }

  it('issues Cognito-shaped access tokens that aws-jwt-verify accepts', async () => {
    const userId = await account('admin@x.io', 'admin');
    const tokens = await idp.login({ email: 'admin@x.io', password: 'correct horse' });
    expect(tokens.expiresIn).toBe(900);
    const claims = await verifier.verify(tokens.accessToken);
    expect(claims).toMatchObject({
      sub: userId,
      iss: ISSUER,
      token_use: 'access',
      client_id: CLIENT,
      'cognito:groups': ['admin'],
    });
    expect(claims.exp - (claims.iat ?? 0)).toBe(900);
    const header = JSON.parse(
      Buffer.from(tokens.accessToken.split('.')[0] ?? '', 'base64url').toString(),
    ) as { kid: string; alg: string };
    expect(header).toMatchObject({ alg: 'RS256', kid: key.kid });
  });

  it('rejects tampered tokens and tokens for another client', async () => {
    await account();
    const { accessToken } = await idp.login({ email: 'u@x.io', password: 'correct horse' });
    const [h, p, s] = accessToken.split('.');
    const payload = JSON.parse(Buffer.from(p ?? '', 'base64url').toString()) as Record<string, unknown>;
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...payload, 'cognito:groups': ['admin'] })).toString('base64url')}.${s}`;
    await expect(verifier.verify(forged)).rejects.toMatchObject({ status: 401 });
    const other = createAccessTokenVerifier({
      issuer: ISSUER,
      clientId: 'other',
      jwksUri: `${ISSUER}/jwks`,
      jwks: { keys: [key.publicJwk] },
    });
    await expect(other.verify(accessToken)).rejects.toMatchObject({ status: 401 });
  });

  it('refuses a duplicate email and a wrong password without saying which', async () => {
    await account();
    await expect(
      idp.register({ email: 'u@x.io', password: 'another one', role: 'user' }),
    ).rejects.toMatchObject({ status: 409 });
    const wrong = await idp.login({ email: 'u@x.io', password: 'wrong horse' }).catch((e: Error) => e);
    const unknown = await idp.login({ email: 'nobody@x.io', password: 'wrong horse' }).catch((e: Error) => e);
    expect(wrong).toMatchObject({ status: 401 });
    expect(unknown).toMatchObject({ status: 401 });
    expect((wrong as Error).message).toBe((unknown as Error).message);
  });

  it('rotates refresh tokens and revokes the family when a rotated one is reused', async () => {
    await account();
    const first = await idp.login({ email: 'u@x.io', password: 'correct horse' });
    const second = await idp.refresh(first.refreshToken);
    expect(second.refreshToken).not.toBe(first.refreshToken);
    const third = await idp.refresh(second.refreshToken);
    const reuse = await idp.refresh(first.refreshToken).catch((e: unknown) => e);
    expect(reuse).toBeInstanceOf(RefreshTokenReuseError);
    const claims = await verifier.verify(second.accessToken);
    expect((reuse as RefreshTokenReuseError).familyId).toBe(claims.origin_jti);
    // The whole family is dead, including the newest token.
    await expect(idp.refresh(third.refreshToken)).rejects.toMatchObject({ status: 401 });
    // A fresh login starts a new, working family.
    const again = await idp.login({ email: 'u@x.io', password: 'correct horse' });
    await expect(idp.refresh(again.refreshToken)).resolves.toHaveProperty('accessToken');
  });

  it('lets only one of two concurrent refreshes with the same token win', async () => {
    await account();
    const { refreshToken } = await idp.login({ email: 'u@x.io', password: 'correct horse' });
    const results = await Promise.allSettled([idp.refresh(refreshToken), idp.refresh(refreshToken)]);
    expect(results.filter((r) => r.status === 'fulfilled').length).toBeLessThanOrEqual(1);
    expect(results.filter((r) => r.status === 'rejected').length).toBeGreaterThanOrEqual(1);
  });

  it('revokes a refresh token family on request, and ignores unknown tokens', async () => {
    await account();
    const { refreshToken } = await idp.login({ email: 'u@x.io', password: 'correct horse' });
    await idp.revokeRefreshToken(refreshToken);
    await expect(idp.refresh(refreshToken)).rejects.toMatchObject({ status: 401 });
    await idp.revokeRefreshToken(randomUUID());
    await expect(idp.refresh('x'.repeat(43))).rejects.toMatchObject({ status: 401 });
  });
});
