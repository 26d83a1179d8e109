/**
 * How the replicator copies a replica: inside S3 between S3 nodes (CopyObject, or UploadPartCopy
 * past the CopyObject limit), a file copy between local nodes, and streamed through this process
 * otherwise. On the emulator and on real local nodes; every SDK command the nodes' clients send is
 * recorded, and every byte read through a node's `read` is counted: a server-side copy reads none
 * through the source.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Transform } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { LocalFsBlobStore } from '../../shared/adapters/localfs/localfs-blob-store.ts';
import { MemoryStateStore } from '../../shared/adapters/memory/memory-state-store.ts';
import { S3BlobStore } from '../../shared/adapters/s3/s3-blob-store.ts';
import { createLogger } from '../../shared/observability/logger.ts';
import type { BlobStore } from '../../shared/ports/blob-store.ts';
import type { Metrics } from '../../shared/ports/metrics.ts';
import type { StorageNode } from '../../shared/ports/storage-node.ts';
import { NodeRegistry } from '../../shared/services/node-registry.ts';
import { ReplicaLedger } from '../../shared/services/replica-ledger.ts';
import { Replicator } from '../../shared/services/replicator.ts';
import { createBucket, s3Client } from '../support/fixtures.ts';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const readAll = async (s: AsyncIterable<Buffer>) => {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c);
  return Buffer.concat(chunks);
};

/** The commands a client sends (name and input), and the most UploadPartCopy requests at once. */
function record(client: S3Client) {
  const sent: { command: string; input: Record<string, unknown> }[] = [];
  const partCopies = { inFlight: 0, max: 0 };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = String(context.commandName).replace(/Command$/, '');
      sent.push({ command, input: args.input as Record<string, unknown> });
      if (command !== 'UploadPartCopy') return next(args);
      partCopies.max = Math.max(partCopies.max, ++partCopies.inFlight);
      try {
        return await next(args);
      } finally {
        partCopies.inFlight--;
      }
    },
    { step: 'initialize', name: 'replicationCopyRecorder', priority: 'high' },
  );
  return { sent, partCopies, names: () => sent.map((c) => c.command) };
}

/** The store, with every byte read through its `read` counted. */
function countingReads<S extends BlobStore>(store: S): { store: S; bytes: () => number } {
  let bytes = 0;
  const watched = Object.assign(Object.create(store) as S, {
    read: async (key: string, range?: { start: number; end: number }) => {
      const counter = new Transform({
        transform(chunk: Buffer, _enc, done) {
          bytes += chunk.length;
          done(null, chunk);
        },
      });
      const source = await store.read(key, range);
      source.on('error', (err) => counter.destroy(err));
      return source.pipe(counter);
    },
  });
  return { store: watched, bytes: () => bytes };
}

const node = (store: BlobStore): StorageNode => ({
  id: store.nodeId,
  kind: store instanceof S3BlobStore ? 's3' : 'localfs',
  region: 'local',
  weight: 1,
  store,
  health: 'healthy',
  draining: false,
});

/** Replicates one version from `source` (where it is verified) to `target`; answers the ledger's verdict. */
async function replicate(
  source: BlobStore,
  target: BlobStore,
  v: { blobKey: string; size: number; sha256: string },
) {
  const ledger = new ReplicaLedger(new MemoryStateStore());
  const paths: string[] = [];
  const metrics: Metrics = {
    count: (name, labels) => {
      if (name === 'stratus_replica_copies_total') paths.push(labels?.path ?? '');
    },
    observe() {},
    flush() {},
  };
  const replicator = new Replicator(
    ledger,
    new NodeRegistry([node(source), node(target)], 2),
    createLogger('silent'),
    metrics,
  );
  const versionId = randomUUID();
  await ledger.plan({ versionId, ...v }, source.nodeId, [target.nodeId]);
  const replicaOn = async () => {
    const r = (await ledger.forVersion(versionId)).find((x) => x.data.nodeId === target.nodeId);
    if (!r) throw new Error('no replica planned on the target');
    return r;
  };
  const ok = await replicator.replicate(await replicaOn());
  return { ok, replica: (await replicaOn()).data, paths };
}

const s3s: S3Client[] = [];
afterAll(() => {
  for (const c of s3s) c.destroy();
});
/** An S3 node on its own bucket of the emulator, with its own recorded client. */
async function s3Node(id: string, opts: ConstructorParameters<typeof S3BlobStore>[3] = {}) {
  const client = s3Client();
  s3s.push(client);
  const bucket = await createBucket(client);
  const rec = record(client);
  return {
    store: new S3BlobStore(id, client, bucket, { copyScope: 'the test emulator', ...opts }),
    bucket,
    rec,
  };
}

const roots: string[] = [];
afterEach(async () => {
  for (const r of roots.splice(0)) await fs.rm(r, { recursive: true, force: true });
});
async function localNode(id: string) {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), `stratus-copy-${id}-`));
  roots.push(root);
  return new LocalFsBlobStore(id, root, `http://127.0.0.1:9/storage/${id}`, randomBytes(32)).init();
}

describe('replication between S3 nodes', () => {
  it('copies with one CopyObject, checks S3’s SHA-256 of the copy, and reads no byte', async () => {
    const src = await s3Node('s3-src');
    const dst = await s3Node('s3-dst');
    const body = randomBytes(3 * MiB + 11);
    const key = `v/${randomUUID()}`;
    await src.store.write(key, body);
    src.rec.sent.length = 0;
    const source = countingReads(src.store);
    const target = countingReads(dst.store);

    const { ok, replica, paths } = await replicate(source.store, target.store, {
      blobKey: key,
      size: body.length,
      sha256: sha(body),
    });

    expect(ok).toBe(true);
    expect(replica).toMatchObject({ state: 'verified', checksum: sha(body) });
    expect(dst.rec.names()).toEqual(['HeadObject', 'CopyObject']); // the replicator's stat, then the copy
    expect(dst.rec.sent[1]?.input).toMatchObject({
      Bucket: dst.bucket,
      Key: key,
      CopySource: `${src.bucket}/${key}`,
      ChecksumAlgorithm: 'SHA256',
    });
    expect(src.rec.names()).toEqual(['HeadObject']); // size and ETag of the source, no GetObject
    expect(src.rec.sent[0]?.input).toMatchObject({ ChecksumMode: 'ENABLED' });
    expect(source.bytes()).toBe(0);
    expect(target.bytes()).toBe(0); // S3 vouched for the copy: nothing read back
    expect(paths).toEqual(['server-side']);
    expect(sha(await readAll(await dst.store.read(key)))).toBe(sha(body));
  });

  it('does not verify a copy whose S3 checksum is not the version’s', async () => {
    const src = await s3Node('s3-src');
    const dst = await s3Node('s3-dst');
    const key = `v/${randomUUID()}`;
    await src.store.write(key, Buffer.from('the bytes on the source'));
    const { ok, replica } = await replicate(src.store, dst.store, {
      blobKey: key,
      size: 23,
      sha256: sha(Buffer.from('the bytes the version has')),
    });
    expect(ok).toBe(false);
    expect(replica).toMatchObject({
      state: 'pending',
      lastError: 'copy does not match the version checksum',
    });
  });

  it('copies past the CopyObject limit as UploadPartCopy parts, a bounded few at a time', async () => {
    const src = await s3Node('s3-src');
    // The limits scaled down (5 GiB, 256 MiB parts) to what the emulator copies in a moment.
    const dst = await s3Node('s3-dst', {
      copy: { copyObjectMaxBytes: 5 * MiB, partBytes: 5 * MiB, concurrency: 2 },
    });
    const body = randomBytes(17 * MiB + 5);
    const key = `v/${randomUUID()}`;
    await src.store.write(key, body);
    const source = countingReads(src.store);
    const target = countingReads(dst.store);

    const { ok, replica, paths } = await replicate(source.store, target.store, {
      blobKey: key,
      size: body.length,
      sha256: sha(body),
    });

    expect(ok).toBe(true);
    expect(replica).toMatchObject({ state: 'verified', checksum: sha(body) });
    const copies = dst.rec.sent.filter((c) => c.command === 'UploadPartCopy');
    expect(copies.map((c) => c.input.CopySourceRange).sort()).toEqual(
      [
        `bytes=0-${5 * MiB - 1}`,
        `bytes=${5 * MiB}-${10 * MiB - 1}`,
        `bytes=${10 * MiB}-${15 * MiB - 1}`,
        `bytes=${15 * MiB}-${body.length - 1}`,
      ].sort(),
    );
    for (const c of copies)
      expect(c.input).toMatchObject({
        CopySource: `${src.bucket}/${key}`,
        CopySourceIfMatch: expect.any(String),
      });
    expect(dst.rec.sent.find((c) => c.command === 'CreateMultipartUpload')?.input).toMatchObject({
      ChecksumAlgorithm: 'CRC64NVME',
      ChecksumType: 'FULL_OBJECT',
    });
    expect(dst.rec.names()).toContain('CompleteMultipartUpload');
    expect(dst.rec.names()).not.toContain('UploadPart');
    expect(dst.rec.partCopies.max).toBe(2);
    expect(source.bytes()).toBe(0);
    // The emulator's source carries no CRC-64/NVME to compare with, so nothing vouches for the copy
    // and the replicator reads it back (real S3 gives one to objects uploaded without a checksum).
    expect(target.bytes()).toBe(body.length);
    expect(paths).toEqual(['server-side']);
    expect(sha(await readAll(await dst.store.read(key)))).toBe(sha(body));
  });
});

describe('replication between local nodes', () => {
  it('copies the files in the kernel: nothing read through either node, the same bytes', async () => {
    const src = await localNode('local-src');
    const dst = await localNode('local-dst');
    const key = `v/${randomUUID()}`;
    // A three-part object, as a multipart upload leaves it (parts filled from a staged object).
    const body = randomBytes(3 * MiB + 123);
    await src.write('v/staging', body);
    const id = await src.createMultipartUpload(key, { partChecksums: false });
    const ranges = [
      [0, MiB - 1],
      [MiB, 2 * MiB - 1],
      [2 * MiB, body.length - 1],
    ] as const;
    const parts = [];
    for (const [i, [start, end]] of ranges.entries())
      parts.push(
        await src.copyPart({
          key,
          storageUploadId: id,
          partNumber: i + 1,
          sourceKey: 'v/staging',
          start,
          end,
        }),
      );
    await src.completeMultipartUpload(key, id, parts);
    const source = countingReads(src);
    const target = countingReads(dst);

    const { ok, replica, paths } = await replicate(source.store, target.store, {
      blobKey: key,
      size: body.length,
      sha256: sha(body),
    });

    expect(ok).toBe(true);
    expect(replica).toMatchObject({ state: 'verified', checksum: sha(body) });
    expect(source.bytes()).toBe(0);
    expect(target.bytes()).toBe(0);
    const copied = dst.objectDir(key);
    expect((await fs.readdir(copied)).sort()).toEqual([
      'manifest.json',
      'part.1',
      'part.1.json',
      'part.2',
      'part.2.json',
      'part.3',
      'part.3.json',
    ]);
    for (const n of [1, 2, 3])
      expect(await fs.readFile(path.join(copied, `part.${n}.json`), 'utf8')).toBe(
        await fs.readFile(path.join(src.objectDir(key), `part.${n}.json`), 'utf8'),
      );
    // A copy, not a link: the source's files changing later leaves it alone.
    await fs.writeFile(path.join(src.objectDir(key), 'part.2'), Buffer.alloc(MiB));
    expect(paths).toEqual(['server-side']);
    expect(sha(await readAll(await dst.read(key)))).toBe(sha(body));
    expect(await dst.stat(key)).toEqual({ size: body.length });
  });

  it('refuses a source that does not hold the version’s size', async () => {
    const src = await localNode('local-src');
    const dst = await localNode('local-dst');
    await src.write('v/short', Buffer.from('short'));
    await expect(dst.copyFrom(src, 'v/short', 6)).rejects.toMatchObject({ name: 'InvalidInputError' });
    await expect(dst.copyFrom(src, 'v/absent', 6)).rejects.toMatchObject({ name: 'NotFoundError' });
    expect(await dst.stat('v/short')).toBeUndefined();
  });
});

describe('replication that cannot be server-side streams through the process', () => {
  const cases = [
    { name: 'local node to S3', from: 'local', to: 's3' },
    { name: 'S3 to local node', from: 's3', to: 'local' },
    { name: 'S3 to S3 of another scope (another endpoint or credentials)', from: 's3', to: 's3-elsewhere' },
  ] as const;
  it.each(cases)('$name', async ({ from, to }) => {
    const body = randomBytes(2 * MiB + 3);
    const key = `v/${randomUUID()}`;
    const open = async (kind: 'local' | 's3' | 's3-elsewhere', id: string) =>
      kind === 'local'
        ? { store: await localNode(id), rec: undefined }
        : await s3Node(id, kind === 's3-elsewhere' ? { copyScope: 'another S3' } : {});
    const src = await open(from, 'src');
    const dst = await open(to, 'dst');
    await src.store.write(key, body);
    const source = countingReads(src.store);

    const { ok, replica, paths } = await replicate(source.store, dst.store, {
      blobKey: key,
      size: body.length,
      sha256: sha(body),
    });

    expect(ok).toBe(true);
    expect(replica).toMatchObject({ state: 'verified', checksum: sha(body) });
    expect(source.bytes()).toBe(body.length);
    if (dst.rec) {
      expect(dst.rec.names()).toContain('PutObject');
      expect(dst.rec.names()).not.toContain('CopyObject');
    }
    expect(paths).toEqual(['stream']);
    expect(sha(await readAll(await dst.store.read(key)))).toBe(sha(body));
  });
});
