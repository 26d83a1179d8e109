/**
 * Replication on the AWS adapters: the replica ledger in DynamoDB, its stream read back from the
 * emulator and fed to the stream Lambda, which copies the version between two S3 buckets (nodes in
 * two regions) and verifies it.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { DynamoDBRecord } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Container } from '../../functions/container.ts';
import { createStateStreamHandler } from '../../functions/streams/state-stream.ts';
import { DynamoDbStateStore } from '../../shared/adapters/dynamodb/dynamodb-state-store.ts';
import { S3BlobStore } from '../../shared/adapters/s3/s3-blob-store.ts';
import type { Database } from '../../shared/ports/database.ts';
import { NodeRegistry } from '../../shared/services/node-registry.ts';
import {
  createBucket,
  createStateTable,
  dynamoClient,
  s3Client,
  sqlBackends,
  streamRecords,
} from '../support/fixtures.ts';
import { composeForTest } from '../support/service-harness.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const pglite = sqlBackends[0];
if (!pglite) throw new Error('no pglite backend');

describe('replication through DynamoDB Streams between S3 nodes (emulator)', () => {
  let db: Database;
  let dispose: () => Promise<void>;
  let c: Container;
  let table: string;
  let buckets: string[];
  const s3 = s3Client();
  const ddb = dynamoClient();

  beforeEach(async () => {
    ({ db, dispose } = await pglite.open());
    table = await createStateTable(ddb);
    buckets = [await createBucket(s3), await createBucket(s3)];
    const nodes = new NodeRegistry(
      buckets.map((bucket, i) => ({
        id: `s3-${i}`,
        kind: 's3' as const,
        region: i === 0 ? 'eu-west-1' : 'us-east-1',
        weight: 1,
        store: new S3BlobStore(`s3-${i}`, s3, bucket),
        health: 'healthy' as const,
        draining: false,
      })),
      2,
    );
    c = composeForTest(
      {},
      {
        db,
        state: new DynamoDbStateStore(ddb, table),
        blobs: nodes.all()[0]?.store as S3BlobStore,
        nodes,
      },
    );
  });
  afterEach(async () => {
    await dispose();
  });

  it('copies a committed version to the other region and marks it verified', async () => {
    const u = await c.users.ensure({
      id: randomUUID(),
      email: 'streams@x.io',
      role: 'user',
      quotaBytes: 1e9,
    });
    const p = { userId: u.id, role: 'user' as const, tokenId: 't', expiresAt: 9e9 };
    const data = randomBytes(256 * 1024);
    const created = await c.uploads.createUpload(p, {
      parentId: 'root',
      name: 'x.bin',
      size: data.length,
      sha256: sha(data),
      contentType: 'application/octet-stream',
    });
    const part = created.parts[0];
    expect((await fetch(part?.url ?? '', { method: 'PUT', headers: part?.headers, body: data })).status).toBe(
      200,
    );
    const done = await c.uploads.completeUpload(p, created.uploadId, [{ partNumber: 1, etag: 'x' }]);
    if (done.status !== 'committed') throw new Error(`upload is ${done.status}`);
    const before = (await c.ledger.forVersion(done.versionId)).map((r) => r.data);
    expect(before.map((r) => r.state).sort()).toEqual(['pending', 'verified']);

    // The ledger's stream, as the Lambda event source delivers it.
    const records = (await streamRecords(table)).filter((r) =>
      r.dynamodb?.Keys?.pk?.S?.startsWith('ledger#'),
    );
    expect(records.length).toBeGreaterThan(0);
    const result = await createStateStreamHandler(c)({ Records: records as unknown as DynamoDBRecord[] });
    expect(result.batchItemFailures).toEqual([]);

    const after = (await c.ledger.forVersion(done.versionId)).map((r) => r.data);
    expect(after.map((r) => r.state)).toEqual(['verified', 'verified']);
    for (const n of c.nodes.all()) {
      const chunks: Buffer[] = [];
      for await (const chunk of (await n.store.read(`v/${done.versionId}`)) as AsyncIterable<Buffer>)
        chunks.push(chunk);
      expect(sha(Buffer.concat(chunks))).toBe(sha(data));
    }
    expect(await c.replication.status()).toMatchObject({
      versions: 1,
      belowReplicationFactor: 0,
      pending: 0,
      failed: 0,
    });
  });
});
