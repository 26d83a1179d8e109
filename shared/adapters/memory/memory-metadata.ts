/**
 * In-memory adapters of the metadata ports (shared/ports/metadata.ts) over one shared state, and
 * the `MemoryDatabase` whose transactions bind them: service unit tests run without a database.
 *
 * They match the PostgreSQL repositories' observable behaviour (test/integration/
 * metadata-ports.contract.test.ts runs one suite on memory, PGlite and PostgreSQL): keyset orders
 * and cursors, unique-constraint violations with the constraint's name, optimistic revisions,
 * quotas and budgets, rollback of every store's writes when a transaction throws, numbers as
 * numbers and Dates as Dates, and copies out (mutating a returned object changes nothing stored).
 * Ids are uuid columns there, so here too a malformed id is refused (SQLSTATE 22P02).
 *
 *   const m = createMemoryMetadata();
 *   await m.db.transaction(async (tx) => { await m.items.with(tx).insertFolder(…); … });
 */
import type {
  AuditLog,
  ItemStore,
  PermissionStore,
  ReservationStore,
  ShareStore,
  UserStore,
} from '../../ports/metadata.ts';
import type { PurgeJobStore } from '../../ports/purge-job-store.ts';
import { MemoryItemStore } from './memory-metadata-items.ts';
import { MemoryDatabase, type MemoryDatabaseOptions } from './memory-metadata-state.ts';
import {
  MemoryAuditLog,
  MemoryPermissionStore,
  MemoryReservationStore,
  MemoryShareStore,
} from './memory-metadata-stores.ts';
import { MemoryUserStore } from './memory-metadata-users.ts';
import { MemoryPurgeJobStore } from './memory-purge-jobs.ts';

export { MemoryItemStore } from './memory-metadata-items.ts';
export { MemoryDatabase, type MemoryDatabaseOptions, MemoryTx } from './memory-metadata-state.ts';
export {
  MemoryAuditLog,
  MemoryPermissionStore,
  MemoryReservationStore,
  MemoryShareStore,
} from './memory-metadata-stores.ts';
export { MemoryUserStore } from './memory-metadata-users.ts';
export { MemorySqlError } from './memory-metadata-values.ts';

export interface MemoryMetadata {
  db: MemoryDatabase;
  items: ItemStore;
  users: UserStore;
  permissions: PermissionStore;
  shares: ShareStore;
  audit: AuditLog;
  reservations: ReservationStore;
  purgeJobs: PurgeJobStore;
}

/** A fresh, empty metadata state with each port's store over it. */
export function createMemoryMetadata(opts: MemoryDatabaseOptions = {}): MemoryMetadata {
  return memoryMetadataOver(new MemoryDatabase(opts));
}

/** Each port's store over an existing memory database (several containers sharing one state). */
export function memoryMetadataOver(db: MemoryDatabase): MemoryMetadata {
  return {
    db,
    items: new MemoryItemStore(db),
    users: new MemoryUserStore(db),
    permissions: new MemoryPermissionStore(db),
    shares: new MemoryShareStore(db),
    audit: new MemoryAuditLog(db),
    reservations: new MemoryReservationStore(db),
    purgeJobs: new MemoryPurgeJobStore(db),
  };
}
