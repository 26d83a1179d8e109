/**
 * Where a local storage node may live. A node clears its `tmp/` at start-up and writes and deletes
 * under `objects/` and `multipart/`, so a node placed at an arbitrary host path (`/`, `/etc`, a
 * symlink out of the data directory) could delete host files. A node added at run time must
 * therefore resolve, with every symlink of its existing part followed, strictly under one of the
 * allowed roots (STRATUS_LOCAL_NODE_ROOTS).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { errors } from '../../domain/errors.ts';

/**
 * The real path `p` stands for: the deepest ancestor that exists, with its symlinks resolved
 * (`realpath`), followed by the components that do not exist yet. `p` must be absolute; it is
 * normalised first, so no `..` remains in the part that does not exist.
 */
export async function realPathOf(p: string): Promise<string> {
  return (await resolveExisting(p)).real;
}

async function resolveExisting(p: string): Promise<{ real: string; existingIsDirectory: boolean }> {
  if (!path.isAbsolute(p)) throw errors.validation(`not an absolute path: ${p}`);
  let existing = path.resolve(p);
  const rest: string[] = [];
  for (;;) {
    try {
      await fs.lstat(existing);
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw errors.validation(`cannot inspect ${existing}`);
      const parent = path.dirname(existing);
      if (parent === existing) break;
      rest.unshift(path.basename(existing));
      existing = parent;
    }
  }
  let real: string;
  let existingIsDirectory: boolean;
  try {
    real = await fs.realpath(existing);
    existingIsDirectory = (await fs.stat(real)).isDirectory();
  } catch {
    // A dangling symlink, a loop, or no permission: nothing can be said about where it leads.
    throw errors.validation(`cannot resolve ${existing}`);
  }
  return { real: path.join(real, ...rest), existingIsDirectory };
}

/** True when `child` is strictly inside `parent` (both absolute and normalised). */
export function isStrictlyUnder(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel !== '' && !rel.startsWith(`..${path.sep}`) && rel !== '..' && !path.isAbsolute(rel);
}

/**
 * Resolves a node directory requested at run time and checks it: its real path must be strictly
 * under the real path of one of `roots`, and must neither be, contain, nor lie inside the
 * directory of a node in `taken`. Returns the real path, which is what the node must then use
 * (so what was checked is what is touched). Throws a validation error saying why not.
 */
export async function resolveNodeRoot(
  requested: string,
  roots: readonly string[],
  taken: readonly string[] = [],
): Promise<string> {
  const { real, existingIsDirectory } = await resolveExisting(requested);
  const realRoots = await Promise.all(roots.map((r) => realPathOf(r)));
  // Where a symlink led is not echoed: the caller learns only that the path is refused.
  if (!realRoots.some((r) => isStrictlyUnder(real, r))) {
    throw errors.validation(
      `${requested} is not inside an allowed node root (STRATUS_LOCAL_NODE_ROOTS: ${roots.join(', ') || 'none'})`,
    );
  }
  if (!existingIsDirectory) throw errors.validation(`${requested} is not a directory`);
  for (const t of taken) {
    const other = await realPathOf(t).catch(() => path.resolve(t));
    if (real === other || isStrictlyUnder(real, other) || isStrictlyUnder(other, real))
      throw errors.validation(`${requested} overlaps the directory of another storage node`);
  }
  return real;
}
