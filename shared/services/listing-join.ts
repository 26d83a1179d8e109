/**
 * The storage side of a full reconcile pass on listing nodes (`BlobStore.sweepBy: 'listing'`, S3):
 * what each holds among the keys `v/<id>` of a page of versions in id order, from its listing, so a
 * pass makes one LIST per node per page (at most 1,000 keys) instead of a HEAD per replica.
 */
import type { VersionRef } from '../domain/model.ts';
import type { Logger } from '../observability/logger.ts';
import { compareBlobKeys } from '../ports/blob-store.ts';
import { blobPages } from './blob-pages.ts';
import type { NodeRegistry } from './node-registry.ts';

/** What listing nodes hold of the keys in (lo, hi], by node id (key -> size). */
export interface Listed {
  lo: string;
  hi: string;
  byNode: Map<string, Map<string, number>>;
}

/**
 * Lists each listing node that is up from `v/<after>` to the page's last key. A node whose listing
 * fails is left out (its replicas are stat'ed). `onRequest` counts the listing requests.
 */
export async function listRange(
  nodes: NodeRegistry,
  log: Logger,
  after: string,
  page: readonly VersionRef[],
  onRequest: () => void,
): Promise<Listed> {
  const lo = `v/${after}`;
  const hi = `v/${page[page.length - 1]?.id ?? after}`;
  const byNode = new Map<string, Map<string, number>>();
  // The nodes at once: a page waits for one listing round trip, not one per node.
  const listing = nodes.all().filter((x) => x.health !== 'down' && x.store.sweepBy === 'listing');
  await Promise.all(
    listing.map(async (n) => {
      const held = new Map<string, number>();
      try {
        pages: for await (const items of blobPages(n.store, 'v/', { startAfter: lo })) {
          onRequest();
          for (const o of items) {
            if (compareBlobKeys(o.key, hi) > 0) break pages;
            held.set(o.key, o.size);
          }
        }
        byNode.set(n.id, held);
      } catch (err) {
        log.warn('reconcile: listing failed, checking replicas one by one', {
          nodeId: n.id,
          err: String(err),
        });
      }
    }),
  );
  return { lo, hi, byNode };
}

/** Whether the listing shows `key` on `nodeId` at `size` (false: not listed there, or not listed at all). */
export function listedAt(listed: Listed | undefined, nodeId: string, key: string, size: number): boolean {
  if (!listed || compareBlobKeys(key, listed.lo) <= 0 || compareBlobKeys(key, listed.hi) > 0) return false;
  return listed.byNode.get(nodeId)?.get(key) === size;
}
