/**
 * The concurrency suite's clients: a few users (owners; editors and a viewer with grants on the
 * owners' folders) and N workers that, until a deadline, run random steps chosen by a seeded PRNG:
 * uploads (plain, concurrent completes of one upload, complete racing abort, abort, left open),
 * folder and file moves (including two folders moved into each other at once), renames, trash,
 * restore, purge (and restore racing purge), copies, grants and revokes, an editor uploading into a
 * folder whose grant is revoked (or downgraded) before it completes, and a viewer trying to write.
 * Every request goes through `req`, which records it in the history. Checks that need the order of
 * answers (both crossing moves answered 200, an upload no complete can commit any more, a write
 * accepted after its grant was revoked) are made here; the rest after the run (invariants.ts).
 */
import { createHash } from 'node:crypto';
import { Client } from '../support/local-runtime.ts';
import type { History, Rng } from './history.ts';

export interface Actor {
  name: string;
  email: string;
  id: string;
  rootId: string;
  token: string;
  kind: 'owner' | 'editor' | 'viewer';
}

interface Grant {
  id: string;
  itemId: string;
  ownerId: string;
  granteeId: string;
  role: 'viewer' | 'editor';
}

export interface Answer {
  status: number;
  json: Record<string, unknown>;
  t0: number;
  t1: number;
}

const MiB = 1024 * 1024;
const PART = 5 * MiB;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const slug = (json: Record<string, unknown>) =>
  typeof json.type === 'string' ? json.type.replace('urn:stratus:problem:', '') : '';

/** A storage URL without its signature: node op, key and part (so a report can find it by id). */
const storagePath = (url: string) => {
  const u = new URL(url);
  const part = u.searchParams.get('part');
  return `${u.pathname}?key=${u.searchParams.get('key') ?? ''}${part ? `&part=${part}` : ''}`;
};

/** What the workers believe about the world; only a source of ids to aim at, never an oracle. */
export class World {
  readonly owners: Actor[] = [];
  readonly editors: Actor[] = [];
  viewer!: Actor;
  readonly folders = new Map<string, string[]>();
  readonly files = new Map<string, string[]>();
  readonly grants = new Map<string, Grant>();
  /** Upload ids this run created, with who and where (the post-run checks read their sessions). */
  readonly uploads = new Map<string, { actor: string; parentId: string; variant: string; mode: string }>();
  readonly base: Buffer;
  operations = 0;

  readonly url: string;
  readonly h: History;

  constructor(url: string, h: History, seedRng: Rng) {
    this.url = url;
    this.h = h;
    // One buffer of seeded bytes; each upload takes a slice and stamps its own header on it.
    const words = new Uint32Array((PART + 128 * 1024) / 4);
    for (let i = 0; i < words.length; i++) words[i] = Math.floor(seedRng.next() * 2 ** 32);
    this.base = Buffer.from(words.buffer);
  }

  async signUp(name: string, kind: Actor['kind']): Promise<Actor> {
    const email = `${name}@concurrency.test`;
    const c = new Client(this.url);
    const me = await c.signUp(email);
    const a: Actor = { name, email, id: me.id, rootId: me.rootFolderId, token: c.accessToken ?? '', kind };
    if (kind === 'owner') {
      this.owners.push(a);
      this.folders.set(a.id, []);
      this.files.set(a.id, []);
    } else if (kind === 'editor') this.editors.push(a);
    else this.viewer = a;
    return a;
  }

  async req(
    worker: number,
    op: string,
    actor: Actor | undefined,
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Answer> {
    const t0 = Date.now();
    let status = 0;
    let json: Record<string, unknown> = {};
    let text = '';
    try {
      const res = await fetch(this.url + path, {
        method,
        redirect: 'manual',
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(actor ? { authorization: `Bearer ${actor.token}` } : {}),
          ...headers,
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      status = res.status;
      text = await res.text();
      try {
        json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
      } catch {
        json = { text };
      }
    } catch (err) {
      text = `no answer: ${(err as Error).message}`;
    }
    const rec = this.h.add({
      worker,
      op,
      actor: actor?.name ?? '-',
      method,
      path,
      body: body === undefined ? '' : JSON.stringify(body),
      status,
      problem: status >= 400 ? `${slug(json)}: ${String(json.detail ?? '')}` : '',
      response: status < 400 ? text : '',
      t0,
      t1: Date.now(),
    });
    return { status, json, t0: rec.t0, t1: rec.t1 };
  }

  /** A presigned storage PUT, recorded like an API request (its query string is left out). */
  async put(
    worker: number,
    op: string,
    actor: Actor,
    url: string,
    headers: Record<string, string>,
    data: Buffer,
  ) {
    const t0 = Date.now();
    let status = 0;
    let etag = '';
    let text = '';
    try {
      const res = await fetch(url, { method: 'PUT', headers, body: data as Uint8Array<ArrayBuffer> });
      status = res.status;
      etag = res.headers.get('etag') ?? '';
      text = await res.text();
    } catch (err) {
      text = `no answer: ${(err as Error).message}`;
    }
    this.h.add({
      worker,
      op,
      actor: actor.name,
      method: 'PUT',
      path: storagePath(url),
      body: `<${data.length} bytes>`,
      status,
      problem: status >= 400 ? text : '',
      response: etag,
      t0,
      t1: Date.now(),
    });
    return { status, etag };
  }
}

/** One simulated client: its own PRNG stream, running steps until the deadline. */
export class Worker {
  private step = 0;
  private names = 0;

  readonly n: number;
  readonly w: World;
  readonly rng: Rng;

  constructor(n: number, w: World, rng: Rng) {
    this.n = n;
    this.w = w;
    this.rng = rng;
  }

  private get h() {
    return this.w.h;
  }

  async run(deadline: number) {
    while (Date.now() < deadline) {
      this.step++;
      this.w.operations++;
      const who = this.rng.weighted({ owner: 70, editor: 20, viewer: 10 });
      if (who === 'owner') await this.ownerStep(this.rng.pick(this.w.owners) as Actor);
      else if (who === 'editor') await this.editorStep(this.rng.pick(this.w.editors) as Actor);
      else await this.viewerStep();
    }
  }

  private name(prefix: string) {
    return `${prefix}-${this.n}-${++this.names}`;
  }

  private op(kind: string) {
    return `${kind}#${this.n}.${this.step}`;
  }

  private pool(owner: Actor, withRoot = false): string[] {
    const f = this.w.folders.get(owner.id) ?? [];
    return withRoot ? [owner.rootId, ...f] : f;
  }

  private ifMatch(): Record<string, string> {
    return { 'if-match': '*' };
  }

  private async etagOf(op: string, actor: Actor, kind: 'files' | 'folders', id: string) {
    const got = await this.w.req(this.n, op, actor, 'GET', `/v1/${kind}/${id}`);
    return typeof got.json.etag === 'string' ? { 'if-match': got.json.etag } : this.ifMatch();
  }

  private async ownerStep(o: Actor) {
    const step = this.rng.weighted({
      mkdir: 6,
      upload: 24,
      moveFolder: 8,
      crossingMove: 6,
      moveFile: 5,
      rename: 5,
      trash: 7,
      restore: 5,
      purge: 3,
      restoreVsPurge: 2,
      grant: 5,
      revoke: 4,
      copy: 3,
      revokedEditor: 4,
    });
    switch (step) {
      case 'mkdir':
        return this.mkdir(o, o, this.pool(o, true));
      case 'upload':
        return this.upload(o, o, this.rng.pick(this.pool(o, true)) as string);
      case 'moveFolder':
        return this.move(o, 'folders', this.rng.pick(this.pool(o)), this.rng.pick(this.pool(o, true)));
      case 'crossingMove':
        return this.crossingMove(o);
      case 'moveFile':
        return this.move(
          o,
          'files',
          this.rng.pick(this.w.files.get(o.id) ?? []),
          this.rng.pick(this.pool(o, true)),
        );
      case 'rename': {
        const kind = this.rng.chance(0.5) ? 'files' : 'folders';
        const id = this.rng.pick(kind === 'files' ? (this.w.files.get(o.id) ?? []) : this.pool(o));
        return this.rename(o, kind, id);
      }
      case 'trash': {
        const kind = this.rng.chance(0.5) ? 'files' : 'folders';
        return this.trash(
          o,
          kind,
          this.rng.pick(kind === 'files' ? (this.w.files.get(o.id) ?? []) : this.pool(o)),
        );
      }
      case 'restore':
      case 'purge':
      case 'restoreVsPurge':
        return this.fromTrash(o, step);
      case 'grant':
        return this.grant(o);
      case 'revoke':
        return this.revoke(o);
      case 'copy':
        return this.copy(o);
      case 'revokedEditor':
        return this.revokedEditor(o);
    }
  }

  /** Folders (and their owners) this editor or viewer holds a grant on, as far as the world knows. */
  private granted(a: Actor, role?: 'editor') {
    return [...this.w.grants.values()].filter((g) => g.granteeId === a.id && (!role || g.role === role));
  }

  private async editorStep(e: Actor) {
    const g = this.rng.pick(this.granted(e, 'editor'));
    if (!g) return this.w.req(this.n, this.op('editor-shared'), e, 'GET', '/v1/shared');
    const owner = this.w.owners.find((o) => o.id === g.ownerId) as Actor;
    const step = this.rng.weighted({ upload: 50, mkdir: 15, rename: 15, move: 10, trash: 10 });
    const inside = [g.itemId, ...this.pool(owner)];
    switch (step) {
      case 'upload':
        return this.upload(e, owner, g.itemId);
      case 'mkdir':
        return this.mkdir(e, owner, [g.itemId]);
      case 'rename':
        return this.rename(e, 'folders', this.rng.pick(inside));
      case 'move':
        return this.move(e, 'folders', this.rng.pick(this.pool(owner)), g.itemId);
      case 'trash':
        return this.trash(
          e,
          this.rng.chance(0.5) ? 'files' : 'folders',
          this.rng.pick(this.w.files.get(owner.id) ?? []),
        );
    }
  }

  /** The viewer only ever holds viewer grants: any write it gets accepted is a violation. */
  private async viewerStep() {
    const v = this.w.viewer;
    const g = this.rng.pick(this.granted(v));
    if (!g) return this.w.req(this.n, this.op('viewer-shared'), v, 'GET', '/v1/shared');
    const op = this.op('viewer-write');
    const probe = this.rng.weighted({ upload: 1, mkdir: 1, rename: 1, trash: 1, list: 1 });
    let res: Answer;
    if (probe === 'upload') {
      const data = this.data(false);
      res = await this.w.req(this.n, op, v, 'POST', '/v1/uploads', {
        parentId: g.itemId,
        name: this.name('viewer-file'),
        size: data.length,
        sha256: sha256(data),
        contentType: 'application/octet-stream',
      });
    } else if (probe === 'mkdir')
      res = await this.w.req(this.n, op, v, 'POST', '/v1/folders', {
        parentId: g.itemId,
        name: this.name('vf'),
      });
    else if (probe === 'rename')
      res = await this.w.req(
        this.n,
        op,
        v,
        'PATCH',
        `/v1/folders/${g.itemId}`,
        { name: this.name('vr') },
        this.ifMatch(),
      );
    else if (probe === 'trash') res = await this.w.req(this.n, op, v, 'DELETE', `/v1/folders/${g.itemId}`);
    else return this.w.req(this.n, this.op('viewer-list'), v, 'GET', `/v1/folders/${g.itemId}/children`);
    this.h.check(
      res.status >= 300,
      'viewer-wrote',
      `viewer ${v.name} got ${res.status} for a ${probe} in ${g.itemId}, where it only ever held a viewer grant`,
      [g.itemId],
    );
  }

  private async mkdir(a: Actor, owner: Actor, parents: string[]) {
    const parentId = this.rng.pick(parents) ?? owner.rootId;
    const res = await this.w.req(this.n, this.op('mkdir'), a, 'POST', '/v1/folders', {
      parentId,
      name: this.name('f'),
    });
    if (res.status === 201) this.w.folders.get(owner.id)?.push(String(res.json.id));
  }

  private data(multipart: boolean): Buffer {
    const size = multipart ? PART + this.rng.int(1, 64 * 1024) : this.rng.int(1, 48 * 1024);
    const off = this.rng.int(0, this.w.base.length - size);
    const data = Buffer.from(this.w.base.subarray(off, off + size));
    const stamp = Buffer.from(`${this.n}.${this.step}.${this.names}.`);
    stamp.copy(data, 0, 0, Math.min(stamp.length, data.length));
    return data;
  }

  /** Create, PUT every part, then one of the completion variants. */
  private async upload(a: Actor, owner: Actor, parentId: string, forced?: string) {
    const variant =
      forced ??
      this.rng.weighted({
        normal: 40,
        concurrentCompletes: 20,
        completeVsAbort: 16,
        abort: 8,
        open: 6,
        abortAfter: 5,
      });
    const multipart = this.rng.chance(0.15);
    const op = this.op(`upload-${variant}`);
    const data = this.data(multipart);
    const created = await this.w.req(this.n, op, a, 'POST', '/v1/uploads', {
      parentId,
      // A small pool of names per folder: some uploads land as new versions of a file already there.
      name: `file-${this.rng.int(1, 6)}.bin`,
      size: data.length,
      sha256: sha256(data),
      contentType: 'application/octet-stream',
      ...(multipart ? { partSize: PART } : {}),
    });
    if (created.status !== 201) return undefined;
    const uploadId = String(created.json.uploadId);
    this.w.uploads.set(uploadId, {
      actor: a.name,
      parentId,
      variant,
      mode: multipart ? 'multipart' : 'single',
    });
    const parts = created.json.parts as {
      partNumber: number;
      url: string;
      headers: Record<string, string>;
    }[];
    const partSize = Number(created.json.partSize);
    const etags = await Promise.all(
      parts.map(async (p) => {
        const slice = data.subarray((p.partNumber - 1) * partSize, p.partNumber * partSize);
        const put = await this.w.put(this.n, op, a, p.url, p.headers, slice);
        return { partNumber: p.partNumber, etag: put.etag };
      }),
    );
    const complete = () =>
      this.w.req(this.n, op, a, 'POST', `/v1/uploads/${uploadId}/complete`, { parts: etags });
    const abort = () => this.w.req(this.n, op, a, 'DELETE', `/v1/uploads/${uploadId}`);
    const committed = (r: Answer) => {
      if (r.status >= 200 && r.status < 300 && typeof r.json.fileId === 'string') {
        const files = this.w.files.get(owner.id);
        if (files && !files.includes(r.json.fileId)) files.push(r.json.fileId);
      }
    };
    switch (variant) {
      case 'normal':
      case 'revoked': {
        const r = await complete();
        committed(r);
        return { uploadId, complete: r };
      }
      case 'concurrentCompletes': {
        const k = this.rng.int(2, 4);
        // Staggered a little, so later ones also land while the first is mid-way (state `completing`).
        const delays = Array.from({ length: k }, (_, i) => (i === 0 ? 0 : this.rng.int(0, 40)));
        const answers = await Promise.all(delays.map((ms) => sleep(ms).then(complete)));
        answers.forEach(committed);
        if (!answers.some((r) => r.status >= 200 && r.status < 300)) {
          // None won: the upload must still be committable (unless its folder went away meanwhile).
          const again = await complete();
          committed(again);
          this.h.check(
            (again.status >= 200 && again.status < 300) || again.status === 404,
            'upload-lost',
            `${k} concurrent completes of upload ${uploadId} answered ${answers.map((r) => r.status).join('/')}; completing once more answered ${again.status} ${slug(again.json)}`,
            [uploadId],
          );
        }
        return { uploadId };
      }
      case 'completeVsAbort': {
        const delay = this.rng.int(0, 80);
        const [c, d] = await Promise.all([complete(), sleep(delay).then(abort)]);
        committed(c);
        return { uploadId, complete: c, abort: d };
      }
      case 'abort':
        await abort();
        return { uploadId };
      case 'abortAfter': {
        const c = await complete();
        committed(c);
        await abort();
        return { uploadId };
      }
      default:
        return { uploadId }; // open: left for the session's TTL
    }
  }

  private async move(a: Actor, kind: 'files' | 'folders', id: string | undefined, dest: string | undefined) {
    if (!id || !dest) return;
    const op = this.op(`move-${kind}`);
    const headers = this.rng.chance(0.6) ? this.ifMatch() : await this.etagOf(op, a, kind, id);
    await this.w.req(this.n, op, a, 'PATCH', `/v1/${kind}/${id}`, { parentId: dest }, headers);
  }

  /** Two folders moved into each other at once: at most one may succeed. */
  private async crossingMove(o: Actor) {
    const pool = this.pool(o);
    const a = this.rng.pick(pool);
    const b = this.rng.pick(pool.filter((x) => x !== a));
    if (!a || !b) return;
    const op = this.op('crossing-move');
    const [x, y] = await Promise.all([
      this.w.req(this.n, op, o, 'PATCH', `/v1/folders/${a}`, { parentId: b }, this.ifMatch()),
      this.w.req(this.n, op, o, 'PATCH', `/v1/folders/${b}`, { parentId: a }, this.ifMatch()),
    ]);
    // Both may succeed only if another move of a or b committed in between (then no cycle forms).
    const [from, to] = [Math.min(x.t0, y.t0), Math.max(x.t1, y.t1)];
    const between = this.h.recs.some(
      (r) =>
        r.op !== op &&
        r.method === 'PATCH' &&
        r.status === 200 &&
        r.body.includes('parentId') &&
        (r.path === `/v1/folders/${a}` || r.path === `/v1/folders/${b}`) &&
        r.t1 >= from &&
        r.t0 <= to,
    );
    this.h.check(
      !(x.status === 200 && y.status === 200) || between,
      'crossing-moves-both-succeeded',
      `PATCH ${a} {parentId: ${b}} and PATCH ${b} {parentId: ${a}} at once both answered 200`,
      [a, b],
    );
  }

  private async rename(a: Actor, kind: 'files' | 'folders', id: string | undefined) {
    if (!id) return;
    const op = this.op(`rename-${kind}`);
    const headers = this.rng.chance(0.6) ? this.ifMatch() : await this.etagOf(op, a, kind, id);
    await this.w.req(this.n, op, a, 'PATCH', `/v1/${kind}/${id}`, { name: this.name('r') }, headers);
  }

  private async trash(a: Actor, kind: 'files' | 'folders', id: string | undefined) {
    if (!id) return;
    await this.w.req(this.n, this.op(`trash-${kind}`), a, 'DELETE', `/v1/${kind}/${id}`);
  }

  private async fromTrash(o: Actor, step: 'restore' | 'purge' | 'restoreVsPurge') {
    const op = this.op(step);
    const list = await this.w.req(this.n, op, o, 'GET', '/v1/trash');
    const items = (list.json.items as { id: string }[] | undefined) ?? [];
    const it = this.rng.pick(items);
    if (!it) return;
    const restore = () => this.w.req(this.n, op, o, 'POST', `/v1/trash/${it.id}/restore`);
    const purge = () => this.w.req(this.n, op, o, 'DELETE', `/v1/trash/${it.id}`);
    if (step === 'restore') await restore();
    else if (step === 'purge') await purge();
    else if (this.rng.chance(0.5)) await Promise.all([restore(), sleep(this.rng.int(0, 5)).then(purge)]);
    else await Promise.all([purge(), sleep(this.rng.int(0, 5)).then(purge)]);
  }

  private async grant(o: Actor) {
    const itemId = this.rng.pick(this.pool(o));
    if (!itemId) return;
    const toViewer = this.rng.chance(0.3);
    const grantee = toViewer ? this.w.viewer : (this.rng.pick(this.w.editors) as Actor);
    const role = toViewer ? 'viewer' : this.rng.chance(0.8) ? 'editor' : 'viewer';
    const res = await this.w.req(this.n, this.op('grant'), o, 'POST', '/v1/permissions', {
      itemId,
      email: grantee.email,
      role,
    });
    if (res.status === 201)
      this.w.grants.set(`${itemId}|${grantee.id}`, {
        id: String(res.json.id),
        itemId,
        ownerId: o.id,
        granteeId: grantee.id,
        role,
      });
  }

  private async revoke(o: Actor) {
    const g = this.rng.pick([...this.w.grants.values()].filter((x) => x.ownerId === o.id));
    if (!g) return;
    const res = await this.w.req(this.n, this.op('revoke'), o, 'DELETE', `/v1/permissions/${g.id}`);
    if (res.status === 204 || res.status === 404) this.w.grants.delete(`${g.itemId}|${g.granteeId}`);
  }

  private async copy(o: Actor) {
    const id = this.rng.pick(this.w.files.get(o.id) ?? []);
    const dest = this.rng.pick(this.pool(o, true));
    if (!id || !dest) return;
    const res = await this.w.req(this.n, this.op('copy'), o, 'POST', `/v1/files/${id}/copy`, {
      parentId: dest,
      autorename: true,
    });
    if (res.status === 201) this.w.files.get(o.id)?.push(String(res.json.id));
  }

  /**
   * An editor opens an upload in a folder it was granted, the owner revokes (or downgrades to
   * viewer) that grant, then the editor renews part URLs and completes: both must be refused. The
   * folder is fresh, under the owner's root, and outside the pool other steps move things into, so
   * the grant is the editor's only right there.
   */
  private async revokedEditor(o: Actor) {
    const e = this.rng.pick(this.w.editors) as Actor;
    const op = this.op('revoked-editor');
    const folder = await this.w.req(this.n, op, o, 'POST', '/v1/folders', {
      parentId: o.rootId,
      name: this.name('rv'),
    });
    if (folder.status !== 201) return;
    const x = String(folder.json.id);
    const g = await this.w.req(this.n, op, o, 'POST', '/v1/permissions', {
      itemId: x,
      email: e.email,
      role: 'editor',
    });
    if (g.status !== 201) return;
    const multipart = this.rng.chance(0.3);
    const data = this.data(multipart);
    const created = await this.w.req(this.n, op, e, 'POST', '/v1/uploads', {
      parentId: x,
      name: 'after-revoke.bin',
      size: data.length,
      sha256: sha256(data),
      contentType: 'application/octet-stream',
      ...(multipart ? { partSize: PART } : {}),
    });
    if (created.status !== 201) return;
    const uploadId = String(created.json.uploadId);
    this.w.uploads.set(uploadId, {
      actor: e.name,
      parentId: x,
      variant: 'revoked',
      mode: multipart ? 'multipart' : 'single',
    });
    const parts = created.json.parts as {
      partNumber: number;
      url: string;
      headers: Record<string, string>;
    }[];
    const partSize = Number(created.json.partSize);
    const etags = await Promise.all(
      parts.map(async (p) => ({
        partNumber: p.partNumber,
        etag: (
          await this.w.put(
            this.n,
            op,
            e,
            p.url,
            p.headers,
            data.subarray((p.partNumber - 1) * partSize, p.partNumber * partSize),
          )
        ).etag,
      })),
    );
    const downgrade = this.rng.chance(0.4);
    const taken = downgrade
      ? await this.w.req(this.n, op, o, 'POST', '/v1/permissions', {
          itemId: x,
          email: e.email,
          role: 'viewer',
        })
      : await this.w.req(this.n, op, o, 'DELETE', `/v1/permissions/${String(g.json.id)}`);
    if (taken.status >= 300) return;
    const how = downgrade ? 'downgraded to viewer' : 'revoked';
    const renew = await this.w.req(this.n, op, e, 'POST', `/v1/uploads/${uploadId}/parts`, {
      parts: [{ partNumber: 1 }],
    });
    this.h.check(
      renew.status >= 300,
      'access-outlived-grant',
      `editor ${e.name} renewed part URLs of upload ${uploadId} in folder ${x} (${renew.status}) after the owner's grant was ${how}`,
      [uploadId, x],
    );
    const done = await this.w.req(this.n, op, e, 'POST', `/v1/uploads/${uploadId}/complete`, {
      parts: etags,
    });
    this.h.check(
      done.status >= 300,
      'access-outlived-grant',
      `editor ${e.name} completed upload ${uploadId} into folder ${x} (${done.status}) after the owner's grant was ${how}`,
      [uploadId, x],
    );
    if (done.status < 300 && typeof done.json.fileId === 'string')
      this.w.files.get(o.id)?.push(done.json.fileId);
  }
}
