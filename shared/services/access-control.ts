/**
 * Who may do what to an item. The item's ancestor chain is walked once: it decides both liveness
 * (an item is live when neither it nor any ancestor is in the trash) and the effective role
 * (owner; admin; else the strongest grant on the item or any ancestor, since grants inherit down
 * the tree). No access at all answers 404, so existence never leaks; a viewer asking to write
 * gets 403, since they can already see the item.
 */

import { errors } from '../domain/errors.ts';
import type { Item, Principal } from '../domain/model.ts';
import type { PermissionStore } from '../ports/metadata.ts';
import type { MetadataCache } from './metadata-cache.ts';

export type Role = 'owner' | 'admin' | 'editor' | 'viewer';
export type Need = 'read' | 'write' | 'manage';

const RANK: Record<Role, number> = { viewer: 1, editor: 2, owner: 3, admin: 3 };
const NEEDED: Record<Need, number> = { read: 1, write: 2, manage: 3 };
const MAX_DEPTH = 256;

export interface Access {
  item: Item;
  role: Role;
  /** Parent first, root last. */
  ancestors: Item[];
}

export class AccessControl {
  private readonly items: MetadataCache;
  private readonly permissions: PermissionStore;

  constructor(items: MetadataCache, permissions: PermissionStore) {
    this.items = items;
    this.permissions = permissions;
  }

  /** The chain from the item up to its root, or undefined if any link is missing. */
  async chain(item: Item): Promise<Item[] | undefined> {
    const ancestors: Item[] = [];
    let cur = item;
    while (cur.parentId) {
      if (ancestors.length >= MAX_DEPTH) return undefined;
      const parent = await this.items.item(cur.parentId);
      if (!parent) return undefined;
      ancestors.push(parent);
      cur = parent;
    }
    return ancestors;
  }

  async resolve(p: Principal, id: string): Promise<Access | undefined> {
    const item = await this.items.item(id);
    if (!item) return undefined;
    const ancestors = await this.chain(item);
    if (!ancestors || item.deletedAt || ancestors.some((a) => a.deletedAt)) return undefined;
    const role = await this.roleOf(p, item, ancestors);
    return role ? { item, role, ancestors } : undefined;
  }

  async roleOf(p: Principal, item: Item, ancestors: Item[]): Promise<Role | undefined> {
    if (item.ownerId === p.userId) return 'owner';
    if (p.role === 'admin') return 'admin';
    const grants = await this.permissions.grantsOn(p.userId, [item.id, ...ancestors.map((a) => a.id)]);
    if (grants.length === 0) return undefined;
    return grants.some((g) => g.role === 'editor') ? 'editor' : 'viewer';
  }

  async require(p: Principal, id: string, need: Need, what = 'item'): Promise<Access> {
    const access = await this.resolve(p, id);
    if (!access) throw errors.notFound(what);
    if (RANK[access.role] < NEEDED[need]) {
      throw errors.forbidden(
        need === 'write' ? 'you can view this item but not change it' : 'only the owner can do this',
      );
    }
    return access;
  }

  /** A trash root the principal owns (or any, for an admin). */
  async requireTrashed(p: Principal, id: string): Promise<Item> {
    const item = await this.items.item(id);
    if (!item?.deletedAt || (item.ownerId !== p.userId && p.role !== 'admin'))
      throw errors.notFound('trashed item');
    return item;
  }
}
