/**
 * The metadata ports on each backend: the in-memory adapters, and the PostgreSQL repositories over
 * PGlite and over PostgreSQL (a fresh schema per test, as `sqlBackends` opens them).
 */
import { createMemoryMetadata } from '../../shared/adapters/memory/memory-metadata.ts';
import { AuditRepository } from '../../shared/adapters/postgres/audit-repository.ts';
import { ItemRepository } from '../../shared/adapters/postgres/item-repository.ts';
import { PermissionRepository } from '../../shared/adapters/postgres/permission-repository.ts';
import { ReservationRepository } from '../../shared/adapters/postgres/reservation-repository.ts';
import { ShareRepository } from '../../shared/adapters/postgres/share-repository.ts';
import { UserRepository } from '../../shared/adapters/postgres/user-repository.ts';
import type { Database } from '../../shared/ports/database.ts';
import type {
  AuditLog,
  ItemStore,
  PermissionStore,
  ReservationStore,
  ShareStore,
  UserStore,
} from '../../shared/ports/metadata.ts';
import { sqlBackends } from './fixtures.ts';

export interface MetadataPorts {
  db: Database;
  items: ItemStore;
  users: UserStore;
  permissions: PermissionStore;
  shares: ShareStore;
  audit: AuditLog;
  reservations: ReservationStore;
}

export interface MetadataBackend {
  name: 'memory' | 'pglite' | 'postgres';
  open(): Promise<{ ports: MetadataPorts; dispose(): Promise<void> }>;
}

/** The PostgreSQL repositories over one database. */
export const sqlMetadataPorts = (db: Database): MetadataPorts => ({
  db,
  items: new ItemRepository(db),
  users: new UserRepository(db),
  permissions: new PermissionRepository(db),
  shares: new ShareRepository(db),
  audit: new AuditRepository(db),
  reservations: new ReservationRepository(db),
});

export const metadataBackends: MetadataBackend[] = [
  {
    name: 'memory',
    async open() {
      return { ports: createMemoryMetadata(), dispose: async () => undefined };
    },
  },
  ...sqlBackends.map(
    (backend): MetadataBackend => ({
      name: backend.name,
      async open() {
        const { db, dispose } = await backend.open();
        return { ports: sqlMetadataPorts(db), dispose };
      },
    }),
  ),
];
