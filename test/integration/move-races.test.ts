/**
 * Moves that race, on PostgreSQL with a pool of connections (PGlite serializes everything and never
 * shows this). Two folders moved into each other at the same moment both passed the cycle check
 * when it ran outside the transaction: both answered 200, and both folders left the tree. The
 * destination's ancestor chain is now re-read with its rows locked inside the move's transaction.
 */
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../shared/domain/errors.ts';
import { statusOf } from '../../shared/http/problem.ts';
import { sqlBackends } from '../support/fixtures.ts';
import { buildHarness } from '../support/service-harness.ts';

const postgres = sqlBackends.find((b) => b.name === 'postgres');
if (!postgres) throw new Error('no postgres backend');

describe('crossing moves on PostgreSQL', () => {
  it('let exactly one of two folders move into the other; the tree stays acyclic', async () => {
    const { db, dispose } = await postgres.open();
    try {
      const h = buildHarness(db);
      const u = await h.user('mover@x.io');
      const ROUNDS = 15;
      let oneWon = 0;
      for (let i = 0; i < ROUNDS; i++) {
        const a = await h.c.folders.createFolder(u, 'root', `a${i}`);
        const b = await h.c.folders.createFolder(u, 'root', `b${i}`);
        const results = await Promise.allSettled([
          h.c.folders.relocate(u, a.id, 'folder', { parentId: b.id }, a.revision),
          h.c.folders.relocate(u, b.id, 'folder', { parentId: a.id }, b.revision),
        ]);
        const won = results.filter((r) => r.status === 'fulfilled').length;
        for (const r of results)
          if (r.status === 'rejected') {
            expect(r.reason).toBeInstanceOf(DomainError);
            expect(statusOf(r.reason)).toBe(409);
          }
        expect(won, `round ${i}`).toBe(1);
        oneWon++;
      }
      expect(oneWon).toBe(ROUNDS);
      // Every folder still reaches the root: no cycle anywhere.
      const rows = await db.query<{ id: string; parent_id: string | null }>(
        'select id, parent_id from items where owner_id = $1',
        [u.userId],
      );
      const parent = new Map(rows.map((r) => [r.id, r.parent_id]));
      for (const r of rows) {
        let at: string | null | undefined = r.id;
        const seen = new Set<string>();
        while (at) {
          expect(seen.has(at), `cycle through ${r.id}`).toBe(false);
          seen.add(at);
          at = parent.get(at);
        }
        expect(at).toBeNull();
      }
    } finally {
      await dispose();
    }
  });
});

describe('purges and restores that race on PostgreSQL', () => {
  it('give bytes back once, and never purge what a restore brought back', async () => {
    const { db, dispose } = await postgres.open();
    try {
      const h = buildHarness(db);
      const u = await h.user('purger@x.io');
      const usedMatchesVersions = async () => {
        const [row] = await db.query<{ used: string; kept: string }>(
          `select u.used_bytes::text as used,
             (select coalesce(sum(v.size), 0)::text from versions v join items i on i.id = v.file_id
              where i.owner_id = u.id) as kept
           from users u where u.id = $1`,
          [u.userId],
        );
        return row;
      };
      let restored = 0;
      let purged = 0;
      for (let i = 0; i < 12; i++) {
        const f = await h.put(u, 'root', `p${i}.bin`, `contents of file ${i} `.repeat(50 + i));
        const item = await h.c.folders.item(u, f.fileId, 'file');
        await h.c.folders.trash(u, f.fileId, 'file', item.item.revision);
        const results = await Promise.allSettled([
          h.c.purges.purge(u, f.fileId),
          h.c.purges.purge(u, f.fileId),
          h.c.folders.restoreFromTrash(u, f.fileId),
        ]);
        for (const r of results)
          if (r.status === 'rejected')
            expect((r.reason as Error).name, String(r.reason)).toBe('NotFoundError');
        const back = results[2].status === 'fulfilled';
        if (back) {
          restored++;
          // Restored whole: its version and bytes are there.
          const live = await h.c.versions.fileWithVersion(u, f.fileId);
          expect(live.version.id).toBe(f.versionId);
        } else purged++;
        const row = await usedMatchesVersions();
        expect(row?.used, `round ${i}`).toBe(row?.kept);
      }
      expect(restored + purged).toBe(12);
    } finally {
      await dispose();
    }
  });
});
