/** Where a local node may live (STRATUS_LOCAL_NODE_ROOTS), and what its init touches. */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalFsBlobStore } from '../../shared/adapters/localfs/localfs-blob-store.ts';
import { isStrictlyUnder, realPathOf, resolveNodeRoot } from '../../shared/adapters/localfs/node-root.ts';
import { type LocalConfig, loadConfig } from '../../shared/config/config.ts';

let base: string;
beforeEach(async () => {
  base = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-roots-')));
  await fs.mkdir(path.join(base, 'root'));
  await fs.mkdir(path.join(base, 'outside'));
});
afterEach(async () => {
  await fs.rm(base, { recursive: true, force: true });
});

describe('STRATUS_LOCAL_NODE_ROOTS', () => {
  it('defaults to the data directory\u2019s nodes/', () => {
    const c = loadConfig({ STRATUS_DATA_DIR: '/srv/stratus' }) as LocalConfig;
    expect(c.STRATUS_LOCAL_NODE_ROOTS).toEqual(['/srv/stratus/nodes']);
  });

  it('takes a comma-separated list of absolute paths, normalised', () => {
    const c = loadConfig({ STRATUS_LOCAL_NODE_ROOTS: ' /mnt/a/ , /mnt/b/../c,' }) as LocalConfig;
    expect(c.STRATUS_LOCAL_NODE_ROOTS).toEqual(['/mnt/a', '/mnt/c']);
  });

  it.each(['relative/dir', '/ok,also-relative', ','])('refuses %j, naming the setting', (v) => {
    expect(() => loadConfig({ STRATUS_LOCAL_NODE_ROOTS: v })).toThrow(/STRATUS_LOCAL_NODE_ROOTS/);
  });
});

describe('isStrictlyUnder', () => {
  it.each([
    ['/a/b', '/a', true],
    ['/a/b/c', '/a', true],
    ['/a', '/a', false],
    ['/ab', '/a', false],
    ['/a/../b', '/a', false],
    ['/', '/a', false],
    ['/a', '/', true],
    ['/..a', '/', true],
  ])('%s under %s: %s', (child, parent, expected) => {
    expect(isStrictlyUnder(path.resolve(child), parent)).toBe(expected);
  });
});

describe('resolveNodeRoot', () => {
  const roots = () => [path.join(base, 'root')];

  it('returns the real path of a new directory strictly under a root', async () => {
    expect(await resolveNodeRoot(path.join(base, 'root', 'n1'), roots())).toBe(path.join(base, 'root', 'n1'));
    expect(await resolveNodeRoot(path.join(base, 'root', 'a', 'b', 'n2'), roots())).toBe(
      path.join(base, 'root', 'a', 'b', 'n2'),
    );
  });

  it('follows a symlinked root to its real path', async () => {
    await fs.symlink(path.join(base, 'root'), path.join(base, 'root-link'));
    expect(await resolveNodeRoot(path.join(base, 'root', 'n'), [path.join(base, 'root-link')])).toBe(
      path.join(base, 'root', 'n'),
    );
  });

  it.each([
    ['the root itself', 'root'],
    ['a .. escape', 'root/../outside'],
    ['a sibling with a common prefix', 'root-x/n'],
    ['/', '/'],
  ])('refuses %s', async (_what, p) => {
    await expect(resolveNodeRoot(path.resolve(base, p), roots())).rejects.toThrow(/not inside an allowed/);
  });

  it('refuses a symlink out of the root, also with components below it that do not exist', async () => {
    await fs.symlink(path.join(base, 'outside'), path.join(base, 'root', 'escape'));
    for (const p of ['escape', 'escape/new', 'escape/new/deeper'])
      await expect(resolveNodeRoot(path.join(base, 'root', p), roots())).rejects.toThrow(/not inside/);
  });

  it('refuses a dangling symlink and a file', async () => {
    await fs.symlink(path.join(base, 'nowhere'), path.join(base, 'root', 'dangling'));
    await expect(resolveNodeRoot(path.join(base, 'root', 'dangling'), roots())).rejects.toThrow();
    await fs.writeFile(path.join(base, 'root', 'file'), 'x');
    await expect(resolveNodeRoot(path.join(base, 'root', 'file'), roots())).rejects.toThrow(
      /not a directory/,
    );
    await expect(resolveNodeRoot(path.join(base, 'root', 'file', 'n'), roots())).rejects.toThrow(
      /not a directory/,
    );
  });

  it('refuses a directory that is, contains or lies inside another node\u2019s', async () => {
    const taken = [path.join(base, 'root', 'a', 'n1')];
    for (const p of ['a/n1', 'a', 'a/n1/objects/x'])
      await expect(resolveNodeRoot(path.join(base, 'root', p), roots(), taken)).rejects.toThrow(/overlaps/);
    expect(await resolveNodeRoot(path.join(base, 'root', 'a', 'n2'), roots(), taken)).toBe(
      path.join(base, 'root', 'a', 'n2'),
    );
  });

  it('wants an absolute path', async () => {
    await expect(realPathOf('relative')).rejects.toThrow(/absolute/);
  });
});

describe('LocalFsBlobStore.init', () => {
  const open = (root: string) =>
    new LocalFsBlobStore('n', root, 'http://x/storage/n', randomBytes(32)).init();

  it('clears its own tmp/ and creates its three directories', async () => {
    const root = path.join(base, 'root', 'n');
    await fs.mkdir(path.join(root, 'tmp', 'half-written'), { recursive: true });
    await open(root);
    expect((await fs.readdir(root)).sort()).toEqual(['multipart', 'objects', 'tmp']);
    expect(await fs.readdir(path.join(root, 'tmp'))).toEqual([]);
  });

  it.each(['tmp', 'objects', 'multipart'])(
    'refuses a %s that is a symlink, leaving its target alone',
    async (d) => {
      const root = path.join(base, 'root', 'n');
      await fs.mkdir(root, { recursive: true });
      await fs.writeFile(path.join(base, 'outside', 'sentinel'), 'keep');
      await fs.symlink(path.join(base, 'outside'), path.join(root, d));
      await expect(open(root)).rejects.toThrow(/not a directory/);
      expect(await fs.readFile(path.join(base, 'outside', 'sentinel'), 'utf8')).toBe('keep');
      expect((await fs.lstat(path.join(root, d))).isSymbolicLink()).toBe(true);
    },
  );

  it('refuses a tmp that is a file', async () => {
    const root = path.join(base, 'root', 'n');
    await fs.mkdir(root, { recursive: true });
    await fs.writeFile(path.join(root, 'tmp'), 'x');
    await expect(open(root)).rejects.toThrow(/not a directory/);
  });

  it('does not follow symlinks inside tmp/ when clearing it', async () => {
    const root = path.join(base, 'root', 'n');
    await fs.mkdir(path.join(root, 'tmp'), { recursive: true });
    await fs.writeFile(path.join(base, 'outside', 'sentinel'), 'keep');
    await fs.symlink(path.join(base, 'outside'), path.join(root, 'tmp', 'link'));
    await open(root);
    expect(await fs.readFile(path.join(base, 'outside', 'sentinel'), 'utf8')).toBe('keep');
  });
});
