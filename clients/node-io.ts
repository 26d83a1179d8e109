/**
 * The Node side of the upload engine: a local file as an `UploadSource` (positional reads, nothing
 * buffered beyond the range asked for) and SHA-256 through node:crypto. The CLI and the
 * benchmarks use these; the browser has its own (Blob slices, hash-wasm).
 */
import { createHash } from 'node:crypto';
import type fs from 'node:fs';
import fsp from 'node:fs/promises';
import type { Hasher, UploadSource } from './upload.ts';

/** The file shrank between hashing and sending: what was hashed is no longer what would be sent. */
export class SourceChangedError extends Error {
  constructor(file: string) {
    super(`${file} changed while uploading (it got shorter)`);
    this.name = 'SourceChangedError';
  }
}

export async function openFileSource(
  file: string,
): Promise<{ source: UploadSource; stat: fs.Stats; close(): Promise<void> }> {
  const handle = await fsp.open(file, 'r');
  const stat = await handle.stat();
  return {
    stat,
    close: () => handle.close(),
    source: {
      size: stat.size,
      async read(start, end) {
        const buf = Buffer.allocUnsafe(end - start);
        let off = 0;
        while (off < buf.length) {
          const { bytesRead } = await handle.read(buf, off, buf.length - off, start + off);
          if (bytesRead === 0) throw new SourceChangedError(file);
          off += bytesRead;
        }
        return buf;
      },
    },
  };
}

export const nodeHasher = (): Hasher => {
  const h = createHash('sha256');
  return { update: (b) => void h.update(b), digest: () => h.digest('hex') };
};
