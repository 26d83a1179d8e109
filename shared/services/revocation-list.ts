/**
 * Revoked token ids (access-token `jti`, and refresh-token families via `origin_jti`). Entries expire
 * when the token they revoke would have, so the list never grows beyond live tokens. Stored in the
 * StateStore: DynamoDB with a TTL attribute in AWS, the local table otherwise.
 */
import type { StateStore } from '../ports/state-store.ts';

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

  async isRevoked(tokenIds: readonly (string | undefined)[]): Promise<boolean> {
    const ids = tokenIds.filter((t): t is string => typeof t === 'string' && t.length > 0);
    const found = await Promise.all(ids.map((id) => this.store.get(`revoked#${id}`, 'r')));
    return found.some((f) => f !== undefined);
  }
}
