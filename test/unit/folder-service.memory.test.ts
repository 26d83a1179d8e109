/**
 * The folder service on the in-memory metadata adapters: no database, no emulator. The same
 * behaviours run on PGlite and PostgreSQL in test/integration/metadata.contract.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { MemoryDatabase } from '../../shared/adapters/memory/memory-metadata.ts';
import { ConflictError, PreconditionError } from '../../shared/domain/errors.ts';
import { buildHarness } from '../support/service-harness.ts';

describe('folder service without a database', () => {
  it('moves folders, refusing a move into their own subtree, and restores from the trash', async () => {
    // Prepare
    const h = buildHarness(new MemoryDatabase());
    const u = await h.user('memory@x.io');
    const a = await h.c.folders.createFolder(u, 'root', 'A');
    const b = await h.c.folders.createFolder(u, a.id, 'B');
    const file = await h.put(u, b.id, 'notes.txt', 'hello');

    // Act and assess: the cycle and the missing If-Match are refused
    await expect(
      h.c.folders.relocate(u, a.id, 'folder', { parentId: b.id }, a.revision),
    ).rejects.toBeInstanceOf(ConflictError);
    await expect(h.c.folders.relocate(u, a.id, 'folder', { name: 'A2' }, undefined)).rejects.toBeInstanceOf(
      PreconditionError,
    );
    const moved = await h.c.folders.relocate(u, b.id, 'folder', { parentId: 'root' }, b.revision);
    expect(moved.parentId).toBe(u.rootFolderId);

    // Trash B (with the file under it), then restore it whole
    await h.c.folders.trash(u, b.id, 'folder', moved.revision);
    const listed = await h.c.folders.listChildren(u, 'root', { sort: { by: 'name', dir: 'asc' }, limit: 10 });
    expect(listed.items.map((i) => i.name)).toEqual(['A']);
    const restored = await h.c.folders.restoreFromTrash(u, b.id);
    expect(restored.name).toBe('B');
    const inside = await h.c.folders.listChildren(u, b.id, { sort: { by: 'name', dir: 'asc' }, limit: 10 });
    expect(inside.items.map((i) => i.id)).toEqual([file.fileId]);
  });
});
