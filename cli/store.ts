/**
 * What the CLI keeps between runs, in the user's config directory (`$STRATUS_CONFIG_DIR`, else
 * `$XDG_CONFIG_HOME/stratus`, else `~/.config/stratus`; `%APPDATA%\stratus` on Windows):
 * - `credentials.json` (mode 0600): endpoint, email and the token pair, rewritten on every rotation;
 * - `uploads.json` (mode 0600): unfinished uploads by local file and destination, so the same command
 *   run again resumes instead of starting over.
 * Files are replaced atomically (write to a temporary name, then rename).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Tokens } from '../clients/api.ts';
import type { Hashes } from '../clients/upload.ts';

export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.STRATUS_CONFIG_DIR) return env.STRATUS_CONFIG_DIR;
  if (env.XDG_CONFIG_HOME) return path.join(env.XDG_CONFIG_HOME, 'stratus');
  if (process.platform === 'win32' && env.APPDATA) return path.join(env.APPDATA, 'stratus');
  return path.join(os.homedir(), '.config', 'stratus');
}

export interface Credentials {
  endpoint: string;
  email: string;
  tokens: Tokens;
}

export interface PendingUpload {
  uploadId: string;
  hashes: Hashes;
  startedAt: string;
}

export class Store {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  private file(name: string) {
    return path.join(this.dir, name);
  }

  private read<T>(name: string): T | undefined {
    try {
      return JSON.parse(fs.readFileSync(this.file(name), 'utf8')) as T;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      if (err instanceof SyntaxError) return undefined; // a damaged file is as good as none
      throw err;
    }
  }

  private write(name: string, value: unknown) {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const target = this.file(name);
    const tmp = `${target}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
    fs.chmodSync(tmp, 0o600);
    fs.renameSync(tmp, target);
  }

  credentials(): Credentials | undefined {
    return this.read<Credentials>('credentials.json');
  }

  saveCredentials(c: Credentials | undefined) {
    if (c) this.write('credentials.json', c);
    else fs.rmSync(this.file('credentials.json'), { force: true });
  }

  private uploads(): Record<string, PendingUpload> {
    return this.read<Record<string, PendingUpload>>('uploads.json') ?? {};
  }

  pendingUpload(key: string): PendingUpload | undefined {
    return this.uploads()[key];
  }

  savePendingUpload(key: string, p: PendingUpload | undefined) {
    const all = this.uploads();
    if (p) all[key] = p;
    else delete all[key];
    this.write('uploads.json', all);
  }
}

/** Identifies "this local file, unchanged, going to this place": a resume must match all of it. */
export function uploadKey(endpoint: string, email: string, local: string, stat: fs.Stats, remote: string) {
  return createHash('sha256')
    .update([endpoint, email, path.resolve(local), stat.size, stat.mtimeMs, remote.toLowerCase()].join('\n'))
    .digest('hex')
    .slice(0, 32);
}
