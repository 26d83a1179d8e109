/**
 * A storage node on the local filesystem. An object is a directory holding its part files and a
 * manifest (as MinIO lays objects out), so completing a multipart upload is a rename, not a copy.
 * Writes land in a temporary file, are fsynced, and are renamed into place: a crash leaves either
 * the old state or the new, never half an object. Its HTTP face (signed PUT/GET) is
 * `LocalStorageNodeServer`; the node checks its own signatures.
 */
import { createHash, randomUUID } from 'node:crypto';
import { close, createReadStream, open, read } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { errors } from '../../domain/errors.ts';
import {
  type BlobPage,
  type BlobStat,
  type BlobStore,
  type CopyCheck,
  compareBlobKeys,
  type Leftover,
  type ListedBlob,
  listPageLimit,
  type PresignedRequest,
  type PutTarget,
  type UploadedPart,
} from '../../ports/blob-store.ts';
import { newNonce, UrlSigner } from './url-signer.ts';

export interface PartMeta {
  partNumber: number;
  size: number;
  sha256: string;
}

interface Manifest {
  size: number;
  parts: { partNumber: number; size: number }[];
}

/**
 * What a download reads through: a few buffers, reused. Four of 1 MiB keep the socket fed (one
 * being read from disk while up to three wait in the socket) and bound what one download holds.
 */
const SEND_BUFFER_BYTES = 1024 * 1024;
const SEND_BUFFERS = 4;

/** The only directories a node creates in its root, and the only place it deletes. */
const NODE_DIRS = ['tmp', 'objects', 'multipart'] as const;

const KEY = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/;
const UPLOAD_ID = /^[0-9a-f-]{36}$/;
/** An object a replacing write pushed aside (a leftover, not an object). */
const PUSHED_ASIDE = /\.old-[0-9a-f-]{36}$/;
/** Leftover ids: `multipart/<upload>`, `tmp/<name>`, or an object path ending `.old-<uuid>`. */
const LEFTOVER_ID =
  /^(multipart\/[0-9a-f-]{36}|tmp\/[0-9a-f-]{36}|objects\/[A-Za-z0-9._/-]+\.old-[0-9a-f-]{36})$/;

export function assertKey(key: string): void {
  if (!KEY.test(key) || key.length > 512) throw errors.validation('invalid object key');
}

/** A manifest this small (most are) is read in one `read`; a bigger one falls back to readFile. */
const SMALL_FILE = 16 * 1024;

/**
 * Reads a file that is usually small: open, one read, close (three trips to the thread pool where
 * `fs.promises.readFile` makes four, and none through FileHandle's promise machinery). A full
 * sweep stats every local replica, so this is most of its cost on a local node.
 */
function readSmallFile(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    open(file, 'r', (err, fd) => {
      if (err) return reject(err);
      const buf = Buffer.allocUnsafe(SMALL_FILE);
      read(fd, buf, 0, SMALL_FILE, 0, (readErr, n) => {
        close(fd, (closeErr) => {
          if (readErr ?? closeErr) return reject(readErr ?? closeErr);
          if (n < SMALL_FILE) return resolve(buf.toString('utf8', 0, n));
          fs.readFile(file, 'utf8').then(resolve, reject);
        });
      });
    });
  });
}

export class LocalFsBlobStore implements BlobStore {
  readonly signer: UrlSigner;

  readonly nodeId: string;
  readonly root: string;
  /** Base URL at which the local runtime serves this node (…/storage/<nodeId>). */
  private readonly baseUrl: string;

  constructor(nodeId: string, root: string, baseUrl: string, secret: Buffer) {
    this.nodeId = nodeId;
    this.root = root;
    this.baseUrl = baseUrl;
    this.signer = new UrlSigner(secret);
  }

  objectDir(key: string): string {
    assertKey(key);
    return path.join(this.root, 'objects', key);
  }

  uploadDir(storageUploadId: string): string {
    if (!UPLOAD_ID.test(storageUploadId)) throw errors.notFound('upload');
    return path.join(this.root, 'multipart', storageUploadId);
  }

  tmpPath(): string {
    return path.join(this.root, 'tmp', randomUUID());
  }

  /**
   * Prepares the node's three directories. It touches nothing else: `tmp/`, `objects/` and
   * `multipart/` must each be absent or a real directory (checked with lstat: a symlink is never
   * followed, so a `tmp` pointing elsewhere cannot make start-up delete what it points at).
   */
  async init(): Promise<this> {
    await fs.mkdir(this.root, { recursive: true });
    for (const d of NODE_DIRS) {
      const st = await fs.lstat(path.join(this.root, d)).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
      if (st && (st.isSymbolicLink() || !st.isDirectory()))
        throw errors.validation(`the node directory's ${d} is not a directory (a symlink is never followed)`);
    }
    // Whatever a killed process left half-written in tmp/ was never published: drop it. (rm does
    // not follow symlinks inside it, and tmp itself was just checked to be a real directory.)
    await fs.rm(path.join(this.root, 'tmp'), { recursive: true, force: true });
    for (const d of NODE_DIRS) await fs.mkdir(path.join(this.root, d), { recursive: true });
    return this;
  }

  private url(fields: Parameters<UrlSigner['query']>[0]): string {
    return `${this.baseUrl}/${fields.op}?${this.signer.query(fields)}`;
  }

  async presignPut(t: PutTarget): Promise<PresignedRequest> {
    assertKey(t.key);
    const exp = Math.floor(Date.now() / 1000) + t.expiresInSeconds;
    const url = this.url({
      op: 'put',
      node: this.nodeId,
      key: t.key,
      len: t.contentLength,
      sha: t.sha256,
      exp,
    });
    return { url, method: 'PUT', headers: {}, expiresAt: new Date(exp * 1000) };
  }

  async createMultipartUpload(key: string, _opts?: { partChecksums: boolean }): Promise<string> {
    assertKey(key);
    const id = randomUUID();
    const dir = this.uploadDir(id);
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, 'upload.json'), JSON.stringify({ key }));
    return id;
  }

  async presignUploadPart(t: PutTarget & { storageUploadId: string; partNumber: number }) {
    assertKey(t.key);
    const exp = Math.floor(Date.now() / 1000) + t.expiresInSeconds;
    const url = this.url({
      op: 'part',
      node: this.nodeId,
      key: t.key,
      upload: t.storageUploadId,
      part: t.partNumber,
      len: t.contentLength,
      sha: t.sha256,
      exp,
    });
    return { url, method: 'PUT' as const, headers: {}, expiresAt: new Date(exp * 1000) };
  }

  async listParts(key: string, storageUploadId: string): Promise<UploadedPart[]> {
    const dir = await this.openUpload(key, storageUploadId);
    const names = await fs.readdir(dir);
    const parts: UploadedPart[] = [];
    for (const n of names.filter((f) => /^part\.\d+\.json$/.test(f))) {
      const meta = JSON.parse(await fs.readFile(path.join(dir, n), 'utf8')) as PartMeta;
      parts.push({
        partNumber: meta.partNumber,
        size: meta.size,
        sha256: meta.sha256,
        etag: etagOf(meta.sha256),
      });
    }
    return parts.sort((a, b) => a.partNumber - b.partNumber);
  }

  /** The directory of an open multipart upload of `key`; not found when absent or for another key. */
  async openUpload(key: string, storageUploadId: string): Promise<string> {
    const dir = this.uploadDir(storageUploadId);
    try {
      const meta = JSON.parse(await fs.readFile(path.join(dir, 'upload.json'), 'utf8')) as { key: string };
      if (meta.key !== key) throw errors.notFound('upload');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw errors.notFound('upload');
      throw err;
    }
    return dir;
  }

  async completeMultipartUpload(
    key: string,
    storageUploadId: string,
    parts: readonly { partNumber: number; etag: string }[],
  ): Promise<void> {
    const dir = await this.openUpload(key, storageUploadId);
    const have = new Map((await this.listParts(key, storageUploadId)).map((p) => [p.partNumber, p]));
    const manifest: Manifest = { size: 0, parts: [] };
    for (const p of parts) {
      const got = have.get(p.partNumber);
      if (!got) throw errors.uploadIncomplete(`part ${p.partNumber} was not uploaded`);
      if (normaliseEtag(got.etag) !== normaliseEtag(p.etag)) {
        throw errors.checksumMismatch(`part ${p.partNumber}: ETag does not match the stored part`);
      }
      manifest.parts.push({ partNumber: p.partNumber, size: got.size });
      manifest.size += got.size;
    }
    // Parts not named in the list are dropped, as S3 does.
    for (const n of have.keys()) {
      if (!manifest.parts.some((p) => p.partNumber === n)) {
        await fs.rm(path.join(dir, `part.${n}`), { force: true });
        await fs.rm(path.join(dir, `part.${n}.json`), { force: true });
      }
    }
    await writeFileDurably(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
    await syncDir(dir);
    // Rename first, tidy after: a crash before the rename leaves a completable upload (its marker
    // is still there); a crash after it leaves a whole object with a stray marker. Removing the
    // marker first left a window where the upload could be neither completed nor found.
    await this.moveIntoPlace(dir, key);
    await fs.rm(path.join(this.objectDir(key), 'upload.json'), { force: true });
  }

  /** Atomically publishes a prepared directory as the object `key`, replacing any previous one. */
  async moveIntoPlace(dir: string, key: string): Promise<void> {
    const target = this.objectDir(key);
    await fs.mkdir(path.dirname(target), { recursive: true });
    const old = `${target}.old-${randomUUID()}`;
    const had = await fs.rename(target, old).then(
      () => true,
      () => false,
    );
    try {
      await fs.rename(dir, target);
    } catch (err) {
      // Nothing to publish (another completion took the directory first): put back what was there,
      // rather than leave it pushed aside under a name nothing reads or sweeps.
      if (had) await fs.rename(old, target).catch(() => undefined);
      throw err;
    }
    await syncDir(path.dirname(target));
    if (had) await fs.rm(old, { recursive: true, force: true });
  }

  async abortMultipartUpload(key: string, storageUploadId: string): Promise<void> {
    const dir = this.uploadDir(storageUploadId);
    try {
      await this.openUpload(key, storageUploadId);
    } catch {
      return; // already completed or aborted: abort is idempotent
    }
    await fs.rm(dir, { recursive: true, force: true });
  }

  /** `singleUse` signs a fresh nonce in; the node server spends it on the first fetch. */
  async presignGet(input: {
    key: string;
    expiresInSeconds: number;
    fileName: string;
    contentType: string;
    singleUse?: boolean;
  }) {
    assertKey(input.key);
    const exp = Math.floor(Date.now() / 1000) + input.expiresInSeconds;
    const url = this.url({
      op: 'get',
      node: this.nodeId,
      key: input.key,
      name: input.fileName,
      type: input.contentType,
      ...(input.singleUse ? { nonce: newNonce() } : {}),
      exp,
    });
    return { url, method: 'GET' as const, headers: {}, expiresAt: new Date(exp * 1000) };
  }

  private async manifest(key: string): Promise<Manifest | undefined> {
    try {
      return JSON.parse(await readSmallFile(path.join(this.objectDir(key), 'manifest.json'))) as Manifest;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async stat(key: string): Promise<BlobStat | undefined> {
    const m = await this.manifest(key);
    return m ? { size: m.size } : undefined;
  }

  /** The manifest and the byte range of `key` to serve (the whole object without `range`). */
  private async extent(key: string, range?: { start: number; end: number }) {
    const m = await this.manifest(key);
    if (!m) throw errors.notFound('object');
    const start = range?.start ?? 0;
    const end = range?.end ?? m.size - 1;
    if (start < 0 || end >= m.size || (end < start && m.size > 0))
      throw errors.validation('byte range outside the object');
    return { m, dir: this.objectDir(key), start, end };
  }

  async read(key: string, range?: { start: number; end: number }): Promise<Readable> {
    const { m, dir, start, end } = await this.extent(key, range);
    // Parts are streamed one after another, lazily: nothing is opened until the consumer reads, so a
    // part that vanishes (aborted, purged, wiped) fails the consumer's read, and never becomes an
    // 'error' event on a stream nobody listens to yet, which would end the process.
    const parts = m.parts;
    async function* bytes() {
      let offset = 0;
      for (const p of parts) {
        const partStart = offset;
        const partEnd = offset + p.size - 1;
        offset += p.size;
        if (p.size === 0 || partEnd < start || partStart > end) continue;
        yield* createReadStream(path.join(dir, `part.${p.partNumber}`), {
          highWaterMark: 1024 * 1024,
          start: Math.max(0, start - partStart),
          end: Math.min(p.size - 1, end - partStart),
        });
      }
    }
    return Readable.from(bytes(), { objectMode: false, highWaterMark: 1024 * 1024 });
  }

  /**
   * Writes the object (or one byte range of it) into `out` and ends it: what piping `read` into it
   * does, through a few reused buffers instead of a fresh one per chunk. A buffer is read into
   * again only once `out` has called back for the write that carried it (its bytes have left for
   * the socket), so nothing queued is ever overwritten. Serving a file this way allocates nothing
   * per read: with `read`, the garbage collector took about a third of the node's time while a
   * download ran. Rejects when a part is missing or short, or when `out` closes before the end.
   */
  async sendTo(key: string, out: Writable, range?: { start: number; end: number }): Promise<void> {
    const { m, dir, start, end } = await this.extent(key, range);
    const free: Buffer[] = Array.from({ length: SEND_BUFFERS }, () =>
      Buffer.allocUnsafeSlow(SEND_BUFFER_BYTES),
    );
    let failure: unknown;
    let wake: (() => void) | undefined;
    const ready = () => {
      wake?.();
      wake = undefined;
    };
    const onClose = () => {
      failure ??= new Error('the receiver closed before the end');
      ready();
    };
    out.once('close', onClose);
    const buffer = async (): Promise<Buffer> => {
      for (;;) {
        if (failure) throw failure;
        const b = free.pop();
        if (b) return b;
        await new Promise<void>((r) => {
          wake = r;
        });
      }
    };
    try {
      let offset = 0;
      for (const p of m.parts) {
        const partStart = offset;
        offset += p.size;
        if (p.size === 0 || offset - 1 < start || partStart > end) continue;
        let pos = Math.max(0, start - partStart);
        const stop = Math.min(p.size - 1, end - partStart) + 1;
        const fh = await fs.open(path.join(dir, `part.${p.partNumber}`), 'r');
        try {
          while (pos < stop) {
            const b = await buffer();
            const { bytesRead } = await fh.read(b, 0, Math.min(b.length, stop - pos), pos);
            if (bytesRead === 0) throw new Error(`part ${p.partNumber} is shorter than its manifest says`);
            pos += bytesRead;
            out.write(b.subarray(0, bytesRead), (err?: Error | null) => {
              if (err) failure ??= err;
              free.push(b);
              ready();
            });
          }
        } finally {
          await fh.close();
        }
      }
      if (failure) throw failure;
      out.end();
      await finished(out);
    } finally {
      out.off('close', onClose);
    }
  }

  async copyPart(input: {
    key: string;
    storageUploadId: string;
    partNumber: number;
    sourceKey: string;
    start: number;
    end: number;
  }) {
    const dir = await this.openUpload(input.key, input.storageUploadId);
    const m = await this.manifest(input.sourceKey);
    if (!m) throw errors.notFound('object');
    const target = path.join(dir, `part.${input.partNumber}`);
    const tmp = this.tmpPath();
    let meta: PartMeta | undefined;
    // When the range is exactly one stored part, clone the file (copy-on-write where the
    // filesystem can) and reuse its recorded hash.
    let offset = 0;
    for (const p of m.parts) {
      if (offset === input.start && offset + p.size - 1 === input.end) {
        const srcDir = this.objectDir(input.sourceKey);
        const recorded = await fs.readFile(path.join(srcDir, `part.${p.partNumber}.json`), 'utf8').then(
          (t) => JSON.parse(t) as PartMeta,
          () => undefined,
        );
        if (recorded) {
          await fs.copyFile(path.join(srcDir, `part.${p.partNumber}`), tmp, fs.constants.COPYFILE_FICLONE);
          meta = { partNumber: input.partNumber, size: p.size, sha256: recorded.sha256 };
        }
        break;
      }
      offset += p.size;
    }
    if (!meta) {
      const hash = createHash('sha256');
      let size = 0;
      const src = await this.read(input.sourceKey, { start: input.start, end: input.end });
      const fh = await fs.open(tmp, 'w');
      try {
        for await (const chunk of src as AsyncIterable<Buffer>) {
          hash.update(chunk);
          size += chunk.length;
          await fh.write(chunk);
        }
        await fh.datasync();
      } finally {
        await fh.close();
      }
      meta = { partNumber: input.partNumber, size, sha256: hash.digest('hex') };
    }
    await fs.rename(tmp, target);
    await writeFileDurably(path.join(dir, `part.${input.partNumber}.json`), JSON.stringify(meta));
    await syncDir(dir);
    return { partNumber: meta.partNumber, size: meta.size, sha256: meta.sha256, etag: etagOf(meta.sha256) };
  }

  async write(key: string, body: Buffer): Promise<void> {
    const dir = this.tmpPath();
    await fs.mkdir(dir, { recursive: true });
    await writeFileDurably(path.join(dir, 'part.1'), body);
    await writeFileDurably(
      path.join(dir, 'manifest.json'),
      JSON.stringify({ size: body.length, parts: [{ partNumber: 1, size: body.length }] }),
    );
    await syncDir(dir);
    await this.moveIntoPlace(dir, key);
  }

  async writeStream(key: string, body: Readable, size: number): Promise<{ sha256: string }> {
    assertKey(key);
    const dir = this.tmpPath();
    await fs.mkdir(dir, { recursive: true });
    try {
      const hash = createHash('sha256');
      let written = 0;
      const fh = await fs.open(path.join(dir, 'part.1'), 'w');
      try {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          hash.update(chunk);
          written += chunk.length;
          if (written > size) throw errors.validation('more bytes than announced');
          await fh.write(chunk);
        }
        await fh.datasync();
      } finally {
        await fh.close();
      }
      if (written !== size) throw errors.validation(`stream ended after ${written} of ${size} bytes`);
      const sha256 = hash.digest('hex');
      await writeFileDurably(path.join(dir, 'part.1.json'), JSON.stringify({ partNumber: 1, size, sha256 }));
      await writeFileDurably(
        path.join(dir, 'manifest.json'),
        JSON.stringify({ size, parts: [{ partNumber: 1, size }] }),
      );
      await syncDir(dir);
      await this.moveIntoPlace(dir, key);
      return { sha256 };
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * From another local node of this process (so on this machine): each part file is copied by the
   * kernel (`copyFile` with COPYFILE_FICLONE: a copy-on-write clone where the filesystem can, else
   * the kernel's own copy, never through a buffer here), fsynced, and published with the source's
   * part records and manifest as one directory rename, as every write is. The copy is the source's
   * bytes as the filesystem holds them: `same-as-source` by `file-copy`. Anything else: undefined.
   */
  async copyFrom(source: BlobStore, key: string, size: number): Promise<CopyCheck | undefined> {
    if (!(source instanceof LocalFsBlobStore) || source === this) return undefined;
    assertKey(key);
    const m = await source.manifest(key);
    if (!m) throw errors.notFound('object');
    if (m.size !== size) throw errors.validation(`the source object holds ${m.size} bytes, not ${size}`);
    const from = source.objectDir(key);
    const dir = this.tmpPath();
    await fs.mkdir(dir, { recursive: true });
    try {
      for (const p of m.parts) {
        const part = `part.${p.partNumber}`;
        await fs.copyFile(path.join(from, part), path.join(dir, part), fs.constants.COPYFILE_FICLONE);
        const fh = await fs.open(path.join(dir, part), 'r');
        try {
          // A part shorter than its manifest says (vanished under the copy) is not a copy.
          if ((await fh.stat()).size !== p.size)
            throw errors.validation(`part ${p.partNumber} of the source is not ${p.size} bytes`);
          await fh.datasync();
        } finally {
          await fh.close();
        }
        // The part's record (its SHA-256, as the source node hashed it arriving) travels with it.
        const record = await fs
          .readFile(path.join(from, `${part}.json`))
          .catch((err: NodeJS.ErrnoException) => {
            if (err.code === 'ENOENT') return undefined;
            throw err;
          });
        if (record) await writeFileDurably(path.join(dir, `${part}.json`), record);
      }
      await writeFileDurably(path.join(dir, 'manifest.json'), JSON.stringify(m));
      await syncDir(dir);
      await this.moveIntoPlace(dir, key);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
    return { kind: 'same-as-source', by: 'file-copy' };
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.objectDir(key), { recursive: true, force: true });
  }

  /**
   * Walks `objects/` in the port's key order without holding more than one directory's names: an
   * object is a directory with a manifest, any other directory a level of the key's path. Siblings
   * sort by the keys they hold, which is not always their names' order: a directory `a` holds
   * `a/...`, which sorts after `a-b` and `a.b` ('/' is above '-' and '.'), while an object `a`
   * sorts before them; so a name that begins a sibling's name followed by one of those is looked
   * at to tell which it is. Subtrees wholly before `startAfter` or outside `prefix` are skipped by
   * name, and only listed objects' manifests are read.
   */
  async listPage(prefix: string, opts: { startAfter?: string; limit?: number } = {}): Promise<BlobPage> {
    const limit = listPageLimit(opts.limit);
    const items: ListedBlob[] = [];
    for await (const o of this.objectsInOrder(prefix, opts.startAfter ?? '')) {
      const last = items.at(-1);
      // One object past a full page: more follow.
      if (items.length === limit && last) return { items, next: last.key };
      items.push(o);
    }
    return { items };
  }

  private async *objectsInOrder(prefix: string, startAfter: string, dirKey = ''): AsyncGenerator<ListedBlob> {
    const base = path.join(this.root, 'objects', ...dirKey.split('/').filter(Boolean));
    const names = (await fs.readdir(base, { withFileTypes: true }).catch(() => []))
      .filter((e) => e.isDirectory() && !PUSHED_ASIDE.test(e.name))
      .map((e) => e.name)
      .filter((name) => {
        const k = dirKey + name;
        // Objects here are `k`, deeper keys `k/...`: both outside the prefix unless one begins the other.
        if (!k.startsWith(prefix) && !prefix.startsWith(k)) return false;
        // Everything here is at or before startAfter.
        const sub = `${k}/`;
        return (
          compareBlobKeys(k, startAfter) > 0 ||
          compareBlobKeys(sub, startAfter) > 0 ||
          startAfter.startsWith(sub)
        );
      })
      .sort(compareBlobKeys);
    // Where `x` begins a sibling `x-…` or `x.…`, whether `x` is an object decides their order.
    const orderKey = new Map<string, string>();
    for (let i = 0; i < names.length; i++) {
      const x = names[i] as string;
      let ambiguous = false;
      for (let j = i + 1; j < names.length && (names[j] as string).startsWith(x); j++)
        if ((names[j] as string).charCodeAt(x.length) < 0x2f) ambiguous = true;
      const isObject = ambiguous && (await this.objectAt(dirKey + x)) !== undefined;
      orderKey.set(x, isObject ? x : `${x}/`);
    }
    names.sort((a, b) => compareBlobKeys(orderKey.get(a) ?? a, orderKey.get(b) ?? b));
    for (const name of names) {
      const k = dirKey + name;
      const o = await this.objectAt(k);
      if (o) {
        if (k.startsWith(prefix) && compareBlobKeys(k, startAfter) > 0) yield o;
        continue;
      }
      const sub = `${k}/`;
      if (compareBlobKeys(sub, startAfter) < 0 && !startAfter.startsWith(sub)) continue;
      yield* this.objectsInOrder(prefix, startAfter, sub);
    }
  }

  /** The object stored as `key` (a directory with a manifest), or undefined for any other directory. */
  private async objectAt(key: string): Promise<ListedBlob | undefined> {
    const file = path.join(this.root, 'objects', ...key.split('/'), 'manifest.json');
    try {
      const [st, text] = await Promise.all([fs.stat(file), fs.readFile(file, 'utf8')]);
      return { key, size: (JSON.parse(text) as Manifest).size, modifiedAt: st.mtime };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /**
   * Everything this node writes that is not a published object: multipart upload directories
   * (open or abandoned; the key comes from their marker), temp files and directories of writes in
   * progress or interrupted, and objects a replacing write pushed aside and a crash left behind.
   * A leftover's age is its newest file's, so a part still arriving keeps its upload young.
   */
  async leftovers(olderThan: Date, limit = 10_000): Promise<Leftover[]> {
    const out: Leftover[] = [];
    const cutoff = olderThan.getTime();
    const consider = async (rel: string, kind: Leftover['kind'], key?: string) => {
      const modifiedAt = await newestMtime(path.join(this.root, rel));
      if (modifiedAt && modifiedAt.getTime() < cutoff && out.length < limit)
        out.push({ id: rel.split(path.sep).join('/'), kind, modifiedAt, ...(key ? { key } : {}) });
    };
    for (const name of await fs.readdir(path.join(this.root, 'multipart')).catch(() => [])) {
      if (!UPLOAD_ID.test(name)) continue;
      const key = await fs
        .readFile(path.join(this.root, 'multipart', name, 'upload.json'), 'utf8')
        .then((t) => (JSON.parse(t) as { key?: string }).key)
        .catch(() => undefined);
      await consider(path.join('multipart', name), 'multipart', key);
    }
    for (const name of await fs.readdir(path.join(this.root, 'tmp')).catch(() => []))
      if (UPLOAD_ID.test(name)) await consider(path.join('tmp', name), 'temp');
    const walk = async (rel: string): Promise<void> => {
      if (out.length >= limit) return;
      const entries = await fs.readdir(path.join(this.root, rel), { withFileTypes: true }).catch(() => []);
      if (entries.some((e) => e.name === 'manifest.json')) return; // an object: nothing inside to find
      for (const e of entries) {
        if (!e.isDirectory()) continue;
        const child = path.join(rel, e.name);
        if (PUSHED_ASIDE.test(e.name)) await consider(child, 'replaced');
        else await walk(child);
      }
    };
    await walk('objects');
    return out;
  }

  async removeLeftover(l: Leftover): Promise<void> {
    if (!LEFTOVER_ID.test(l.id) || l.id.split('/').includes('..'))
      throw errors.validation('invalid leftover');
    await fs.rm(path.join(this.root, l.id), { recursive: true, force: true });
  }

  async ping(): Promise<void> {
    await fs.access(path.join(this.root, 'objects'), fs.constants.W_OK);
  }
}

export function etagOf(sha256Hex: string): string {
  return `"${sha256Hex}"`;
}

function normaliseEtag(e: string): string {
  return e.replace(/^W\//, '').replace(/"/g, '');
}

/** The newest modification time of a file, or of a directory and the files directly in it. */
async function newestMtime(p: string): Promise<Date | undefined> {
  const st = await fs.stat(p).catch(() => undefined);
  if (!st) return undefined;
  let newest = st.mtimeMs;
  if (st.isDirectory()) {
    for (const name of await fs.readdir(p).catch(() => [])) {
      const child = await fs.stat(path.join(p, name)).catch(() => undefined);
      if (child && child.mtimeMs > newest) newest = child.mtimeMs;
    }
  }
  return new Date(newest);
}

/**
 * Makes a directory's entries durable (the files renamed into it or created in it): without this a
 * crash may lose a rename that was acknowledged, even though the file's bytes were synced.
 */
export async function syncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function writeFileDurably(file: string, data: string | Buffer): Promise<void> {
  const fh = await fs.open(file, 'w');
  try {
    await fh.writeFile(data);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}
