/**
 * The nonce that makes a local-node GET URL single-use is a signed field like the others: changing
 * it (a fresh nonce for a spent URL) or dropping it (a multi-use URL from a single-use one) breaks
 * the signature, and only a GET takes one, in the one spelling `newNonce` writes.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { newNonce, type SignedFields, UrlSigner } from '../../shared/adapters/localfs/url-signer.ts';

const signer = new UrlSigner(randomBytes(32));
const now = 1_800_000_000;
const nonce = newNonce();
const get: SignedFields = {
  op: 'get',
  node: 'n1',
  key: 'v/k',
  name: 'a.txt',
  type: 'text/plain',
  nonce,
  exp: now + 60,
};
const parse = (query: string) => UrlSigner.parse(new URLSearchParams(query));

describe('the nonce of a single-use URL', () => {
  it('round-trips through the query, and the URL verifies with it', () => {
    const parsed = parse(signer.query(get));
    expect(parsed?.fields).toEqual(get);
    expect(signer.verify(get, parsed?.sig ?? '', now)).toBe(true);
  });

  it('is inside the MAC: another nonce, or none, does not verify', () => {
    const sig = signer.sign(get);
    expect(signer.verify({ ...get, nonce: newNonce() }, sig, now)).toBe(false);
    const { nonce: _dropped, ...multiUse } = get;
    expect(signer.verify(multiUse, sig, now)).toBe(false);
    // Nor does the multi-use URL's signature verify with a nonce added.
    expect(signer.verify(get, signer.sign(multiUse), now)).toBe(false);
    expect(signer.sign(get)).not.toBe(signer.sign(multiUse));
  });

  it('changes the signature whichever of its characters changes', () => {
    const sig = signer.sign(get);
    for (let i = 0; i < nonce.length - 1; i++) {
      const other = `${nonce.slice(0, i)}${nonce[i] === 'A' ? 'B' : 'A'}${nonce.slice(i + 1)}`;
      expect(signer.verify({ ...get, nonce: other }, sig, now), `character ${i}`).toBe(false);
    }
  });

  it('is 128 random bits in unpadded base64url, fresh each time', () => {
    const many = new Set(Array.from({ length: 100 }, newNonce));
    expect(many.size).toBe(100);
    for (const n of many) expect(n).toMatch(/^[A-Za-z0-9_-]{21}[AQgw]$/);
  });

  it.each([
    ['an empty nonce', ''],
    ['a short nonce', nonce.slice(0, -1)],
    ['a long nonce', `${nonce}A`],
    ['a padded nonce', `${nonce}==`],
    ['a nonce with the unused low bits set', `${nonce.slice(0, -1)}B`],
    ['a nonce outside base64url', `${nonce.slice(0, -2)}+A`],
  ])('is refused as %s', (_what, bad) => {
    const query = signer.query(get).replace(`nonce=${nonce}`, `nonce=${encodeURIComponent(bad)}`);
    expect(parse(query)).toBeUndefined();
    expect(signer.verify({ ...get, nonce: bad }, signer.sign({ ...get, nonce: bad }), now)).toBe(false);
  });

  it('belongs to GETs only', () => {
    const put: SignedFields = { op: 'put', node: 'n1', key: 'v/k', len: 10, exp: now + 60 };
    expect(() => signer.query({ ...put, nonce })).toThrow();
    expect(parse(`${signer.query(put)}&nonce=${nonce}`)).toBeUndefined();
    expect(signer.verify({ ...put, nonce }, signer.sign({ ...put, nonce }), now)).toBe(false);
  });

  it('is refused when repeated', () => {
    expect(parse(`${signer.query(get)}&nonce=${nonce}`)).toBeUndefined();
  });
});
