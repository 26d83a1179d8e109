import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CONTENT_HASH_BLOCK, ContentHasher, contentHash } from '../../shared/domain/content-hash.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest();

describe('content hash (Dropbox content_hash)', () => {
  it('is the SHA-256 of the concatenated SHA-256s of 4 MiB blocks', () => {
    const data = randomBytes(2 * CONTENT_HASH_BLOCK + 123);
    const blocks = [
      data.subarray(0, CONTENT_HASH_BLOCK),
      data.subarray(CONTENT_HASH_BLOCK, 2 * CONTENT_HASH_BLOCK),
      data.subarray(2 * CONTENT_HASH_BLOCK),
    ];
    const expected = createHash('sha256')
      .update(Buffer.concat(blocks.map(sha)))
      .digest('hex');
    expect(contentHash(data)).toBe(expected);
  });

  it('does not depend on how the stream is chunked', () => {
    const data = randomBytes(CONTENT_HASH_BLOCK + 77_777);
    const h = new ContentHasher();
    for (let i = 0; i < data.length; i += 65_537) h.update(data.subarray(i, i + 65_537));
    expect(h.digest()).toBe(contentHash(data));
  });

  it('hashes an exact block multiple and an empty file as Dropbox does', () => {
    const one = randomBytes(CONTENT_HASH_BLOCK);
    expect(contentHash(one)).toBe(createHash('sha256').update(sha(one)).digest('hex'));
    expect(contentHash(Buffer.alloc(0))).toBe(createHash('sha256').update(Buffer.alloc(0)).digest('hex'));
  });
});
