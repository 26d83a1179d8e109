/**
 * The metadata ports (shared/ports/metadata.ts) exercised directly, one suite on three backends:
 * the in-memory adapters, and the PostgreSQL repositories on PGlite and on PostgreSQL 15. Whatever
 * the SQL does is the contract; the memory adapters must be indistinguishable from it.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMemoryMetadata } from '../../shared/adapters/memory/memory-metadata.ts';
import { UniqueViolationError } from '../../shared/domain/errors.ts';
import type { ChildCursor, ChildSort, Item, User, Version } from '../../shared/domain/model.ts';
import { nameKey } from '../../shared/domain/names.ts';
import type { Tx } from '../../shared/ports/metadata.ts';
import { allPartitions, partitionRange } from '../../shared/services/sweep-partitions.ts';
import { type MetadataPorts, metadataBackends } from '../support/metadata-backends.ts';

const GiB = 2 ** 30;
const DAY = 86_400_000;
const MIN_ID = '00000000-0000-0000-0000-000000000000';
const MAX_ID = 'ffffffff-ffff-ffff-ffff-ffffffffffff';
const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const ids = (xs: readonly { id: string }[]) => xs.map((x) => x.id);
/** Code-point order (the databases' C collation), not JavaScript's UTF-16 order. */
const codePoints = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
const unique = (constraint: string) => expect.objectContaining({ name: 'UniqueViolationError', constraint });
/** `timestamptz::text` in UTC: `2024-05-01 10:00:00.123456+00` (no fraction when it is zero). */
const PG_TIMESTAMP = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?\+00$/;
/** PGlite's now() ticks in milliseconds: statements whose times must differ are kept apart. */
const tick = () => new Promise((r) => setTimeout(r, 2));
const cursorMs = (text: string) => {
  const [, base, frac = ''] = /^(.{19})(?:\.(\d+))?\+00$/.exec(text) ?? [];
  return Date.parse(`${base?.replace(' ', 'T')}.${`${frac}000`.slice(0, 3)}Z`);
};

describe.each(metadataBackends)('metadata ports: $name', (backend) => {
  let m: MetadataPorts;
  let dispose: () => Promise<void>;
  beforeEach(async () => {
    ({ ports: m, dispose } = await backend.open());
  });
  afterEach(async () => {
    await dispose();
  });

  const user = (over: { role?: 'admin' | 'user'; quotaBytes?: number; email?: string } = {}) =>
    m.users.ensure({
      id: randomUUID(),
      email: over.email ?? `${randomUUID().slice(0, 8)}@x.io`,
      role: over.role ?? 'user',
      quotaBytes: over.quotaBytes ?? 10 * GiB,
    });
  const folder = (u: User, parentId: string, name: string, tx?: Tx) =>
    (tx ? m.items.with(tx) : m.items).insertFolder({
      id: randomUUID(),
      ownerId: u.id,
      parentId,
      name,
      nameKey: nameKey(name),
    });
  const version = (fileId: string, u: User, over: Partial<Version> = {}, tx?: Tx) =>
    (tx ? m.items.with(tx) : m.items).insertVersion({
      id: randomUUID(),
      fileId,
      nodeId: 'node-a',
      blobKey: `blob/${randomUUID()}`,
      size: 10,
      sha256: 'e'.repeat(64),
      contentType: 'text/plain',
      createdBy: u.id,
      contentHash: null,
      partSize: null,
      partHashes: null,
      scanState: null,
      ...over,
    });
  /** A file and its first (current) version. */
  const file = async (u: User, parentId: string, name: string, size = 10, tx?: Tx) => {
    const items = tx ? m.items.with(tx) : m.items;
    const id = randomUUID();
    const v = await version(id, u, { size }, tx);
    const f = await items.insertFile({
      id,
      ownerId: u.id,
      parentId,
      name,
      nameKey: nameKey(name),
      contentType: 'text/plain',
      size,
      versionId: v.id,
    });
    return { f, v };
  };
  const pages = async (parentId: string, sort: ChildSort, limit: number) => {
    const out: { item: Item; cursor: ChildCursor }[] = [];
    let after: ChildCursor | undefined;
    for (let n = 0; n < 100; n++) {
      const page = await m.items.listChildren(parentId, sort, after, limit);
      out.push(...page);
      if (page.length < limit) return out;
      after = page[page.length - 1]?.cursor;
    }
    throw new Error('pages never ended');
  };

  describe('ItemStore', () => {
    it('stores numbers as numbers and Dates as Dates, and hands out copies', async () => {
      const u = await user();
      const partHashes = ['a'.repeat(64), 'b'.repeat(64)];
      const id = randomUUID();
      const v = await version(id, u, {
        size: 3 * GiB,
        partSize: 8 * 2 ** 20,
        partHashes,
        contentHash: 'c'.repeat(64),
        scanState: 'scanning',
      });
      partHashes.push('mutated after the insert');
      const f = await m.items.insertFile({
        id,
        ownerId: u.id,
        parentId: u.rootFolderId,
        name: 'Big.bin',
        nameKey: 'big.bin',
        contentType: 'application/octet-stream',
        size: 3 * GiB,
        versionId: v.id,
        scanState: 'scanning',
      });
      expect(f).toMatchObject({
        id,
        ownerId: u.id,
        parentId: u.rootFolderId,
        kind: 'file',
        name: 'Big.bin',
        contentType: 'application/octet-stream',
        size: 3 * GiB,
        currentVersionId: v.id,
        revision: 1,
        deletedAt: null,
        originalParentId: null,
        scanState: 'scanning',
      });
      expect(f.createdAt).toBeInstanceOf(Date);
      expect(f.updatedAt.getTime()).toBe(f.createdAt.getTime());
      expect(Math.abs(f.createdAt.getTime() - Date.now())).toBeLessThan(60_000);
      expect(v).toMatchObject({ size: 3 * GiB, partSize: 8 * 2 ** 20, scanState: 'scanning' });
      expect(v.partHashes).toEqual(['a'.repeat(64), 'b'.repeat(64)]);
      expect(v.createdAt).toBeInstanceOf(Date);
      expect(await m.items.get(id)).toEqual(f);
      expect(await m.items.getVersion(v.id)).toEqual(v);

      const got = await m.items.get(id);
      const gotV = await m.items.getVersion(v.id);
      if (!got || !gotV) throw new Error('missing');
      got.name = 'changed';
      got.createdAt.setTime(0);
      gotV.partHashes?.push('x');
      expect(await m.items.get(id)).toEqual(f);
      expect(await m.items.getVersion(v.id)).toEqual(v);

      const d = await folder(u, u.rootFolderId, 'Docs');
      expect(d).toMatchObject({ kind: 'folder', size: 0, contentType: null, currentVersionId: null });
      expect(d.scanState).toBeNull();
      expect(await m.items.get(randomUUID())).toBeUndefined();
      expect(await m.items.getVersion(randomUUID())).toBeUndefined();
    });

    it('keeps live names unique per folder and names the constraint; the trash frees a name', async () => {
      const u = await user();
      const root = u.rootFolderId;
      const a = await folder(u, root, 'Docs');
      await expect(folder(u, root, 'DOCS')).rejects.toBeInstanceOf(UniqueViolationError);
      await expect(folder(u, root, 'docs')).rejects.toEqual(unique('items_name_unique'));
      await expect(file(u, root, 'Docs')).rejects.toEqual(unique('items_name_unique'));
      await folder(u, a.id, 'Docs'); // another folder, another namespace
      await expect(
        m.items.insertFolder({ id: a.id, ownerId: u.id, parentId: root, name: 'Other', nameKey: 'other' }),
      ).rejects.toEqual(unique('items_pkey'));
      expect((await m.items.findLiveChild(root, 'docs'))?.id).toBe(a.id);

      await m.items.trash(a.id, u.id);
      expect(await m.items.findLiveChild(root, 'docs')).toBeUndefined();
      const b = await folder(u, root, 'docs');
      await expect(m.items.untrash(a.id, { parentId: root, name: 'Docs', nameKey: 'docs' })).rejects.toEqual(
        unique('items_name_unique'),
      );
      expect((await m.items.get(a.id))?.deletedAt).toBeInstanceOf(Date);
      const restored = await m.items.untrash(a.id, { parentId: root, name: 'Docs 2', nameKey: 'docs 2' });
      expect(restored).toMatchObject({ name: 'Docs 2', deletedAt: null });

      await expect(
        m.items.relocate(b.id, { parentId: root, name: 'Docs 2', nameKey: 'docs 2' }, b.revision),
      ).rejects.toEqual(unique('items_name_unique'));
      // Renaming to another case of its own name is not a clash with itself.
      const renamed = await m.items.relocate(
        b.id,
        { parentId: root, name: 'DOCS', nameKey: 'docs' },
        b.revision,
      );
      expect(renamed).toMatchObject({ name: 'DOCS', revision: b.revision + 1 });
    });

    it('lists live children in keyset order by name, size and modified time, with (value, id) cursors', async () => {
      const u = await user();
      const root = u.rootFolderId;
      // Name keys that JavaScript's UTF-16 order would put differently (U+1F600 before U+FFFD).
      const spec: [string, number][] = [
        ['b', 5],
        ['B2', 1],
        ['a', 5],
        ['_x', 3],
        ['é', 5],
        ['z', 1],
        ['\u{1F600}', 9],
        ['\uFFFD', 0],
        ['Zz', 3],
        ['0', 5],
      ];
      const made: Item[] = [];
      // The first four in one transaction: one now(), so their modified times tie (then id decides).
      await m.db.transaction(async (tx) => {
        for (const [name, size] of spec.slice(0, 4)) made.push((await file(u, root, name, size, tx)).f);
      });
      await tick();
      for (const [name, size] of spec.slice(4)) {
        made.push((await file(u, root, name, size)).f);
        await tick();
      }
      // Not listed: a trashed child, a grandchild.
      const gone = await folder(u, root, 'gone');
      await m.items.trash(gone.id, u.id);
      const sub = await folder(u, root, 'sub');
      await file(u, sub.id, 'nested');
      made.push(sub);
      // Renaming `a` makes it the most recently modified.
      await tick();
      const a = made[2] as Item;
      const moved = await m.items.relocate(a.id, { parentId: root, name: 'A', nameKey: 'a' }, a.revision);
      if (!moved) throw new Error('rename failed');
      made[2] = moved;

      const key = (i: Item) => nameKey(i.name);
      const insertion = [
        ...made
          .slice(0, 4)
          .filter((i) => i.id !== a.id)
          .sort(byId),
        ...made.slice(4),
        moved,
      ];
      const expected: Record<ChildSort['by'], Item[]> = {
        name: [...made].sort((x, y) => codePoints(key(x), key(y)) || byId(x, y)),
        size: [...made].sort((x, y) => x.size - y.size || byId(x, y)),
        modified: insertion,
      };
      for (const by of ['name', 'size', 'modified'] as const) {
        for (const dir of ['asc', 'desc'] as const) {
          const want = dir === 'asc' ? expected[by] : [...expected[by]].reverse();
          const all = await m.items.listChildren(root, { by, dir }, undefined, 100);
          expect(ids(all.map((r) => r.item)), `${by} ${dir}`).toEqual(ids(want));
          for (const limit of [1, 3, 4]) {
            const paged = await pages(root, { by, dir }, limit);
            expect(ids(paged.map((r) => r.item)), `${by} ${dir} by ${limit}`).toEqual(ids(want));
          }
          for (const { item, cursor } of all) {
            expect(cursor.id).toBe(item.id);
            if (by === 'name') expect(cursor.value).toBe(key(item));
            if (by === 'size') expect(cursor.value).toBe(String(item.size));
            if (by === 'modified') {
              expect(cursor.value).toMatch(PG_TIMESTAMP);
              expect(cursorMs(cursor.value)).toBe(item.updatedAt.getTime());
            }
          }
        }
      }
      // Cursors are keyset positions, not rows: any (value, id) works.
      const sizesAfter = async (value: string, id: string, dir: 'asc' | 'desc') =>
        (await m.items.listChildren(root, { by: 'size', dir }, { value, id }, 100)).map((r) => r.item.size);
      expect(await sizesAfter('3', MAX_ID, 'asc')).toEqual([5, 5, 5, 5, 9]);
      expect(await sizesAfter('3', MIN_ID, 'asc')).toEqual([3, 3, 5, 5, 5, 5, 9]);
      expect(await sizesAfter('5', MIN_ID, 'desc')).toEqual([3, 3, 1, 1, 0, 0]);
      const namesAfterB = await m.items.listChildren(
        root,
        { by: 'name', dir: 'asc' },
        { value: 'b', id: MAX_ID },
        100,
      );
      expect(namesAfterB.map((r) => key(r.item))).toEqual([
        'b2',
        'sub',
        'z',
        'zz',
        'é',
        '\uFFFD',
        '\u{1F600}',
      ]);
      await expect(
        m.items.listChildren(root, { by: 'size', dir: 'asc' }, { value: 'big', id: MIN_ID }, 10),
      ).rejects.toMatchObject({ code: '22P02' });
      expect(await m.items.listChildren(randomUUID(), { by: 'name', dir: 'asc' }, undefined, 10)).toEqual([]);
    });

    it('renames and moves only at the expected revision, and never a trashed item', async () => {
      const u = await user();
      const root = u.rootFolderId;
      const dest = await folder(u, root, 'dest');
      const f = await folder(u, root, 'f');
      const to = { parentId: dest.id, name: 'g', nameKey: 'g' };
      expect(await m.items.relocate(f.id, to, f.revision + 1)).toBeUndefined();
      const moved = await m.items.relocate(f.id, to, f.revision);
      expect(moved).toMatchObject({ parentId: dest.id, name: 'g', revision: 2 });
      expect(moved?.updatedAt.getTime()).toBeGreaterThanOrEqual(f.updatedAt.getTime());
      expect(moved?.createdAt).toEqual(f.createdAt);
      expect(await m.items.relocate(f.id, { ...to, parentId: root }, f.revision)).toBeUndefined();
      await m.items.trash(f.id, u.id);
      expect(await m.items.relocate(f.id, { ...to, parentId: root }, 3)).toBeUndefined();
      expect(await m.items.relocate(randomUUID(), to, 1)).toBeUndefined();
    });

    it('trash marks only the root: descendants stay as they were, hidden behind it', async () => {
      const u = await user();
      const root = u.rootFolderId;
      const a = await folder(u, root, 'A');
      const b = await folder(u, a.id, 'B');
      const { f: c } = await file(u, b.id, 'c.txt');
      expect(await m.items.trash(a.id, u.id, a.revision + 1)).toBeUndefined();
      const t = await m.items.trash(a.id, u.id, a.revision);
      expect(t).toMatchObject({ parentId: root, originalParentId: root, revision: 2 });
      expect(t?.deletedAt).toBeInstanceOf(Date);
      expect(await m.items.trash(a.id, u.id)).toBeUndefined();
      expect(await m.items.listChildren(root, { by: 'name', dir: 'asc' }, undefined, 10)).toEqual([]);
      expect(await m.items.get(b.id)).toMatchObject({ deletedAt: null, revision: 1 });
      expect(
        ids((await m.items.listChildren(a.id, { by: 'name', dir: 'asc' }, undefined, 10)).map((r) => r.item)),
      ).toEqual([b.id]);
      expect(ids(await m.items.subtree(a.id)).sort()).toEqual([a.id, b.id, c.id].sort());
      expect(ids(await m.items.subtree(root)).sort()).toEqual([root, a.id, b.id, c.id].sort());
      expect(await m.items.subtree(randomUUID())).toEqual([]);
      expect(ids(await m.items.listTrash(u.id, 10))).toEqual([a.id]);
    });

    it('lists trash roots newest first, ties by id ascending', async () => {
      const u = await user();
      const root = u.rootFolderId;
      const [a, x, y, z] = await Promise.all(['a', 'x', 'y', 'z'].map((n) => folder(u, root, n)));
      if (!a || !x || !y || !z) throw new Error('setup');
      await m.items.trash(a.id, u.id);
      await tick();
      await m.db.transaction(async (tx) => {
        await m.items.with(tx).trash(y.id, u.id);
        await m.items.with(tx).trash(x.id, u.id);
      });
      await tick();
      await m.items.trash(z.id, u.id);
      const tie = [x, y].sort(byId);
      expect(ids(await m.items.listTrash(u.id, 10))).toEqual(ids([z, ...tie, a]));
      expect(ids(await m.items.listTrash(u.id, 2))).toEqual(ids([z, ...tie.slice(0, 1)]));
      expect(await m.items.listTrash((await user()).id, 10)).toEqual([]);
    });

    it('restores from the trash unless a purge has claimed it', async () => {
      const u = await user();
      const root = u.rootFolderId;
      const a = await folder(u, root, 'A');
      expect(await m.items.claimForPurge(a.id)).toBeUndefined();
      expect(await m.items.untrash(a.id, { parentId: root, name: 'A', nameKey: 'a' })).toBeUndefined();
      await m.items.trash(a.id, u.id);
      const back = await m.items.untrash(a.id, { parentId: root, name: 'A2', nameKey: 'a2' });
      expect(back).toMatchObject({ name: 'A2', deletedAt: null, originalParentId: null, revision: 3 });
      await m.items.trash(a.id, u.id);
      const claimed = await m.items.claimForPurge(a.id);
      expect(claimed).toMatchObject({ id: a.id, revision: 4 });
      expect(claimed?.deletedAt).toBeInstanceOf(Date);
      expect(await m.items.claimForPurge(a.id)).toEqual(claimed); // a crashed purge is claimed again
      expect(await m.items.untrash(a.id, { parentId: root, name: 'A3', nameKey: 'a3' })).toBeUndefined();
      expect((await m.items.get(a.id))?.deletedAt).toBeInstanceOf(Date);
      await m.items.deleteItems([a.id]);
      expect(await m.items.get(a.id)).toBeUndefined();
      await m.items.deleteItems([]);
    });

    it('finds trash past retention and files with versions past keepDays', async () => {
      const u = await user();
      const other = await user();
      const t = await folder(u, u.rootFolderId, 'old');
      const t2 = await folder(other, other.rootFolderId, 'old');
      await m.items.trash(t.id, u.id);
      await m.items.trash(t2.id, other.id);
      const at = (days: number) => new Date(Date.now() + days * DAY);
      expect(await m.items.trashPastRetention(at(2), 30, 10)).toEqual([]);
      expect((await m.items.trashPastRetention(at(31), 30, 10)).sort()).toEqual([t.id, t2.id].sort());
      expect(await m.items.trashPastRetention(at(31), 30, 1)).toHaveLength(1);
      await m.users.setRetention(u.id, { keepVersions: null, keepDays: null, trashDays: 1 });
      expect(await m.items.trashPastRetention(at(2), 30, 10)).toEqual([t.id]);

      const { f } = await file(u, u.rootFolderId, 'f');
      const v2 = await version(f.id, u);
      await m.items.setCurrentVersion(f.id, { versionId: v2.id, size: v2.size, contentType: 'text/plain' });
      await file(u, u.rootFolderId, 'single'); // only a current version
      expect(await m.items.filesPastKeepDays(at(2), 10)).toEqual([]);
      await m.users.setRetention(u.id, { keepVersions: null, keepDays: 1, trashDays: 30 });
      expect(await m.items.filesPastKeepDays(at(2), 10)).toEqual([f.id]);
      expect(await m.items.filesPastKeepDays(new Date(), 10)).toEqual([]);
    });

    it('counts versions and bytes per node in every insert and delete, and rolls the counts back with their transaction', async () => {
      const u = await user();
      /** A version id in a chosen counter shard (its first byte). */
      const inShard = (shard: string) => `${shard}${randomUUID().slice(2)}`;
      expect(await m.items.uncountedShards()).toEqual([]); // a fresh database: all counted
      const { f } = await file(u, u.rootFolderId, 'f', 7);
      const a = await version(f.id, u, { id: inShard('ab'), size: 100, nodeId: 'node-b' });
      await version(f.id, u, { id: inShard('ab'), size: 1, nodeId: 'node-b' });
      await version(f.id, u, { id: inShard('ff'), size: 2 * GiB, nodeId: 'node-b' });
      await m.db.transaction(async (tx) => {
        await version(f.id, u, { id: inShard('00'), size: 5 }, tx);
      });
      await expect(
        m.db.transaction(async (tx) => {
          await version(f.id, u, { id: inShard('ab'), size: 1000, nodeId: 'node-b' }, tx);
          await m.items.with(tx).deleteVersions([a.id]);
          throw new Error('rolled back');
        }),
      ).rejects.toThrow('rolled back');
      expect(await m.items.countVersions()).toBe(5);
      expect(await m.items.bytesByNode()).toEqual([
        { nodeId: 'node-a', bytes: 7 + 5, versions: 2 },
        { nodeId: 'node-b', bytes: 100 + 1 + 2 * GiB, versions: 3 },
      ]);
      expect(await m.items.deleteVersions([a.id, randomUUID()])).toEqual(new Set([a.id]));
      expect(await m.items.deleteVersions([a.id])).toEqual(new Set());
      expect(await m.items.bytesByNode()).toEqual([
        { nodeId: 'node-a', bytes: 12, versions: 2 },
        { nodeId: 'node-b', bytes: 1 + 2 * GiB, versions: 2 },
      ]);
      // Right counters recount to themselves: no drift, nothing changes.
      expect(await m.items.recountShard('ab')).toEqual({ versions: 0, bytes: 0 });
      expect(await m.items.recountShard('ff')).toEqual({ versions: 0, bytes: 0 });
      expect(await m.items.countVersions()).toBe(4);
      // A node whose last version went leaves the list.
      const rest = await m.items.versionsAfter(MIN_ID, 100);
      await m.items.deleteVersions(rest.filter((v) => v.nodeId === 'node-b').map((v) => v.id));
      expect(await m.items.bytesByNode()).toEqual([{ nodeId: 'node-a', bytes: 12, versions: 2 }]);
      await expect(m.db.transaction((tx) => m.items.with(tx).recountShard('ab'))).rejects.toThrow();
      await expect(m.items.recountShard('zz')).rejects.toThrow(/not a counter shard/);
    });

    it('lists, pages, counts, sums and deletes versions', async () => {
      const u = await user();
      const { f, v: v1 } = await file(u, u.rootFolderId, 'f', 10);
      await tick();
      const v2 = await version(f.id, u, { size: 20, nodeId: 'node-b' });
      await tick();
      const tied: Version[] = [];
      await m.db.transaction(async (tx) => {
        tied.push(await version(f.id, u, { size: 30, nodeId: 'node-B' }, tx));
        tied.push(await version(f.id, u, { size: 40 }, tx));
      });
      const { f: g, v: w } = await file(u, u.rootFolderId, 'g', 5);
      const stray = await version(randomUUID(), u, { size: 1000 }); // its file row does not exist
      const newestFirst = [...tied.sort(byId).reverse(), v2, v1];
      expect(ids(await m.items.listVersions(f.id))).toEqual(ids(newestFirst));
      expect(ids(await m.items.listVersions(f.id, 2))).toEqual(ids(newestFirst.slice(0, 2)));
      expect(ids(await m.items.versionsOfFiles([f.id, g.id], 100)).sort()).toEqual(
        ids([...newestFirst, w]).sort(),
      );
      expect(await m.items.versionsOfFiles([f.id], 2)).toHaveLength(2);
      expect(await m.items.versionsOfFiles([], 10)).toEqual([]);

      const all = [v1, v2, ...tied, w, stray].sort(byId);
      const walked: string[] = [];
      for (let after = MIN_ID; ; ) {
        const page = await m.items.versionsAfter(after, 2);
        if (page.length === 0) break;
        walked.push(...ids(page));
        after = page[page.length - 1]?.id ?? MAX_ID;
      }
      expect(walked).toEqual(ids(all));
      // A sweep partition's share, after `after` up to `upTo` inclusive: the shares of a split cover
      // every version once, each in its range.
      const split: string[] = [];
      for (const p of allPartitions(3)) {
        const r = partitionRange(p);
        for (let after = r.after; ; ) {
          const page = await m.items.versionsAfter(after, 2, r.upTo);
          if (page.length === 0) break;
          for (const v of page) expect(v.id > r.after && v.id <= r.upTo, v.id).toBe(true);
          split.push(...ids(page));
          after = page[page.length - 1]?.id ?? MAX_ID;
        }
      }
      expect(split).toEqual(ids(all));
      expect(ids(await m.items.versionsAfter(MIN_ID, 100, all[1]?.id))).toEqual(ids(all.slice(0, 2)));
      const lastHour = new Date(Date.now() - 3_600_000);
      const inRange = { after: all[0]?.id ?? MIN_ID, upTo: all[3]?.id ?? MAX_ID };
      expect(ids(await m.items.versionsCreatedSince(lastHour, undefined, 100, inRange)).sort()).toEqual(
        ids(all.slice(1, 4)).sort(),
      );
      expect(await m.items.versionsCreatedSince(lastHour, undefined, 100)).toHaveLength(all.length);
      expect((await m.items.versionsAfter(MIN_ID, 1))[0]).toEqual({
        id: all[0]?.id,
        nodeId: all[0]?.nodeId,
        blobKey: all[0]?.blobKey,
        size: all[0]?.size,
        sha256: all[0]?.sha256,
      });
      expect(await m.items.countVersions()).toBe(6);
      expect(await m.items.bytesByNode()).toEqual([
        { nodeId: 'node-B', bytes: 30, versions: 1 },
        { nodeId: 'node-a', bytes: 10 + 40 + 5 + 1000, versions: 4 },
        { nodeId: 'node-b', bytes: 20, versions: 1 },
      ]);
      expect(await m.items.sumVersionSizes(u.id)).toBe(10 + 20 + 30 + 40 + 5);
      expect(await m.items.blobReferenced('node-a', v1.blobKey)).toBe(true);
      expect(await m.items.blobReferenced('node-b', v1.blobKey)).toBe(false);
      expect(await m.items.blobKeyInUse(v1.blobKey)).toBe(true);
      expect(await m.items.blobKeyInUse('nothing')).toBe(false);

      const gone = await m.items.deleteVersions([v1.id, v2.id, randomUUID()]);
      expect([...gone].sort()).toEqual([v1.id, v2.id].sort());
      expect(await m.items.deleteVersions([v1.id])).toEqual(new Set());
      expect(await m.items.deleteVersions([])).toEqual(new Set());
      expect(await m.items.countVersions()).toBe(4);
      expect(await m.items.sumVersionSizes(u.id)).toBe(30 + 40 + 5);
      expect(await m.items.blobKeyInUse(v1.blobKey)).toBe(false);
    });

    it('records scan verdicts on the version and on its file while current', async () => {
      const u = await user();
      const id = randomUUID();
      const v1 = await version(id, u, { scanState: 'scanning' });
      await tick();
      const v2 = await version(id, u, { scanState: 'scanning' });
      const f = await m.items.insertFile({
        id,
        ownerId: u.id,
        parentId: u.rootFolderId,
        name: 'f',
        nameKey: 'f',
        contentType: 'text/plain',
        size: 10,
        versionId: v2.id,
        scanState: 'scanning',
      });
      expect(ids(await m.items.versionsAwaitingScan(10))).toEqual([v1.id, v2.id]);
      expect(ids(await m.items.versionsAwaitingScan(1))).toEqual([v1.id]);
      await m.items.setScanState(v2.id, 'clean');
      expect(await m.items.get(id)).toMatchObject({ scanState: 'clean', revision: 1 });
      expect((await m.items.getVersion(v2.id))?.scanState).toBe('clean');
      await m.items.setScanState(v1.id, 'infected');
      expect((await m.items.get(id))?.scanState).toBe('clean');
      expect(await m.items.versionsAwaitingScan(10)).toEqual([]);

      const v3 = await version(id, u, { size: 7 });
      const cur = await m.items.setCurrentVersion(id, {
        versionId: v3.id,
        size: 7,
        contentType: 'image/png',
      });
      expect(cur).toMatchObject({ currentVersionId: v3.id, size: 7, contentType: 'image/png', revision: 2 });
      expect(cur.scanState).toBeNull();
      expect(cur.updatedAt.getTime()).toBeGreaterThanOrEqual(f.updatedAt.getTime());
      // No such file: the SQL adapter's missing `returning` row is a TypeError, not undefined.
      await expect(
        m.items.setCurrentVersion(randomUUID(), { versionId: v3.id, size: 1, contentType: 'x' }),
      ).rejects.toBeInstanceOf(TypeError);
    });

    it('charges usage up to the quota (past 2 GiB too); releases always apply', async () => {
      const u = await user({ quotaBytes: 5 * GiB });
      expect(await m.items.chargeUsage(u.id, 3 * GiB)).toBe(true);
      expect(await m.items.chargeUsage(u.id, 3 * GiB)).toBe(false);
      expect(await m.items.chargeUsage(u.id, 2 * GiB)).toBe(true); // exactly the quota
      expect(await m.items.chargeUsage(u.id, 1)).toBe(false);
      expect((await m.users.get(u.id))?.usedBytes).toBe(5 * GiB);
      expect(await m.items.chargeUsage(u.id, -4 * GiB)).toBe(true);
      expect(await m.items.chargeUsage(u.id, 0)).toBe(true);
      await m.items.addUsage(u.id, 10 * GiB); // no quota check
      expect((await m.users.get(u.id))?.usedBytes).toBe(11 * GiB);
      expect(await m.items.chargeUsage(u.id, -GiB)).toBe(true); // over quota, still released
      expect(await m.items.chargeUsage(randomUUID(), -1)).toBe(false);
      await m.items.addUsage(randomUUID(), 1);
      expect((await m.users.get(u.id))?.usedBytes).toBe(10 * GiB);
    });

    it('locks a chain nearest first, up to maxDepth', async () => {
      const u = await user();
      const a = await folder(u, u.rootFolderId, 'a');
      const b = await folder(u, a.id, 'b');
      const c = await folder(u, b.id, 'c');
      const chains = await m.db.transaction(async (tx) => {
        const items = m.items.with(tx);
        await items.lockTree(u.id);
        return [
          await items.lockChain(c.id),
          await items.lockChain(c.id, 2),
          await items.lockChain(randomUUID()),
        ];
      });
      expect(chains.map(ids)).toEqual([[c.id, b.id, a.id, u.rootFolderId], [c.id, b.id], []]);
      expect(chains[0]?.[3]).toMatchObject({ kind: 'folder', parentId: null, name: '' });
    });
  });

  describe('UserStore', () => {
    it('ensure creates the user with a root folder, idempotently', async () => {
      const id = randomUUID();
      const u = await m.users.ensure({ id, email: 'Ann@X.io', role: 'admin', quotaBytes: 3 * GiB });
      expect(u).toEqual({
        id,
        email: 'Ann@X.io',
        role: 'admin',
        rootFolderId: u.rootFolderId,
        quotaBytes: 3 * GiB,
        usedBytes: 0,
        keepVersions: null,
        keepDays: null,
        trashDays: null,
      });
      const root = await m.items.get(u.rootFolderId);
      expect(root).toMatchObject({
        kind: 'folder',
        ownerId: id,
        parentId: null,
        name: '',
        deletedAt: null,
        revision: 1,
      });
      expect(await m.users.ensure({ id, email: 'other@x.io', role: 'user', quotaBytes: 1 })).toEqual(u);
      await expect(user({ email: 'ann@x.IO' })).rejects.toEqual(unique('users_email_unique'));
      expect((await m.users.byEmail('  ANN@x.io '))?.id).toBe(id);
      expect(await m.users.byEmail('nobody@x.io')).toBeUndefined();
      expect(await m.users.roleOf(id)).toBe('admin');
      expect(await m.users.roleOf(randomUUID())).toBeUndefined();
      expect(await m.users.get(randomUUID())).toBeUndefined();
      const got = await m.users.get(id);
      if (got) got.quotaBytes = 0;
      expect(await m.users.get(id)).toEqual(u);
    });

    it('updates role and quota, and never leaves no admin', async () => {
      const a1 = await user({ role: 'admin' });
      const plain = await user();
      expect(await m.users.update(a1.id, { role: 'user' })).toBe('last-admin');
      expect(await m.users.update(randomUUID(), { role: 'user' })).toBe('not-found');
      const a2 = await user({ role: 'admin' });
      const res = await m.users.update(a1.id, { role: 'user' });
      expect(res).toEqual({ user: { ...a1, role: 'user' }, previous: a1 });
      expect(await m.users.update(a2.id, { role: 'user' })).toBe('last-admin');
      expect(await m.users.roleOf(a2.id)).toBe('admin');
      expect(await m.users.update(a2.id, { quotaBytes: 0 })).toMatchObject({
        user: { role: 'admin', quotaBytes: 0 },
      });
      expect(await m.users.update(plain.id, { role: 'user', quotaBytes: 6 * GiB })).toMatchObject({
        user: { role: 'user', quotaBytes: 6 * GiB },
        previous: { quotaBytes: plain.quotaBytes },
      });
      expect(await m.users.update(plain.id, {})).toMatchObject({ user: { quotaBytes: 6 * GiB } });
    });

    it('sets retention alone or in a transaction, and ranks users by usage', async () => {
      const u = await user();
      await m.users.setRetention(u.id, { keepVersions: 3, keepDays: null, trashDays: 7 });
      expect(await m.users.get(u.id)).toMatchObject({ keepVersions: 3, keepDays: null, trashDays: 7 });
      await m.db.transaction((tx) =>
        m.users.setRetention(u.id, { keepVersions: null, keepDays: 9, trashDays: 1 }, tx),
      );
      expect(await m.users.get(u.id)).toMatchObject({ keepVersions: null, keepDays: 9, trashDays: 1 });
      await m.users.setRetention(randomUUID(), { keepVersions: 1, keepDays: 1, trashDays: 1 });

      const [x, y, z] = [await user(), await user(), await user()];
      await m.items.addUsage(x.id, 30);
      await m.items.addUsage(y.id, 30);
      await m.items.addUsage(z.id, 10);
      const tie = [x, y].sort(byId);
      expect(ids(await m.users.byUsage(10))).toEqual(ids([...tie, z, ...[u].sort(byId)]));
      expect(ids(await m.users.byUsage(1))).toEqual(ids(tie.slice(0, 1)));
    });
  });

  describe('PermissionStore', () => {
    it('upserts one grant per item and grantee, keeping its id, and lists and deletes them', async () => {
      const owner = await user();
      const [g1, g2, g3] = [await user(), await user(), await user()];
      const item = await folder(owner, owner.rootFolderId, 'shared');
      const other = await folder(owner, owner.rootFolderId, 'other');
      const grant = (
        itemId: string,
        granteeId: string,
        role: 'viewer' | 'editor',
        id: string = randomUUID(),
      ) => m.permissions.upsert({ id, itemId, ownerId: owner.id, granteeId, role, grantedBy: owner.id });
      const first = await grant(item.id, g1.id, 'viewer');
      expect(first).toMatchObject({ itemId: item.id, ownerId: owner.id, granteeId: g1.id, role: 'viewer' });
      expect(first.createdAt).toBeInstanceOf(Date);
      const again = await m.permissions.upsert({
        id: randomUUID(),
        itemId: item.id,
        ownerId: owner.id,
        granteeId: g1.id,
        role: 'editor',
        grantedBy: g2.id,
      });
      expect(again).toEqual({ ...first, role: 'editor', grantedBy: g2.id });
      expect(await m.permissions.get(first.id)).toEqual(again);
      await expect(grant(other.id, g1.id, 'viewer', first.id)).rejects.toEqual(unique('permissions_pkey'));

      await tick();
      const second = await grant(item.id, g2.id, 'viewer');
      await tick();
      const third = await grant(item.id, g3.id, 'editor');
      await tick();
      const elsewhere = await grant(other.id, g1.id, 'viewer');
      expect(ids(await m.permissions.forItem(item.id))).toEqual(ids([first, second, third]));
      expect(ids(await m.permissions.forGrantee(g1.id, 10))).toEqual(ids([elsewhere, first]));
      expect(ids(await m.permissions.forGrantee(g1.id, 1))).toEqual([elsewhere.id]);
      expect(ids(await m.permissions.grantsOn(g1.id, [item.id, randomUUID()]))).toEqual([first.id]);
      expect(ids(await m.permissions.grantsOn(g1.id, [item.id, other.id])).sort()).toEqual(
        ids([first, elsewhere]).sort(),
      );
      expect(await m.permissions.grantsOn(g1.id, [])).toEqual([]);

      await m.permissions.delete(second.id);
      expect(await m.permissions.get(second.id)).toBeUndefined();
      await m.permissions.deleteForItems([item.id]);
      await m.permissions.deleteForItems([]);
      expect(await m.permissions.forItem(item.id)).toEqual([]);
      expect(ids(await m.permissions.forItem(other.id))).toEqual([elsewhere.id]);
    });

    it('keeps one invitation per item and address, lists the live ones, and hands them over once', async () => {
      const owner = await user();
      const item = await folder(owner, owner.rootFolderId, 'invited');
      const other = await folder(owner, owner.rootFolderId, 'also');
      const later = new Date(Date.now() + 86_400_000);
      const invite = (
        itemId: string,
        email: string,
        over: { role?: 'viewer' | 'editor'; expiresAt?: Date } = {},
      ) =>
        m.permissions.invite({
          id: randomUUID(),
          itemId,
          ownerId: owner.id,
          email,
          role: over.role ?? 'viewer',
          grantedBy: owner.id,
          expiresAt: over.expiresAt ?? later,
        });
      const first = await invite(item.id, 'new@x.io');
      expect(first).toMatchObject({ itemId: item.id, ownerId: owner.id, email: 'new@x.io', role: 'viewer' });
      expect(first.createdAt).toBeInstanceOf(Date);
      expect(first.expiresAt.getTime()).toBe(later.getTime());
      // the same address again: the row keeps its id, takes the new role and expiry
      const longer = new Date(later.getTime() + 86_400_000);
      const again = await invite(item.id, 'new@x.io', { role: 'editor', expiresAt: longer });
      expect(again).toEqual({ ...first, role: 'editor', expiresAt: longer });
      expect(await m.permissions.getInvitation(first.id)).toEqual(again);

      await tick();
      const second = await invite(item.id, 'second@x.io');
      const expired = await invite(item.id, 'late@x.io', { expiresAt: new Date(Date.now() - 1000) });
      const elsewhere = await invite(other.id, 'new@x.io');
      expect(ids(await m.permissions.invitationsFor(item.id))).toEqual(ids([first, second]));
      expect(await m.permissions.getInvitation(expired.id)).toBeDefined();

      // the address registers: its live invitations, once; an expired one is removed, not handed over
      expect(ids(await m.permissions.takeInvitations('late@x.io'))).toEqual([]);
      expect(await m.permissions.getInvitation(expired.id)).toBeUndefined();
      expect(ids(await m.permissions.takeInvitations('new@x.io'))).toEqual(ids([first, elsewhere]));
      expect(await m.permissions.takeInvitations('new@x.io')).toEqual([]);
      expect(ids(await m.permissions.invitationsFor(item.id))).toEqual([second.id]);

      await m.permissions.deleteInvitation(second.id);
      expect(await m.permissions.getInvitation(second.id)).toBeUndefined();
      const purged = await invite(other.id, 'gone@x.io');
      await m.permissions.deleteForItems([other.id]);
      expect(await m.permissions.getInvitation(purged.id)).toBeUndefined();
    });
  });

  describe('ShareStore', () => {
    const link = async (
      over: { maxDownloads?: number | null; maxBytes?: number | null; expiresAt?: Date } = {},
    ) => {
      const u = await user();
      const f = await folder(u, u.rootFolderId, randomUUID());
      return m.shares.insert({
        id: randomUUID(),
        tokenHash: randomUUID(),
        itemId: f.id,
        ownerId: u.id,
        createdBy: u.id,
        expiresAt: over.expiresAt ?? new Date(Date.now() + DAY),
        passwordHash: null,
        maxDownloads: over.maxDownloads ?? null,
        maxBytes: over.maxBytes ?? null,
      });
    };

    it('inserts links with unique tokens, finds them, revokes them once', async () => {
      const expiresAt = new Date(Date.now() + DAY);
      const l = await link({ maxDownloads: 3, maxBytes: 5 * GiB, expiresAt });
      expect(l).toMatchObject({
        downloads: 0,
        bytesServed: 0,
        revokedAt: null,
        maxDownloads: 3,
        maxBytes: 5 * GiB,
      });
      expect(l.expiresAt).toEqual(expiresAt);
      expect(l.createdAt).toBeInstanceOf(Date);
      expect(await m.shares.get(l.id)).toEqual(l);
      expect(await m.shares.byTokenHash(l.tokenHash)).toEqual(l);
      expect(await m.shares.byTokenHash('nope')).toBeUndefined();
      await expect(m.shares.insert({ ...l, id: randomUUID() })).rejects.toEqual(
        unique('share_links_token_unique'),
      );
      await expect(m.shares.insert({ ...l, tokenHash: 'other' })).rejects.toEqual(unique('share_links_pkey'));
      await tick();
      const later = await m.shares.insert({
        ...l,
        id: randomUUID(),
        tokenHash: randomUUID(),
        passwordHash: 'h',
      });
      expect(ids(await m.shares.forItem(l.itemId))).toEqual([later.id, l.id]);
      expect(later.passwordHash).toBe('h');

      await m.shares.revoke(l.id);
      const revoked = (await m.shares.get(l.id))?.revokedAt;
      expect(revoked).toBeInstanceOf(Date);
      await new Promise((r) => setTimeout(r, 5));
      await m.shares.revoke(l.id);
      expect((await m.shares.get(l.id))?.revokedAt).toEqual(revoked);
      await m.shares.revoke(randomUUID());
    });

    it('spends only while the link is live and within its budgets', async () => {
      const l = await link({ maxDownloads: 2, maxBytes: 100 });
      expect(await m.shares.spend(l.id, 40)).toMatchObject({ downloads: 1, bytesServed: 40 });
      expect(await m.shares.spend(l.id, 61)).toBeUndefined();
      expect(await m.shares.get(l.id)).toMatchObject({ downloads: 1, bytesServed: 40 });
      expect(await m.shares.spend(l.id, 60)).toMatchObject({ downloads: 2, bytesServed: 100 });
      expect(await m.shares.spend(l.id, 0)).toBeUndefined();

      const open = await link();
      for (let i = 0; i < 3; i++) await m.shares.spend(open.id, 3 * GiB);
      expect(await m.shares.get(open.id)).toMatchObject({ downloads: 3, bytesServed: 9 * GiB });
      const expired = await link({ expiresAt: new Date(Date.now() - 1000) });
      expect(await m.shares.spend(expired.id, 1)).toBeUndefined();
      await m.shares.revoke(open.id);
      expect(await m.shares.spend(open.id, 1)).toBeUndefined();
      expect(await m.shares.spend(randomUUID(), 1)).toBeUndefined();
    });
  });

  describe('AuditLog', () => {
    it('lists newest first (ties by id), filters, and pages with (at, id) cursors', async () => {
      const u = await user();
      const other = await user();
      const item = randomUUID();
      const rec = (action: string, ownerId: string | null, itemId: string | null = null, tx?: Tx) =>
        (tx ? m.audit.with(tx) : m.audit).record({
          actorId: u.id,
          ownerId,
          itemId,
          action,
          detail: { action },
        });
      await rec('a1', u.id, item);
      await tick();
      await m.db.transaction(async (tx) => {
        for (const a of ['t1', 't2', 't3']) await rec(a, u.id, null, tx);
      });
      await tick();
      await rec('a2', other.id, item);
      await tick();
      await m.audit.record({ actorId: null, ownerId: null, itemId: null, action: 'system' });
      const all = await m.audit.list({}, 100);
      const actions = all.map((r) => r.event.action);
      expect(actions[0]).toBe('system');
      expect(actions[1]).toBe('a2');
      expect(actions[5]).toBe('a1');
      const tied = all.slice(2, 5).map((r) => r.event);
      expect(tied.map((e) => e.action).sort()).toEqual(['t1', 't2', 't3']);
      expect(ids(tied)).toEqual(ids([...tied].sort(byId).reverse()));
      expect(new Set(tied.map((e) => e.at.getTime())).size).toBe(1);
      expect(all[0]?.event).toMatchObject({ actorId: null, ownerId: null, itemId: null, detail: {} });
      expect(all[1]?.event).toMatchObject({
        actorId: u.id,
        ownerId: other.id,
        itemId: item,
        detail: { action: 'a2' },
      });
      for (const { event, cursor } of all) {
        expect(cursor.id).toBe(event.id);
        expect(cursor.at).toMatch(PG_TIMESTAMP);
        expect(cursorMs(cursor.at)).toBe(event.at.getTime());
      }

      const paged: string[] = [];
      let before: { at: string; id: string } | undefined;
      for (;;) {
        const page = await m.audit.list(before ? { before } : {}, 2);
        paged.push(...page.map((r) => r.event.id));
        if (page.length < 2) break;
        before = page[page.length - 1]?.cursor;
      }
      expect(paged).toEqual(ids(all.map((r) => r.event)));
      const ofOwner = await m.audit.list({ ownerId: u.id }, 100);
      expect(ofOwner.map((r) => r.event.action)).toEqual(
        actions.filter((a) => a.startsWith('t') || a === 'a1'),
      );
      expect((await m.audit.list({ itemId: item }, 100)).map((r) => r.event.action)).toEqual(['a2', 'a1']);
      expect((await m.audit.list({ action: 't2' }, 100)).map((r) => r.event.action)).toEqual(['t2']);
      expect((await m.audit.list({ ownerId: u.id, action: 'a2' }, 100)).length).toBe(0);
      expect(await m.audit.list({ ownerId: '' }, 100)).toHaveLength(6); // empty filters nothing
      const cursor = all[2]?.cursor;
      expect(ids((await m.audit.list({ before: cursor }, 100)).map((r) => r.event))).toEqual(
        ids(all.slice(3).map((r) => r.event)),
      );

      const first = all[1]?.event;
      if (first) first.detail.action = 'changed';
      expect((await m.audit.list({}, 100))[1]?.event.detail).toEqual({ action: 'a2' });
    });
  });

  describe('ReservationStore', () => {
    const reserve = (
      ownerId: string,
      createdBy: string,
      size: number,
      over: { expiresAt?: Date; maxOpen?: number } = {},
    ) =>
      m.reservations.reserve({
        uploadId: randomUUID(),
        ownerId,
        createdBy,
        size,
        blobKey: `blob/${randomUUID()}`,
        expiresAt: over.expiresAt ?? new Date(Date.now() + DAY),
        maxOpen: over.maxOpen ?? 10,
      });

    it('reserves within the quota, counting usage and open reservations', async () => {
      const u = await user({ quotaBytes: 100 });
      await m.items.chargeUsage(u.id, 30);
      const uploadId = randomUUID();
      const input = {
        uploadId,
        ownerId: u.id,
        createdBy: u.id,
        size: 50,
        blobKey: 'blob/one',
        expiresAt: new Date(Date.now() + DAY),
        maxOpen: 10,
      };
      expect(await m.reservations.reserve(input)).toBe('reserved');
      expect(await reserve(u.id, u.id, 21)).toBe('quota');
      expect(await reserve(u.id, u.id, 20)).toBe('reserved'); // 30 used + 50 + 20 = the quota
      expect(await m.reservations.reservedBytes(u.id)).toBe(70);
      expect(await m.reservations.heldByOpenUpload('blob/one')).toBe(true);
      expect(await m.reservations.heldByOpenUpload('blob/none')).toBe(false);
      await expect(m.reservations.reserve({ ...input, size: 0 })).rejects.toEqual(
        unique('upload_reservations_pkey'),
      );
      await m.reservations.release(uploadId);
      await m.reservations.release(uploadId);
      expect(await m.reservations.reservedBytes(u.id)).toBe(20);
      expect(await m.reservations.heldByOpenUpload('blob/one')).toBe(false);
      expect(await reserve(randomUUID(), u.id, 1)).toBe('quota');
      expect(await m.reservations.reservedBytes(randomUUID())).toBe(0);
    });

    it('extends a live reservation to a later expiry, never shortens one, and never revives a lapsed one', async () => {
      const u = await user({ quotaBytes: 100 });
      const live = {
        uploadId: randomUUID(),
        ownerId: u.id,
        createdBy: u.id,
        size: 10,
        blobKey: `blob/${randomUUID()}`,
        expiresAt: new Date(Date.now() + 1500),
        maxOpen: 10,
      };
      const lapsed = {
        ...live,
        uploadId: randomUUID(),
        blobKey: `blob/${randomUUID()}`,
        expiresAt: new Date(Date.now() - 1000),
      };
      expect(await m.reservations.reserve(live)).toBe('reserved');
      expect(await m.reservations.reserve(lapsed)).toBe('reserved');
      await m.reservations.extend(live.uploadId, new Date(Date.now() + DAY));
      await m.reservations.extend(live.uploadId, new Date(Date.now() + 10)); // earlier: ignored
      await m.reservations.extend(lapsed.uploadId, new Date(Date.now() + DAY));
      await new Promise((r) => setTimeout(r, 1600)); // past the live one's first expiry
      expect(await m.reservations.heldByOpenUpload(live.blobKey)).toBe(true);
      expect(await m.reservations.reservedBytes(u.id)).toBe(10);
      expect(await m.reservations.heldByOpenUpload(lapsed.blobKey)).toBe(false);
      await m.reservations.release(live.uploadId);
    });

    it('lets lapsed reservations count for nothing, and caps open uploads per creator', async () => {
      const u = await user({ quotaBytes: 100 });
      const v = await user({ quotaBytes: 100 });
      const past = new Date(Date.now() - 1000);
      const lapsed = {
        uploadId: randomUUID(),
        ownerId: u.id,
        createdBy: u.id,
        size: 90,
        blobKey: 'blob/lapsed',
        expiresAt: past,
        maxOpen: 1,
      };
      expect(await m.reservations.reserve(lapsed)).toBe('reserved');
      expect(await m.reservations.reservedBytes(u.id)).toBe(0);
      expect(await m.reservations.heldByOpenUpload('blob/lapsed')).toBe(false);
      expect(await reserve(u.id, u.id, 100, { maxOpen: 1 })).toBe('reserved');
      // The lapsed row was dropped by that reservation: its id is free again.
      expect(await m.reservations.reserve({ ...lapsed, ownerId: v.id, maxOpen: 5 })).toBe('reserved');
      // The creator's open uploads count whoever owns them.
      expect(await reserve(v.id, u.id, 1, { maxOpen: 1 })).toBe('too-many-open');
      expect(await reserve(v.id, u.id, 1, { maxOpen: 2 })).toBe('reserved');
      expect(await reserve(v.id, u.id, 1, { maxOpen: 2 })).toBe('too-many-open');
      expect(await reserve(v.id, v.id, 1, { maxOpen: 1 })).toBe('reserved');
      expect(await m.reservations.reservedBytes(v.id)).toBe(2);
    });
  });

  describe('transactions', () => {
    /** A fixture touching every store, and a read of everything it wrote. */
    const world = async () => {
      const u = await user({ quotaBytes: 1000 });
      const peer = await user();
      const a = await folder(u, u.rootFolderId, 'A');
      const { f, v } = await file(u, a.id, 'f.txt', 10, undefined);
      await m.items.chargeUsage(u.id, 10);
      const grant = await m.permissions.upsert({
        id: randomUUID(),
        itemId: a.id,
        ownerId: u.id,
        granteeId: peer.id,
        role: 'viewer',
        grantedBy: u.id,
      });
      const link = await m.shares.insert({
        id: randomUUID(),
        tokenHash: randomUUID(),
        itemId: f.id,
        ownerId: u.id,
        createdBy: u.id,
        expiresAt: new Date(Date.now() + DAY),
        passwordHash: null,
        maxDownloads: null,
        maxBytes: null,
      });
      const uploadId = randomUUID();
      await m.reservations.reserve({
        uploadId,
        ownerId: u.id,
        createdBy: u.id,
        size: 100,
        blobKey: 'blob/held',
        expiresAt: new Date(Date.now() + DAY),
        maxOpen: 10,
      });
      await m.audit.record({ actorId: u.id, ownerId: u.id, itemId: a.id, action: 'setup' });
      const read = async () => ({
        user: await m.users.get(u.id),
        tree: (await m.items.subtree(u.rootFolderId)).sort(byId),
        versions: await m.items.listVersions(f.id),
        trash: await m.items.listTrash(u.id, 10),
        grants: await m.permissions.forItem(a.id),
        links: await m.shares.forItem(f.id),
        audit: (await m.audit.list({}, 100)).map((r) => r.event),
        reserved: await m.reservations.reservedBytes(u.id),
        held: await m.reservations.heldByOpenUpload('blob/held'),
        count: await m.items.countVersions(),
      });
      /** Writes through every store bound to `tx`. */
      const write = async (tx: Tx) => {
        await tick();
        const items = m.items.with(tx);
        const b = await folder(u, u.rootFolderId, 'B', tx);
        expect(await items.get(b.id)).toMatchObject({ name: 'B' }); // a transaction reads its own writes
        await file(u, b.id, 'g.txt', 20, tx);
        const v2 = await version(f.id, u, { size: 5 }, tx);
        await items.setCurrentVersion(f.id, { versionId: v2.id, size: 5, contentType: 'x/y' });
        await items.setScanState(v2.id, 'infected');
        await items.relocate(a.id, { parentId: b.id, name: 'A2', nameKey: 'a2' }, a.revision);
        await items.trash(b.id, u.id);
        await items.claimForPurge(b.id);
        await items.deleteVersions([v.id]);
        expect(await items.chargeUsage(u.id, 25)).toBe(true);
        await items.addUsage(u.id, -3);
        await m.users.setRetention(u.id, { keepVersions: 1, keepDays: 1, trashDays: 1 }, tx);
        await m.permissions.with(tx).upsert({ ...grant, role: 'editor' });
        await m.permissions.with(tx).delete(grant.id);
        await m.shares.with(tx).spend(link.id, 7);
        await m.shares.with(tx).revoke(link.id);
        await m.audit.with(tx).record({ actorId: u.id, ownerId: u.id, itemId: b.id, action: 'inside' });
        await m.reservations.with(tx).release(uploadId);
        expect(
          await m.reservations.with(tx).reserve({
            uploadId: randomUUID(),
            ownerId: u.id,
            createdBy: u.id,
            size: 1,
            blobKey: 'blob/new',
            expiresAt: new Date(Date.now() + DAY),
            maxOpen: 10,
          }),
        ).toBe('reserved');
        await items.deleteItems([f.id]);
      };
      return { read, write };
    };

    it('a transaction that throws rolls back the writes of every store', async () => {
      const { read, write } = await world();
      const before = await read();
      await expect(
        m.db.transaction(async (tx) => {
          await write(tx);
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect(await read()).toEqual(before);
    });

    it('a transaction that returns commits the writes of every store', async () => {
      const { read, write } = await world();
      const before = await read();
      const done = await m.db.transaction(async (tx) => {
        await write(tx);
        return 'done';
      });
      expect(done).toBe('done');
      const after = await read();
      expect(after.user).toMatchObject({ usedBytes: (before.user?.usedBytes ?? 0) + 22, keepVersions: 1 });
      expect(after.tree.map((i) => i.name).sort()).toEqual(['', 'A2', 'B', 'g.txt']);
      expect(after.trash.map((i) => i.name)).toEqual(['B']);
      expect(after.grants).toEqual([]);
      expect(after.links[0]).toMatchObject({ downloads: 1, bytesServed: 7 });
      expect(after.links[0]?.revokedAt).toBeInstanceOf(Date);
      expect(after.audit.map((e) => e.action)).toEqual(['inside', 'setup']);
      expect(after).toMatchObject({ reserved: 1, held: false, count: before.count + 1 });
    });

    it('a statement that fails aborts its transaction: later statements fail, the commit rolls back', async () => {
      const u = await user();
      const x = await folder(u, u.rootFolderId, 'x');
      let inside: Item | undefined;
      const outcome = await m.db
        .transaction(async (tx) => {
          inside = await folder(u, u.rootFolderId, 'y', tx);
          await expect(folder(u, u.rootFolderId, 'X', tx)).rejects.toEqual(unique('items_name_unique'));
          await expect(m.items.with(tx).get(x.id)).rejects.toMatchObject({ code: '25P02' });
          return 'returned';
        })
        .catch((err: unknown) => err);
      // The server answers the COMMIT with ROLLBACK; every backend fails the transaction (25P02)
      // rather than return the work's result as if its writes had been kept.
      expect(outcome).toMatchObject({
        code: '25P02',
        message: 'Transaction was rolled back instead of committed',
      });
      expect(inside).toBeDefined();
      expect(await m.items.get(inside?.id ?? x.id)).toBeUndefined();
    });

    it('refuses malformed ids as uuid columns do, and accepts other spellings of one', async () => {
      const u = await user();
      await expect(m.items.get('not-a-uuid')).rejects.toMatchObject({ code: '22P02' });
      await expect(m.users.get('42')).rejects.toMatchObject({ code: '22P02' });
      expect((await m.items.get(u.rootFolderId.toUpperCase()))?.id).toBe(u.rootFolderId);
    });
  });
});

describe('memory database', () => {
  it('runs no SQL', async () => {
    const { db } = createMemoryMetadata();
    await expect(db.query('select 1')).rejects.toThrow('the memory database runs no SQL');
    await expect(db.exec('select 1')).rejects.toThrow('the memory database runs no SQL');
    await expect(db.transaction((tx) => tx.query('select 1'))).rejects.toThrow(
      'the memory database runs no SQL',
    );
    expect(db.dialect).toBe('memory');
    await db.ping();
  });

  it('runs transactions one at a time, and statements outside them in their turn', async () => {
    const m = createMemoryMetadata();
    const log: string[] = [];
    const tick = () => new Promise((r) => setTimeout(r, 5));
    const u = await m.users.ensure({ id: randomUUID(), email: 'a@x.io', role: 'user', quotaBytes: 100 });
    const body = (name: string) => async (tx: Tx) => {
      log.push(`${name} start`);
      await tick();
      await m.items.with(tx).addUsage(u.id, 1);
      await tick();
      log.push(`${name} end`);
    };
    const outside = (async () => {
      await tick();
      const seen = (await m.users.get(u.id))?.usedBytes;
      log.push(`read ${seen}`);
    })();
    await Promise.all([m.db.transaction(body('one')), m.db.transaction(body('two')), outside]);
    expect(log).toEqual(['one start', 'one end', 'two start', 'two end', 'read 2']);
  });

  it('refuses the database handle inside a transaction, nested transactions, and ended ones', async () => {
    const m = createMemoryMetadata();
    const u = await m.users.ensure({ id: randomUUID(), email: 'a@x.io', role: 'user', quotaBytes: 100 });
    let kept: Tx | undefined;
    await m.db.transaction(async (tx) => {
      kept = tx;
      await expect(m.items.get(u.rootFolderId)).rejects.toThrow("use the transaction's executor");
      await expect(m.db.transaction(async () => 1)).rejects.toThrow('a transaction inside a transaction');
    });
    if (!kept) throw new Error('no tx');
    await expect(m.items.with(kept).get(u.rootFolderId)).rejects.toThrow('the transaction has ended');
    expect(() => m.items.with(createMemoryMetadata().db as unknown as Tx)).toThrow(
      'bind only to transactions',
    );
  });

  it('reads time from the clock it is given', async () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    const m = createMemoryMetadata({ now: () => now });
    const u = await m.users.ensure({ id: randomUUID(), email: 'a@x.io', role: 'user', quotaBytes: 100 });
    const f = await m.items.insertFolder({
      id: randomUUID(),
      ownerId: u.id,
      parentId: u.rootFolderId,
      name: 'a',
      nameKey: 'a',
    });
    expect(f.createdAt.toISOString()).toBe('2030-01-01T00:00:00.000Z');
    const expiresAt = new Date(now + 1000);
    await m.reservations.reserve({
      uploadId: randomUUID(),
      ownerId: u.id,
      createdBy: u.id,
      size: 10,
      blobKey: 'k',
      expiresAt,
      maxOpen: 5,
    });
    expect(await m.reservations.reservedBytes(u.id)).toBe(10);
    now += 1000;
    expect(await m.reservations.reservedBytes(u.id)).toBe(0);
  });
});
