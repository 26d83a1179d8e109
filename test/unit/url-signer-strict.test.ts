/** The local node's signed-URL encoding has one reading, and its parser one accepted spelling. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type SignedFields, UrlSigner } from '../../shared/adapters/localfs/url-signer.ts';

const signer = new UrlSigner(randomBytes(32));
const now = 1_800_000_000;
const get: SignedFields = {
  op: 'get',
  node: 'n1',
  key: 'v/k',
  name: 'a.txt',
  type: 'text/plain',
  exp: now + 60,
};
const put: SignedFields = { op: 'put', node: 'n1', key: 'v/k', len: 10, exp: now + 60 };

describe('the signed string', () => {
  it('tells an absent field from an empty one, and a field from its neighbour', () => {
    const sigs = new Set(
      [
        { ...get, name: '' },
        { ...get, name: undefined },
        { ...get, type: '' },
        { ...get, name: 'a.txt\ntype=text/plain', type: undefined },
        { ...get, name: 'a.txt&type=text/plain', type: undefined },
        { ...get, name: 'a.txt","text/plain', type: undefined },
        get,
      ].map((f) => signer.sign(f as SignedFields)),
    );
    expect(sigs.size).toBe(7);
  });

  it('tells a number from the string of its digits', () => {
    expect(signer.sign({ ...put, sha: '10' })).not.toBe(signer.sign({ ...put, sha: undefined }));
  });
});

describe('UrlSigner.parse', () => {
  const q = (f: SignedFields) => signer.query(f);

  it.each([
    ['a repeated parameter', `${q(put)}&node=n2`],
    ['a repeated parameter, same value', `${q(put)}&len=10`],
    ['an unknown parameter', `${q(put)}&x=1`],
    ['a parameter the op does not take', `${q(put)}&name=a`],
    ['an empty parameter the op does not take', `${q(put)}&upload=`],
    ['a leading zero', q(put).replace('len=10', 'len=010')],
    ['a sign', q(put).replace('len=10', 'len=%2B10')],
    ['a space', q(put).replace('len=10', 'len=+10')],
    ['an exponent', q(put).replace(`exp=${put.exp}`, `exp=${put.exp}e0`)],
    ['a missing length', q(put).replace('len=10&', '')],
    ['a padded signature', `${q(put)}=`],
  ])('refuses %s', (_what, query) => {
    expect(UrlSigner.parse(new URLSearchParams(query))).toBeUndefined();
  });

  it('reads what query wrote, and verify takes only the signature as sign spells it', () => {
    const parsed = UrlSigner.parse(new URLSearchParams(q(get)));
    expect(parsed?.fields).toEqual(get);
    expect(signer.verify(get, parsed?.sig ?? '', now)).toBe(true);
    const sig = parsed?.sig ?? '';
    expect(signer.verify(get, `${sig}=`, now)).toBe(false);
    // Both decode to the same 32 bytes; neither is the signature.
    expect(signer.verify(get, `${sig.slice(0, 10)}!${sig.slice(10)}`, now)).toBe(false);
    const b64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const padBitSet = b64[b64.indexOf(sig.at(-1) ?? 'A') ^ 1];
    expect(signer.verify(get, `${sig.slice(0, -1)}${padBitSet}`, now)).toBe(false);
  });

  it('refuses to sign or verify fields that do not fit the op', () => {
    expect(() => signer.query({ ...put, name: 'a' })).toThrow();
    expect(() => signer.query({ op: 'part', node: 'n1', key: 'k', len: 1, exp: now + 60 })).toThrow();
    const extra = { ...put, name: 'a' };
    expect(signer.verify(extra, signer.sign(extra), now)).toBe(false);
  });
});
