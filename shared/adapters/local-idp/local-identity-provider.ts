/**
 * The local profile's identity provider: what Cognito is in AWS. Credentials live in the SQL store;
 * refresh tokens are opaque, stored only as hashes in the StateStore, and rotate on every use.
 * Each login starts a token family; presenting a rotated token again revokes the whole family
 * (RFC 9700 §4.14.2) and access tokens carry the family id as `origin_jti`, as Cognito's do.
 */
import { createHash, randomBytes, randomUUID, sign } from 'node:crypto';
import { ConditionFailedError, DomainError, errors, UniqueViolationError } from '../../domain/errors.ts';
import type { Database } from '../../ports/database.ts';
import type { IdentityProvider, TokenSet } from '../../ports/identity-provider.ts';
import type { StateStore } from '../../ports/state-store.ts';
import { hashPassword, verifyPassword } from './password-hash.ts';
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
  groups: string[];
}

/** A rotated refresh token was presented again: its family is now revoked. */
export class RefreshTokenReuseError extends DomainError {
  override readonly name = 'RefreshTokenReuseError';
  readonly familyId: string;
  readonly userId: string;

  constructor(familyId: string, userId: string) {
    super('unauthorized', 401, 'the refresh token is invalid', {}, { 'www-authenticate': 'Bearer' });
    this.familyId = familyId;
    this.userId = userId;
  }
}

const b64url = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
const tokenHash = (t: string) => createHash('sha256').update(t).digest('base64url');
const nowS = () => Math.floor(Date.now() / 1000);

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
    const rows = await this.db.query<{ user_id: string; password_hash: string }>(
      'select user_id, password_hash from local_credentials where email_key = $1',
      [input.email],
    );
    const row = rows[0];
    this.decoyHash ??= hashPassword(randomBytes(16).toString('hex'), this.opts.kdfCost);
    const ok = await verifyPassword(input.password, row?.password_hash ?? (await this.decoyHash));
    if (!row || !ok) throw errors.unauthorized('incorrect email or password');
    const groups = await this.groupsOf(row.user_id);
    const familyId = randomUUID();
    await this.state.put<FamilyRecord>({
      pk: `family#${familyId}`,
      sk: 'f',
      data: { userId: row.user_id, revoked: false, groups },
      expiresAt: nowS() + this.opts.refreshTokenTtlSeconds,
    });
    return { ...(await this.issue(row.user_id, familyId, groups)), userId: row.user_id };
  }

  async refresh(refreshToken: string): Promise<TokenSet> {
    const pk = `refresh#${tokenHash(refreshToken)}`;
    const rec = await this.state.get<RefreshRecord>(pk, 't');
    if (!rec) throw errors.unauthorized('the refresh token is invalid');
    const fam = await this.state.get<FamilyRecord>(`family#${rec.data.familyId}`, 'f');
    if (!fam || fam.data.revoked) throw errors.unauthorized('the refresh token is invalid');
    if (rec.data.used) {
      await this.revokeFamily(rec.data.familyId);
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
      await this.revokeFamily(rec.data.familyId);
      throw new RefreshTokenReuseError(rec.data.familyId, rec.data.userId);
    }
    return this.issue(rec.data.userId, rec.data.familyId, fam.data.groups);
  }

  async revokeRefreshToken(refreshToken: string): Promise<void> {
    const rec = await this.state.get<RefreshRecord>(`refresh#${tokenHash(refreshToken)}`, 't');
    if (rec) await this.revokeFamily(rec.data.familyId);
  }

  /** The family a refresh token belongs to, if it is live (used by logout to revoke access tokens). */
  async familyOf(refreshToken: string): Promise<string | undefined> {
    return (await this.state.get<RefreshRecord>(`refresh#${tokenHash(refreshToken)}`, 't'))?.data.familyId;
  }

  private async revokeFamily(familyId: string) {
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
