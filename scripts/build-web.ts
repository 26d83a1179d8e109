/** `npm run build:web [outdir]`: writes the bundled dashboard (default web/dist) for hosting. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { buildWeb } from '../web/build.ts';

const out = path.resolve(process.argv[2] ?? 'web/dist');
await fs.mkdir(out, { recursive: true });
for (const [name, body] of Object.entries(await buildWeb())) await fs.writeFile(path.join(out, name), body);
process.stdout.write(`dashboard written to ${out}\n`);
