/** A local-filesystem storage node served over real HTTP on a free port, in a temp directory. */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { LocalStorageNodeServer } from '../../shared/adapters/localfs/local-storage-node-server.ts';
import { LocalFsBlobStore } from '../../shared/adapters/localfs/localfs-blob-store.ts';

export async function openLocalNode() {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-node-'));
  let node: LocalFsBlobStore | undefined;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    void new LocalStorageNodeServer(node ? [node] : []).handle(req, res, url).then((handled) => {
      if (!handled) res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  node = await new LocalFsBlobStore(
    'n1',
    root,
    `http://127.0.0.1:${port}/storage/n1`,
    randomBytes(32),
  ).init();
  return {
    node,
    async dispose() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await fs.rm(root, { recursive: true, force: true });
    },
  };
}

/**
 * Puts one-byte objects at `keys` straight into a local node's own layout (an object is a directory
 * with its parts and a manifest), unsynced, 200 at a time: seconds for tens of thousands, where
 * writes through the port would fsync each.
 */
export async function seedLocalObjects(node: LocalFsBlobStore, keys: readonly string[]): Promise<void> {
  const manifest = JSON.stringify({ size: 1, parts: [{ partNumber: 1, size: 1 }] });
  for (let i = 0; i < keys.length; i += 200)
    await Promise.all(
      keys.slice(i, i + 200).map(async (key) => {
        const dir = node.objectDir(key);
        await fs.mkdir(dir, { recursive: true });
        await fs.writeFile(path.join(dir, 'part.1'), 'x');
        await fs.writeFile(path.join(dir, 'manifest.json'), manifest);
      }),
    );
}
