#!/usr/bin/env node
// The `stratus` command. The CLI is TypeScript run by Node's type stripping (Node >= 23.6); on an
// older Node this re-runs itself with the project's own Node 24 (the `node` devDependency).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const entry = join(here, '..', 'cli', 'main.ts');
const [major, minor] = process.versions.node.split('.').map(Number);
if (major > 23 || (major === 23 && minor >= 6)) {
  const { main } = await import(pathToFileURL(entry).href);
  await main();
} else {
  const bundled = join(here, '..', 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(bundled)) {
    process.stderr.write(
      `stratus: needs Node.js 24 (this is ${process.version}); run npm install in the Stratus checkout\n`,
    );
    process.exit(1);
  }
  const r = spawnSync(bundled, [entry, ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
