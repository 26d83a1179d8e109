/**
 * Writes based on a revision: the 409 answer when the item moved on since the revision the client
 * saw (If-Match), with the item as it is now so the client can rebase.
 */

import { errors } from '../domain/errors.ts';
import { etagFor } from '../domain/etag.ts';
import type { Item } from '../domain/model.ts';

export function staleRevision(current: Item) {
  return errors.conflict('the item changed since the version you based this on', {
    current: {
      id: current.id,
      name: current.name,
      parentId: current.parentId,
      revision: current.revision,
      etag: etagFor(current),
    },
  });
}
