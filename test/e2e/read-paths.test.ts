/**
 * Every read path (owner download, a named version, a file's share link, a file inside a shared
 * folder, a copy) right after upload, on the layouts people run: the default profile (three local
 * nodes at replication factor 2, as `npm start`), one node, and an S3 node (the emulator) beside
 * local ones. Share links once signed on the container's first node, so on three nodes most of
 * them answered 404; each read now goes through the one replica-choosing download path.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createBucket, s3Client } from '../support/fixtures.ts';
import { Client, type Runtime, sha256, startRuntime } from '../support/local-runtime.ts';

interface Layout {
  name: string;
  env: () => Promise<Record<string, string>>;
  nodes: number;
}

const layouts: Layout[] = [
  { name: 'default profile (3 local nodes, rf 2)', env: async () => ({}), nodes: 3 },
  {
    name: 'one node',
    env: async () => ({ STRATUS_LOCAL_NODES: '1', STRATUS_REPLICATION_FACTOR: '1' }),
    nodes: 1,
  },
  {
    name: 'an S3 node beside two local ones (rf 2)',
    env: async () => ({
      STRATUS_LOCAL_NODES: '2',
      STRATUS_NODES: JSON.stringify([
        {
          id: 's3-emulator',
          kind: 's3',
          bucket: await createBucket(s3Client()),
          region: 'us-east-1',
          endpoint: inject('awsEndpoint'),
        },
      ]),
    }),
    nodes: 3,
  },
];

const FILES = 12;

describe.each(layouts)('read paths on $name', (layout) => {
  let rt: Runtime;
  let owner: Client;
  const files: { id: string; versionId: string; data: Buffer }[] = [];

  beforeAll(async () => {
    rt = await startRuntime(await layout.env());
    expect(rt.container.nodes.all()).toHaveLength(layout.nodes);
    owner = new Client(rt.url);
    await owner.signUp('reader@example.com');
    const folder = await owner.call('POST', '/v1/folders', { parentId: 'root', name: 'Shared' });
    for (let i = 0; i < FILES; i++) {
      const data = randomBytes(1000 + i);
      const { complete } = await owner.upload(String(folder.json.id), `f${i}.bin`, data);
      expect(complete?.status).toBe(201);
      files.push({ id: String(complete?.json.fileId), versionId: String(complete?.json.versionId), data });
    }
  });
  afterAll(async () => {
    await rt?.stop();
  });

  /** Follows a 302 to storage and returns the bytes. */
  const fetchBytes = async (location: string | null | undefined) => {
    expect(location).toBeTruthy();
    const res = await fetch(new URL(String(location), rt.url));
    expect(res.status, String(location)).toBe(200);
    return Buffer.from(await res.arrayBuffer());
  };

  it('serves every file to its owner, by current and by named version, straight after upload', async () => {
    for (const f of files) {
      const dl = await owner.call('GET', `/v1/files/${f.id}/download`);
      expect(dl.status).toBe(302);
      expect(sha256(await fetchBytes(dl.headers.get('location')))).toBe(sha256(f.data));
      const named = await owner.call('GET', `/v1/files/${f.id}/download?versionId=${f.versionId}`);
      expect(sha256(await fetchBytes(named.headers.get('location')))).toBe(sha256(f.data));
    }
  });

  it('serves every file through its own share link, without an account', async () => {
    let served = 0;
    for (const f of files) {
      const share = await owner.call('POST', '/v1/shares', { itemId: f.id, expiresInSeconds: 600 });
      expect(share.status).toBe(201);
      const res = await fetch(String(share.json.url), { redirect: 'manual' });
      expect(res.status).toBe(302);
      if (sha256(await fetchBytes(res.headers.get('location'))) === sha256(f.data)) served++;
    }
    expect(served).toBe(FILES);
  });

  it('serves every file inside a shared folder, and every copy', async () => {
    const listing = await owner.call('GET', '/v1/folders/root/children');
    const folderId = String(
      (listing.json.items as { id: string; name: string }[]).find((i) => i.name === 'Shared')?.id,
    );
    const share = await owner.call('POST', '/v1/shares', { itemId: folderId, expiresInSeconds: 600 });
    const token = new URL(String(share.json.url)).pathname.split('/').pop();
    for (const f of files) {
      const res = await fetch(`${rt.url}/s/${token}/${f.id}`, { redirect: 'manual' });
      expect(res.status).toBe(302);
      expect(sha256(await fetchBytes(res.headers.get('location')))).toBe(sha256(f.data));
      const copy = await owner.call('POST', `/v1/files/${f.id}/copy`, { parentId: 'root' });
      expect(copy.status).toBe(201);
      const dl = await owner.call('GET', `/v1/files/${copy.json.id}/download`);
      expect(sha256(await fetchBytes(dl.headers.get('location')))).toBe(sha256(f.data));
    }
  });
});
