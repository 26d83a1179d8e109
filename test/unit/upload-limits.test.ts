/**
 * The sizes users have, at their edges: S3's largest object (10,000 parts of 5 GiB, the "48.8 TiB"
 * of AWS's "Amazon S3 multipart upload limits" page) is planned, configured and accepted exactly,
 * one byte more is refused; and the request bodies that declare part hashes stay under the smallest
 * body limit a deployment may set.
 */
import { describe, expect, it } from 'vitest';
import { CreateUploadBody, PartsBody } from '../../functions/api/schemas.ts';
import { MemoryBlobStore } from '../../shared/adapters/memory/memory-blob-store.ts';
import { MemoryDatabase } from '../../shared/adapters/memory/memory-metadata.ts';
import { loadConfig } from '../../shared/config/config.ts';
import {
  MAX_OBJECT,
  MAX_PART,
  MAX_PARTS,
  MiB,
  PARTS_PER_REQUEST,
  partLength,
  planParts,
} from '../../shared/domain/upload-session.ts';
import type { PresignedRequest, PutTarget } from '../../shared/ports/blob-store.ts';
import { buildHarness } from '../support/service-harness.ts';

const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

describe('the largest object: 10,000 parts of 5 GiB', () => {
  it('is AWS\u2019s 48.8 TiB, and a safe integer', () => {
    expect(MAX_OBJECT).toBe(53_687_091_200_000);
    expect(MAX_OBJECT).toBe(MAX_PARTS * MAX_PART);
    expect(Math.floor((MAX_OBJECT / TiB) * 10) / 10).toBe(48.8);
    expect(Number.isSafeInteger(MAX_OBJECT)).toBe(true);
  });

  it('plans exactly the limit as 10,000 parts of 5 GiB, whatever part size is asked for', () => {
    for (const preferred of [5 * MiB, 16 * MiB, GiB, MAX_PART]) {
      const plan = planParts(MAX_OBJECT, preferred);
      expect(plan).toEqual({ mode: 'multipart', partSize: MAX_PART, partCount: MAX_PARTS });
      expect(partLength(MAX_OBJECT, plan, MAX_PARTS)).toBe(MAX_PART);
    }
  });

  it('refuses one byte over the limit', () => {
    expect(() => planParts(MAX_OBJECT + 1, 16 * MiB)).toThrow(RangeError);
  });

  it('keeps every size near a growth step within 10,000 parts of 5 MiB to 5 GiB', () => {
    const steps = [1, 2, 16, 1000, 5119, 5120].map((k) => k * MAX_PARTS * MiB);
    const sizes = steps.flatMap((s) => [s - 1, s, s + 1]).filter((s) => s <= MAX_OBJECT);
    for (const size of [...sizes, MAX_OBJECT - 1, MAX_OBJECT - MAX_PART]) {
      const plan = planParts(size, 16 * MiB);
      expect(plan.partCount).toBeLessThanOrEqual(MAX_PARTS);
      expect(plan.partSize).toBeLessThanOrEqual(MAX_PART);
      expect(plan.partSize).toBeGreaterThanOrEqual(16 * MiB);
      const last = partLength(size, plan, plan.partCount);
      expect(last).toBeGreaterThan(0);
      expect(last).toBeLessThanOrEqual(plan.partSize);
    }
  });
});

describe('configuration', () => {
  it('accepts files up to the largest object by default, and no larger limit', () => {
    expect(loadConfig({}).STRATUS_MAX_FILE_BYTES).toBe(MAX_OBJECT);
    expect(loadConfig({ STRATUS_MAX_FILE_BYTES: String(MAX_OBJECT) }).STRATUS_MAX_FILE_BYTES).toBe(
      MAX_OBJECT,
    );
    expect(() => loadConfig({ STRATUS_MAX_FILE_BYTES: String(MAX_OBJECT + 1) })).toThrow(
      /STRATUS_MAX_FILE_BYTES="53687091200001"/,
    );
  });

  it('refuses a body limit a batch of part hashes would not fit in', () => {
    expect(loadConfig({ STRATUS_MAX_BODY_BYTES: String(128 * 1024) }).STRATUS_MAX_BODY_BYTES).toBe(
      128 * 1024,
    );
    expect(() => loadConfig({ STRATUS_MAX_BODY_BYTES: String(128 * 1024 - 1) })).toThrow(
      /STRATUS_MAX_BODY_BYTES="131071"/,
    );
  });
});

/** A memory node that opens multipart uploads and signs part URLs (nothing is PUT to them). */
class MultipartMemoryNode extends MemoryBlobStore {
  override async createMultipartUpload(): Promise<string> {
    return 'upload-1';
  }
  // The base takes no arguments (it signs nothing); the service hands it the part's target.
  override async presignUploadPart(...args: unknown[]): Promise<PresignedRequest> {
    const t = args[0] as PutTarget & { partNumber: number };
    const url = `mem://${this.nodeId}/${t.key}?part=${t.partNumber}&len=${t.contentLength}`;
    return { url, method: 'PUT', headers: {}, expiresAt: new Date(Date.now() + 60_000) };
  }
}

describe('opening an upload at the size limit', () => {
  it('plans a file of exactly the limit as 10,000 parts of 5 GiB, and refuses one byte more with 413', async () => {
    const h = buildHarness(new MemoryDatabase(), {
      quotaBytes: 2 * MAX_OBJECT,
      blobs: new MultipartMemoryNode(),
    });
    const u = await h.user('huge@x.io');
    const open = (size: number) =>
      h.c.uploads.createUpload(u, {
        parentId: 'root',
        name: `f${size}.bin`,
        size,
        sha256: 'a'.repeat(64),
        contentType: 'application/octet-stream',
      });
    const at = await open(MAX_OBJECT);
    expect(at).toMatchObject({ partSize: MAX_PART, partCount: MAX_PARTS });
    expect(at.parts).toHaveLength(PARTS_PER_REQUEST);
    expect(at.parts[0]?.url).toMatch(new RegExp(`part=1&len=${MAX_PART}$`));
    await expect(open(MAX_OBJECT + 1)).rejects.toMatchObject({
      name: 'InvalidInputError',
      slug: 'payload-too-large',
      message: `files may be at most ${MAX_OBJECT} bytes`,
      extra: { limit: MAX_OBJECT },
    });
  });
});

describe('request bodies declaring part hashes', () => {
  const smallestBodyLimit = 128 * 1024;
  const hashes = (n: number, from = MAX_PARTS - n + 1) =>
    Array.from({ length: n }, (_, i) => ({ partNumber: from + i, sha256: 'f'.repeat(64) }));
  // The longest each field can be: five-digit part numbers, a 1,024-character name of 4-byte characters.
  const create = (parts: ReturnType<typeof hashes>) => ({
    parentId: crypto.randomUUID(),
    name: '\u{1F600}'.repeat(512),
    size: MAX_OBJECT,
    sha256: 'f'.repeat(64),
    contentType: `${'x'.repeat(127)}/${'y'.repeat(127)}`,
    baseVersionId: crypto.randomUUID(),
    onConflict: 'copy',
    partSize: MAX_PART,
    parts,
  });
  const bytes = (body: unknown) => Buffer.byteLength(JSON.stringify(body));

  it('a create with its full batch of 1,000 fits the smallest body limit; 1,001 are refused', () => {
    const full = create(hashes(PARTS_PER_REQUEST));
    expect(CreateUploadBody.safeParse(full).success).toBe(true);
    expect(bytes(full)).toBeLessThan(smallestBodyLimit);
    expect(CreateUploadBody.safeParse(create(hashes(PARTS_PER_REQUEST + 1))).success).toBe(false);
  });

  it('a batch of 1,000 part hashes fits the smallest body limit; 1,001 are refused', () => {
    const full = { parts: hashes(PARTS_PER_REQUEST) };
    expect(PartsBody.safeParse(full).success).toBe(true);
    expect(bytes(full)).toBeLessThan(smallestBodyLimit);
    expect(PartsBody.safeParse({ parts: hashes(PARTS_PER_REQUEST + 1) }).success).toBe(false);
  });
});
