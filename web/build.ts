/**
 * Bundles the dashboard (TypeScript + CSS) with esbuild. The local runtime builds it in memory on
 * first request; `npm run build:web` and the CDK bundling hook write it to a folder.
 */
import path from 'node:path';

export type WebBundle = Record<string, string>;

export async function buildWeb(): Promise<WebBundle> {
  // Not a literal specifier: Lambda bundles never include esbuild (they read a prebuilt folder).
  const specifier = 'esbuild';
  const esbuild = (await import(specifier)) as typeof import('esbuild');
  const dir = import.meta.dirname;
  const result = await esbuild.build({
    entryPoints: { app: path.join(dir, 'app.ts'), 'app-css': path.join(dir, 'styles.css') },
    bundle: true,
    write: false,
    format: 'esm',
    target: 'es2022',
    minify: true,
    sourcemap: 'linked',
    outdir: '/out',
    logLevel: 'silent',
  });
  const out: WebBundle = {};
  for (const f of result.outputFiles) {
    const name = path.basename(f.path).replace(/^app-css\.css/, 'app.css');
    out[name] = f.text;
  }
  return out;
}
