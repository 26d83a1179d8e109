/**
 * Tokens follow the account, on the aws profile's identity adapter against the emulator's
 * cognito-idp (moto) and PGlite: a role change moves the user between the Cognito groups (so the
 * tokens Cognito issues afterwards, refreshes included, carry the new role) after the users table,
 * which the principal's role is read from; a logout without the refresh token ends that family
 * although Cognito cannot revoke by family: the refresh through the API is refused before Cognito
 * is asked, and the token is revoked there (RevokeToken, which moto lacks: the call is recorded).
 */

import {
  AdminListGroupsForUserCommand,
  CognitoIdentityProviderClient,
  CreateGroupCommand,
  CreateUserPoolClientCommand,
} from '@aws-sdk/client-cognito-identity-provider';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CognitoIdentityProvider } from '../../shared/adapters/cognito/cognito-identity-provider.ts';
import { MemoryThrottleStore } from '../../shared/adapters/memory/memory-throttle-store.ts';
import { AuditRepository } from '../../shared/adapters/postgres/audit-repository.ts';
import { SqlStateStore } from '../../shared/adapters/postgres/sql-state-store.ts';
import { UserRepository } from '../../shared/adapters/postgres/user-repository.ts';
import { DomainError } from '../../shared/domain/errors.ts';
import type { Principal } from '../../shared/domain/model.ts';
import { statusOf } from '../../shared/http/problem.ts';
import { createLogger } from '../../shared/observability/logger.ts';
import type { Database } from '../../shared/ports/database.ts';
import { AuthService } from '../../shared/services/auth-service.ts';
import { LoginThrottle } from '../../shared/services/login-throttle.ts';
import { RevocationList } from '../../shared/services/revocation-list.ts';
import { createUserPool, REGION, sqlBackends, uid } from '../support/fixtures.ts';

const PASSWORD = 'correct horse battery';
const client = new CognitoIdentityProviderClient({
  region: REGION,
  endpoint: inject('awsEndpoint'),
  credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
});
const sent: string[] = [];
client.middlewareStack.add(
  (next, context) => async (args) => {
    sent.push(String(context.commandName).replace(/Command$/, ''));
    return next(args);
  },
  { step: 'initialize', name: 'accountTokensRecorder' },
);

let poolId: string;
let db: Database;
let dispose: () => Promise<void>;
let auth: AuthService;
let idp: CognitoIdentityProvider;
let revocations: RevocationList;
const adminEmail = `${uid('admin')}@example.com`;

const claims = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
const principalOf = (accessToken: string): Principal => {
  const c = claims(accessToken);
  return {
    userId: String(c.sub),
    role: 'user',
    tokenId: String(c.jti),
    ...(typeof c.origin_jti === 'string' ? { originTokenId: c.origin_jti } : {}),
    expiresAt: Number(c.exp),
  };
};
const groupsOf = async (email: string) =>
  (await client.send(new AdminListGroupsForUserCommand({ UserPoolId: poolId, Username: email }))).Groups?.map(
    (g) => g.GroupName,
  ) ?? [];

beforeAll(async () => {
  poolId = await createUserPool(client, 'stratus-roles-');
  const app = await client.send(
    new CreateUserPoolClientCommand({
      UserPoolId: poolId,
      ClientName: 'api',
      ExplicitAuthFlows: ['ALLOW_USER_PASSWORD_AUTH', 'ALLOW_REFRESH_TOKEN_AUTH'],
    }),
  );
  for (const GroupName of ['admin', 'user'])
    await client.send(new CreateGroupCommand({ UserPoolId: poolId, GroupName }));
  // Secretless and without rotation: moto has no GetTokensFromRefreshToken (see the adapter's test).
  idp = new CognitoIdentityProvider(client, {
    userPoolId: poolId,
    clientId: app.UserPoolClient?.ClientId as string,
    rotation: false,
    clientSecret: null,
  });
  ({ db, dispose } = await (sqlBackends[0] as (typeof sqlBackends)[0]).open());
  revocations = new RevocationList(new SqlStateStore(db));
  auth = new AuthService(
    idp,
    new UserRepository(db),
    new LoginThrottle(new MemoryThrottleStore()),
    revocations,
    new AuditRepository(db),
    createLogger('silent', {}, () => undefined),
    { defaultQuotaBytes: 1024, accessTokenTtlSeconds: 900 },
  );
});
afterAll(async () => {
  await dispose?.();
});

describe('CognitoIdentityProvider.setRole (emulator cognito-idp)', () => {
  it('moves the user between the groups, idempotently; later tokens carry the new role', async () => {
    const email = `${uid('r')}@example.com`;
    const { userId } = await idp.register({ email, password: PASSWORD, role: 'admin' });
    expect(await groupsOf(email)).toEqual(['admin']);
    await idp.setRole({ userId, email, role: 'user' });
    await idp.setRole({ userId, email, role: 'user' });
    expect(await groupsOf(email)).toEqual(['user']);
    const tokens = await idp.login({ email, password: PASSWORD });
    expect(claims(tokens.accessToken)['cognito:groups']).toEqual(['user']);
    await idp.setRole({ userId, email, role: 'admin' });
    expect(await groupsOf(email)).toEqual(['admin']);
    const refreshed = await idp.refresh(tokens.refreshToken);
    expect(claims(refreshed.accessToken)['cognito:groups']).toEqual(['admin']);
  });

  it('an unknown user is a 404', async () => {
    const err = await idp.setRole({ userId: 'x', email: `${uid('nobody')}@example.com`, role: 'user' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DomainError);
    expect(statusOf(err)).toBe(404);
  });
});

describe('AuthService on Cognito', () => {
  it('updateUser changes the users table, then the groups; the principal role follows the table', async () => {
    const email = `${uid('demoted')}@example.com`;
    await auth.createAccount(adminEmail, PASSWORD, 'admin', { via: 'test' });
    const admin = principalOf((await auth.login(adminEmail, PASSWORD, '10.0.0.1')).accessToken);
    const user = await auth.register(email, PASSWORD, '10.0.0.1');
    expect(await groupsOf(email)).toEqual(['user']);
    await auth.updateUser({ ...admin, role: 'admin' }, user.id, { role: 'admin' });
    expect(await groupsOf(email)).toEqual(['admin']);
    expect(await auth.roleOf(user.id)).toBe('admin');
    const tokens = await auth.login(email, PASSWORD, '10.0.0.1');
    expect(claims(tokens.accessToken)['cognito:groups']).toEqual(['admin']);

    const demoted = await auth.updateUser({ ...admin, role: 'admin' }, user.id, { role: 'user' });
    expect(demoted.role).toBe('user');
    expect(await groupsOf(email)).toEqual(['user']);
    expect(await auth.roleOf(user.id)).toBe('user');
    const refreshed = await auth.refresh(tokens.refreshToken, '10.0.0.1');
    expect(claims(refreshed.accessToken)['cognito:groups']).toEqual(['user']);
  });

  it('logout without the refresh token: the refresh is refused before Cognito, the token revoked there', async () => {
    const email = `${uid('leaver')}@example.com`;
    await auth.register(email, PASSWORD, '10.0.0.2');
    const tokens = await auth.login(email, PASSWORD, '10.0.0.2');
    const principal = principalOf(tokens.accessToken);
    expect(principal.originTokenId).toEqual(expect.any(String));
    await auth.logout(principal, undefined);
    expect(await revocations.isRevoked([principal.originTokenId])).toBe(true);
    sent.length = 0;
    const err = await auth.refresh(tokens.refreshToken, '10.0.0.2').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DomainError);
    expect(statusOf(err)).toBe(401);
    expect(sent).toEqual(['RevokeToken']);
  });

  it('another session of the same account is untouched', async () => {
    const email = `${uid('two')}@example.com`;
    await auth.register(email, PASSWORD, '10.0.0.3');
    const phone = await auth.login(email, PASSWORD, '10.0.0.3');
    const laptop = await auth.login(email, PASSWORD, '10.0.0.3');
    await auth.logout(principalOf(phone.accessToken), undefined);
    const refreshed = await auth.refresh(laptop.refreshToken, '10.0.0.3');
    expect(claims(refreshed.accessToken).sub).toBe(claims(laptop.accessToken).sub);
  });
});
