/**
 * Walks a node's listing a page at a time (`BlobStore.listPage`), so a caller holds one page of
 * keys however many the node has: the orphan sweep over a node of millions of objects, the
 * reconciler's merge-join of `v/<versionId>` keys against versions in id order.
 */
import { type BlobStore, compareBlobKeys, type ListedBlob } from '../ports/blob-store.ts';

export async function* blobPages(
  store: BlobStore,
  prefix: string,
  opts: { startAfter?: string; limit?: number } = {},
): AsyncGenerator<ListedBlob[]> {
  let startAfter = opts.startAfter;
  for (;;) {
    const page = await store.listPage(prefix, {
      ...(startAfter !== undefined ? { startAfter } : {}),
      ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
    });
    if (page.items.length > 0) yield page.items;
    if (page.next === undefined) return;
    // A cursor that does not move forward would list the same page for ever.
    if (startAfter !== undefined && compareBlobKeys(page.next, startAfter) <= 0)
      throw new Error(`node ${store.nodeId} listed ${page.next} after ${startAfter}`);
    startAfter = page.next;
  }
}
