/**
 * Expired upload sessions are cleaned up from the state store's change stream: DynamoDB Streams on
 * the emulator feeding the Lambda handler, with S3 holding the partial multipart upload.
 * Emulator gap: moto does not run TTL deletion itself, so the test deletes the expired item and marks
 * the stream record as AWS marks TTL deletions (userIdentity dynamodb.amazonaws.com).
 */
import { createHash, randomBytes } from 'node:crypto';
import { DeleteCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Container } from '../../functions/container.ts';
import { createStateStreamHandler } from '../../functions/streams/state-stream.ts';
import { DynamoDbStateStore } from '../../shared/adapters/dynamodb/dynamodb-state-store.ts';
import { MemoryBlobStore } from '../../shared/adapters/memory/memory-blob-store.ts';
import { S3BlobStore } from '../../shared/adapters/s3/s3-blob-store.ts';
import { EICAR, EicarScanner, UnavailableScanner } from '../../shared/adapters/scanners/eicar-scanner.ts';
import type { Database } from '../../shared/ports/database.ts';
import {
  createBucket,
  createStateTable,
  dynamoClient,
  s3Client,
  sqlBackends,
  streamRecords,
} from '../support/fixtures.ts';
import { buildHarness, composeForTest } from '../support/service-harness.ts';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const pglite = sqlBackends[0];
if (!pglite) throw new Error('no pglite backend');

describe('upload-session expiry through DynamoDB Streams (emulator)', () => {
  let db: Database;
  let dispose: () => Promise<void>;
  let c: Container;
  let blobs: S3BlobStore;
  let table: string;
  const s3 = s3Client();
  const ddb = dynamoClient();

  beforeEach(async () => {
    ({ db, dispose } = await pglite.open());
    table = await createStateTable(ddb);
    blobs = new S3BlobStore('s3-test', s3, await createBucket(s3));
    c = composeForTest(
      { STRATUS_PART_SIZE_BYTES: String(5 * MiB) },
      {
        db,
        state: new DynamoDbStateStore(ddb, table),
        blobs,
      },
    );
  });
  afterEach(async () => {
    await dispose();
  });

  it('aborts the multipart upload of an expired session and leaves an "expired" tombstone', async () => {
    const u = await c.users.ensure({
      id: crypto.randomUUID(),
      email: 'exp@x.io',
      role: 'user',
      quotaBytes: 1e9,
    });
    const p = { userId: u.id, role: 'user' as const, tokenId: 't', expiresAt: 9e9 };
    const data = randomBytes(6 * MiB);
    const created = await c.uploads.createUpload(p, {
      parentId: 'root',
      name: 'big.bin',
      size: data.length,
      sha256: sha(data),
      contentType: 'application/octet-stream',
    });
    expect(created.partCount).toBe(2);
    const part1 = created.parts[0];
    expect(
      (
        await fetch(part1?.url ?? '', {
          method: 'PUT',
          headers: part1?.headers,
          body: data.subarray(0, 5 * MiB),
        })
      ).status,
    ).toBe(200);
    expect((await c.uploads.getUpload(p, created.uploadId)).receivedParts).toHaveLength(1);

    // What TTL does when the session expires: DynamoDB deletes the item.
    await DynamoDBDocumentClient.from(ddb).send(
      new DeleteCommand({ TableName: table, Key: { pk: `upload#${created.uploadId}`, sk: 's' } }),
    );
    const removal = (await streamRecords(table)).filter((r) => r.eventName === 'REMOVE');
    expect(removal).toHaveLength(1);
    const event = {
      Records: removal.map(
        (r) =>
          ({
            ...r,
            userIdentity: { type: 'Service', principalId: 'dynamodb.amazonaws.com' },
          }) as unknown as DynamoDBRecord,
      ),
    };
    const result = await createStateStreamHandler(c)(event);
    expect(result.batchItemFailures).toEqual([]);

    const session = await c.uploads.getUpload(p, created.uploadId);
    expect(session.state).toBe('expired');
    expect(session.receivedParts).toEqual([]);
    await expect(blobs.listParts(`v/${session.uploadId}`, 'x')).rejects.toMatchObject({
      name: 'NotFoundError',
    });
    await expect(c.uploads.completeUpload(p, created.uploadId, [])).rejects.toMatchObject({
      name: 'ConflictError',
    });
  });

  it('catches a corrupted part that storage accepted (the emulator does not enforce part checksums)', async () => {
    const u = await c.users.ensure({
      id: crypto.randomUUID(),
      email: 'corrupt@x.io',
      role: 'user',
      quotaBytes: 1e9,
    });
    const p = { userId: u.id, role: 'user' as const, tokenId: 't', expiresAt: 9e9 };
    const data = randomBytes(6 * MiB);
    const parts = [1, 2].map((n) => ({
      partNumber: n,
      sha256: sha(data.subarray((n - 1) * 5 * MiB, n * 5 * MiB)),
    }));
    const created = await c.uploads.createUpload(p, {
      parentId: 'root',
      name: 'c.bin',
      size: data.length,
      sha256: sha(data),
      contentType: 'application/octet-stream',
      parts,
    });
    const corrupted = Buffer.from(data.subarray(5 * MiB));
    corrupted[10] = (corrupted[10] ?? 0) ^ 1;
    const etags = [];
    for (const [i, body] of [data.subarray(0, 5 * MiB), corrupted].entries()) {
      const url = created.parts[i];
      const res = await fetch(url?.url ?? '', { method: 'PUT', headers: url?.headers, body });
      expect(res.status).toBe(200);
      etags.push({ partNumber: i + 1, etag: res.headers.get('etag') ?? '' });
    }
    await expect(c.uploads.completeUpload(p, created.uploadId, etags)).rejects.toMatchObject({
      name: 'IntegrityError',
      message: expect.stringContaining('part 2'),
    });
    expect((await c.uploads.getUpload(p, created.uploadId)).state).toBe('aborted');
    expect(
      await blobs.stat(
        `v/${(await c.state.get<{ versionId: string }>(`upload#${created.uploadId}`, 's'))?.data.versionId}`,
      ),
    ).toBeUndefined();
    expect(
      (await c.folders.listChildren(p, 'root', { sort: { by: 'name', dir: 'asc' }, limit: 5 })).items,
    ).toEqual([]);
  });

  it('reports a record it cannot process as a batch item failure, and processes the rest', async () => {
    const broken = {
      eventID: '1',
      eventName: 'REMOVE',
      dynamodb: {
        SequenceNumber: '42',
        OldImage: {
          pk: { S: 'upload#x' },
          sk: { S: 's' },
          ver: { N: '1' },
          data: { M: { state: { S: 'uploading' } } },
        },
      },
    } as unknown as DynamoDBRecord;
    const ignored = {
      eventID: '2',
      eventName: 'INSERT',
      dynamodb: {
        SequenceNumber: '43',
        NewImage: { pk: { S: 'revoked#j' }, sk: { S: 'r' }, ver: { N: '1' }, data: { M: {} } },
      },
    } as unknown as DynamoDBRecord;
    const result = await createStateStreamHandler(c)({ Records: [broken, ignored] });
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: '42' }]);
  });
});

describe('malware scanning', () => {
  let db: Database;
  let dispose: () => Promise<void>;
  beforeEach(async () => {
    ({ db, dispose } = await pglite.open());
  });
  afterEach(async () => {
    await dispose();
  });

  it('keeps versions quarantined while the scanner is down, and releases them once it passes them', async () => {
    const blobs = new MemoryBlobStore();
    const down = buildHarness(db, { scanner: new UnavailableScanner(), blobs });
    const u = await down.user('scan@x.io');
    const clean = await down.put(u, 'root', 'clean.txt', 'harmless');
    const bad = await down.put(u, 'root', 'eicar.txt', EICAR);
    expect((await down.c.versions.fileWithVersion(u, clean.fileId)).version.scanState).toBe('scanning');
    await expect(down.c.downloads.downloadUrl(u, clean.fileId)).rejects.toMatchObject({
      name: 'ConflictError',
      slug: 'quarantined',
    });
    expect(await down.c.verification.rescanPending()).toBe(0);

    const up = buildHarness(db, { scanner: new EicarScanner(), blobs });
    expect(await up.c.verification.rescanPending()).toBe(2);
    await expect(up.c.downloads.downloadUrl(u, clean.fileId)).resolves.toHaveProperty('url');
    await expect(up.c.downloads.downloadUrl(u, bad.fileId)).rejects.toMatchObject({ name: 'ConflictError' });
    const listing = await up.c.folders.listChildren(u, 'root', {
      sort: { by: 'name', dir: 'asc' },
      limit: 10,
    });
    expect(listing.items.map((i) => [i.name, i.scanState])).toEqual([
      ['clean.txt', 'clean'],
      ['eicar.txt', 'infected'],
    ]);
  });
});
