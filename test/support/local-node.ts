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
