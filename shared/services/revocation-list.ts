/**
 * Revoked token ids (access-token `jti`, and refresh-token families via `origin_jti`). Entries expire
 * when the token they revoke would have, so the list never grows beyond live tokens. Stored in the
 * StateStore: DynamoDB with a TTL attribute in AWS, the local table otherwise.
 */
import { createHash } from 'node:crypto';
import type { StateStore } from '../ports/state-store.ts';

const tokenKey = (refreshToken: string) =>
  `rtfamily#${createHash('sha256').update(refreshToken).digest('base64url')}`;

export class RevocationList {
  private readonly store: StateStore;

  constructor(store: StateStore) {
    this.store = store;
  }

  async revoke(tokenId: string, expiresAtEpochSeconds: number, reason: string): Promise<void> {
    await this.store.put({
      pk: `revoked#${tokenId}`,
      sk: 'r',
      data: { reason },
      expiresAt: expiresAtEpochSeconds,
    });
  }

  /**
   * Remembers which families (`origin_jti` of the access tokens issued with it) a refresh token
   * the API handed out belongs to, keyed by the token's SHA-256 (never the token). A refresh can
   * then refuse a token whose family a bodyless logout revoked before asking the provider, even
   * one (Cognito) that cannot revoke a family by its id.
   */
  async rememberRefreshToken(refreshToken: string, families: string[], expiresAtEpochSeconds: number) {
    await this.store.put({
      pk: tokenKey(refreshToken),
      sk: 'f',
      data: { families },
      expiresAt: expiresAtEpochSeconds,
    });
  }

  /** The families remembered for a refresh token (none for one the API never issued). */
  async familiesOf(refreshToken: string): Promise<string[]> {
    const rec = await this.store.get<{ families?: string[] }>(tokenKey(refreshToken), 'f');
    return rec?.data.families ?? [];
  }

  async isRevoked(tokenIds: readonly (string | undefined)[]): Promise<boolean> {
    const ids = tokenIds.filter((t): t is string => typeof t === 'string' && t.length > 0);
    const found = await Promise.all(ids.map((id) => this.store.get(`revoked#${id}`, 'r')));
    return found.some((f) => f !== undefined);
  }
}
