/**
 * The ledger that makes local-node URLs single-use: of any number of racing spends of one nonce
 * exactly one wins, a spent nonce stays spent until its URL has expired, and a look spends nothing.
 */
import { describe, expect, it } from 'vitest';
import { UrlNonceLedger } from '../../shared/adapters/localfs/url-nonce-ledger.ts';
import { newNonce } from '../../shared/adapters/localfs/url-signer.ts';
import { MemoryStateStore } from '../../shared/adapters/memory/memory-state-store.ts';

let clock = 1_800_000_000_000;
const nowS = () => Math.floor(clock / 1000);

describe('UrlNonceLedger', () => {
  it('lets exactly one of 50 racing spends of a nonce win', async () => {
    const ledger = new UrlNonceLedger(new MemoryStateStore(() => clock));
    const nonce = newNonce();
    const wins = await Promise.all(
      Array.from({ length: 50 }, () => ledger.consume(nonce, 'n1', nowS() + 60)),
    );
    expect(wins.filter(Boolean)).toHaveLength(1);
    expect(await ledger.consume(nonce, 'n2', nowS() + 60)).toBe(false);
  });

  it('spends nothing on a look, and keeps nonces apart', async () => {
    const ledger = new UrlNonceLedger(new MemoryStateStore(() => clock));
    const [a, b] = [newNonce(), newNonce()];
    expect(await ledger.spent(a)).toBe(false);
    expect(await ledger.spent(a)).toBe(false);
    expect(await ledger.consume(a, 'n1', nowS() + 60)).toBe(true);
    expect(await ledger.spent(a)).toBe(true);
    expect(await ledger.consume(b, 'n1', nowS() + 60)).toBe(true);
  });

  it('keeps a spent nonce spent past its URL expiry (by a margin for other clocks)', async () => {
    const ledger = new UrlNonceLedger(new MemoryStateStore(() => clock));
    const nonce = newNonce();
    const exp = nowS() + 60;
    expect(await ledger.consume(nonce, 'n1', exp)).toBe(true);
    clock += 61_000;
    expect(await ledger.spent(nonce)).toBe(true);
    expect(await ledger.consume(nonce, 'n1', exp)).toBe(false);
  });
});
