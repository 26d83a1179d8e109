/**
 * Copies an object from one bucket to another inside S3, so its bytes never pass through the
 * process (in AWS, through the Lambda's memory and network): CopyObject up to 5 GiB, a multipart
 * upload filled by UploadPartCopy beyond. It asks S3 for checksums of what it stores and answers
 * what S3 vouches for (`CopyCheck`), so the caller need not read the copy back:
 *
 * - CopyObject with `x-amz-checksum-algorithm: SHA256`: S3 computes the SHA-256 of the whole new
 *   object (a copy is written in one operation, so its checksum is FULL_OBJECT even when the source
 *   was a multipart upload with a COMPOSITE one). That is the version's SHA-256 if the bytes are
 *   right: `{ kind: 'sha256' }`, compared by the caller.
 * - Multipart, source with a COMPOSITE SHA-256 (a client's multipart upload with part checksums):
 *   the copy is laid out part for part as the source (GetObjectAttributes ObjectParts), each
 *   UploadPartCopy answers S3's SHA-256 of the part it copied, and each must equal the source
 *   part's, which S3 computed when the part was uploaded: `same-as-source` by `part-sha256`.
 * - Multipart, source with a FULL_OBJECT CRC-64/NVME (S3's default checksum for uploads that named
 *   none): the copy is a FULL_OBJECT CRC-64/NVME upload, and the checksum S3 computes for the whole
 *   copy must equal the source's: `same-as-source` by `crc64nvme`. A CRC catches corruption, not an
 *   adversary; it compares two objects S3 holds, both of which only S3 wrote.
 * - Anything else (an S3-compatible store that returns no checksums, a source with another
 *   algorithm): `none`, and the caller reads the copy back.
 *
 * Every request names the source's ETag (x-amz-copy-source-if-match), so all parts come from the
 * object whose size was checked, and a source replaced mid-copy fails the copy (412) instead of
 * mixing two objects. A multipart copy that fails is aborted; one whose checksum does not match is
 * deleted.
 */
import {
  AbortMultipartUploadCommand,
  type ChecksumAlgorithm,
  CompleteMultipartUploadCommand,
  type CompleteMultipartUploadCommandOutput,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectAttributesCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  type S3Client,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { errors } from '../../domain/errors.ts';
import type { CopyCheck } from '../../ports/blob-store.ts';

export interface BucketLocation {
  client: S3Client;
  bucket: string;
}

export interface ServerSideCopyOptions {
  /** Largest object a single CopyObject copies (S3: 5 GiB); bigger ones are copied in parts. */
  copyObjectMaxBytes: number;
  /** Part size of a multipart copy whose layout is not the source's. */
  partBytes: number;
  /** UploadPartCopy requests in flight at once. */
  concurrency: number;
}

export const S3_COPY_DEFAULTS: ServerSideCopyOptions = {
  copyObjectMaxBytes: 5 * 1024 ** 3,
  partBytes: 256 * 1024 ** 2,
  concurrency: 8,
};

/** S3's limits on a multipart upload. */
const MAX_PARTS = 10_000;
const MIN_PART_BYTES = 5 * 1024 ** 2;

const b64ToHex = (b64: string) => Buffer.from(b64, 'base64').toString('hex');

/** A checksum S3 reports for a whole object, not one of part checksums ("…-N"). */
const fullObject = (type: string | undefined, value: string | undefined): value is string =>
  value !== undefined && (type === 'FULL_OBJECT' || (type === undefined && !value.includes('-')));

/** A part of the copy: its inclusive byte range of the source, and what S3 must answer for it. */
interface PartPlan {
  partNumber: number;
  start: number;
  end: number;
  sha256?: string;
}

export async function copyServerSide(
  from: BucketLocation,
  to: BucketLocation,
  key: string,
  size: number,
  opts: ServerSideCopyOptions = S3_COPY_DEFAULTS,
): Promise<CopyCheck> {
  const head = await from.client.send(
    new HeadObjectCommand({ Bucket: from.bucket, Key: key, ChecksumMode: 'ENABLED' }),
  );
  if (head.ContentLength !== size)
    throw errors.validation(`the source object holds ${head.ContentLength ?? 0} bytes, not ${size}`);
  const copySource = `${from.bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
  const ifMatch = head.ETag ? { CopySourceIfMatch: head.ETag } : {};

  if (size <= opts.copyObjectMaxBytes) {
    const res = await to.client.send(
      new CopyObjectCommand({
        Bucket: to.bucket,
        Key: key,
        CopySource: copySource,
        ChecksumAlgorithm: 'SHA256',
        ...ifMatch,
      }),
    );
    const c = res.CopyObjectResult;
    return fullObject(c?.ChecksumType, c?.ChecksumSHA256)
      ? { kind: 'sha256', sha256: b64ToHex(c.ChecksumSHA256) }
      : { kind: 'none' };
  }

  const mirrored = await mirroredParts(from, key, size, head);
  const sourceCrc = fullObject(head.ChecksumType, head.ChecksumCRC64NVME)
    ? head.ChecksumCRC64NVME
    : undefined;
  const algorithm: ChecksumAlgorithm = mirrored ? 'SHA256' : 'CRC64NVME';
  const plan = mirrored ?? evenParts(size, opts.partBytes);
  const created = await to.client.send(
    new CreateMultipartUploadCommand({
      Bucket: to.bucket,
      Key: key,
      ChecksumAlgorithm: algorithm,
      ChecksumType: mirrored ? 'COMPOSITE' : 'FULL_OBJECT',
    }),
  );
  const uploadId = created.UploadId;
  if (!uploadId) throw errors.unavailable('S3 started no multipart upload');
  let everyPartVouched = mirrored !== undefined;
  let completed: CompleteMultipartUploadCommandOutput;
  try {
    const parts = await inParallel(plan, opts.concurrency, async (p) => {
      const res = await to.client.send(
        new UploadPartCopyCommand({
          Bucket: to.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: p.partNumber,
          CopySource: copySource,
          CopySourceRange: `bytes=${p.start}-${p.end}`,
          ...ifMatch,
        }),
      );
      const r = res.CopyPartResult;
      if (!r?.ETag) throw errors.unavailable('S3 answered a part copy without an ETag');
      if (p.sha256 !== undefined) {
        if (r.ChecksumSHA256 === undefined) everyPartVouched = false;
        else if (b64ToHex(r.ChecksumSHA256) !== p.sha256)
          throw errors.checksumMismatch(`part ${p.partNumber} of the copy does not match the source's`);
      }
      return {
        PartNumber: p.partNumber,
        ETag: r.ETag,
        ...(r.ChecksumSHA256 ? { ChecksumSHA256: r.ChecksumSHA256 } : {}),
        ...(r.ChecksumCRC64NVME ? { ChecksumCRC64NVME: r.ChecksumCRC64NVME } : {}),
      };
    });
    completed = await to.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: to.bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts },
      }),
    );
  } catch (err) {
    await to.client
      .send(new AbortMultipartUploadCommand({ Bucket: to.bucket, Key: key, UploadId: uploadId }))
      .catch(() => undefined);
    throw err;
  }
  if (mirrored) return everyPartVouched ? { kind: 'same-as-source', by: 'part-sha256' } : { kind: 'none' };
  if (!sourceCrc) return { kind: 'none' };
  let copyCrc = fullObject(completed.ChecksumType, completed.ChecksumCRC64NVME)
    ? completed.ChecksumCRC64NVME
    : undefined;
  if (copyCrc === undefined) {
    const after = await to.client.send(
      new HeadObjectCommand({ Bucket: to.bucket, Key: key, ChecksumMode: 'ENABLED' }),
    );
    copyCrc = fullObject(after.ChecksumType, after.ChecksumCRC64NVME) ? after.ChecksumCRC64NVME : undefined;
  }
  if (copyCrc === undefined) return { kind: 'none' };
  if (copyCrc !== sourceCrc) {
    await to.client.send(new DeleteObjectCommand({ Bucket: to.bucket, Key: key })).catch(() => undefined);
    throw errors.checksumMismatch("the copy's CRC-64/NVME does not match the source's");
  }
  return { kind: 'same-as-source', by: 'crc64nvme' };
}

/**
 * The source's own parts, with the SHA-256 S3 holds for each, when it is a multipart object with a
 * COMPOSITE SHA-256 and S3 tells its parts; undefined otherwise.
 */
async function mirroredParts(
  from: BucketLocation,
  key: string,
  size: number,
  head: HeadObjectCommandOutput,
): Promise<PartPlan[] | undefined> {
  if (head.ChecksumType !== 'COMPOSITE' || !head.ChecksumSHA256) return undefined;
  const plan: PartPlan[] = [];
  let offset = 0;
  let marker: string | undefined;
  for (;;) {
    const res = await from.client.send(
      new GetObjectAttributesCommand({
        Bucket: from.bucket,
        Key: key,
        ObjectAttributes: ['ObjectParts'],
        MaxParts: 1000,
        ...(marker ? { PartNumberMarker: marker } : {}),
        ...(head.VersionId ? { VersionId: head.VersionId } : {}),
      }),
    );
    const parts = res.ObjectParts;
    for (const p of parts?.Parts ?? []) {
      if (p.PartNumber === undefined || !p.Size || !p.ChecksumSHA256) return undefined;
      plan.push({
        partNumber: p.PartNumber,
        start: offset,
        end: offset + p.Size - 1,
        sha256: b64ToHex(p.ChecksumSHA256),
      });
      offset += p.Size;
    }
    if (!parts?.IsTruncated || !parts.NextPartNumberMarker) break;
    marker = parts.NextPartNumberMarker;
  }
  const ordered = plan.every((p, i) => p.partNumber === i + 1);
  return ordered && plan.length > 0 && plan.length <= MAX_PARTS && offset === size ? plan : undefined;
}

/** Parts of `partBytes` (more when 10,000 would not hold the object), the last one shorter. */
function evenParts(size: number, partBytes: number): PartPlan[] {
  const bytes = Math.max(MIN_PART_BYTES, partBytes, Math.ceil(size / MAX_PARTS));
  const plan: PartPlan[] = [];
  for (let start = 0, n = 1; start < size; start += bytes, n++)
    plan.push({ partNumber: n, start, end: Math.min(size, start + bytes) - 1 });
  return plan;
}

/**
 * Runs `fn` on every item, `limit` at a time, and answers the results in order. After a failure no
 * more are started, and it rejects once those in flight have settled (so an abort that follows
 * races no part still being copied).
 */
async function inParallel<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = [];
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    for (let i = next++; i < items.length && !failure; i = next++) {
      try {
        out[i] = await fn(items[i] as T);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure) throw failure.err;
  return out;
}
