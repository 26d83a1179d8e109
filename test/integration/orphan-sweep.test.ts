/**
 * The orphan sweep over a node of 25,000 objects (issue #19's target), on each kind of node: S3 (the
 * pinned emulator, seeded in bulk), a local node, the in-memory one. Orphans are spread over the
 * whole key space, past the first 10,000 keys too, which were all the sweep used to see. The
 * objects are created beside the adapter (the emulator's backend, the node's directory layout), in
 * seconds; from then on everything goes through the BlobStore port. What owns a key is a plain set
 * here: the metadata lookups are the metadata suites' business.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalFsBlobStore } from '../../shared/adapters/localfs/localfs-blob-store.ts';
import { MemoryBlobStore } from '../../shared/adapters/memory/memory-blob-store.ts';
import { MemoryStateStore } from '../../shared/adapters/memory/memory-state-store.ts';
import { S3BlobStore } from '../../shared/adapters/s3/s3-blob-store.ts';
import { createLogger } from '../../shared/observability/logger.ts';
import { type BlobStore, MAX_LIST_PAGE } from '../../shared/ports/blob-store.ts';
import { NodeRegistry } from '../../shared/services/node-registry.ts';
import { OrphanSweep } from '../../shared/services/orphan-sweep.ts';
import { ReplicaLedger } from '../../shared/services/replica-ledger.ts';
import { allPartitions, keyRange } from '../../shared/services/sweep-partitions.ts';
import { healthyRegistry } from '../support/fixtures.ts';
import { seedLocalObjects } from '../support/local-node.ts';
import { startSeededS3 } from '../support/seeded-s3.ts';

const TOTAL = 25_000;
/** Version blob keys in key order (UUIDs are ASCII: `sort()` is the nodes' order). */
const KEYS = Array.from({ length: TOTAL }, () => `v/${randomUUID()}`).sort();
const at = (i: number) => KEYS[i] as string;
/** Orphans at both ends, around the old 10,000-key cut-off, and every 2,500th key. */
const ORPHAN_AT = [0, 1, 9_999, 10_000, 10_001, 12_345, 19_999, 20_000, 24_998, 24_999];
for (let i = 1_234; i < TOTAL; i += 2_500) ORPHAN_AT.push(i);
const ORPHANS = new Set(ORPHAN_AT.map(at));
/** No version references it, but an open upload does: not an orphan. */
const HELD = at(15_000);

interface Node {
  name: string;
  /** Creates the node holding every key of KEYS (one byte each), beside the adapter. */
  open(): Promise<{ store: BlobStore; dispose(): Promise<void> }>;
}

const nodes: Node[] = [
  {
    name: 's3 (seeded emulator)',
    async open() {
      const s3 = await startSeededS3(KEYS.map((key) => ({ key, size: 1 })));
      return { store: new S3BlobStore('s3-sweep', s3.client, s3.bucket), dispose: s3.stop };
    },
  },
  {
    name: 'localfs',
    async open() {
      const root = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-sweep-'));
      const store = await new LocalFsBlobStore(
        'local-sweep',
        root,
        'http://127.0.0.1:9/storage/local-sweep',
        randomBytes(32),
      ).init();
      await seedLocalObjects(store, KEYS);
      return { store, dispose: () => fs.rm(root, { recursive: true, force: true }) };
    },
  },
  {
    name: 'memory',
    async open() {
      const store = new MemoryBlobStore('mem-sweep');
      for (const key of KEYS) store.objects.set(key, Buffer.from('x'));
      return { store, dispose: async () => undefined };
    },
  },
];

describe.each(nodes)('orphan sweep over 25,000 objects: $name', (node) => {
  let store: BlobStore;
  let dispose: () => Promise<void>;
  beforeAll(async () => {
    ({ store, dispose } = await node.open());
  }, 120_000);
  afterAll(async () => {
    await dispose?.();
  });

  it('lists every key a page at a time and deletes exactly the orphans', { timeout: 180_000 }, async () => {
    // What the sweep asks of the node, in order.
    const events: string[] = [];
    const listed: string[] = [];
    const pageSizes: number[] = [];
    const deleted: string[] = [];
    const watched: BlobStore = Object.assign(Object.create(store) as BlobStore, {
      listPage: async (prefix: string, opts?: { startAfter?: string; limit?: number }) => {
        events.push('list');
        const page = await store.listPage(prefix, opts);
        pageSizes.push(page.items.length);
        listed.push(...page.items.map((o) => o.key));
        return page;
      },
      delete: async (key: string) => {
        events.push('delete');
        deleted.push(key);
        await store.delete(key);
      },
    });
    const owned = (key: string) => !ORPHANS.has(key) && key !== HELD;
    const sweep = new OrphanSweep({
      items: {
        blobReferenced: async (nodeId, key) => nodeId === store.nodeId && owned(key),
        blobKeyInUse: async (key) => owned(key),
      },
      reservations: { heldByOpenUpload: async (key) => key === HELD },
      nodes: new NodeRegistry(
        [
          {
            id: store.nodeId,
            kind: store instanceof S3BlobStore ? 's3' : 'localfs',
            region: 'local',
            weight: 1,
            store: watched,
            health: 'healthy',
            draining: false,
          },
        ],
        1,
      ),
      ledger: new ReplicaLedger(new MemoryStateStore()),
      log: createLogger('silent'),
    });

    const run = await sweep.sweepOrphans(
      0,
      {},
      { nodes: [store.nodeId] },
      Number.POSITIVE_INFINITY,
      async () => {},
    );
    const count = run.deleted;

    expect(run.done).toBe(true);
    expect(deleted.sort()).toEqual([...ORPHANS].sort());
    expect(count).toBe(ORPHANS.size);
    for (const key of ORPHANS) expect(await store.stat(key), key).toBeUndefined();
    for (const key of [HELD, at(2), at(10_002), at(24_997)])
      expect(await store.stat(key), key).toEqual({ size: 1 });
    // Every key, once, in order, in pages no bigger than S3's; and orphans go as their page is read,
    // so the sweep holds one page, not the node's listing.
    expect(listed).toEqual(KEYS);
    expect(Math.max(...pageSizes)).toBe(MAX_LIST_PAGE);
    expect(pageSizes.length).toBe(TOTAL / MAX_LIST_PAGE);
    expect(events.indexOf('delete')).toBeLessThan(events.indexOf('list', 1));
  });
});

describe('orphan sweep in budgeted runs and partitions (memory nodes)', () => {
  /** Two nodes holding every key; the sweep's listings and deletions recorded. */
  function setUp() {
    const listed: string[] = [];
    const deleted: string[] = [];
    const stores = ['mem-a', 'mem-b'].map((id) => {
      const store = new MemoryBlobStore(id);
      for (const key of KEYS) store.objects.set(key, Buffer.from('x'));
      return Object.assign(Object.create(store) as BlobStore, {
        listPage: async (prefix: string, opts?: { startAfter?: string; limit?: number }) => {
          const page = await store.listPage(prefix, opts);
          listed.push(...page.items.map((o) => `${id}:${o.key}`));
          return page;
        },
        delete: async (key: string) => {
          deleted.push(`${id}:${key}`);
          await store.delete(key);
        },
      });
    });
    const owned = (key: string) => !ORPHANS.has(key) && key !== HELD;
    const sweep = new OrphanSweep({
      items: { blobReferenced: async (_n, key) => owned(key), blobKeyInUse: async (key) => owned(key) },
      reservations: { heldByOpenUpload: async (key) => key === HELD },
      nodes: healthyRegistry(stores, 2),
      ledger: new ReplicaLedger(new MemoryStateStore()),
      log: createLogger('silent'),
    });
    const expected = ['mem-a', 'mem-b'].flatMap((id) => [...ORPHANS].map((k) => `${id}:${k}`)).sort();
    return { sweep, listed, deleted, expected };
  }

  it('stops after a page once its budget is spent and the next runs go on from the saved cursor', async () => {
    const { sweep, listed, deleted, expected } = setUp();
    let cursor: { nodes: string[]; after?: string } = { nodes: ['mem-a', 'mem-b'] };
    let runs = 0;
    for (;;) {
      runs++;
      // A budget already spent: each run does one page (the least progress a run makes), then stops.
      const r = await sweep.sweepOrphans(0, {}, cursor, Date.now(), async (c) => {
        cursor = c;
      });
      if (r.done) break;
      expect(runs).toBeLessThan(200);
    }
    // 25 pages a node, each run one page (or the step to the next node).
    expect(runs).toBeGreaterThanOrEqual(2 * (TOTAL / MAX_LIST_PAGE));
    expect(cursor).toEqual({ nodes: [] });
    expect(deleted.sort()).toEqual(expected);
    // Every key of both nodes listed exactly once across all the runs: nothing re-read, nothing missed.
    expect(listed.length).toBe(2 * TOTAL);
    expect(new Set(listed).size).toBe(2 * TOTAL);
  });

  it('partitions of the key space list disjoint ranges that together cover every key', async () => {
    const { sweep, listed, deleted, expected } = setUp();
    const parts = allPartitions(7);
    let inRange = 0;
    for (const p of parts) {
      const listedBefore = listed.length;
      const deletedBefore = deleted.length;
      const r = await sweep.sweepOrphans(
        0,
        keyRange(p),
        { nodes: ['mem-a', 'mem-b'] },
        Number.POSITIVE_INFINITY,
        async () => {},
      );
      expect(r.done).toBe(true);
      // What this partition listed beyond its range is at most the rest of one page per node (the
      // page holding its last key); it deletes nothing there.
      const mine = listed.slice(listedBefore);
      const range = keyRange(p);
      const outside = mine.filter((k) => {
        const key = k.slice(k.indexOf(':') + 1);
        return (
          (range.startAfter !== undefined && key <= range.startAfter) ||
          (range.upTo !== undefined && key > range.upTo)
        );
      });
      expect(outside.length).toBeLessThanOrEqual(2 * MAX_LIST_PAGE);
      const outsideSet = new Set(outside);
      expect(deleted.slice(deletedBefore).filter((k) => outsideSet.has(k))).toEqual([]);
      inRange += mine.length - outside.length;
    }
    expect(inRange).toBe(2 * TOTAL);
    expect(deleted.sort()).toEqual(expected);
  });
});
