/**
 * Dropbox's content_hash: the SHA-256 of the concatenation of the SHA-256 digests of the file's
 * 4 MiB blocks. A client can compute it locally and compare without downloading, and it can be
 * built from block hashes alone.
 */
import { createHash, type Hash } from 'node:crypto';

export const CONTENT_HASH_BLOCK = 4 * 1024 * 1024;

export class ContentHasher {
  private readonly blocks: Buffer[] = [];
  private block: Hash = createHash('sha256');
  private inBlock = 0;

  update(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(CONTENT_HASH_BLOCK - this.inBlock, chunk.length - offset);
      this.block.update(chunk.subarray(offset, offset + take));
      this.inBlock += take;
      offset += take;
      if (this.inBlock === CONTENT_HASH_BLOCK) {
        this.blocks.push(this.block.digest());
        this.block = createHash('sha256');
        this.inBlock = 0;
      }
    }
  }

  digest(): string {
    if (this.inBlock > 0) this.blocks.push(this.block.digest());
    return createHash('sha256').update(Buffer.concat(this.blocks)).digest('hex');
  }
}

export function contentHash(data: Buffer): string {
  const h = new ContentHasher();
  h.update(data);
  return h.digest();
}
