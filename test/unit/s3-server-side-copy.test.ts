/**
 * What a server-side copy between buckets answers, for each kind of source object, against a fake
 * S3 that behaves as the S3 API reference documents and the emulator does not (moto returns no part
 * checksums from UploadPartCopy or CompleteMultipartUpload, and no ObjectParts): CopyObject's
 * `CopyObjectResult.ChecksumSHA256` of the new object; GetObjectAttributes' `ObjectParts` with each
 * part's size and SHA-256; UploadPartCopy's `CopyPartResult` checksum of the part in the upload's
 * algorithm; CompleteMultipartUpload's full-object CRC-64/NVME. The CRC stand-in is any function of
 * the bytes: the copy only compares the values S3 gives.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { copyServerSide, type ServerSideCopyOptions } from '../../shared/adapters/s3/s3-server-side-copy.ts';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest();
const b64 = (b: Buffer) => b.toString('base64');
const crc = (b: Buffer) => b64(sha(Buffer.concat([Buffer.from('crc'), b])).subarray(0, 8));
const KEY = 'v/a key';
const ETAG = '"source-etag"';

type SourceChecksum = 'composite-sha256' | 'crc64nvme' | 'none';

/** One source object in bucket `src`, copies land in bucket `dst`; both through the one client. */
class FakeS3 {
  readonly sent: { name: string; input: Record<string, unknown> }[] = [];
  readonly copies: { inFlight: number; max: number } = { inFlight: 0, max: 0 };
  target: Buffer | undefined;
  private readonly upload = { algorithm: '', parts: new Map<number, Buffer>() };

  private readonly data: Buffer;
  private readonly checksum: SourceChecksum;
  /** The source's part sizes, when it was a multipart upload. */
  private readonly partSizes: number[];
  private readonly faults: { corruptPart?: number; copyObjectType?: 'COMPOSITE' };

  constructor(
    data: Buffer,
    checksum: SourceChecksum,
    partSizes: number[] = [data.length],
    faults: { corruptPart?: number; copyObjectType?: 'COMPOSITE' } = {},
  ) {
    this.data = data;
    this.checksum = checksum;
    this.partSizes = partSizes;
    this.faults = faults;
  }

  private parts() {
    let offset = 0;
    return this.partSizes.map((size, i) => {
      const bytes = this.data.subarray(offset, offset + size);
      offset += size;
      return { PartNumber: i + 1, Size: size, ChecksumSHA256: b64(sha(bytes)) };
    });
  }

  async send(command: { input: Record<string, unknown> }): Promise<unknown> {
    const name = command.constructor.name.replace(/Command$/, '');
    const input = command.input;
    this.sent.push({ name, input });
    switch (name) {
      case 'HeadObject': {
        if (input.Bucket === 'dst')
          return this.target
            ? { ContentLength: this.target.length, ChecksumCRC64NVME: crc(this.target) }
            : {};
        const parts = this.parts();
        return {
          ContentLength: this.data.length,
          ETag: ETAG,
          ...(this.checksum === 'composite-sha256'
            ? {
                ChecksumSHA256: `${b64(sha(Buffer.concat(parts.map((p) => Buffer.from(p.ChecksumSHA256, 'base64')))))}-${parts.length}`,
                ChecksumType: 'COMPOSITE',
              }
            : this.checksum === 'crc64nvme'
              ? { ChecksumCRC64NVME: crc(this.data), ChecksumType: 'FULL_OBJECT' }
              : {}),
        };
      }
      case 'GetObjectAttributes': {
        // Two parts a page, whatever MaxParts says, so the copy must follow the markers.
        const from = Number(input.PartNumberMarker ?? 0);
        const page = this.parts().slice(from, from + 2);
        const last = page.at(-1)?.PartNumber ?? from;
        return {
          ObjectParts: {
            TotalPartsCount: this.partSizes.length,
            Parts: page,
            IsTruncated: last < this.partSizes.length,
            NextPartNumberMarker: String(last),
          },
        };
      }
      case 'CopyObject':
        this.target = Buffer.from(this.data);
        return {
          CopyObjectResult: {
            ETag: '"copy"',
            ChecksumSHA256: b64(sha(this.target)) + (this.faults.copyObjectType ? '-1' : ''),
            ChecksumType: this.faults.copyObjectType ?? 'FULL_OBJECT',
          },
        };
      case 'CreateMultipartUpload':
        this.upload.algorithm = String(input.ChecksumAlgorithm);
        return { UploadId: 'upload-1' };
      case 'UploadPartCopy': {
        this.copies.max = Math.max(this.copies.max, ++this.copies.inFlight);
        await new Promise((r) => setTimeout(r, 5));
        this.copies.inFlight--;
        const [start, end] = String(input.CopySourceRange).replace('bytes=', '').split('-').map(Number) as [
          number,
          number,
        ];
        const bytes = Buffer.from(this.data.subarray(start, end + 1));
        if (input.PartNumber === this.faults.corruptPart) bytes[0] = (bytes[0] ?? 0) ^ 0xff;
        this.upload.parts.set(Number(input.PartNumber), bytes);
        return {
          CopyPartResult: {
            ETag: `"part-${input.PartNumber}"`,
            ...(this.upload.algorithm === 'SHA256' ? { ChecksumSHA256: b64(sha(bytes)) } : {}),
            ...(this.upload.algorithm === 'CRC64NVME' ? { ChecksumCRC64NVME: crc(bytes) } : {}),
          },
        };
      }
      case 'CompleteMultipartUpload': {
        const listed = (input.MultipartUpload as { Parts: { PartNumber: number }[] }).Parts;
        this.target = Buffer.concat(
          listed.map((p) => this.upload.parts.get(p.PartNumber) ?? Buffer.alloc(0)),
        );
        return this.upload.algorithm === 'CRC64NVME'
          ? { ChecksumCRC64NVME: crc(this.target), ChecksumType: 'FULL_OBJECT' }
          : {};
      }
      case 'AbortMultipartUpload':
        this.upload.parts.clear();
        return {};
      case 'DeleteObject':
        this.target = undefined;
        return {};
      default:
        throw new Error(`the fake S3 does not answer ${name}`);
    }
  }
}

const opts: ServerSideCopyOptions = { copyObjectMaxBytes: 5 * MiB, partBytes: 5 * MiB, concurrency: 2 };
const copy = (s3: FakeS3, size: number) => {
  const client = s3 as unknown as S3Client;
  return copyServerSide({ client, bucket: 'src' }, { client, bucket: 'dst' }, KEY, size, opts);
};
const bytes = (n: number) => randomBytes(n);
const names = (s3: FakeS3) => s3.sent.map((c) => c.name);

describe('server-side copy between buckets', () => {
  it('copies up to the limit with one CopyObject and answers S3’s SHA-256 of the copy', async () => {
    const data = bytes(3 * MiB);
    const s3 = new FakeS3(data, 'composite-sha256', [2 * MiB, MiB]);
    expect(await copy(s3, data.length)).toEqual({ kind: 'sha256', sha256: sha(data).toString('hex') });
    expect(names(s3)).toEqual(['HeadObject', 'CopyObject']);
    expect(s3.sent[1]?.input).toMatchObject({
      Bucket: 'dst',
      Key: KEY,
      CopySource: 'src/v/a%20key',
      ChecksumAlgorithm: 'SHA256',
      CopySourceIfMatch: ETAG,
    });
  });

  it('takes no COMPOSITE checksum from CopyObject for the SHA-256 of the copy', async () => {
    const data = bytes(MiB);
    const s3 = new FakeS3(data, 'none', [data.length], { copyObjectType: 'COMPOSITE' });
    expect(await copy(s3, data.length)).toEqual({ kind: 'none' });
  });

  it('copies a COMPOSITE SHA-256 source part for part, checking each part’s SHA-256', async () => {
    const sizes = [6 * MiB, 6 * MiB + 1, 6 * MiB, 123];
    const data = bytes(sizes.reduce((a, b) => a + b));
    const s3 = new FakeS3(data, 'composite-sha256', sizes);
    expect(await copy(s3, data.length)).toEqual({ kind: 'same-as-source', by: 'part-sha256' });
    expect(s3.target?.equals(data)).toBe(true);
    expect(names(s3).filter((n) => n === 'GetObjectAttributes')).toHaveLength(2);
    expect(s3.sent.find((c) => c.name === 'CreateMultipartUpload')?.input).toMatchObject({
      ChecksumAlgorithm: 'SHA256',
      ChecksumType: 'COMPOSITE',
    });
    const copies = s3.sent.filter((c) => c.name === 'UploadPartCopy').map((c) => c.input);
    expect(copies.map((c) => [c.PartNumber, c.CopySourceRange]).sort()).toEqual([
      [1, `bytes=0-${6 * MiB - 1}`],
      [2, `bytes=${6 * MiB}-${12 * MiB}`],
      [3, `bytes=${12 * MiB + 1}-${18 * MiB}`],
      [4, `bytes=${18 * MiB + 1}-${data.length - 1}`],
    ]);
    for (const c of copies) expect(c.CopySourceIfMatch).toBe(ETAG);
    const completed = s3.sent.find((c) => c.name === 'CompleteMultipartUpload')?.input as {
      MultipartUpload: { Parts: { ChecksumSHA256?: string }[] };
    };
    expect(completed.MultipartUpload.Parts.every((p) => p.ChecksumSHA256)).toBe(true);
    expect(s3.copies.max).toBe(2);
  });

  it('aborts a part-for-part copy with a part whose SHA-256 is not the source part’s', async () => {
    const sizes = [6 * MiB, 6 * MiB, 10];
    const data = bytes(12 * MiB + 10);
    const s3 = new FakeS3(data, 'composite-sha256', sizes, { corruptPart: 2 });
    await expect(copy(s3, data.length)).rejects.toMatchObject({ name: 'IntegrityError' });
    expect(names(s3)).toContain('AbortMultipartUpload');
    expect(names(s3)).not.toContain('CompleteMultipartUpload');
    expect(s3.target).toBeUndefined();
  });

  it('copies a CRC-64/NVME source in even parts and compares the CRC of the whole copy', async () => {
    const data = bytes(17 * MiB + 3);
    const s3 = new FakeS3(data, 'crc64nvme');
    expect(await copy(s3, data.length)).toEqual({ kind: 'same-as-source', by: 'crc64nvme' });
    expect(s3.target?.equals(data)).toBe(true);
    expect(names(s3)).not.toContain('GetObjectAttributes');
    expect(s3.sent.find((c) => c.name === 'CreateMultipartUpload')?.input).toMatchObject({
      ChecksumAlgorithm: 'CRC64NVME',
      ChecksumType: 'FULL_OBJECT',
    });
    expect(
      s3.sent
        .filter((c) => c.name === 'UploadPartCopy')
        .map((c) => c.input.CopySourceRange)
        .sort(),
    ).toEqual(
      [
        `bytes=0-${5 * MiB - 1}`,
        `bytes=${5 * MiB}-${10 * MiB - 1}`,
        `bytes=${10 * MiB}-${15 * MiB - 1}`,
        `bytes=${15 * MiB}-${data.length - 1}`,
      ].sort(),
    );
    expect(s3.copies.max).toBe(2);
  });

  it('deletes a copy whose CRC-64/NVME is not the source’s', async () => {
    const data = bytes(11 * MiB);
    const s3 = new FakeS3(data, 'crc64nvme', [data.length], { corruptPart: 3 });
    await expect(copy(s3, data.length)).rejects.toMatchObject({ name: 'IntegrityError' });
    expect(names(s3)).toContain('DeleteObject');
    expect(s3.target).toBeUndefined();
  });

  it('vouches for nothing when the source has no checksum to compare with', async () => {
    const data = bytes(11 * MiB);
    const s3 = new FakeS3(data, 'none');
    expect(await copy(s3, data.length)).toEqual({ kind: 'none' });
    expect(s3.target?.equals(data)).toBe(true);
  });

  it('refuses a source that does not hold the size asked for, copying nothing', async () => {
    const s3 = new FakeS3(bytes(100), 'none');
    await expect(copy(s3, 101)).rejects.toMatchObject({ name: 'InvalidInputError' });
    expect(names(s3)).toEqual(['HeadObject']);
  });
});
