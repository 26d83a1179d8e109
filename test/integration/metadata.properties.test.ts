/**
 * Property-based tests over random sequences of operations, on PGlite and PostgreSQL 15.
 * Invariants, checked after every operation:
 * - the tree has no cycles (every item reaches a root);
 * - names are unique per folder (case-insensitively) and name keys match names;
 * - each owner's usage equals the sum of the sizes of their retained versions;
 * - after a purge, no stored blob is referenced by nothing (and no version lacks its blob);
 * - restoring from the trash gives back exactly the subtree that was deleted.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ItemRepository } from '../../shared/adapters/postgres/item-repository.ts';
import { DomainError } from '../../shared/domain/errors.ts';
import { nameKey } from '../../shared/domain/names.ts';
import { statusOf } from '../../shared/http/problem.ts';
import type { Database } from '../../shared/ports/database.ts';
import { sqlBackends } from '../support/fixtures.ts';
import { buildHarness } from '../support/service-harness.ts';

type Op =
  | { t: 'mkdir'; parent: number; name: string }
  | { t: 'put'; parent: number; name: string; size: number }
  | { t: 'rename'; item: number; name: string }
  | { t: 'move'; item: number; dest: number }
  | { t: 'trash'; item: number }
  | { t: 'restore'; trash: number }
  | { t: 'purge'; trash: number }
  | { t: 'restoreVersion'; file: number; nth: number }
  | { t: 'copy'; file: number; dest: number };

const name = fc.constantFrom('a', 'A', 'b', 'notes.txt', 'NOTES.txt', 'x y');
const idx = fc.nat(50);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ t: fc.constant('mkdir' as const), parent: idx, name }) },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('put' as const),
      parent: idx,
      name,
      size: fc.integer({ min: 0, max: 64 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('rename' as const), item: idx, name }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('move' as const), item: idx, dest: idx }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('trash' as const), item: idx }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('restore' as const), trash: idx }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('purge' as const), trash: idx }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('restoreVersion' as const), file: idx, nth: idx }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('copy' as const), file: idx, dest: idx }) },
);

interface Row {
  id: string;
  parent_id: string | null;
  kind: string;
  name: string;
  name_key: string | null;
  deleted_at: Date | string | null;
  current_version_id: string | null;
}

type Snapshot = Map<
  string,
  { parentId: string | null; name: string; kind: string; current: string | null; deleted: boolean }
>;

async function rows(db: Database, ownerId: string) {
  return db.query<Row>(
    'select id, parent_id, kind, name, name_key, deleted_at, current_version_id from items where owner_id = $1 order by created_at, id',
    [ownerId],
  );
}

function liveSet(all: Row[]): Set<string> {
  const byId = new Map(all.map((r) => [r.id, r]));
  const live = new Set<string>();
  for (const r of all) {
    let cur: Row | undefined = r;
    let ok = true;
    while (cur) {
      if (cur.deleted_at) ok = false;
      cur = cur.parent_id ? byId.get(cur.parent_id) : undefined;
    }
    if (ok) live.add(r.id);
  }
  return live;
}

async function checkInvariants(db: Database, ownerId: string, blobKeys: Set<string>, afterPurge: boolean) {
  const all = await rows(db, ownerId);
  const byId = new Map(all.map((r) => [r.id, r]));
  for (const r of all) {
    const seen = new Set<string>();
    let cur: Row | undefined = r;
    while (cur?.parent_id) {
      expect(seen.has(cur.id), `cycle through ${cur.id}`).toBe(false);
      seen.add(cur.id);
      cur = byId.get(cur.parent_id);
      expect(cur, `dangling parent of ${r.id}`).toBeDefined();
    }
  }
  const dupes = await db.query(
    'select parent_id, name_key from items where name_key is not null group by parent_id, name_key having count(*) > 1',
  );
  expect(dupes).toEqual([]);
  for (const r of all) if (r.parent_id && r.name_key !== null) expect(r.name_key).toBe(nameKey(r.name));
  const users = await db.query<{ used_bytes: number | string }>(
    'select used_bytes from users where id = $1',
    [ownerId],
  );
  expect(Number(users[0]?.used_bytes)).toBe(await new ItemRepository(db).sumVersionSizes(ownerId));
  const versionKeys = new Set(
    (await db.query<{ blob_key: string }>('select blob_key from versions')).map((v) => v.blob_key),
  );
  for (const k of versionKeys) expect(blobKeys.has(k), `version without its blob ${k}`).toBe(true);
  if (afterPurge) for (const k of blobKeys) expect(versionKeys.has(k), `orphaned blob ${k}`).toBe(true);
}

async function snapshot(db: Database, rootId: string): Promise<Snapshot> {
  const tree = await new ItemRepository(db).subtree(rootId);
  return new Map(
    tree.map((i) => [
      i.id,
      {
        parentId: i.parentId,
        name: i.name,
        kind: i.kind,
        current: i.currentVersionId,
        deleted: i.deletedAt !== null,
      },
    ]),
  );
}

const pick = <T>(list: T[], i: number): T | undefined => (list.length ? list[i % list.length] : undefined);

async function expectDomain(p: Promise<unknown>): Promise<boolean> {
  try {
    await p;
    return true;
  } catch (e) {
    if (e instanceof DomainError && (statusOf(e) < 500 || statusOf(e) === 507)) return false;
    throw e;
  }
}

describe.each(sqlBackends)('metadata properties: $name', (backend) => {
  it('hold over random sequences of operations', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 4, maxLength: 30 }), async (ops) => {
        const { db, dispose } = await backend.open();
        try {
          const h = buildHarness(db);
          const u = await h.user('prop@x.io');
          const snapshots = new Map<string, Snapshot>();
          for (const o of ops) {
            const all = await rows(db, u.userId);
            const live = liveSet(all);
            const folders = all.filter((r) => r.kind === 'folder' && live.has(r.id));
            const items = all.filter((r) => r.parent_id && live.has(r.id));
            const files = all.filter((r) => r.kind === 'file' && live.has(r.id));
            const trash = all.filter((r) => r.deleted_at);
            let purged = false;
            switch (o.t) {
              case 'mkdir': {
                const parent = pick(folders, o.parent);
                if (parent) await expectDomain(h.c.folders.createFolder(u, parent.id, o.name));
                break;
              }
              case 'put': {
                const parent = pick(folders, o.parent);
                if (parent) await expectDomain(h.put(u, parent.id, o.name, 'z'.repeat(o.size)));
                break;
              }
              case 'rename': {
                const it = pick(items, o.item);
                if (!it) break;
                const cur = await h.c.folders.item(u, it.id);
                await expectDomain(
                  h.c.folders.relocate(u, it.id, cur.item.kind, { name: o.name }, cur.item.revision),
                );
                break;
              }
              case 'move': {
                const it = pick(items, o.item);
                const dest = pick(folders, o.dest);
                if (!it || !dest) break;
                const cur = await h.c.folders.item(u, it.id);
                await expectDomain(
                  h.c.folders.relocate(u, it.id, cur.item.kind, { parentId: dest.id }, cur.item.revision),
                );
                break;
              }
              case 'trash': {
                const it = pick(items, o.item);
                if (!it) break;
                const kind = it.kind === 'folder' ? 'folder' : 'file';
                const before = await snapshot(db, it.id);
                if (await expectDomain(h.c.folders.trash(u, it.id, kind, undefined)))
                  snapshots.set(it.id, before);
                break;
              }
              case 'restore': {
                const it = pick(trash, o.trash);
                if (!it) break;
                const restored = await h.c.folders.restoreFromTrash(u, it.id);
                const expected = snapshots.get(it.id);
                if (expected) {
                  const now = await snapshot(db, it.id);
                  expect([...now.keys()].sort()).toEqual([...expected.keys()].sort());
                  for (const [id, e] of expected) {
                    const got = now.get(id);
                    if (id === it.id) {
                      expect(got?.kind).toBe(e.kind);
                      expect(got?.current).toBe(e.current);
                      expect(got?.deleted).toBe(false);
                      expect([
                        e.name,
                        ...Array.from(
                          { length: 5 },
                          (_, n) => `${e.name.replace(/(\.[^.]*)?$/, ` (${n + 1})$1`)}`,
                        ),
                      ]).toContain(restored.name);
                    } else {
                      expect(got).toEqual(e);
                    }
                  }
                }
                for (const [root, snap] of snapshots)
                  if (root !== it.id && snap.has(it.id)) snapshots.delete(root);
                snapshots.delete(it.id);
                break;
              }
              case 'purge': {
                const it = pick(trash, o.trash);
                if (!it) break;
                await h.c.purges.purge(u, it.id);
                for (const [root, snap] of snapshots) if (snap.has(it.id)) snapshots.delete(root);
                purged = true;
                break;
              }
              case 'restoreVersion': {
                const f = pick(files, o.file);
                if (!f) break;
                const { versions } = await h.c.versions.versions(u, f.id);
                const v = pick(versions, o.nth);
                if (v) await expectDomain(h.c.versions.restoreVersion(u, f.id, v.id, undefined));
                break;
              }
              case 'copy': {
                const f = pick(files, o.file);
                const dest = pick(folders, o.dest);
                if (f && dest)
                  await expectDomain(h.c.folders.copyFile(u, f.id, { parentId: dest.id, autorename: true }));
                break;
              }
            }
            await checkInvariants(db, u.userId, new Set(h.blobs.objects.keys()), purged);
          }
        } finally {
          await dispose();
        }
      }),
      { numRuns: backend.name === 'pglite' ? 40 : 20 },
    );
  }, 300_000);
});
