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
  RESET_CODE_ATTEMPTS,
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
  let state: StateStore;
  const key = generateSigningKey();
  const verifier = createAccessTokenVerifier({
    issuer: ISSUER,
    clientId: CLIENT,
    jwksUri: `${ISSUER}/jwks`,
    jwks: { keys: [key.publicJwk] },
  });

  beforeEach(async () => {
    ({ db, dispose } = await variant.sql.open());
    state = new SqlStateStore(db);
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
    await expect(verifier.verify(forged)).rejects.toMatchObject({ name: 'UnauthenticatedError' });
    const other = createAccessTokenVerifier({
      issuer: ISSUER,
      clientId: 'other',
      jwksUri: `${ISSUER}/jwks`,
      jwks: { keys: [key.publicJwk] },
    });
    await expect(other.verify(accessToken)).rejects.toMatchObject({ name: 'UnauthenticatedError' });
  });

  it('refuses a duplicate email and a wrong password without saying which', async () => {
    await account();
    await expect(
      idp.register({ email: 'u@x.io', password: 'another one', role: 'user' }),
    ).rejects.toMatchObject({ name: 'ConflictError' });
    const wrong = await idp.login({ email: 'u@x.io', password: 'wrong horse' }).catch((e: Error) => e);
    const unknown = await idp.login({ email: 'nobody@x.io', password: 'wrong horse' }).catch((e: Error) => e);
    expect(wrong).toMatchObject({ name: 'UnauthenticatedError' });
    expect(unknown).toMatchObject({ name: 'UnauthenticatedError' });
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
    await expect(idp.refresh(third.refreshToken)).rejects.toMatchObject({ name: 'UnauthenticatedError' });
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
    await expect(idp.refresh(refreshToken)).rejects.toMatchObject({ name: 'UnauthenticatedError' });
    await idp.revokeRefreshToken(randomUUID());
    await expect(idp.refresh('x'.repeat(43))).rejects.toMatchObject({ name: 'UnauthenticatedError' });
  });

  /** Asks for a reset code and returns it (the local provider hands it to the caller to deliver). */
  async function resetCode(email = 'u@x.io'): Promise<string> {
    const d = await idp.requestPasswordReset(email);
    if (d.by !== 'caller') throw new Error(`expected a code to deliver, got ${d.by}`);
    expect(d.to).toBe(email);
    return d.code;
  }
  const invalidCode = { name: 'InvalidInputError', slug: 'validation-error' };

  it('password reset: a one-time 8-digit code, hashed at rest, sets the new password', async () => {
    const userId = await account();
    const code = await resetCode();
    expect(code).toMatch(/^\d{8}$/);
    const stored = await state.get(`pwreset#${userId}`, 'c');
    expect(stored).toBeDefined();
    expect(JSON.stringify(stored)).not.toContain(code);
    expect(stored?.expiresAt).toBeGreaterThan(Date.now() / 1000 + 3500);
    expect(stored?.expiresAt).toBeLessThanOrEqual(Date.now() / 1000 + 3600);
    await idp.confirmPasswordReset({ email: 'u@x.io', code, newPassword: 'brand new horse' });
    await expect(idp.login({ email: 'u@x.io', password: 'correct horse' })).rejects.toMatchObject({
      name: 'UnauthenticatedError',
    });
    await expect(idp.login({ email: 'u@x.io', password: 'brand new horse' })).resolves.toHaveProperty(
      'accessToken',
    );
    // One use only.
    await expect(
      idp.confirmPasswordReset({ email: 'u@x.io', code, newPassword: 'third horse here' }),
    ).rejects.toMatchObject(invalidCode);
  });

  it(`password reset: ${RESET_CODE_ATTEMPTS} wrong guesses burn the code; a new request replaces the old code`, async () => {
    await account();
    const old = await resetCode();
    const code = await resetCode();
    await expect(
      idp.confirmPasswordReset({
        email: 'u@x.io',
        code: old === code ? '99999999' : old,
        newPassword: 'brand new horse',
      }),
    ).rejects.toMatchObject(invalidCode);
    for (let i = 1; i < RESET_CODE_ATTEMPTS; i++) {
      const wrong = String((Number(code) + i) % 100_000_000).padStart(8, '0');
      await expect(
        idp.confirmPasswordReset({ email: 'u@x.io', code: wrong, newPassword: 'brand new horse' }),
      ).rejects.toMatchObject(invalidCode);
    }
    await expect(
      idp.confirmPasswordReset({ email: 'u@x.io', code, newPassword: 'brand new horse' }),
    ).rejects.toMatchObject(invalidCode);
    await expect(idp.login({ email: 'u@x.io', password: 'correct horse' })).resolves.toHaveProperty(
      'accessToken',
    );
  });

  it('password reset: an expired code is refused; an unknown address gets no code and no error', async () => {
    const userId = await account();
    const code = await resetCode();
    const rec = await state.get(`pwreset#${userId}`, 'c');
    await state.put({
      pk: `pwreset#${userId}`,
      sk: 'c',
      data: rec?.data ?? {},
      expiresAt: Math.floor(Date.now() / 1000) - 1,
    });
    await expect(
      idp.confirmPasswordReset({ email: 'u@x.io', code, newPassword: 'brand new horse' }),
    ).rejects.toMatchObject(invalidCode);
    await expect(idp.requestPasswordReset('nobody@x.io')).resolves.toEqual({ by: 'nobody' });
    await expect(
      idp.confirmPasswordReset({ email: 'nobody@x.io', code: '12345678', newPassword: 'brand new horse' }),
    ).rejects.toMatchObject(invalidCode);
  });

  it('signOutEverywhere revokes every refresh family of the user and names them', async () => {
    await account();
    const other = await account('o@x.io');
    const a = await idp.login({ email: 'u@x.io', password: 'correct horse' });
    const b = await idp.login({ email: 'u@x.io', password: 'correct horse' });
    const theirs = await idp.login({ email: 'o@x.io', password: 'correct horse' });
    const families = await idp.signOutEverywhere({ userId: a.userId, email: 'u@x.io' });
    const originOf = async (t: string) => (await verifier.verify(t)).origin_jti;
    expect(families.sort()).toEqual([await originOf(a.accessToken), await originOf(b.accessToken)].sort());
    await expect(idp.refresh(a.refreshToken)).rejects.toMatchObject({ name: 'UnauthenticatedError' });
    await expect(idp.refresh(b.refreshToken)).rejects.toMatchObject({ name: 'UnauthenticatedError' });
    // Someone else's session is untouched.
    expect(theirs.userId).toBe(other);
    await expect(idp.refresh(theirs.refreshToken)).resolves.toHaveProperty('accessToken');
  });

  it('deleteAccount frees the email for a new registration', async () => {
    await account();
    await idp.deleteAccount('u@x.io');
    await expect(idp.login({ email: 'u@x.io', password: 'correct horse' })).rejects.toMatchObject({
      name: 'UnauthenticatedError',
    });
    await expect(
      idp.register({ email: 'u@x.io', password: 'correct horse', role: 'user' }),
    ).resolves.toHaveProperty('userId');
    await idp.deleteAccount('nobody@x.io');
  });
});
