/**
 * What must hold after the concurrency run, checked in SQL, over the API and on the node
 * directories. Each function adds its checks (and any violations) to the history.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { type Replica, summarize } from '../../shared/services/replica-ledger.ts';
import type { History } from './history.ts';
import type { World } from './workload.ts';

interface ItemRow {
  id: string;
  owner_id: string;
  parent_id: string | null;
  kind: string;
  deleted_at: Date | null;
}

interface Session {
  uploadId: string;
  ownerId: string;
  state: string;
  mode: string;
  size: number;
  nodeId: string;
  blobKey: string;
  storageUploadId?: string;
  versionId: string;
  result?: { fileId: string; versionId: string };
}

const OPEN = new Set(['uploading', 'completing']);

export async function sessions(db: pg.Client): Promise<Map<string, Session>> {
  const rows = await db.query<{ data: string }>("select data from state_items where pk like 'upload#%'");
  const out = new Map<string, Session>();
  for (const r of rows.rows) {
    const s = JSON.parse(r.data) as Session;
    out.set(s.uploadId, s);
  }
  return out;
}

/** No request answered 5xx, and every request got an answer (a dead server answers nothing). */
export function noServerErrors(h: History) {
  for (const r of h.recs) {
    h.check(
      r.status !== 0 && r.status < 500,
      r.status === 0 ? 'no-answer' : 'server-error',
      `${r.method} ${r.path} (${r.op}, ${r.actor}) answered ${r.status || 'nothing'} ${r.problem}`,
      [
        ...`${r.path} ${r.body}`.matchAll(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g),
      ].map((m) => m[0]),
    );
  }
}

/**
 * The tree: every item's parent chain ends at its owner's root folder (live) or passes a trashed
 * item (in the trash), with no cycle, no missing parent and no owner change on the way.
 * Returns the ids of live items per owner for the API walk.
 */
export async function treeIsSound(h: History, db: pg.Client): Promise<Map<string, Set<string>>> {
  const items = new Map(
    (await db.query<ItemRow>('select id, owner_id, parent_id, kind, deleted_at from items')).rows.map((r) => [
      r.id,
      r,
    ]),
  );
  const roots = new Map(
    (await db.query<{ id: string; root_folder_id: string }>('select id, root_folder_id from users')).rows.map(
      (r) => [r.root_folder_id, r.id],
    ),
  );
  const live = new Map<string, Set<string>>();
  for (const it of items.values()) {
    const seen: string[] = [];
    let cur: ItemRow | undefined = it;
    let verdict: 'live' | 'trash' | 'cycle' | 'dangling' | 'unrooted' | 'owner' = 'live';
    while (cur) {
      if (seen.includes(cur.id)) {
        verdict = 'cycle';
        break;
      }
      seen.push(cur.id);
      if (cur.owner_id !== it.owner_id) {
        verdict = 'owner';
        break;
      }
      if (cur.deleted_at) {
        verdict = 'trash';
        break;
      }
      if (cur.parent_id === null) {
        verdict = roots.get(cur.id) === it.owner_id ? 'live' : 'unrooted';
        break;
      }
      const next: ItemRow | undefined = items.get(cur.parent_id);
      if (!next) {
        verdict = 'dangling';
        break;
      }
      cur = next;
    }
    const explain = {
      cycle: `item ${it.id} (${it.kind}) sits on a parent cycle ${seen.join(' -> ')}: unreachable from any root and from the trash`,
      dangling: `item ${it.id} (${it.kind}) has an ancestor whose parent ${cur?.parent_id} does not exist`,
      unrooted: `item ${it.id} (${it.kind}) hangs under ${cur?.id}, a parentless item that is no user's root`,
      owner: `item ${it.id} (${it.kind}) of owner ${it.owner_id} has an ancestor ${cur?.id} of another owner`,
      live: '',
      trash: '',
    }[verdict];
    const ids = verdict === 'dangling' ? [it.id, cur?.id ?? '', cur?.parent_id ?? ''] : seen.slice(0, 6);
    h.check(verdict === 'live' || verdict === 'trash', `tree-${verdict}`, explain, ids);
    if (verdict === 'live') {
      const set = live.get(it.owner_id) ?? new Set<string>();
      set.add(it.id);
      live.set(it.owner_id, set);
    }
  }
  return live;
}

/** Over the API: walking each owner's folders from the root reaches exactly the live items SQL has. */
export async function apiTreeMatches(h: History, w: World, live: Map<string, Set<string>>) {
  for (const o of w.owners) {
    const reached = new Set<string>([o.rootId]);
    const queue = [o.rootId];
    while (queue.length) {
      const id = queue.shift() as string;
      let cursor: string | null = null;
      do {
        const q = `?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const page = await w.req(0, 'check-walk', o, 'GET', `/v1/folders/${id}/children${q}`);
        if (page.status !== 200) {
          h.check(false, 'api-walk', `listing live folder ${id} of ${o.name} answered ${page.status}`, [id]);
          break;
        }
        for (const c of page.json.items as { id: string; type: string }[]) {
          if (reached.has(c.id)) continue;
          reached.add(c.id);
          if (c.type === 'folder') queue.push(c.id);
        }
        cursor = (page.json.nextCursor as string | null) ?? null;
      } while (cursor);
    }
    const want = live.get(o.id) ?? new Set<string>();
    const missing = [...want].filter((id) => !reached.has(id));
    const extra = [...reached].filter((id) => !want.has(id));
    h.check(
      missing.length === 0 && extra.length === 0,
      'api-tree-differs',
      `${o.name}'s tree over the API differs from SQL: ${missing.length} live items not listed, ${extra.length} listed items not live`,
      [...missing, ...extra].slice(0, 6),
    );
  }
}

/** Reservations, if the schema has them by now: a column on users, or a table. */
async function reservations(
  db: pg.Client,
): Promise<{ column?: string; table?: string; byUser: Map<string, number> }> {
  const byUser = new Map<string, number>();
  const col = await db.query<{ column_name: string }>(
    "select column_name from information_schema.columns where table_schema = current_schema() and table_name = 'users' and column_name like '%reserv%'",
  );
  if (col.rows[0]) return { column: col.rows[0].column_name, byUser };
  const tables = await db.query<{ table_name: string }>(
    "select table_name from information_schema.tables where table_schema = current_schema() and table_name like '%reserv%'",
  );
  let table: string | undefined;
  for (const t of tables.rows) {
    const cols = (
      await db.query<{ column_name: string }>(
        'select column_name from information_schema.columns where table_schema = current_schema() and table_name = $1',
        [t.table_name],
      )
    ).rows.map((r) => r.column_name);
    const who = cols.find((c) => /^(user|owner)_id$/.test(c));
    const bytes = cols.find((c) => /bytes|size/.test(c));
    if (!who || !bytes) continue;
    const open = cols.includes('released_at')
      ? 'where released_at is null'
      : cols.includes('expires_at')
        ? 'where expires_at > now()'
        : '';
    const rows = await db.query<{ who: string; n: string }>(
      `select ${who} as who, coalesce(sum(${bytes}), 0)::text as n from ${t.table_name} ${open} group by ${who}`,
    );
    for (const r of rows.rows) byUser.set(r.who, (byUser.get(r.who) ?? 0) + Number(r.n));
    table = t.table_name;
  }
  return table ? { table, byUser } : { byUser };
}

/** used_bytes is the sum of the owner's retained versions (plus reservations); no version is orphaned. */
export async function usageAddsUp(h: History, db: pg.Client, open: Map<string, Session>) {
  const res = await reservations(db);
  const users = await db.query<{ id: string; email: string; used: string; live: string; reserved: string }>(
    `select u.id, u.email, u.used_bytes::text as used,
            ${res.column ? `u.${res.column}::text` : "'0'"} as reserved,
            coalesce((select sum(v.size) from versions v join items i on i.id = v.file_id where i.owner_id = u.id), 0)::text as live
       from users u`,
  );
  const openBytes = new Map<string, number>();
  for (const s of open.values())
    if (OPEN.has(s.state)) openBytes.set(s.ownerId, (openBytes.get(s.ownerId) ?? 0) + s.size);
  for (const u of users.rows) {
    const used = Number(u.used);
    const live = Number(u.live);
    // Reservations (a column or a table) are kept beside used_bytes: usage is the retained
    // versions, and what is reserved is what the owner's open sessions hold.
    h.check(
      used === live,
      'usage-mismatch',
      `${u.email}: used_bytes ${used} but the retained versions add up to ${live} (${used - live} bytes adrift)`,
      [u.id],
    );
    if (res.column || res.table) {
      const reserved = res.column ? Number(u.reserved) : (res.byUser.get(u.id) ?? 0);
      const held = openBytes.get(u.id) ?? 0;
      h.check(
        reserved === held,
        'reservation-mismatch',
        `${u.email}: ${res.column ?? res.table} reserves ${reserved} bytes but open sessions hold ${held} (${reserved - held} adrift)`,
        [u.id],
      );
    }
  }
  const dangling = await db.query<{ id: string; file_id: string }>(
    'select v.id, v.file_id from versions v left join items i on i.id = v.file_id where i.id is null',
  );
  h.check(
    dangling.rows.length === 0,
    'version-without-file',
    `${dangling.rows.length} versions belong to no file (charged to no one, never purged)`,
    dangling.rows.slice(0, 6).map((r) => r.id),
  );
}

/**
 * The counters equal a recount (docs/architecture.md, "Counters"): the version counters equal the
 * versions grouped by node, and the replica-ledger counters equal the sums over every version's
 * replicas. Read in one repeatable-read snapshot, so a transition committing meanwhile is either
 * in both or in neither.
 */
export async function countersMatchRecount(h: History, db: pg.Client, when: string) {
  await db.query('begin isolation level repeatable read');
  try {
    const counted = await db.query<{ node_id: string; versions: string; bytes: string }>(
      `select node_id, sum(versions)::text as versions, sum(bytes)::text as bytes from version_counters
       group by node_id having sum(versions) <> 0 order by node_id`,
    );
    const actual = await db.query<{ node_id: string; versions: string; bytes: string }>(
      'select node_id, count(*)::text as versions, sum(size)::text as bytes from versions group by node_id order by node_id',
    );
    const fmt = (rows: { node_id: string; versions: string; bytes: string }[]) =>
      JSON.stringify(rows.map((r) => [r.node_id, Number(r.versions), Number(r.bytes)]));
    h.check(
      fmt(counted.rows) === fmt(actual.rows),
      'version-counters-drift',
      `${when}: version counters ${fmt(counted.rows)} but the versions add up to ${fmt(actual.rows)}`,
    );
    const uncounted = await db.query('select 1 from version_counter_shards');
    h.check(
      uncounted.rows.length === 256,
      'version-shards-uncounted',
      `${when}: ${uncounted.rows.length} of 256 shards counted`,
    );
    const sums = await db.query<{ name: string; value: string }>(
      `select name, sum(value)::text as value from state_counters where pk like 'ledger-counters#%'
       group by name having sum(value) <> 0 order by name`,
    );
    const replicas = await db.query<{ pk: string; data: string }>(
      "select pk, data from state_items where pk like 'ledger#%'",
    );
    const byVersion = new Map<string, Replica[]>();
    for (const r of replicas.rows)
      byVersion.set(r.pk, [...(byVersion.get(r.pk) ?? []), JSON.parse(r.data) as Replica]);
    const recount = new Map<string, number>();
    const add = (name: string, n: number) => recount.set(name, (recount.get(name) ?? 0) + n);
    for (const list of byVersion.values()) {
      const s = summarize(list);
      if (!s) continue;
      add('versions', 1);
      add(`set:${s.verifiedOn.join(',')}`, 1);
      for (const [state, n] of Object.entries(s.states)) if (n) add(`state:${state}`, n);
    }
    const want = JSON.stringify([...recount.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
    const got = JSON.stringify(sums.rows.map((r) => [r.name, Number(r.value)]));
    h.check(
      want === got,
      'ledger-counters-drift',
      `${when}: ledger counters ${got} but the replicas add up to ${want}`,
    );
  } finally {
    await db.query('commit');
  }
}

/** SHA-256 of an object as a node directory holds it (manifest order), or undefined if absent. */
async function objectSha(nodeRoot: string, key: string): Promise<string | undefined> {
  const dir = path.join(nodeRoot, 'objects', key);
  let manifest: { parts: { partNumber: number }[] };
  try {
    manifest = JSON.parse(await fs.readFile(path.join(dir, 'manifest.json'), 'utf8'));
  } catch {
    return undefined;
  }
  const h = createHash('sha256');
  try {
    for (const p of manifest.parts) h.update(await fs.readFile(path.join(dir, `part.${p.partNumber}`)));
  } catch {
    return undefined;
  }
  return h.digest('hex');
}

/** Every committed version's bytes are on at least one node, with the right SHA-256. */
export async function bytesExist(h: History, db: pg.Client, dataDir: string, when: string) {
  const nodesDir = path.join(dataDir, 'nodes');
  const nodes = (await fs.readdir(nodesDir)).map((n) => path.join(nodesDir, n));
  const versions = await db.query<{ id: string; file_id: string; blob_key: string; sha256: string }>(
    'select id, file_id, blob_key, sha256 from versions',
  );
  const memo = new Map<string, Promise<(string | undefined)[]>>();
  for (const v of versions.rows) {
    let got = memo.get(v.blob_key);
    if (!got) {
      got = Promise.all(nodes.map((n) => objectSha(n, v.blob_key)));
      memo.set(v.blob_key, got);
    }
    const shas = await got;
    h.check(
      shas.includes(v.sha256),
      'version-bytes-missing',
      `${when}: version ${v.id} of file ${v.file_id} (${v.blob_key}) is on no node with its SHA-256 (nodes hold: ${shas.map((s) => (s ? s.slice(0, 8) : '-')).join(', ')})`,
      [v.id, v.file_id, v.blob_key.replace(/^v\//, '')],
    );
  }
}

/**
 * Uploads: each committed at most one version; an abort and a complete never both succeed; a
 * session the store calls aborted has no committed version; an acknowledged complete left the
 * session committed with the same version.
 */
export async function uploadsAreSingleMinded(h: History, db: pg.Client, w: World, all: Map<string, Session>) {
  const versions = new Set((await db.query<{ id: string }>('select id from versions')).rows.map((r) => r.id));
  const commits = new Map<string, number>();
  for (const r of (
    await db.query<{ detail: string }>("select detail from audit_events where action = 'file.commit'")
  ).rows) {
    const id = String((JSON.parse(r.detail) as { versionId?: string }).versionId);
    commits.set(id, (commits.get(id) ?? 0) + 1);
  }
  const byUpload = new Map<string, { completed: Set<string>; aborted: boolean }>();
  for (const r of w.h.recs) {
    const m = /^\/v1\/uploads\/([0-9a-f-]{36})(\/complete)?$/.exec(r.path);
    if (!m || r.status < 200 || r.status >= 300) continue;
    const u = byUpload.get(m[1] as string) ?? { completed: new Set<string>(), aborted: false };
    if (m[2] && r.method === 'POST') {
      const v = /"versionId":"([0-9a-f-]{36})"/.exec(r.response)?.[1];
      if (v) u.completed.add(v);
    } else if (r.method === 'DELETE') u.aborted = true;
    byUpload.set(m[1] as string, u);
  }
  for (const uploadId of w.uploads.keys()) {
    const s = all.get(uploadId);
    const u = byUpload.get(uploadId) ?? { completed: new Set<string>(), aborted: false };
    h.check(
      u.completed.size <= 1,
      'upload-committed-twice',
      `upload ${uploadId} answered ${u.completed.size} different versions: ${[...u.completed].join(', ')}`,
      [uploadId, ...u.completed],
    );
    h.check(
      !(u.aborted && u.completed.size > 0),
      'abort-and-complete-both-succeeded',
      `upload ${uploadId} was both aborted (204) and completed (version ${[...u.completed].join(', ')})`,
      [uploadId, ...u.completed],
    );
    if (!s) {
      h.check(false, 'session-vanished', `upload ${uploadId} has no session record`, [uploadId]);
      continue;
    }
    h.check(
      !(s.state === 'aborted' && versions.has(s.versionId)),
      'aborted-session-committed',
      `upload ${uploadId} is aborted in the store, yet its version ${s.versionId} is committed`,
      [uploadId, s.versionId],
    );
    if (u.completed.size > 0)
      h.check(
        s.state === 'committed' && u.completed.has(s.result?.versionId ?? ''),
        'acknowledged-complete-not-committed',
        `upload ${uploadId} answered a complete with ${[...u.completed].join(', ')} but its session is ${s.state} (${s.result?.versionId ?? 'no result'})`,
        [uploadId, ...u.completed],
      );
    h.check(
      (commits.get(s.versionId) ?? 0) <= 1,
      'upload-committed-twice',
      `version ${s.versionId} of upload ${uploadId} was committed ${commits.get(s.versionId)} times (audit file.commit)`,
      [uploadId, s.versionId],
    );
  }
}

/**
 * After a reconcile: nothing on a node that no one owns. An object is owned by a version (any
 * version referencing its key) or by an open session; a multipart directory by an open session;
 * `.old-*` objects and temp files by no one. Bytes an open session already uploaded must survive.
 */
export async function noOrphans(h: History, db: pg.Client, dataDir: string, all: Map<string, Session>) {
  const referenced = new Set(
    (await db.query<{ blob_key: string }>('select distinct blob_key from versions')).rows.map(
      (r) => r.blob_key,
    ),
  );
  const openKeys = new Map<string, Session>();
  const openMultipart = new Set<string>();
  for (const s of all.values()) {
    if (!OPEN.has(s.state)) continue;
    openKeys.set(s.blobKey, s);
    if (s.storageUploadId) openMultipart.add(s.storageUploadId);
  }
  const nodesDir = path.join(dataDir, 'nodes');
  for (const node of await fs.readdir(nodesDir)) {
    const root = path.join(nodesDir, node);
    const objects = await fs.readdir(path.join(root, 'objects', 'v')).catch(() => [] as string[]);
    for (const name of objects) {
      const key = `v/${name}`;
      if (name.includes('.old-')) {
        h.check(
          false,
          'orphan-old-object',
          `${node}: ${key} is a replaced object left behind (.old-*), never swept`,
          [name.split('.old-')[0] as string],
        );
        continue;
      }
      h.check(
        referenced.has(key) || openKeys.has(key),
        'orphan-object',
        `${node}: object ${key} survives the reconcile but no version and no open session references it`,
        [name],
      );
    }
    for (const id of await fs.readdir(path.join(root, 'multipart')).catch(() => [] as string[])) {
      const meta = await fs
        .readFile(path.join(root, 'multipart', id, 'upload.json'), 'utf8')
        .then((t) => (JSON.parse(t) as { key: string }).key)
        .catch(() => '?');
      const session = [...all.values()].find((s) => s.storageUploadId === id);
      h.check(
        openMultipart.has(id),
        'orphan-multipart',
        `${node}: multipart/${id} (${meta}) survives the reconcile; its session is ${session?.state ?? 'unknown'}`,
        [id, meta.replace(/^v\//, ''), session?.uploadId ?? ''],
      );
    }
    const tmp = await fs.readdir(path.join(root, 'tmp')).catch(() => [] as string[]);
    for (const t of tmp) h.check(false, 'orphan-temp', `${node}: tmp/${t} survives the reconcile`, [t]);
    if (tmp.length === 0) h.check(true, 'orphan-temp', '');
  }
  // Bytes an open single-PUT session already holds belong to it: a reconcile must not delete them.
  const put = new Set(
    h.recs
      .filter((r) => r.method === 'PUT' && r.status === 200)
      .map((r) => /key=v\/([0-9a-f-]{36})/.exec(r.path)?.[1]),
  );
  for (const s of openKeys.values()) {
    if (s.mode !== 'single' || !put.has(s.versionId)) continue;
    const present = (await fs.readdir(nodesDir)).map((n) =>
      fs.stat(path.join(nodesDir, n, 'objects', s.blobKey, 'manifest.json')).then(
        () => true,
        () => false,
      ),
    );
    h.check(
      (await Promise.all(present)).some(Boolean),
      'open-session-bytes-deleted',
      `upload ${s.uploadId} is still ${s.state} and its bytes were uploaded, but after the reconcile no node holds ${s.blobKey}`,
      [s.uploadId, s.versionId],
    );
  }
}
