/**
 * Cache-first reads of item rows and folder pages. Item rows are keyed by id and deleted on every
 * write to them. Folder pages are keyed by a per-folder generation that every write to the folder
 * replaces, so invalidating all pages of a folder is one write. The cache is never the only copy:
 * a cache failure is logged and the read goes to the database.
 */

import { randomUUID } from 'node:crypto';
import type { Item } from '../domain/model.ts';
import type { Logger } from '../observability/logger.ts';
import type { Cache } from '../ports/cache.ts';
import type { ItemStore } from '../ports/metadata.ts';

const ITEM_TTL = 300;
const PAGE_TTL = 60;
const GEN_TTL = 3600;

type Stored = Omit<Item, 'createdAt' | 'updatedAt' | 'deletedAt'> & {
  createdAt: string;
  updatedAt: string;
  deletedAt: string | null;
};

const freeze = (i: Item): string =>
  JSON.stringify({
    ...i,
    createdAt: i.createdAt.toISOString(),
    updatedAt: i.updatedAt.toISOString(),
    deletedAt: i.deletedAt?.toISOString() ?? null,
  });

const thaw = (s: string): Item => {
  const v = JSON.parse(s) as Stored;
  return {
    ...v,
    createdAt: new Date(v.createdAt),
    updatedAt: new Date(v.updatedAt),
    deletedAt: v.deletedAt ? new Date(v.deletedAt) : null,
  };
};

export class MetadataCache {
  private readonly cache: Cache;
  private readonly items: ItemStore;
  private readonly log: Logger;
  hits = 0;
  misses = 0;

  constructor(cache: Cache, items: ItemStore, log: Logger) {
    this.cache = cache;
    this.items = items;
    this.log = log;
  }

  private async safe<T>(op: () => Promise<T>, fallback: T): Promise<T> {
    try {
      return await op();
    } catch (err) {
      this.log.warn('cache unavailable; reading through', { err: String(err) });
      return fallback;
    }
  }

  async item(id: string): Promise<Item | undefined> {
    const cached = await this.safe(() => this.cache.get(`item:${id}`), undefined);
    if (cached !== undefined) {
      this.hits++;
      return thaw(cached);
    }
    this.misses++;
    const item = await this.items.get(id);
    if (item) await this.safe(() => this.cache.set(`item:${id}`, freeze(item), ITEM_TTL), undefined);
    return item;
  }

  private async generation(folderId: string): Promise<string> {
    return this.safe(() => this.cache.setIfAbsent(`gen:${folderId}`, randomUUID(), GEN_TTL), '');
  }

  /** A folder page, from the cache when this generation of the folder has it. */
  async page<T>(folderId: string, pageKey: string, load: () => Promise<T>): Promise<T> {
    const gen = await this.generation(folderId);
    if (!gen) return load();
    const key = `page:${folderId}:${gen}:${pageKey}`;
    const cached = await this.safe(() => this.cache.get(key), undefined);
    if (cached !== undefined) {
      this.hits++;
      return JSON.parse(cached) as T;
    }
    this.misses++;
    const value = await load();
    await this.safe(() => this.cache.set(key, JSON.stringify(value), PAGE_TTL), undefined);
    return value;
  }

  /** Call after a write commits: forgets the items and every page of the folders. */
  async invalidate(
    itemIds: readonly (string | null | undefined)[],
    folderIds: readonly (string | null | undefined)[],
  ) {
    const items = itemIds.filter((x): x is string => !!x).map((id) => `item:${id}`);
    const gens = [...new Set(folderIds.filter((x): x is string => !!x))].map((id) => `gen:${id}`);
    await this.safe(() => this.cache.del([...items, ...gens]), undefined);
  }
}
