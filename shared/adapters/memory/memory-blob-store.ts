/** In-memory BlobStore for domain and property tests: single PUTs and direct writes only. */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { errors } from '../../domain/errors.ts';
import {
  type BlobPage,
  type BlobStore,
  compareBlobKeys,
  type Leftover,
  listPageLimit,
  type PresignedRequest,
  type PutTarget,
  type UploadedPart,
} from '../../ports/blob-store.ts';

export class MemoryBlobStore implements BlobStore {
  readonly nodeId: string;
  readonly objects = new Map<string, Buffer>();
  readonly sweepBy: 'listing' | 'stat';

  constructor(nodeId = 'mem-1', opts: { sweepBy?: 'listing' | 'stat' } = {}) {
    this.nodeId = nodeId;
    this.sweepBy = opts.sweepBy ?? 'stat';
  }

  private signed(method: 'PUT' | 'GET', key: string, ttl: number): PresignedRequest {
    return {
      url: `mem://${this.nodeId}/${key}`,
      method,
      headers: {},
      expiresAt: new Date(Date.now() + ttl * 1000),
    };
  }

  async presignPut(t: PutTarget) {
    return this.signed('PUT', t.key, t.expiresInSeconds);
  }
  async createMultipartUpload(): Promise<string> {
    throw new Error('MemoryBlobStore does not do multipart uploads');
  }
  async presignUploadPart(): Promise<PresignedRequest> {
    throw new Error('MemoryBlobStore does not do multipart uploads');
  }
  async listParts(): Promise<UploadedPart[]> {
    return [];
  }
  async completeMultipartUpload() {}
  async abortMultipartUpload() {}
  /** Nothing fetches a mem:// URL; a single-use one says so, for tests of what callers ask for. */
  async presignGet(input: { key: string; expiresInSeconds: number; singleUse?: boolean }) {
    const signed = this.signed('GET', input.key, input.expiresInSeconds);
    return input.singleUse ? { ...signed, url: `${signed.url}?single-use` } : signed;
  }
  async stat(key: string) {
    const b = this.objects.get(key);
    return b ? { size: b.length } : undefined;
  }
  async read(key: string, range?: { start: number; end: number }) {
    const b = this.objects.get(key);
    if (!b) throw errors.notFound('object');
    return Readable.from([range ? b.subarray(range.start, range.end + 1) : b]);
  }
  async copyPart(): Promise<UploadedPart> {
    throw new Error('MemoryBlobStore does not do multipart uploads');
  }
  async write(key: string, body: Buffer) {
    this.objects.set(key, Buffer.from(body));
  }
  async writeStream(key: string, body: Readable, _size: number) {
    const chunks: Buffer[] = [];
    for await (const c of body as AsyncIterable<Buffer>) chunks.push(c);
    const data = Buffer.concat(chunks);
    this.objects.set(key, data);
    return { sha256: createHash('sha256').update(data).digest('hex') };
  }
  async delete(key: string) {
    this.objects.delete(key);
  }
  /** In the nodes' key order. Objects here have no write time: each is listed as written at the epoch. */
  async listPage(prefix: string, opts: { startAfter?: string; limit?: number } = {}): Promise<BlobPage> {
    const limit = listPageLimit(opts.limit);
    const after = opts.startAfter;
    const keys = [...this.objects.keys()]
      .filter((k) => k.startsWith(prefix) && (after === undefined || compareBlobKeys(k, after) > 0))
      .sort(compareBlobKeys);
    const items = keys
      .slice(0, limit)
      .map((key) => ({ key, size: this.objects.get(key)?.length ?? 0, modifiedAt: new Date(0) }));
    const last = items.at(-1);
    return keys.length > limit && last ? { items, next: last.key } : { items };
  }
  /** Writes here are whole and multipart is refused, so nothing is ever left over. */
  async leftovers(): Promise<Leftover[]> {
    return [];
  }
  async removeLeftover() {}
  async ping() {}
}
