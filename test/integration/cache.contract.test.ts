/** The Cache port on Redis and memory, and cache-first metadata reads that stay correct. */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { MemoryCache } from '../../shared/adapters/memory/memory-cache.ts';
import { RedisCache } from '../../shared/adapters/redis/redis-cache.ts';
import { openRedis } from '../../shared/adapters/redis/redis-client.ts';
import type { Cache } from '../../shared/ports/cache.ts';
import type { Database } from '../../shared/ports/database.ts';
import { sqlBackends, uid } from '../support/fixtures.ts';
import { buildHarness } from '../support/service-harness.ts';

const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: 1 });
// ElastiCache Serverless is cluster-mode only: the same contract through the cluster client.
const clustered = openRedis(inject('redisClusterUrl'), 'cluster');
beforeAll(() => clustered.connect());
afterAll(() => {
  redis.disconnect();
  clustered.disconnect();
});

const caches: { name: string; make(): Cache }[] = [
  { name: 'redis', make: () => new RedisCache(redis, `${uid('test:cache:')}:`) },
  { name: 'redis (cluster mode)', make: () => new RedisCache(clustered, `${uid('test:cache:')}:`) },
  { name: 'memory', make: () => new MemoryCache() },
];

describe.each(caches)('Cache contract: $name', (backend) => {
  let cache: Cache;
  beforeEach(() => {
    cache = backend.make();
  });

  it('stores, expires and deletes', async () => {
    expect(await cache.get('k')).toBeUndefined();
    await cache.set('k', 'v', 1);
    await cache.set('k2', 'v2', 60);
    expect(await cache.get('k')).toBe('v');
    await new Promise((r) => setTimeout(r, 1100));
    expect(await cache.get('k')).toBeUndefined();
    await cache.del(['k2', 'missing']);
    expect(await cache.get('k2')).toBeUndefined();
  });

  it('sets only when absent and returns what is stored', async () => {
    expect(await cache.setIfAbsent('g', 'first', 60)).toBe('first');
    expect(await cache.setIfAbsent('g', 'second', 60)).toBe('first');
    expect(await cache.get('g')).toBe('first');
  });
});

describe('cache-first metadata reads over Redis', () => {
  const pglite = sqlBackends[0];
  if (!pglite) throw new Error('no pglite backend');
  let db: Database;
  let dispose: () => Promise<void>;
  beforeEach(async () => {
    ({ db, dispose } = await pglite.open());
  });
  afterEach(async () => {
    await dispose();
  });

  it('serves repeated reads from the cache and sees every write at once', async () => {
    const h = buildHarness(db, { cache: new RedisCache(redis, `${uid('test:meta:')}:`) });
    const u = await h.user('cache@x.io');
    const f = await h.put(u, 'root', 'a.txt', 'a');
    const list = () => h.c.folders.listChildren(u, 'root', { sort: { by: 'name', dir: 'asc' }, limit: 10 });
    expect((await list()).items.map((i) => i.name)).toEqual(['a.txt']);
    const hitsBefore = h.c.metadataCache.hits;
    expect((await list()).items.map((i) => i.name)).toEqual(['a.txt']);
    expect(h.c.metadataCache.hits).toBeGreaterThan(hitsBefore);
    const item = (await h.c.folders.item(u, f.fileId)).item;
    await h.c.folders.relocate(u, f.fileId, 'file', { name: 'b.txt' }, item.revision);
    expect((await list()).items.map((i) => i.name)).toEqual(['b.txt']);
    expect((await h.c.folders.item(u, f.fileId)).item.name).toBe('b.txt');
    await h.c.folders.createFolder(u, 'root', 'Dir');
    expect((await list()).items.map((i) => i.name)).toEqual(['b.txt', 'Dir']);
    await h.c.folders.trash(u, f.fileId, 'file', undefined);
    expect((await list()).items.map((i) => i.name)).toEqual(['Dir']);
  });

  it('is never the only copy: a flushed or unreachable cache changes nothing but speed', async () => {
    const prefix = `${uid('test:meta:')}:`;
    const h = buildHarness(db, { cache: new RedisCache(redis, prefix) });
    const u = await h.user('flush@x.io');
    const f = await h.put(u, 'root', 'keep.txt', 'k');
    await h.c.folders.item(u, f.fileId);
    const keys = await redis.keys(`${prefix}*`);
    expect(keys.length).toBeGreaterThan(0);
    await redis.del(...keys);
    expect((await h.c.folders.item(u, f.fileId)).item.name).toBe('keep.txt');

    const dead = new Redis({
      port: 1,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    const down = buildHarness(db, { cache: new RedisCache(dead) });
    const v = await down.user('down@x.io');
    const g = await down.put(v, 'root', 'still.txt', 's');
    expect((await down.c.folders.item(v, g.fileId)).item.name).toBe('still.txt');
    expect(
      (await down.c.folders.listChildren(v, 'root', { sort: { by: 'name', dir: 'asc' }, limit: 5 })).items,
    ).toHaveLength(1);
    dead.disconnect();
  });
});
