/**
 * The dashboard's files as the system Lambda serves them: from a prebuilt folder when there is one
 * (`STRATUS_WEB_DIR`, or `web/` beside the Lambda bundle), else built in memory (local runtime).
 */
import fs from 'node:fs/promises';
import path from 'node:path';

export interface WebAsset {
  body: string;
  type: string;
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
};

let loading: Promise<Map<string, WebAsset>> | undefined;

export function webAssets(): Promise<Map<string, WebAsset>> {
  loading ??= load().catch((err: unknown) => {
    loading = undefined;
    throw err;
  });
  return loading;
}

async function load(): Promise<Map<string, WebAsset>> {
  const dir = process.env.STRATUS_WEB_DIR ?? path.join(import.meta.dirname ?? '.', 'web');
  let files: Record<string, string> | undefined;
  try {
    const names = await fs.readdir(dir);
    if (names.includes('app.js')) {
      files = {};
      for (const n of names) files[n] = await fs.readFile(path.join(dir, n), 'utf8');
    }
  } catch {
    files = undefined;
  }
  if (!files) {
    const { buildWeb } = await import('./build.ts');
    files = await buildWeb();
  }
  const out = new Map<string, WebAsset>();
  for (const [name, body] of Object.entries(files)) {
    const type = TYPES[path.extname(name)];
    if (type) out.set(name, { body, type });
  }
  return out;
}
