/**
 * The peer's server in a process of its own, as Stratus's runtime is in the bench (and as either
 * runs in use): `@tus/server` + `@tus/file-store` on `node:http`, defaults. Prints its URL.
 * Usage: node bench/tus-server.ts <directory>
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { FileStore } from '@tus/file-store';
import { Server } from '@tus/server';

const directory = process.argv[2];
if (!directory) throw new Error('usage: node bench/tus-server.ts <directory>');
const tus = new Server({ path: '/files', datastore: new FileStore({ directory }) });
const server = http.createServer((req, res) => void tus.handle(req, res));
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`tus listening at http://127.0.0.1:${port}/files\n`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
