/**
 * The local profile's identity provider: what Cognito is in AWS. Credentials live in the SQL store;
 * refresh tokens are opaque, stored only as hashes in the StateStore, and rotate on every use.
 * Each login starts a token family; presenting a rotated token again revokes the whole family
 * (RFC 9700 §4.14.2) and access tokens carry the family id as `origin_jti`, as Cognito's do.
 *
 * Password reset mirrors Cognito's ForgotPassword/ConfirmForgotPassword: a random 8-digit one-time
 * code, stored only as a scrypt hash (one live code per account, a new request replaces it), valid
 * for an hour and for five guesses; the caller delivers it (there is no mail server locally, so the
 * service writes it to the log). A reset revokes every refresh-token family of the account.
 *
 * Roles come from the users table whenever tokens are issued (login and every refresh), so a
 * demoted admin's next refresh yields a `user` token; logout without a refresh token revokes the
 * family its access token names (`revokeFamily`).
 */
import { createHash, randomBytes, randomInt, randomUUID, sign } from 'node:crypto';
import {
  ConditionFailedError,
  errors,
  UnauthenticatedError,
  UniqueViolationError,
} from '../../domain/errors.ts';
import { hashPassword, verifyPassword } from '../../domain/password-hash.ts';
import type { Database } from '../../ports/database.ts';
import type { IdentityProvider, PasswordResetDelivery, TokenSet } from '../../ports/identity-provider.ts';
import type { StateStore } from '../../ports/state-store.ts';
import type { SigningKey } from './signing-keys.ts';

export interface LocalIdpOptions {
  issuer: string;
  clientId: string;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  kdfCost: number;
}

interface RefreshRecord {
  userId: string;
  familyId: string;
  used: boolean;
}

interface FamilyRecord {
  userId: string;
  revoked: boolean;
  /** The groups at login; informational only (every issue re-reads the users table). */
  groups?: string[];
}

interface ResetRecord {
  codeHash: string;
  attempts: number;
  spent: boolean;
}

/** How long a reset code lives, and how many guesses it allows. */
export const RESET_CODE_TTL_SECONDS = 3600;
export const RESET_CODE_ATTEMPTS = 5;

const invalidCode = () =>
  errors.validation('the code is wrong, has expired or was already used; ask for a new one', [
    { path: 'body.code', message: 'invalid or expired code' },
  ]);

/** A rotated refresh token was presented again: its family is now revoked. */
export class RefreshTokenReuseError extends UnauthenticatedError {
  override readonly name = 'RefreshTokenReuseError';
  readonly familyId: string;
  readonly userId: string;

  constructor(familyId: string, userId: string) {
    super('unauthorized', 'the refresh token is invalid');
    this.familyId = familyId;
    this.userId = userId;
  }
}

const b64url = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
const tokenHash = (t: string) => createHash('sha256').update(t).digest('base64url');
const nowS = () => Math.floor(Date.now() / 1000);
/** The partition listing a user's refresh-token families (one item per family), so a reset can end them all. */
const familiesOf = (userId: string) => `families#${userId}`;
const resetKey = (userId: string) => `pwreset#${userId}`;

export class LocalIdentityProvider implements IdentityProvider {
  /** A hash of a random password, verified against when the email is unknown, so timing says nothing. */
  private decoyHash: Promise<string> | undefined;

  private readonly db: Database;
  private readonly state: StateStore;
  private readonly key: SigningKey;
  private readonly opts: LocalIdpOptions;

  constructor(db: Database, state: StateStore, key: SigningKey, opts: LocalIdpOptions) {
    this.db = db;
    this.state = state;
    this.key = key;
    this.opts = opts;
  }

  jwks() {
    return { keys: [this.key.publicJwk] };
  }

  async register(input: { email: string; password: string; role: 'admin' | 'user' }) {
    const userId = randomUUID();
    const hash = await hashPassword(input.password, this.opts.kdfCost);
    try {
      await this.db.query(
        'insert into local_credentials (user_id, email_key, password_hash) values ($1, $2, $3)',
        [userId, input.email, hash],
      );
    } catch (err) {
      if (err instanceof UniqueViolationError) throw errors.emailTaken();
      throw err;
    }
    return { userId };
  }

  async login(input: { email: string; password: string }) {
    const row = await this.credentials(input.email);
    const ok = await verifyPassword(input.password, row?.password_hash ?? (await this.decoy()));
    if (!row || !ok) throw errors.unauthorized('incorrect email or password');
    const groups = await this.groupsOf(row.user_id);
    const familyId = randomUUID();
    const expiresAt = nowS() + this.opts.refreshTokenTtlSeconds;
    await this.state.put<FamilyRecord>({
      pk: `family#${familyId}`,
      sk: 'f',
      data: { userId: row.user_id, revoked: false, groups },
      expiresAt,
    });
    await this.state.put({ pk: familiesOf(row.user_id), sk: familyId, data: {}, expiresAt });
    return { ...(await this.issue(row.user_id, familyId, groups)), userId: row.user_id };
  }

  private decoy(): Promise<string> {
    this.decoyHash ??= hashPassword(randomBytes(16).toString('hex'), this.opts.kdfCost);
    return this.decoyHash;
  }

  private async credentials(email: string) {
    const rows = await this.db.query<{ user_id: string; password_hash: string }>(
      'select user_id, password_hash from local_credentials where email_key = $1',
      [email],
    );
    return rows[0];
  }

  async deleteAccount(email: string): Promise<void> {
    await this.db.query('delete from local_credentials where email_key = $1', [email]);
  }

  async requestPasswordReset(email: string): Promise<PasswordResetDelivery> {
    const row = await this.credentials(email);
    const code = String(randomInt(0, 100_000_000)).padStart(8, '0');
    // Hash either way, so an unknown address takes as long as a known one.
    const codeHash = await hashPassword(code, this.opts.kdfCost);
    if (!row) return { by: 'nobody' };
    await this.state.put<ResetRecord>({
      pk: resetKey(row.user_id),
      sk: 'c',
      data: { codeHash, attempts: 0, spent: false },
      expiresAt: nowS() + RESET_CODE_TTL_SECONDS,
    });
    return { by: 'caller', to: email, code };
  }

  async confirmPasswordReset(input: { email: string; code: string; newPassword: string }): Promise<void> {
    const row = await this.credentials(input.email);
    const rec = row && (await this.state.get<ResetRecord>(resetKey(row.user_id), 'c'));
    if (!row || !rec || rec.data.spent || rec.data.attempts >= RESET_CODE_ATTEMPTS) {
      await verifyPassword(input.code, await this.decoy());
      throw invalidCode();
    }
    const expiresAt = rec.expiresAt ?? nowS() + RESET_CODE_TTL_SECONDS;
    let counted: { version: number };
    try {
      // Each guess spends an attempt before it is checked, conditionally on the version read, so
      // concurrent guesses cannot get more than RESET_CODE_ATTEMPTS tries between them.
      counted = await this.state.put<ResetRecord>(
        { pk: rec.pk, sk: rec.sk, data: { ...rec.data, attempts: rec.data.attempts + 1 }, expiresAt },
        { kind: 'version', version: rec.version },
      );
    } catch (err) {
      if (err instanceof ConditionFailedError) throw invalidCode();
      throw err;
    }
    if (!(await verifyPassword(input.code, rec.data.codeHash))) throw invalidCode();
    try {
      // One use: of two right guesses at once, one spends the code and the other is refused.
      await this.state.put<ResetRecord>(
        {
          pk: rec.pk,
          sk: rec.sk,
          data: { ...rec.data, attempts: rec.data.attempts + 1, spent: true },
          expiresAt,
        },
        { kind: 'version', version: counted.version },
      );
    } catch (err) {
      if (err instanceof ConditionFailedError) throw invalidCode();
      throw err;
    }
    const hash = await hashPassword(input.newPassword, this.opts.kdfCost);
    await this.db.query('update local_credentials set password_hash = $1 where user_id = $2', [
      hash,
      row.user_id,
    ]);
    await this.state.delete(rec.pk, rec.sk);
  }

  async signOutEverywhere(input: { userId: string; email: string }): Promise<string[]> {
    const families = await this.state.query(familiesOf(input.userId));
    const ids = families.map((f) => f.sk);
    for (const id of ids) await this.markRevoked(id);
    return ids;
  }

  async refresh(refreshToken: string): Promise<TokenSet> {
    const pk = `refresh#${tokenHash(refreshToken)}`;
    const rec = await this.state.get<RefreshRecord>(pk, 't');
    if (!rec) throw errors.unauthorized('the refresh token is invalid');
    const fam = await this.state.get<FamilyRecord>(`family#${rec.data.familyId}`, 'f');
    if (!fam || fam.data.revoked) throw errors.unauthorized('the refresh token is invalid');
    if (rec.data.used) {
      await this.markRevoked(rec.data.familyId);
      throw new RefreshTokenReuseError(rec.data.familyId, rec.data.userId);
    }
    try {
      // Conditional on the version we read: of two concurrent refreshes with one token, one loses.
      await this.state.put<RefreshRecord>(
        {
          pk,
          sk: 't',
          data: { ...rec.data, used: true },
          ...(rec.expiresAt ? { expiresAt: rec.expiresAt } : {}),
        },
        { kind: 'version', version: rec.version },
      );
    } catch (err) {
      if (!(err instanceof ConditionFailedError)) throw err;
      await this.markRevoked(rec.data.familyId);
      throw new RefreshTokenReuseError(rec.data.familyId, rec.data.userId);
    }
    // The role as the users table says now, not as it was at login.
    return this.issue(rec.data.userId, rec.data.familyId, await this.groupsOf(rec.data.userId));
  }

  async revokeRefreshToken(refreshToken: string): Promise<void> {
    const rec = await this.state.get<RefreshRecord>(`refresh#${tokenHash(refreshToken)}`, 't');
    if (rec) await this.markRevoked(rec.data.familyId);
  }

  /** The family a refresh token belongs to, if it is live (used by logout to revoke access tokens). */
  async familyOf(refreshToken: string): Promise<string | undefined> {
    return (await this.state.get<RefreshRecord>(`refresh#${tokenHash(refreshToken)}`, 't'))?.data.familyId;
  }

  /** Logout without the refresh token: the family the access token names, if it is the user's. */
  async revokeFamily(input: { familyId: string; userId: string }): Promise<void> {
    const fam = await this.state.get<FamilyRecord>(`family#${input.familyId}`, 'f');
    if (fam?.data.userId === input.userId) await this.markRevoked(input.familyId);
  }

  private async markRevoked(familyId: string) {
    const fam = await this.state.get<FamilyRecord>(`family#${familyId}`, 'f');
    if (!fam) return;
    await this.state.put<FamilyRecord>({
      pk: fam.pk,
      sk: fam.sk,
      data: { ...fam.data, revoked: true },
      ...(fam.expiresAt ? { expiresAt: fam.expiresAt } : {}),
    });
  }

  private async groupsOf(userId: string): Promise<string[]> {
    const rows = await this.db.query<{ role: string }>('select role from users where id = $1', [userId]);
    return [rows[0]?.role ?? 'user'];
  }

  private async issue(userId: string, familyId: string, groups: string[]): Promise<TokenSet> {
    const iat = nowS();
    const exp = iat + this.opts.accessTokenTtlSeconds;
    const header = { alg: 'RS256', kid: this.key.kid, typ: 'JWT' };
    const payload = {
      sub: userId,
      iss: this.opts.issuer,
      client_id: this.opts.clientId,
      token_use: 'access',
      scope: 'aws.cognito.signin.user.admin',
      'cognito:groups': groups,
      auth_time: iat,
      iat,
      exp,
      jti: randomUUID(),
      origin_jti: familyId,
      username: userId,
    };
    const input = `${b64url(header)}.${b64url(payload)}`;
    const signature = sign('RSA-SHA256', Buffer.from(input), this.key.privateKey).toString('base64url');
    const refreshToken = randomBytes(32).toString('base64url');
    const fam = await this.state.get<FamilyRecord>(`family#${familyId}`, 'f');
    await this.state.put<RefreshRecord>(
      {
        pk: `refresh#${tokenHash(refreshToken)}`,
        sk: 't',
        data: { userId, familyId, used: false },
        expiresAt: fam?.expiresAt ?? exp,
      },
      { kind: 'absent' },
    );
    return { accessToken: `${input}.${signature}`, refreshToken, expiresIn: this.opts.accessTokenTtlSeconds };
  }
}
