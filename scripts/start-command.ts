/**
 * What `npm start` runs, read from package.json: the Node flags before `local/main.ts`. Tests and
 * the bench start the runtime the same way, so what they measure (memory above all: see
 * docs/architecture.md, "Memory") is what a user gets.
 */
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');

export function startNodeArgs(): string[] {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  const words = (pkg.scripts.start ?? '').split(/\s+/).filter(Boolean);
  const entry = words.indexOf('local/main.ts');
  if (words[0] !== 'node' || entry < 0)
    throw new Error(`package.json's start script is not "node [flags] local/main.ts": ${pkg.scripts.start}`);
  return words.slice(1, entry);
}
