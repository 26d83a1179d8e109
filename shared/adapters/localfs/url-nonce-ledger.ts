/**
 * Which single-use URLs of the local nodes have been fetched. One state item per nonce, written
 * put-if-absent: of any number of fetches of one URL (concurrent, on any node of the process, or
 * after a restart, since the store is the embedded database on disk) exactly one wins. An item
 * lives until its URL expires, plus a margin for the clocks of other instances sharing the store;
 * after that the URL's signature refuses it anyway.
 */
import { ConditionFailedError } from '../../domain/errors.ts';
import type { StateStore } from '../../ports/state-store.ts';

const CLOCK_MARGIN_SECONDS = 300;

const pk = (nonce: string) => `url-nonce#${nonce}`;
const SK = 'spent';

export class UrlNonceLedger {
  private readonly state: StateStore;

  constructor(state: StateStore) {
    this.state = state;
  }

  /** Spends the nonce: true for the first caller, false for every later one. */
  async consume(nonce: string, nodeId: string, expiresAtSeconds: number): Promise<boolean> {
    try {
      await this.state.put(
        {
          pk: pk(nonce),
          sk: SK,
          data: { nodeId, spentAt: new Date().toISOString() },
          expiresAt: expiresAtSeconds + CLOCK_MARGIN_SECONDS,
        },
        { kind: 'absent' },
      );
      return true;
    } catch (err) {
      if (err instanceof ConditionFailedError) return false;
      throw err;
    }
  }

  /** Whether the nonce has been spent (a HEAD asks, and spends nothing). */
  async spent(nonce: string): Promise<boolean> {
    return (await this.state.get(pk(nonce), SK)) !== undefined;
  }
}
