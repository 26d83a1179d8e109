import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type SignedFields, UrlSigner } from '../../shared/adapters/localfs/url-signer.ts';

const signer = new UrlSigner(randomBytes(32));
const now = 1_800_000_000;
const fields: SignedFields = {
  op: 'part',
  node: 'n1',
  key: 'v/abc',
  upload: 'u1',
  part: 3,
  len: 100,
  sha: 'ab'.repeat(32),
  exp: now + 60,
};

describe('URL signatures', () => {
  it('round-trips through the query string', () => {
    const parsed = UrlSigner.parse(new URLSearchParams(signer.query(fields)));
    expect(parsed?.fields).toEqual(fields);
    expect(signer.verify(parsed?.fields as SignedFields, parsed?.sig ?? '', now)).toBe(true);
  });

  it.each(Object.keys(fields))('breaks when %s changes', (k) => {
    const sig = signer.sign(fields);
    const changed = {
      ...fields,
      [k]: typeof fields[k as keyof SignedFields] === 'number' ? 999_999_999_999 : 'other',
    } as SignedFields;
    expect(signer.verify(changed, sig, now)).toBe(false);
  });

  it('expires', () => {
    const sig = signer.sign(fields);
    expect(signer.verify(fields, sig, fields.exp)).toBe(false);
    expect(signer.verify(fields, sig, fields.exp - 1)).toBe(true);
  });

  it('is bound to its secret', () => {
    expect(new UrlSigner(randomBytes(32)).verify(fields, signer.sign(fields), now)).toBe(false);
    expect(() => new UrlSigner(randomBytes(8))).toThrow();
  });

  it('rejects malformed queries', () => {
    expect(UrlSigner.parse(new URLSearchParams('op=put&node=n&key=k&exp=abc&sig=x'))).toBeUndefined();
    expect(UrlSigner.parse(new URLSearchParams('op=rm&node=n&key=k&exp=1&sig=x'))).toBeUndefined();
    expect(UrlSigner.parse(new URLSearchParams('op=put&node=n&key=k&exp=1&sig=x&len=-5'))).toBeUndefined();
    expect(UrlSigner.parse(new URLSearchParams('op=put&node=n&key=k&exp=1&sig=x&len=1e3'))).toBeUndefined();
  });
});
