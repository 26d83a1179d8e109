/**
 * The S3 adapter of the BlobStore port (AWS, the emulator, any S3-compatible endpoint). Clients
 * PUT straight to S3 through presigned URLs; a declared SHA-256 is signed into the URL as
 * x-amz-checksum-sha256, so S3 itself refuses a body that does not match. SDK errors become
 * domain errors here.
 */
import { createHash } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  NoSuchKey,
  NoSuchUpload,
  NotFound,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { DomainError, errors, NotFoundError } from '../../domain/errors.ts';
import {
  type BlobPage,
  type BlobStore,
  type CopyCheck,
  type Leftover,
  type ListedBlob,
  listPageLimit,
  type PresignedRequest,
  type PutTarget,
  type UploadedPart,
} from '../../ports/blob-store.ts';
import { copyServerSide, S3_COPY_DEFAULTS, type ServerSideCopyOptions } from './s3-server-side-copy.ts';

/**
 * How long a GET URL that was asked to be single-use may live. S3 cannot make a presigned URL
 * single-use ("You can use the presigned URL multiple times, up to the expiration date and time",
 * AWS S3 User Guide, "Download and upload objects with presigned URLs"), so such a URL is kept
 * short instead: long enough to follow a redirect or start a download, short enough that a spent
 * download can be fetched again only briefly. S3 checks expiry when a request starts, so a long
 * download started in time completes. docs/security.md says what this guarantees.
 */
export const SINGLE_USE_FALLBACK_TTL_SECONDS = 10;

const hexToB64 = (hex: string) => Buffer.from(hex, 'hex').toString('base64');
const b64ToHex = (b64: string) => Buffer.from(b64, 'base64').toString('hex');

export class S3BlobStore implements BlobStore {
  readonly nodeId: string;
  /** A full sweep lists the bucket (1 LIST per 1,000 keys) rather than a HEAD per replica. */
  readonly sweepBy = 'listing';
  /** Must be created with requestChecksumCalculation 'WHEN_REQUIRED' so presigned URLs carry only what we sign. */
  private readonly s3: S3Client;
  private readonly bucket: string;

  /** Streamed writes larger than this go up as a multipart upload of parts this size. */
  private readonly multipartPartSize: number;

  /**
   * Stores with the same scope reach each other's buckets with their own client: one S3 service (an
   * AWS partition, or one endpoint) and the same credentials (`s3CopyScope`). Between them a copy
   * is made inside S3; without a scope, never.
   */
  readonly copyScope: string | undefined;
  private readonly copyOptions: ServerSideCopyOptions;

  constructor(
    nodeId: string,
    s3: S3Client,
    bucket: string,
    opts: { multipartPartSize?: number; copyScope?: string; copy?: Partial<ServerSideCopyOptions> } = {},
  ) {
    this.nodeId = nodeId;
    this.s3 = s3;
    this.bucket = bucket;
    this.multipartPartSize = opts.multipartPartSize ?? 64 * 1024 * 1024;
    this.copyScope = opts.copyScope;
    this.copyOptions = { ...S3_COPY_DEFAULTS, ...opts.copy };
  }

  /** The client and bucket behind this node, for adapters that ask S3 about its objects (GuardDuty's tags). */
  get location(): { client: S3Client; bucket: string } {
    return { client: this.s3, bucket: this.bucket };
  }

  private async call<R>(op: () => Promise<R>, what = 'object'): Promise<R> {
    try {
      return await op();
    } catch (err) {
      if (err instanceof DomainError) throw err;
      if (err instanceof NoSuchKey || err instanceof NotFound) throw errors.notFound(what);
      if (err instanceof NoSuchUpload) throw errors.notFound('upload');
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      const status = e.$metadata?.httpStatusCode ?? 0;
      if (e.name === 'InvalidPart' || e.name === 'InvalidPartOrder')
        throw errors.uploadIncomplete('a part is missing or its ETag does not match');
      if (e.name === 'BadDigest' || e.name === 'InvalidDigest')
        throw errors.checksumMismatch('checksum mismatch');
      if (status === 404) throw errors.notFound(what);
      if (status >= 500 || status === 0) throw errors.unavailable(`storage node ${this.nodeId}`);
      throw err;
    }
  }

  private async presign(
    sign: (opts: { expiresIn: number; unhoistableHeaders: Set<string> }) => Promise<string>,
    expiresIn: number,
    headers: Record<string, string>,
  ) {
    // Checksum headers stay signed headers: the client must send them and S3 enforces them.
    const url = await sign({ expiresIn, unhoistableHeaders: new Set(Object.keys(headers)) });
    return { url, headers, expiresAt: new Date(Date.now() + expiresIn * 1000) };
  }

  async presignPut(t: PutTarget): Promise<PresignedRequest> {
    const headers: Record<string, string> = t.sha256 ? { 'x-amz-checksum-sha256': hexToB64(t.sha256) } : {};
    const cmd = new PutObjectCommand({
      Bucket: this.bucket,
      Key: t.key,
      ContentLength: t.contentLength,
      ...(t.sha256 ? { ChecksumSHA256: hexToB64(t.sha256) } : {}),
    });
    return {
      method: 'PUT',
      ...(await this.presign((o) => getSignedUrl(this.s3, cmd, o), t.expiresInSeconds, headers)),
    };
  }

  /**
   * With `partChecksums`, the upload takes SHA-256 part checksums: each part's presigned URL then
   * signs its x-amz-checksum-sha256, S3 refuses a part whose bytes do not match it, and the complete
   * must name every part's checksum. SHA-256 makes the object's checksum COMPOSITE (a checksum of
   * the part checksums): S3 offers FULL_OBJECT only for the CRC algorithms, and one upload has one
   * algorithm, so no full-object CRC64NVME can be asked for beside it (docs/deploy.md, "Integrity of
   * uploaded parts").
   */
  async createMultipartUpload(key: string, opts: { partChecksums: boolean }): Promise<string> {
    const res = await this.call(() =>
      this.s3.send(
        new CreateMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          ...(opts.partChecksums ? { ChecksumAlgorithm: 'SHA256' as const } : {}),
        }),
      ),
    );
    if (!res.UploadId) throw errors.unavailable(`storage node ${this.nodeId}`);
    return res.UploadId;
  }

  async presignUploadPart(t: PutTarget & { storageUploadId: string; partNumber: number }) {
    const headers: Record<string, string> = t.sha256 ? { 'x-amz-checksum-sha256': hexToB64(t.sha256) } : {};
    const cmd = new UploadPartCommand({
      Bucket: this.bucket,
      Key: t.key,
      UploadId: t.storageUploadId,
      PartNumber: t.partNumber,
      ContentLength: t.contentLength,
      ...(t.sha256 ? { ChecksumSHA256: hexToB64(t.sha256) } : {}),
    });
    return {
      method: 'PUT' as const,
      ...(await this.presign((o) => getSignedUrl(this.s3, cmd, o), t.expiresInSeconds, headers)),
    };
  }

  async listParts(key: string, storageUploadId: string): Promise<UploadedPart[]> {
    const parts: UploadedPart[] = [];
    let marker: string | undefined;
    do {
      const res = await this.call(
        () =>
          this.s3.send(
            new ListPartsCommand({
              Bucket: this.bucket,
              Key: key,
              UploadId: storageUploadId,
              PartNumberMarker: marker,
            }),
          ),
        'upload',
      );
      for (const p of res.Parts ?? []) {
        if (p.PartNumber === undefined || !p.ETag) continue;
        parts.push({
          partNumber: p.PartNumber,
          etag: p.ETag,
          size: p.Size ?? 0,
          ...(p.ChecksumSHA256 ? { sha256: b64ToHex(p.ChecksumSHA256) } : {}),
        });
      }
      marker = res.IsTruncated ? res.NextPartNumberMarker : undefined;
    } while (marker);
    return parts;
  }

  async completeMultipartUpload(
    key: string,
    storageUploadId: string,
    parts: readonly { partNumber: number; etag: string; sha256?: string }[],
  ): Promise<void> {
    await this.call(
      () =>
        this.s3.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.bucket,
            Key: key,
            UploadId: storageUploadId,
            MultipartUpload: {
              Parts: parts.map((p) => ({
                PartNumber: p.partNumber,
                ETag: p.etag,
                ...(p.sha256 ? { ChecksumSHA256: hexToB64(p.sha256) } : {}),
              })),
            },
          }),
        ),
      'upload',
    );
  }

  async abortMultipartUpload(key: string, storageUploadId: string): Promise<void> {
    try {
      await this.call(
        () =>
          this.s3.send(
            new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: storageUploadId }),
          ),
        'upload',
      );
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err; // idempotent
    }
  }

  /** `singleUse` cannot be honoured by S3: the URL's lifetime is capped instead (see above). */
  async presignGet(input: {
    key: string;
    expiresInSeconds: number;
    fileName: string;
    contentType: string;
    singleUse?: boolean;
  }) {
    const cmd = new GetObjectCommand({
      Bucket: this.bucket,
      Key: input.key,
      ResponseContentType: input.contentType,
      ResponseContentDisposition: `attachment; filename*=UTF-8''${encodeURIComponent(input.fileName)}`,
    });
    const ttl = input.singleUse
      ? Math.min(input.expiresInSeconds, SINGLE_USE_FALLBACK_TTL_SECONDS)
      : input.expiresInSeconds;
    return {
      method: 'GET' as const,
      ...(await this.presign((o) => getSignedUrl(this.s3, cmd, o), ttl, {})),
    };
  }

  async stat(key: string) {
    try {
      const res = await this.call(() =>
        this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key })),
      );
      return { size: res.ContentLength ?? 0 };
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  async read(key: string, range?: { start: number; end: number }): Promise<Readable> {
    const res = await this.call(() =>
      this.s3.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
        }),
      ),
    );
    return res.Body as Readable;
  }

  async copyPart(input: {
    key: string;
    storageUploadId: string;
    partNumber: number;
    sourceKey: string;
    start: number;
    end: number;
  }) {
    const res = await this.call(
      () =>
        this.s3.send(
          new UploadPartCopyCommand({
            Bucket: this.bucket,
            Key: input.key,
            UploadId: input.storageUploadId,
            PartNumber: input.partNumber,
            CopySource: `${this.bucket}/${input.sourceKey.split('/').map(encodeURIComponent).join('/')}`,
            CopySourceRange: `bytes=${input.start}-${input.end}`,
          }),
        ),
      'upload',
    );
    const etag = res.CopyPartResult?.ETag;
    if (!etag) throw errors.unavailable(`storage node ${this.nodeId}`);
    return {
      partNumber: input.partNumber,
      etag,
      size: input.end - input.start + 1,
      ...(res.CopyPartResult?.ChecksumSHA256 ? { sha256: b64ToHex(res.CopyPartResult.ChecksumSHA256) } : {}),
    };
  }

  /** Server-side from another S3 node in the same scope (s3-server-side-copy.ts); otherwise not at all. */
  async copyFrom(source: BlobStore, key: string, size: number): Promise<CopyCheck | undefined> {
    if (!(source instanceof S3BlobStore) || source === this) return undefined;
    if (this.copyScope === undefined || source.copyScope !== this.copyScope) return undefined;
    return this.call(() => copyServerSide(source.location, this.location, key, size, this.copyOptions));
  }

  async write(key: string, body: Buffer): Promise<void> {
    const sha = createHash('sha256').update(body).digest('base64');
    await this.call(() =>
      this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ChecksumSHA256: sha })),
    );
  }

  /**
   * Streams into the object, hashing on the way. Small objects take one PUT; larger ones a
   * multipart upload of `multipartPartSize` parts, a few in flight (S3 caps a single PUT at 5 GiB).
   */
  async writeStream(key: string, body: Readable, size: number): Promise<{ sha256: string }> {
    const hash = createHash('sha256');
    const tee = new PassThrough({ highWaterMark: 1024 * 1024 });
    body.on('data', (c: Buffer) => hash.update(c));
    body.on('error', (e) => tee.destroy(e));
    // The upload call reports a failed body; without a listener of its own, an error before the SDK
    // attaches one would end the process.
    tee.on('error', () => undefined);
    body.pipe(tee);
    if (size <= this.multipartPartSize) {
      await this.call(() =>
        this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: tee, ContentLength: size })),
      );
    } else {
      await this.call(() =>
        new Upload({
          client: this.s3,
          params: { Bucket: this.bucket, Key: key, Body: tee },
          partSize: this.multipartPartSize,
          queueSize: 4,
        }).done(),
      );
    }
    return { sha256: hash.digest('hex') };
  }

  async delete(key: string): Promise<void> {
    await this.call(() => this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })));
  }

  /**
   * ListObjectsV2 lists in UTF-8 byte order, the port's order. The cursor handed out is the last
   * key (StartAfter), not S3's continuation token: it works for any key, survives deletions, and
   * means the same on every node.
   */
  async listPage(prefix: string, opts: { startAfter?: string; limit?: number } = {}): Promise<BlobPage> {
    const limit = listPageLimit(opts.limit);
    const items: ListedBlob[] = [];
    let token: string | undefined;
    let truncated = false;
    do {
      const res = await this.call(() =>
        this.s3.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            MaxKeys: limit - items.length,
            // S3 ignores StartAfter once it has a continuation token.
            ...(token
              ? { ContinuationToken: token }
              : opts.startAfter
                ? { StartAfter: opts.startAfter }
                : {}),
          }),
        ),
      );
      for (const o of res.Contents ?? [])
        if (o.Key) items.push({ key: o.Key, size: o.Size ?? 0, modifiedAt: o.LastModified ?? new Date(0) });
      truncated = res.IsTruncated === true;
      token = truncated ? res.NextContinuationToken : undefined;
      // Without a delimiter S3 fills each page; should one come back empty but truncated, ask on.
    } while (token && items.length === 0);
    const last = items.at(-1);
    return truncated && last ? { items, next: last.key } : { items };
  }

  /**
   * Multipart uploads started before `olderThan` and never completed. Buckets the stack creates also
   * abort them by lifecycle after 7 days; this covers buckets added by hand and the days before that.
   */
  async leftovers(olderThan: Date, limit = 10_000): Promise<Leftover[]> {
    const out: Leftover[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const res = await this.call(() =>
        this.s3.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
            MaxUploads: 1000,
          }),
        ),
      );
      for (const u of res.Uploads ?? []) {
        if (!u.Key || !u.UploadId || !u.Initiated || u.Initiated >= olderThan) continue;
        out.push({ id: u.UploadId, kind: 'multipart', key: u.Key, modifiedAt: u.Initiated });
      }
      const more = res.IsTruncated && out.length < limit;
      keyMarker = more ? res.NextKeyMarker : undefined;
      uploadIdMarker = more ? res.NextUploadIdMarker : undefined;
    } while (keyMarker);
    return out.slice(0, limit);
  }

  async removeLeftover(l: Leftover): Promise<void> {
    if (l.kind !== 'multipart' || !l.key) return; // S3 writes nothing else beside its objects
    await this.abortMultipartUpload(l.key, l.id);
  }

  async ping(): Promise<void> {
    await this.call(() => this.s3.send(new HeadBucketCommand({ Bucket: this.bucket })), 'bucket');
  }
}
