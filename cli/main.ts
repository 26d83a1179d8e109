/**
 * `stratus`: the command-line client. Every command talks to the public API only (the same one the
 * web dashboard uses) through `clients/api.ts`; uploads go straight to storage through presigned
 * part URLs via `clients/upload.ts`.
 *
 * Exit codes: 0 done, 1 failed, 2 bad usage, 3 not signed in or refused, 4 not found,
 * 5 conflict (exists, stale), 6 integrity (hash mismatch), 130 interrupted (resume by re-running).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import {
  type StratusApi as Api,
  ApiError,
  formatBytes,
  type Item,
  joinPath,
  StratusApi,
  splitPath,
} from '../clients/api.ts';
import { httpPutPart, nodeHasher, openFileSource, SourceChangedError } from '../clients/node-io.ts';
import { fetchWithRetry } from '../clients/retry.ts';
import { hashSource, type Progress, type PutPart, UploadInterrupted, uploadFile } from '../clients/upload.ts';
import { UploadVerificationFailed } from '../clients/upload-verification.ts';
import {
  DownloadInterrupted,
  DownloadMismatch,
  DownloadRefused,
  resumableDownload,
} from './resumable-download.ts';
import { configDir, Store, uploadKey } from './store.ts';

export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  auth: 3,
  notFound: 4,
  conflict: 5,
  integrity: 6,
  interrupted: 130,
};

class CliError extends Error {
  readonly code: number;
  constructor(message: string, code: number) {
    super(message);
    this.code = code;
  }
}

const USAGE = `usage: stratus <command> [options]

commands:
  login [--email E] [--password P]     sign in (prompts for what is missing); --register creates the account
  logout                               sign out and forget the tokens
  whoami                               the signed-in user
  ls [REMOTE_PATH]                     list a folder (or show a file)
  mkdir REMOTE_PATH [-p]               create a folder (-p: with its parents, no error if it exists)
  upload LOCAL REMOTE_PATH [-p]        upload a file (parallel parts; re-run to resume; delta for new versions);
                                       REMOTE_PATH ending in / is a folder; missing folders: exit 4 (-p creates them);
                                       a big file is then verified by the service ("verifying N%") before it counts
  download REMOTE_PATH LOCAL           download a file and verify its SHA-256 (LOCAL "-" is stdout); interrupted,
                                       the same command resumes it from LOCAL.stratus-partial
  mv SRC_PATH DST_PATH                 rename or move
  rm REMOTE_PATH                       move to the trash
  restore REMOTE_PATH [--version ID]   bring back from the trash, or make an old version current
  versions REMOTE_PATH                 list the versions of a file
  trash                                list the trash
  share REMOTE_PATH [--expires 7d] [--password P]   create a share link
  usage                                storage used and quota
  sync LOCAL_DIR REMOTE_PATH           one-way sync: upload what is new or changed

options:
  --endpoint URL   the API (default: $STRATUS_ENDPOINT, else the login's, else http://127.0.0.1:8787)
  --json           machine-readable output on stdout
  --parallel N     parts in flight at once (upload, sync; default 4)
  --limit-rate R   cap upload or download speed, e.g. 500K, 20M (bytes per second)
  --no-progress    no progress bar
  -h, --help       this help

exit codes: 0 ok, 1 failed, 2 usage, 3 not signed in, 4 not found, 5 conflict, 6 integrity, 130 interrupted
`;

const OPTIONS = {
  endpoint: { type: 'string' },
  json: { type: 'boolean', default: false },
  email: { type: 'string' },
  password: { type: 'string' },
  register: { type: 'boolean', default: false },
  parents: { type: 'boolean', short: 'p', default: false },
  version: { type: 'string' },
  expires: { type: 'string' },
  parallel: { type: 'string' },
  'limit-rate': { type: 'string' },
  'no-progress': { type: 'boolean', default: false },
  'dry-run': { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

type Flags = {
  endpoint?: string | undefined;
  json: boolean;
  email?: string | undefined;
  password?: string | undefined;
  register: boolean;
  parents: boolean;
  version?: string | undefined;
  expires?: string | undefined;
  parallel?: string | undefined;
  'limit-rate'?: string | undefined;
  'no-progress': boolean;
  'dry-run': boolean;
  help: boolean;
};

interface Ctx {
  flags: Flags;
  args: string[];
  store: Store;
  endpoint: string;
  out: (human: string, json?: unknown) => void;
  err: NodeJS.WriteStream;
  signal: AbortSignal;
}

export async function run(argv: string[], signal: AbortSignal): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    process.stderr.write(`stratus: ${(err as Error).message}\n${USAGE}`);
    return EXIT.usage;
  }
  const flags = parsed.values as Flags;
  const [command, ...args] = parsed.positionals;
  if (flags.help || !command) {
    process.stdout.write(USAGE);
    return flags.help ? EXIT.ok : EXIT.usage;
  }
  const store = new Store(configDir());
  const endpoint = (
    flags.endpoint ??
    process.env.STRATUS_ENDPOINT ??
    store.credentials()?.endpoint ??
    'http://127.0.0.1:8787'
  ).replace(/\/+$/, '');
  const ctx: Ctx = {
    flags,
    args,
    store,
    endpoint,
    err: process.stderr,
    signal,
    out: (human, json) => {
      if (flags.json) process.stdout.write(`${JSON.stringify(json ?? { message: human })}\n`);
      else if (human) process.stdout.write(`${human}\n`);
    },
  };
  const impl = COMMANDS[command];
  if (!impl) {
    process.stderr.write(`stratus: unknown command "${command}"\n${USAGE}`);
    return EXIT.usage;
  }
  try {
    if (args.length < impl.min || args.length > impl.max) throw usage(impl.args);
    await impl.run(ctx);
    return EXIT.ok;
  } catch (err) {
    return report(ctx, err);
  }
}

function report(ctx: Ctx, err: unknown): number {
  let code = EXIT.failed;
  let message = (err as Error)?.message ?? String(err);
  let slug: string | undefined;
  if (err instanceof CliError) code = err.code;
  else if (err instanceof SourceChangedError) code = EXIT.integrity;
  else if (err instanceof UploadVerificationFailed) {
    // The service read the bytes back and refused them; the problem says why.
    slug = err.slug;
    code = err.slug === 'checksum-mismatch' ? EXIT.integrity : EXIT.failed;
  } else if (err instanceof UploadInterrupted || err instanceof DownloadInterrupted) {
    code = EXIT.interrupted;
    message = 'interrupted; run the same command again to resume';
  } else if (ctx.signal.aborted) {
    // Ctrl-C during a back-off wait or a request: the same as an interrupted upload.
    code = EXIT.interrupted;
    message = 'interrupted; run the same command again to resume';
  } else if (err instanceof ApiError) {
    slug = err.slug;
    if (err.status === 401 || err.status === 403)
      code = err.slug === 'not-signed-in' ? EXIT.auth : err.status === 401 ? EXIT.auth : EXIT.failed;
    else if (err.status === 404) code = EXIT.notFound;
    else if (err.status === 409 || err.status === 412) code = EXIT.conflict;
    else if (err.slug === 'checksum-mismatch') code = EXIT.integrity;
    else if (err.status === 0) message = err.message;
    if (err.slug === 'not-signed-in' || (err.status === 401 && err.slug !== 'invalid-credentials'))
      message = `${message} (run: stratus login)`;
  }
  if (ctx.flags.json)
    process.stdout.write(
      `${JSON.stringify({ error: { message, code, ...(slug ? { type: slug } : {}) } })}\n`,
    );
  process.stderr.write(`stratus: ${message}\n`);
  return code;
}

const usage = (m: string) => new CliError(`usage: stratus ${m}`, EXIT.usage);
const arg = (ctx: Ctx, i: number) => ctx.args[i] as string;

function api(ctx: Ctx, needAuth = true): Api {
  const saved = ctx.store.credentials();
  const mine = saved && saved.endpoint === ctx.endpoint ? saved : undefined;
  if (needAuth && !mine)
    throw new CliError(`not signed in to ${ctx.endpoint} (run: stratus login)`, EXIT.auth);
  return new StratusApi({
    endpoint: ctx.endpoint,
    signal: ctx.signal,
    tokens: mine?.tokens,
    onTokens: (tokens) =>
      ctx.store.saveCredentials(
        tokens && mine
          ? { ...mine, tokens }
          : tokens
            ? { endpoint: ctx.endpoint, email: '', tokens }
            : undefined,
      ),
  });
}

let stdinLines: AsyncIterator<string> | undefined;

async function prompt(question: string, hidden: boolean): Promise<string> {
  if (!process.stdin.isTTY) {
    // Scripts may pipe answers in, one per line (one reader for all prompts: it buffers ahead).
    stdinLines ??= readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
    const next = await stdinLines.next();
    return next.done ? '' : next.value;
  }
  process.stderr.write(question);
  const rl = readline.createInterface({
    input: process.stdin,
    output: hidden ? undefined : process.stderr,
    terminal: true,
  });
  if (hidden) (rl as unknown as { _writeToOutput: () => void })._writeToOutput = () => undefined;
  const answer = await new Promise<string>((resolve) => rl.question('', resolve));
  rl.close();
  if (hidden) process.stderr.write('\n');
  return answer;
}

async function folderAt(a: Api, p: string, create: boolean): Promise<Item> {
  let current = await a.resolve('/');
  for (const name of splitPath(p)) {
    const children = await a.allChildren(current.id);
    const found = children.find((c) => sameName(c.name, name));
    if (found && found.type !== 'folder')
      throw new CliError(`${name} is a file, not a folder`, EXIT.conflict);
    if (found) current = found;
    else if (create) current = await a.createFolder(current.id, name);
    else throw new CliError(`no such folder: ${p}`, EXIT.notFound);
  }
  return current;
}

/** The file at a remote path (a folder there is a usage error). */
async function fileAt(a: Api, remote: string): Promise<Item> {
  const item = await a.resolve(remote);
  if (item.type !== 'file') throw new CliError(`${remote} is a folder`, EXIT.usage);
  return item;
}

const sameName = (a: string, b: string) =>
  a.normalize('NFC').toLowerCase() === b.normalize('NFC').toLowerCase();

function itemJson(i: Item) {
  return {
    id: i.id,
    name: i.name,
    type: i.type,
    size: i.size ?? null,
    modifiedAt: i.modifiedAt,
    ...(i.contentType ? { contentType: i.contentType } : {}),
  };
}

function table(items: Item[]): string {
  return items
    .map((i) => {
      const size = i.type === 'folder' ? '-' : formatBytes(i.size ?? 0);
      return `${i.type === 'folder' ? 'd' : '-'} ${size.padStart(10)}  ${i.modifiedAt.slice(0, 19).replace('T', ' ')}  ${i.name}${i.type === 'folder' ? '/' : ''}`;
    })
    .join('\n');
}

function parseDuration(s: string): number {
  const m = /^(\d+)([smhdw]?)$/.exec(s.trim());
  if (!m) throw usage('share REMOTE_PATH --expires N[s|m|h|d|w] (e.g. 7d)');
  const mult = { '': 1, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }[
    m[2] as '' | 's' | 'm' | 'h' | 'd' | 'w'
  ];
  return Number(m[1]) * mult;
}

function parseRate(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)([kmg]?)$/i.exec(s.trim());
  if (!m) throw usage('--limit-rate N[K|M|G] (bytes per second)');
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[
    (m[2] ?? '').toLowerCase() as '' | 'k' | 'm' | 'g'
  ];
  return Number(m[1]) * mult;
}

function parallel(ctx: Ctx): number {
  const n = Number(ctx.flags.parallel ?? 4);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw usage('--parallel N (1 to 64)');
  return n;
}

class ProgressBar {
  private readonly enabled: boolean;
  private readonly label: string;
  private started = Date.now();
  private lastDraw = 0;
  private phase = '';

  constructor(ctx: Ctx, label: string) {
    this.enabled = !ctx.flags['no-progress'] && !ctx.flags.json && Boolean(ctx.err.isTTY);
    this.label = label;
  }

  update(p: Pick<Progress, 'done' | 'total'> & { phase: string }) {
    if (!this.enabled) return;
    const newPhase = p.phase !== this.phase;
    if (newPhase) {
      this.phase = p.phase;
      this.started = Date.now();
    }
    const now = Date.now();
    if (!newPhase && now - this.lastDraw < 100 && p.done < p.total) return;
    this.lastDraw = now;
    const frac = p.total ? p.done / p.total : 1;
    const width = 24;
    const filled = Math.round(frac * width);
    const secs = (now - this.started) / 1000;
    const speed = secs > 0 ? p.done / secs : 0;
    const eta = speed > 0 ? Math.ceil((p.total - p.done) / speed) : 0;
    drawLine(
      this.label,
      `${p.phase.padEnd(9)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}%  ${formatBytes(p.done)}/${formatBytes(p.total)}  ${formatBytes(speed)}/s  ETA ${eta}s`,
    );
  }

  end() {
    if (this.enabled) process.stderr.write('\n');
  }
}

function drawLine(label: string, line: string) {
  process.stderr.write(`\r${label} ${line}`.padEnd(100).slice(0, 140));
}

/** Part bodies go over node:http with a pool of keep-alive sockets shared by every file. */
const sendPart = httpPutPart();

/** A token bucket in front of part PUTs: `--limit-rate` caps the average upload speed. */
function rateLimited(put: PutPart, bytesPerSecond: number | undefined): PutPart {
  if (!bytesPerSecond) return put;
  let nextFree = Date.now();
  return async (...a: Parameters<typeof put>) => {
    const [, body, , signal] = a;
    const wait = nextFree - Date.now();
    nextFree = Math.max(nextFree, Date.now()) + (body.length / bytesPerSecond) * 1000;
    if (wait > 0)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, wait);
        signal?.addEventListener('abort', () => {
          clearTimeout(t);
          resolve();
        });
      });
    if (signal?.aborted) throw new UploadInterrupted(undefined);
    return put(...a);
  };
}

interface UploadOutcome {
  path: string;
  fileId: string;
  versionId: string;
  size: number;
  sha256: string;
  bytesSent: number;
  bytesSkipped: number;
  resumed: boolean;
  unchanged?: boolean;
}

async function uploadOne(ctx: Ctx, a: Api, local: string, remote: string, parent: Item, existing?: Item) {
  const name = splitPath(remote).at(-1) as string;
  const { stat, close, source } = await openFileSource(local);
  try {
    if (!stat.isFile())
      throw new CliError(`${local} is not a regular file (use sync for folders)`, EXIT.usage);
    const creds = ctx.store.credentials();
    const key = uploadKey(ctx.endpoint, creds?.email ?? '', local, stat, remote);
    const pending = ctx.store.pendingUpload(key);
    const bar = new ProgressBar(ctx, path.basename(local));
    const hashes =
      pending?.hashes ?? (await hashSource(source, nodeHasher, undefined, (p) => bar.update(p), ctx.signal));
    const current = existing ?? (await a.tryResolve(remote));
    if (current?.type === 'folder') throw new CliError(`${remote} is a folder`, EXIT.conflict);
    const baseVersionId = current ? (await a.file(current.id)).versionId : null;
    const result = await uploadFile({
      api: a,
      source,
      parentId: parent.id,
      name,
      baseVersionId,
      newHasher: nodeHasher,
      putPart: rateLimited(sendPart, parseRate(ctx.flags['limit-rate'])),
      concurrency: parallel(ctx),
      hashes,
      resumeUploadId: pending?.uploadId,
      onSession: (uploadId) =>
        ctx.store.savePendingUpload(key, {
          uploadId,
          hashes,
          startedAt: pending?.startedAt ?? new Date().toISOString(),
        }),
      onProgress: (p) => bar.update(p),
      signal: ctx.signal,
    }).catch((err: unknown) => {
      bar.end();
      // A refused session cannot be resumed: the next run starts a new one.
      if (err instanceof UploadVerificationFailed) ctx.store.savePendingUpload(key, undefined);
      throw err;
    });
    bar.end();
    ctx.store.savePendingUpload(key, undefined);
    const outcome: UploadOutcome = {
      path: joinPath(remote),
      fileId: result.fileId,
      versionId: result.versionId,
      size: result.size,
      sha256: result.sha256,
      bytesSent: result.bytesSent,
      bytesSkipped: result.bytesSkipped,
      resumed: result.resumed,
    };
    return outcome;
  } finally {
    await close();
  }
}

/**
 * Where `upload LOCAL REMOTE_PATH` puts the file. An existing folder (with or without a trailing
 * slash) receives it under its local name; a path ending in `/` always means a folder, so when none
 * is there the upload is refused (exit 4) instead of creating a file of that name, as are missing
 * parent folders of a file path; `-p` creates the missing folders instead.
 */
async function parentAndName(a: Api, remote: string, localName: string, parents: boolean) {
  const parts = splitPath(remote);
  const meansFolder = parts.length === 0 || remote.endsWith('/');
  const target = await a.tryResolve(remote);
  if (target?.type === 'folder') {
    return { parent: target, path: joinPath(remote, localName), existing: undefined };
  }
  if (meansFolder && target) throw new CliError(`${remote} is a file, not a folder`, EXIT.conflict);
  const folder = meansFolder ? remote : `/${parts.slice(0, -1).join('/')}`;
  let parent: Item;
  try {
    parent = await folderAt(a, folder, parents);
  } catch (err) {
    if (err instanceof CliError && err.code === EXIT.notFound)
      throw new CliError(
        `no such folder: ${joinPath(folder)}/${meansFolder ? ' (a trailing slash names a folder)' : ''}; nothing uploaded (-p creates missing folders)`,
        EXIT.notFound,
      );
    throw err;
  }
  return meansFolder
    ? { parent, path: joinPath(remote, localName), existing: undefined }
    : { parent, path: joinPath(remote), existing: target };
}

/** `download … -`: streamed to stdout, so nothing to resume; verified after the fact (stdout cannot be taken back). */
async function downloadToStdout(ctx: Ctx, a: Api, remote: string, url: string, expected: string) {
  // Storage may answer 503 (S3's SlowDown) or 429 too: the same waits as the API's.
  const res = await fetchWithRetry(
    fetch,
    url,
    { signal: ctx.signal },
    { policy: a.retry, clock: a.clock, signal: ctx.signal },
  );
  if (!res.ok || !res.body) throw new CliError(`storage answered HTTP ${res.status}`, EXIT.failed);
  const hash = createHash('sha256');
  let bytes = 0;
  const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
  body.on('data', (c: Buffer) => {
    hash.update(c);
    bytes += c.length;
  });
  try {
    await pipeline(body, process.stdout, { end: false });
  } catch (err) {
    if (ctx.signal.aborted) throw new UploadInterrupted(undefined);
    throw err;
  }
  const got = hash.digest('hex');
  if (got !== expected)
    throw new CliError(`SHA-256 mismatch for ${remote}: expected ${expected}, got ${got}`, EXIT.integrity);
  if (ctx.flags.json) process.stderr.write(`${JSON.stringify({ path: remote, size: bytes, sha256: got })}\n`);
}

interface Command {
  args: string;
  min: number;
  max: number;
  run(ctx: Ctx): Promise<void>;
}

const COMMANDS: Record<string, Command> = {
  login: {
    args: 'login [--email E] [--password P] [--register]',
    min: 0,
    max: 0,
    async run(ctx) {
      const email = ctx.flags.email ?? (await prompt('email: ', false)).trim();
      const password = ctx.flags.password ?? (await prompt('password: ', true));
      if (!email || !password) throw usage('login --email E --password P');
      const a = api(ctx, false);
      if (ctx.flags.register) await a.register(email, password);
      const tokens = await a.login(email, password);
      ctx.store.saveCredentials({ endpoint: ctx.endpoint, email, tokens });
      const me = await a.me();
      ctx.out(`signed in to ${ctx.endpoint} as ${me.email}`, {
        endpoint: ctx.endpoint,
        email: me.email,
        role: me.role,
      });
    },
  },
  logout: {
    args: 'logout',
    min: 0,
    max: 0,
    async run(ctx) {
      const saved = ctx.store.credentials();
      if (saved)
        await api(ctx)
          .logout()
          .catch(() => undefined);
      ctx.store.saveCredentials(undefined);
      ctx.out('signed out', { signedOut: true });
    },
  },
  whoami: {
    args: 'whoami',
    min: 0,
    max: 0,
    async run(ctx) {
      const me = await api(ctx).me();
      ctx.out(`${me.email} (${me.role}) at ${ctx.endpoint}`, me);
    },
  },
  ls: {
    args: 'ls [REMOTE_PATH] [--json]',
    min: 0,
    max: 1,
    async run(ctx) {
      const a = api(ctx);
      const item = await a.resolve(ctx.args[0] ?? '/');
      const items = item.type === 'folder' ? await a.allChildren(item.id) : [item];
      ctx.out(items.length ? table(items) : '', { items: items.map(itemJson) });
    },
  },
  mkdir: {
    args: 'mkdir REMOTE_PATH [-p]',
    min: 1,
    max: 1,
    async run(ctx) {
      const a = api(ctx);
      const p = arg(ctx, 0);
      const parts = splitPath(p);
      if (parts.length === 0) throw usage('mkdir REMOTE_PATH');
      let folder: Item;
      if (ctx.flags.parents) folder = await folderAt(a, p, true);
      else {
        const parent = await folderAt(a, `/${parts.slice(0, -1).join('/')}`, false);
        folder = await a.createFolder(parent.id, parts.at(-1) as string);
      }
      ctx.out(`created ${joinPath(p)}`, itemJson(folder));
    },
  },
  upload: {
    args: 'upload LOCAL REMOTE_PATH [-p]',
    min: 2,
    max: 2,
    async run(ctx) {
      const a = api(ctx);
      const local = arg(ctx, 0);
      if (!fs.existsSync(local)) throw new CliError(`no such local file: ${local}`, EXIT.notFound);
      const dest = await parentAndName(a, arg(ctx, 1), path.basename(local), ctx.flags.parents);
      const r = await uploadOne(ctx, a, local, dest.path, dest.parent, dest.existing);
      ctx.out(
        `uploaded ${r.path} (${formatBytes(r.size)}; sent ${formatBytes(r.bytesSent)}${r.bytesSkipped ? `, reused ${formatBytes(r.bytesSkipped)}` : ''}${r.resumed ? ', resumed' : ''})`,
        r,
      );
    },
  },
  download: {
    args: 'download REMOTE_PATH LOCAL [--version ID]',
    min: 2,
    max: 2,
    async run(ctx) {
      const a = api(ctx);
      const item = await fileAt(a, arg(ctx, 0));
      const file = await a.file(item.id);
      let want = { versionId: file.versionId, size: file.size ?? 0, sha256: file.sha256 };
      if (ctx.flags.version) {
        const v = (await a.versions(item.id)).find((x) => x.versionId === ctx.flags.version);
        if (!v) throw new CliError(`no version ${ctx.flags.version} of ${arg(ctx, 0)}`, EXIT.notFound);
        want = { versionId: v.versionId, size: v.size, sha256: v.sha256 };
      }
      // Always that version's URL: the bytes fetched are the ones the hash was read for, even if
      // the file gets a new version meanwhile.
      const url = async () => (await a.downloadUrl(item.id, want.versionId)).url;
      if (arg(ctx, 1) === '-') return downloadToStdout(ctx, a, arg(ctx, 0), await url(), want.sha256);
      let target = arg(ctx, 1);
      if (fs.existsSync(target) && fs.statSync(target).isDirectory()) target = path.join(target, item.name);
      const bar = new ProgressBar(ctx, item.name);
      let r: Awaited<ReturnType<typeof resumableDownload>>;
      try {
        r = await resumableDownload({
          dest: target,
          want,
          url,
          retry: a.retry,
          clock: a.clock,
          signal: ctx.signal,
          bytesPerSecond: parseRate(ctx.flags['limit-rate']),
          onProgress: (done, total) => bar.update({ phase: 'download', done, total }),
        });
      } catch (err) {
        if (err instanceof DownloadMismatch)
          throw new CliError(
            `SHA-256 mismatch for ${arg(ctx, 0)}: expected ${err.expected}, got ${err.got}`,
            EXIT.integrity,
          );
        if (err instanceof DownloadRefused) throw new CliError(err.message, EXIT.failed);
        throw err;
      } finally {
        bar.end();
      }
      const resumed = r.resumedFrom > 0 ? `, resumed at ${formatBytes(r.resumedFrom)}` : '';
      ctx.out(
        `downloaded ${joinPath(arg(ctx, 0))} to ${target} (${formatBytes(r.size)}${resumed}, SHA-256 verified)`,
        {
          path: joinPath(arg(ctx, 0)),
          local: target,
          versionId: want.versionId,
          size: r.size,
          sha256: r.sha256,
          verified: true,
          resumedFrom: r.resumedFrom,
          bytesFetched: r.bytesFetched,
        },
      );
    },
  },
  mv: {
    args: 'mv SRC_PATH DST_PATH',
    min: 2,
    max: 2,
    async run(ctx) {
      const a = api(ctx);
      const item = await a.resolve(arg(ctx, 0));
      if (item.parentId === null) throw new CliError('the root folder cannot be moved', EXIT.usage);
      const dst = await a.tryResolve(arg(ctx, 1));
      let change: { name?: string; parentId?: string };
      if (dst?.type === 'folder') change = { parentId: dst.id };
      else if (dst) throw new CliError(`${arg(ctx, 1)} already exists`, EXIT.conflict);
      else {
        const parts = splitPath(arg(ctx, 1));
        const parent = await folderAt(a, `/${parts.slice(0, -1).join('/')}`, false);
        const name = parts.at(-1) as string;
        change = {
          ...(parent.id !== item.parentId ? { parentId: parent.id } : {}),
          ...(name !== item.name ? { name } : {}),
        };
        if (!change.name && !change.parentId) change = { name };
      }
      const moved = await a.patch(item, change);
      ctx.out(`moved ${joinPath(arg(ctx, 0))} to ${joinPath(arg(ctx, 1))}`, itemJson(moved));
    },
  },
  rm: {
    args: 'rm REMOTE_PATH',
    min: 1,
    max: 1,
    async run(ctx) {
      const a = api(ctx);
      const item = await a.resolve(arg(ctx, 0));
      if (item.parentId === null) throw new CliError('the root folder cannot be removed', EXIT.usage);
      await a.remove(item);
      ctx.out(
        `moved ${joinPath(arg(ctx, 0))} to the trash (stratus restore ${joinPath(arg(ctx, 0))} brings it back)`,
        {
          trashed: itemJson(item),
        },
      );
    },
  },
  restore: {
    args: 'restore REMOTE_PATH [--version ID]',
    min: 1,
    max: 1,
    async run(ctx) {
      const a = api(ctx);
      const p = arg(ctx, 0);
      if (ctx.flags.version) {
        const item = await fileAt(a, p);
        const r = await a.restoreVersion(item.id, ctx.flags.version);
        ctx.out(`restored ${joinPath(p)} to version ${r.restoredFrom} (as new version ${r.versionId})`, r);
        return;
      }
      const parts = splitPath(p);
      const name = parts.at(-1);
      if (!name) throw usage('restore REMOTE_PATH');
      const parent = await a.tryResolve(`/${parts.slice(0, -1).join('/')}`);
      const candidates = (await a.trash())
        .filter((t) => sameName(t.name, name) && (!parent || t.originalParentId === parent.id))
        .sort((x, y) => y.deletedAt.localeCompare(x.deletedAt));
      const hit = candidates[0];
      if (!hit) throw new CliError(`nothing named ${joinPath(p)} in the trash`, EXIT.notFound);
      const restored = await a.restoreFromTrash(hit.id);
      ctx.out(`restored ${joinPath(p)} from the trash`, itemJson(restored));
    },
  },
  versions: {
    args: 'versions REMOTE_PATH',
    min: 1,
    max: 1,
    async run(ctx) {
      const a = api(ctx);
      const item = await fileAt(a, arg(ctx, 0));
      const items = await a.versions(item.id);
      ctx.out(
        items
          .map(
            (v) =>
              `${v.current ? '*' : ' '} ${v.versionId}  ${v.createdAt.slice(0, 19).replace('T', ' ')}  ${formatBytes(v.size).padStart(10)}  ${v.sha256.slice(0, 12)}`,
          )
          .join('\n'),
        { items },
      );
    },
  },
  trash: {
    args: 'trash',
    min: 0,
    max: 0,
    async run(ctx) {
      const items = await api(ctx).trash();
      ctx.out(
        items
          .map(
            (t) =>
              `${t.deletedAt.slice(0, 19).replace('T', ' ')}  ${t.type === 'folder' ? `${t.name}/` : t.name}`,
          )
          .join('\n'),
        { items },
      );
    },
  },
  share: {
    args: 'share REMOTE_PATH [--expires 7d] [--password P]',
    min: 1,
    max: 1,
    async run(ctx) {
      const a = api(ctx);
      const item = await a.resolve(arg(ctx, 0));
      const seconds = parseDuration(ctx.flags.expires ?? '7d');
      const link = await a.createShare(item.id, seconds, ctx.flags.password);
      ctx.out(
        `${link.url}\n(expires ${link.expiresAt}${link.hasPassword ? ', password required' : ''})`,
        link,
      );
    },
  },
  usage: {
    args: 'usage',
    min: 0,
    max: 0,
    async run(ctx) {
      const u = await api(ctx).usage();
      const pct = u.quotaBytes ? ((u.usedBytes / u.quotaBytes) * 100).toFixed(1) : '0';
      ctx.out(`${formatBytes(u.usedBytes)} of ${formatBytes(u.quotaBytes)} used (${pct}%)`, u);
    },
  },
  sync: {
    args: 'sync LOCAL_DIR REMOTE_PATH [--dry-run]',
    min: 2,
    max: 2,
    async run(ctx) {
      const a = api(ctx);
      const root = arg(ctx, 0);
      if (!fs.existsSync(root) || !fs.statSync(root).isDirectory())
        throw new CliError(`${root} is not a local directory`, EXIT.usage);
      const summary = {
        uploaded: [] as UploadOutcome[],
        unchanged: 0,
        folders: 0,
        bytesSent: 0,
        bytesSkipped: 0,
      };
      const walk = async (dir: string, remote: string, folder: Item) => {
        const remoteChildren = await a.allChildren(folder.id);
        const entries = (await fsp.readdir(dir, { withFileTypes: true })).sort((x, y) =>
          x.name.localeCompare(y.name),
        );
        for (const e of entries) {
          if (ctx.signal.aborted) throw new UploadInterrupted(undefined);
          const local = path.join(dir, e.name);
          const rpath = joinPath(remote, e.name);
          const there = remoteChildren.find((c) => sameName(c.name, e.name));
          if (e.isDirectory()) {
            let sub = there;
            if (sub && sub.type !== 'folder')
              throw new CliError(`${rpath} is a file, locally a folder`, EXIT.conflict);
            if (!sub) {
              summary.folders++;
              if (ctx.flags['dry-run']) continue;
              sub = await a.createFolder(folder.id, e.name);
            }
            await walk(local, rpath, sub);
          } else if (e.isFile()) {
            if (there?.type === 'folder')
              throw new CliError(`${rpath} is a folder, locally a file`, EXIT.conflict);
            const size = (await fsp.stat(local)).size;
            if (there && there.size === size) {
              const remoteSha = (await a.file(there.id)).sha256;
              const { close, source } = await openFileSource(local);
              const localSha = await hashSource(source, nodeHasher).finally(close);
              if (localSha.sha256 === remoteSha) {
                summary.unchanged++;
                continue;
              }
            }
            if (ctx.flags['dry-run']) {
              summary.uploaded.push({ path: rpath, size } as UploadOutcome);
              continue;
            }
            const r = await uploadOne(ctx, a, local, rpath, folder, there);
            summary.uploaded.push(r);
            summary.bytesSent += r.bytesSent;
            summary.bytesSkipped += r.bytesSkipped;
            if (!ctx.flags.json) process.stdout.write(`uploaded ${rpath}\n`);
          }
        }
      };
      await walk(root, joinPath(arg(ctx, 1)), await folderAt(a, arg(ctx, 1), true));
      ctx.out(
        `${ctx.flags['dry-run'] ? 'would upload' : 'uploaded'} ${summary.uploaded.length} file(s), ${summary.unchanged} unchanged, ${summary.folders} folder(s) created; sent ${formatBytes(summary.bytesSent)}`,
        summary,
      );
    },
  },
};

/** Entry point: wires Ctrl-C to an abort (first press stops cleanly, second one exits at once). */
export async function main() {
  const controller = new AbortController();
  let interrupts = 0;
  process.on('SIGINT', () => {
    interrupts++;
    if (interrupts > 1) process.exit(EXIT.interrupted);
    controller.abort();
  });
  const code = await run(process.argv.slice(2), controller.signal);
  process.exitCode = code;
}

if (import.meta.main) await main();
