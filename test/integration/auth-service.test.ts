/**
 * AuthService on the local identity provider and real storage (PGlite, the SQL state table):
 * a registration whose later step fails undoes the account, so the email can register again; the
 * password reset "emails" its code to the log and ends every session of the account.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalIdentityProvider } from '../../shared/adapters/local-idp/local-identity-provider.ts';
import { generateSigningKey } from '../../shared/adapters/local-idp/signing-keys.ts';
import { MemoryThrottleStore } from '../../shared/adapters/memory/memory-throttle-store.ts';
import { AuditRepository } from '../../shared/adapters/postgres/audit-repository.ts';
import { SqlStateStore } from '../../shared/adapters/postgres/sql-state-store.ts';
import { UserRepository } from '../../shared/adapters/postgres/user-repository.ts';
import { createAccessTokenVerifier } from '../../shared/auth/access-token-verifier.ts';
import { createLogger } from '../../shared/observability/logger.ts';
import type { Database } from '../../shared/ports/database.ts';
import { AuthService } from '../../shared/services/auth-service.ts';
import { LoginThrottle } from '../../shared/services/login-throttle.ts';
import { RevocationList } from '../../shared/services/revocation-list.ts';
import { sqlBackends } from '../support/fixtures.ts';

const ISSUER = 'http://127.0.0.1:9/idp';
const key = generateSigningKey();
const verifier = createAccessTokenVerifier({
  issuer: ISSUER,
  clientId: 'stratus-test',
  jwksUri: `${ISSUER}/jwks`,
  jwks: { keys: [key.publicJwk] },
});

/** A UserRepository whose `ensure` fails while `failing` is set: the step after the IdP's. */
class FlakyUsers extends UserRepository {
  failing = false;
  override async ensure(input: Parameters<UserRepository['ensure']>[0]) {
    if (this.failing) throw new Error('injected: the database refused the user row');
    return super.ensure(input);
  }
}

let db: Database;
let dispose: () => Promise<void>;
let users: FlakyUsers;
let revocations: RevocationList;
let auth: AuthService;
let lines: Record<string, unknown>[];

beforeEach(async () => {
  ({ db, dispose } = await (sqlBackends[0] as (typeof sqlBackends)[0]).open());
  const state = new SqlStateStore(db);
  const idp = new LocalIdentityProvider(db, state, key, {
    issuer: ISSUER,
    clientId: 'stratus-test',
    accessTokenTtlSeconds: 900,
    refreshTokenTtlSeconds: 3600,
    kdfCost: 10,
  });
  users = new FlakyUsers(db);
  revocations = new RevocationList(state);
  lines = [];
  const log = createLogger('info', {}, (l) => lines.push(JSON.parse(l) as Record<string, unknown>));
  auth = new AuthService(
    idp,
    users,
    new LoginThrottle(new MemoryThrottleStore()),
    revocations,
    new AuditRepository(db),
    log,
    {
      defaultQuotaBytes: 1024,
      accessTokenTtlSeconds: 900,
    },
  );
});
afterEach(async () => {
  await dispose();
});

describe('AuthService', () => {
  it('a registration failing after the identity provider created the account undoes it', async () => {
    users.failing = true;
    await expect(auth.register('u@x.io', 'correct horse', '192.0.2.1')).rejects.toThrow(/injected/);
    users.failing = false;
    // Not "email taken": the half-made account is gone, and the address registers again.
    const user = await auth.register('u@x.io', 'correct horse', '192.0.2.1');
    const tokens = await auth.login('u@x.io', 'correct horse', '192.0.2.1');
    expect((await verifier.verify(tokens.accessToken)).sub).toBe(user.id);
  });

  it('password reset: the code goes to the log, and the reset ends every session', async () => {
    await auth.register('u@x.io', 'correct horse', '192.0.2.1');
    const a = await auth.login('u@x.io', 'correct horse', '192.0.2.1');
    const b = await auth.login('u@x.io', 'correct horse', '192.0.2.1');
    await auth.forgotPassword('nobody@x.io', '192.0.2.1');
    expect(lines.filter((l) => 'code' in l)).toEqual([]);
    await auth.forgotPassword('u@x.io', '192.0.2.1');
    const mail = lines.find((l) => 'code' in l);
    expect(mail).toMatchObject({ level: 'info', to: 'u@x.io', code: expect.stringMatching(/^\d{8}$/) });
    expect(String(mail?.msg)).toMatch(/emailed .*written to this log/);

    await auth.resetPassword('u@x.io', String(mail?.code), 'brand new horse', '192.0.2.1');
    // The refresh families are revoked, and so are access tokens minted from them (origin_jti).
    for (const t of [a, b]) {
      await expect(auth.refresh(t.refreshToken, '192.0.2.1')).rejects.toMatchObject({
        name: 'UnauthenticatedError',
      });
      const claims = await verifier.verify(t.accessToken);
      expect(await revocations.isRevoked([claims.origin_jti as string])).toBe(true);
    }
    await expect(auth.login('u@x.io', 'correct horse', '192.0.2.1')).rejects.toMatchObject({
      name: 'UnauthenticatedError',
    });
    await expect(auth.login('u@x.io', 'brand new horse', '192.0.2.1')).resolves.toHaveProperty('accessToken');
    const rows = await db.query<{ action: string }>('select action from audit_events');
    expect(rows.map((r) => r.action)).toEqual(
      expect.arrayContaining(['auth.password_reset_requested', 'auth.password_reset']),
    );
  });
});
