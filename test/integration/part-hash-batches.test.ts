/**
 * Part hashes declared in batches on an S3 node (the emulator) with the session in DynamoDB (the
 * emulator, which enforces DynamoDB's 400 KB item limit): a 10,000-part upload declares its first
 * 1,000 hashes at create and the rest with renewParts, and every part URL signs its own hash as
 * x-amz-checksum-sha256. Emulator gap: moto neither checks a part's bytes against that header nor
 * the part checksums a complete names, so the test reads what the adapter sends S3 (the deployed
 * suite sees S3 refuse a wrong part).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Container } from '../../functions/container.ts';
import { DynamoDbStateStore } from '../../shared/adapters/dynamodb/dynamodb-state-store.ts';
import { S3BlobStore } from '../../shared/adapters/s3/s3-blob-store.ts';
import type { Principal } from '../../shared/domain/model.ts';
import type { UploadSession } from '../../shared/domain/upload-session.ts';
import type { Database } from '../../shared/ports/database.ts';
import type { PartUrl } from '../../shared/services/upload-storage.ts';
import { createBucket, createStateTable, dynamoClient, s3Client, sqlBackends } from '../support/fixtures.ts';
import { composeForTest } from '../support/service-harness.ts';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const b64 = (hex: string) => Buffer.from(hex, 'hex').toString('base64');
const pglite = sqlBackends[0];
if (!pglite) throw new Error('no pglite backend');

/** The inputs of the S3 commands a client sends, by command name. */
function recordCommands(s3: S3Client) {
  const sent: { command: string; input: Record<string, unknown> }[] = [];
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      sent.push({ command: String(context.commandName), input: args.input as Record<string, unknown> });
      return next(args);
    },
    { step: 'initialize', name: 'recordCommands' },
  );
  return (command: string) => sent.filter((c) => c.command === command).map((c) => c.input);
}

/** What an S3 part URL signs: its part number and the headers inside the signature. */
function signed(u: PartUrl) {
  const q = new URL(u.url).searchParams;
  return {
    partNumber: Number(q.get('partNumber')),
    headers: (q.get('X-Amz-SignedHeaders') ?? '').split(';'),
  };
}

describe('part hashes declared in batches (S3 and DynamoDB on the emulator)', () => {
  const s3 = s3Client();
  const sent = recordCommands(s3);
  const ddb = dynamoClient();
  let db: Database;
  let dispose: () => Promise<void>;
  let c: Container;
  let p: Principal;

  beforeEach(async () => {
    ({ db, dispose } = await pglite.open());
    c = composeForTest(
      { STRATUS_PART_SIZE_BYTES: String(5 * MiB) },
      {
        db,
        state: new DynamoDbStateStore(ddb, await createStateTable(ddb)),
        blobs: new S3BlobStore('s3-test', s3, await createBucket(s3)),
      },
    );
    const u = await c.users.ensure({
      id: crypto.randomUUID(),
      email: `${crypto.randomUUID()}@x.io`,
      role: 'user',
      quotaBytes: 1e14,
    });
    p = { userId: u.id, role: 'user', tokenId: 't', expiresAt: 9e9 };
  });
  afterEach(async () => {
    await dispose();
  });
  afterAll(() => {
    s3.destroy();
    ddb.destroy();
  });

  it('binds each of 10,000 part URLs to its hash, 1,000 declared at create and the rest in batches', async () => {
    const partCount = 10_000;
    const hashes = Array.from({ length: partCount }, () => randomBytes(32).toString('hex'));
    const declared = (from: number, to: number) =>
      hashes.slice(from - 1, to).map((sha256, i) => ({ partNumber: from + i, sha256 }));
    const created = await c.uploads.createUpload(p, {
      parentId: 'root',
      name: 'huge.bin',
      size: (partCount - 1) * 5 * MiB + 10,
      sha256: 'a'.repeat(64),
      contentType: 'application/octet-stream',
      partSize: 5 * MiB,
      parts: declared(1, 1000),
    });
    expect(created).toMatchObject({ partCount, partSize: 5 * MiB });
    const urls = new Map(created.parts.map((u) => [u.partNumber, u]));
    expect(urls.size).toBe(1000);
    for (let from = 1001; from <= partCount; from += 1000) {
      const renewed = await c.uploads.renewParts(p, created.uploadId, declared(from, from + 999));
      for (const u of renewed.parts) urls.set(u.partNumber, u);
    }
    expect(urls.size).toBe(partCount);
    for (const [n, u] of urls) {
      expect(signed(u)).toEqual({
        partNumber: n,
        headers: expect.arrayContaining(['content-length', 'host', 'x-amz-checksum-sha256']),
      });
      expect(u.headers).toEqual({ 'x-amz-checksum-sha256': b64(hashes[n - 1] as string) });
    }
    // The multipart upload takes SHA-256 part checksums, so S3 checks each part against its header.
    expect(sent('CreateMultipartUploadCommand').at(-1)).toMatchObject({ ChecksumAlgorithm: 'SHA256' });
    // Only the create's hashes live in the session item; the rest beside it, in 1,000-part records.
    const session = await c.state.get<UploadSession>(`upload#${created.uploadId}`, 's');
    expect(Object.keys(session?.data.partHashes ?? {})).toHaveLength(1000);

    // A renewed URL (no hash sent) stays bound; a different hash for a bound part is refused.
    const [again] = (await c.uploads.renewParts(p, created.uploadId, [{ partNumber: 9_999 }])).parts;
    expect(again?.headers).toEqual({ 'x-amz-checksum-sha256': b64(hashes[9_998] as string) });
    for (const partNumber of [17, 4_321]) {
      await expect(
        c.uploads.renewParts(p, created.uploadId, [{ partNumber, sha256: 'b'.repeat(64) }]),
      ).rejects.toMatchObject({
        name: 'ConflictError',
        message: expect.stringContaining(`part ${partNumber} is already bound to SHA-256`),
        extra: { partNumber, sha256: hashes[partNumber - 1] },
      });
    }
    const [kept] = (await c.uploads.renewParts(p, created.uploadId, declared(4_321, 4_321))).parts;
    expect(kept?.headers).toEqual({ 'x-amz-checksum-sha256': b64(hashes[4_320] as string) });
    await c.uploads.abortUpload(p, created.uploadId);
  });

  it('completes an upload whose later parts were declared in a batch, naming every part checksum', async () => {
    const data = randomBytes(11 * MiB);
    const bodies = [0, 1, 2].map((i) => data.subarray(i * 5 * MiB, Math.min(data.length, (i + 1) * 5 * MiB)));
    const partSha = bodies.map(sha);
    const created = await c.uploads.createUpload(p, {
      parentId: 'root',
      name: 'three.bin',
      size: data.length,
      sha256: sha(data),
      contentType: 'application/octet-stream',
      parts: [{ partNumber: 1, sha256: partSha[0] as string }],
    });
    expect(created.parts.map((u) => u.partNumber)).toEqual([1]);
    // Every part of an upload that declared hashes needs its own: no URL without one.
    await expect(c.uploads.renewParts(p, created.uploadId, [{ partNumber: 3 }])).rejects.toMatchObject({
      name: 'InvalidInputError',
      message: expect.stringContaining('parts without a declared SHA-256: 3'),
    });
    const renewed = await c.uploads.renewParts(p, created.uploadId, [
      { partNumber: 2, sha256: partSha[1] as string },
      { partNumber: 3, sha256: partSha[2] as string },
    ]);
    const urls = [...created.parts, ...renewed.parts];
    const etags = [];
    for (const [i, u] of urls.entries()) {
      expect(u.headers).toEqual({ 'x-amz-checksum-sha256': b64(partSha[i] as string) });
      const res = await fetch(u.url, { method: 'PUT', headers: u.headers, body: bodies[i] });
      expect(res.status).toBe(200);
      etags.push({ partNumber: i + 1, etag: res.headers.get('etag') ?? '' });
    }
    const done = await c.uploads.completeUpload(p, created.uploadId, etags);
    expect(done).toMatchObject({ name: 'three.bin' });
    expect(sent('CompleteMultipartUploadCommand').at(-1)).toMatchObject({
      MultipartUpload: {
        Parts: partSha.map((h, i) => ({ PartNumber: i + 1, ChecksumSHA256: b64(h) })),
      },
    });
  });

  it('cannot bind parts of an upload created without hashes: its multipart upload takes no checksums', async () => {
    const created = await c.uploads.createUpload(p, {
      parentId: 'root',
      name: 'plain.bin',
      size: 11 * MiB,
      sha256: 'a'.repeat(64),
      contentType: 'application/octet-stream',
    });
    expect(sent('CreateMultipartUploadCommand').at(-1)).not.toHaveProperty('ChecksumAlgorithm');
    const [u] = (await c.uploads.renewParts(p, created.uploadId, [{ partNumber: 2, sha256: 'b'.repeat(64) }]))
      .parts;
    expect(u?.headers).toEqual({});
    expect(signed(u as PartUrl).headers).not.toContain('x-amz-checksum-sha256');
    await c.uploads.abortUpload(p, created.uploadId);
  });
});
