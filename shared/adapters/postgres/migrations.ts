/**
 * Schema migrations, applied at start-up and idempotent. Kept inside Aurora DSQL's subset: one DDL
 * statement at a time and never mixed with DML in a transaction; no triggers, sequences,
 * extensions, temp tables, TRUNCATE or SAVEPOINT; UUID keys; references enforced by the code.
 * (test/unit/migrations.test.ts checks every statement for the forbidden constructs.)
 */
import { VERSION_SHARDS } from '../../domain/counter-shards.ts';
import type { Database } from '../../ports/database.ts';

export interface Migration {
  version: number;
  name: string;
  statements: string[];
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'users, credentials, items, versions',
    statements: [
      `create table if not exists users (
        id uuid primary key,
        email text not null,
        email_key text not null,
        role text not null,
        root_folder_id uuid not null,
        quota_bytes bigint not null,
        used_bytes bigint not null default 0,
        created_at timestamptz not null default now(),
        constraint users_email_unique unique (email_key)
      )`,
      `create table if not exists local_credentials (
        user_id uuid primary key,
        email_key text not null,
        password_hash text not null,
        constraint local_credentials_email_unique unique (email_key)
      )`,
      // Files and folders share one table so a folder page is one keyset scan. name_key is NULL
      // while an item is in the trash: NULLs never collide, so trashed items free their name.
      `create table if not exists items (
        id uuid primary key,
        owner_id uuid not null,
        parent_id uuid,
        kind text not null,
        name text not null,
        name_key text,
        content_type text,
        size bigint not null default 0,
        current_version_id uuid,
        revision integer not null default 1,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        deleted_at timestamptz,
        constraint items_name_unique unique (parent_id, name_key)
      )`,
      `create table if not exists versions (
        id uuid primary key,
        file_id uuid not null,
        node_id text not null,
        blob_key text not null,
        size bigint not null,
        sha256 text not null,
        content_type text not null,
        created_by uuid not null,
        created_at timestamptz not null default now()
      )`,
      'create index if not exists versions_by_file on versions (file_id, created_at)',
      // The local profile's StateStore (DynamoDB's stand-in). data is JSON text: DSQL stores no jsonb.
      `create table if not exists state_items (
        pk text not null,
        sk text not null,
        data text not null,
        expires_at bigint,
        version integer not null,
        primary key (pk, sk)
      )`,
    ],
  },
  {
    version: 2,
    name: 'permissions, trash, retention, audit',
    statements: [
      'alter table users add column if not exists keep_versions integer',
      'alter table users add column if not exists keep_days integer',
      'alter table users add column if not exists trash_days integer',
      // Only the item a user deleted is marked (the trash root): descendants are hidden because an
      // ancestor is deleted. Deleting a tree of any size changes one row (DSQL: <= 3,000 per tx).
      'alter table items add column if not exists deleted_by uuid',
      'alter table items add column if not exists original_parent_id uuid',
      `create table if not exists permissions (
        id uuid primary key,
        item_id uuid not null,
        owner_id uuid not null,
        grantee_id uuid not null,
        role text not null,
        granted_by uuid not null,
        created_at timestamptz not null default now(),
        constraint permissions_item_grantee_unique unique (item_id, grantee_id)
      )`,
      'create index if not exists permissions_by_grantee on permissions (grantee_id)',
      `create table if not exists audit_events (
        id uuid primary key,
        at timestamptz not null default now(),
        actor_id uuid,
        owner_id uuid,
        item_id uuid,
        action text not null,
        detail text not null
      )`,
      'create index if not exists audit_by_owner on audit_events (owner_id, at)',
      'create index if not exists audit_by_item on audit_events (item_id, at)',
      'create index if not exists items_trash on items (owner_id, deleted_at)',
      'create index if not exists versions_by_blob on versions (node_id, blob_key)',
      'create index if not exists items_by_parent_size on items (parent_id, size, id)',
      'create index if not exists items_by_parent_updated on items (parent_id, updated_at, id)',
    ],
  },
  {
    version: 3,
    name: 'content hash, part hashes and scan state of versions',
    statements: [
      // SHA-256 of the concatenated SHA-256s of 4 MiB blocks (Dropbox's content_hash).
      'alter table versions add column if not exists content_hash text',
      // The part size and per-part SHA-256s (JSON array), for delta re-uploads of the next version.
      'alter table versions add column if not exists part_size bigint',
      'alter table versions add column if not exists part_hashes text',
      // scanning | clean | infected; NULL on rows older than scanning (treated as clean).
      'alter table versions add column if not exists scan_state text',
      'create index if not exists versions_by_scan_state on versions (scan_state, created_at)',
      // The current version's scan state, so a folder page shows quarantined files without a join.
      'alter table items add column if not exists scan_state text',
    ],
  },
  {
    version: 4,
    name: 'share links',
    statements: [
      // Tokens are stored only as SHA-256 hashes: a database leak does not leak working links.
      `create table if not exists share_links (
        id uuid primary key,
        token_hash text not null,
        item_id uuid not null,
        owner_id uuid not null,
        created_by uuid not null,
        created_at timestamptz not null default now(),
        expires_at timestamptz not null,
        password_hash text,
        max_downloads integer,
        max_bytes bigint,
        downloads integer not null default 0,
        bytes_served bigint not null default 0,
        revoked_at timestamptz,
        constraint share_links_token_unique unique (token_hash)
      )`,
      'create index if not exists share_links_by_item on share_links (item_id)',
      'create index if not exists audit_by_action on audit_events (action, at)',
    ],
  },
  {
    version: 5,
    name: 'folder pages by name in index order',
    statements: [
      // The name-sorted keyset page orders by (name_key, id): without id in an index the planner
      // fetched and sorted the whole folder for every page (75 ms a page at 100,000 entries; the
      // benchmark's list curve found it). The size and modified orders already had such indexes.
      'create index if not exists items_by_parent_name on items (parent_id, name_key, id)',
    ],
  },
  {
    version: 6,
    name: 'quota reservations of open uploads',
    statements: [
      // One row per open upload: its size is inside the owner's quota until the commit (which
      // turns it into usage) or an abort; a row past expires_at counts for nothing.
      `create table if not exists upload_reservations (
        upload_id uuid primary key,
        owner_id uuid not null,
        created_by uuid not null,
        size bigint not null,
        blob_key text not null,
        expires_at timestamptz not null
      )`,
      'create index if not exists reservations_by_owner on upload_reservations (owner_id, expires_at)',
      // The orphan sweep asks whether an open upload owns an object before deleting it.
      'create index if not exists reservations_by_blob on upload_reservations (blob_key)',
      'create index if not exists reservations_by_creator on upload_reservations (created_by, expires_at)',
    ],
  },
  {
    version: 7,
    name: 'purges claim their trash root',
    statements: [
      // A purge claims its trash root first, so a restore racing it is refused rather than bring
      // back a half-purged tree.
      'alter table items add column if not exists purge_started_at timestamptz',
    ],
  },
  {
    version: 8,
    name: 'invitations: grants to addresses without an account',
    statements: [
      // A grant to an email no account holds yet; registering the address turns it into a
      // permissions row. Answered like a grant, so sharing does not reveal who has an account.
      `create table if not exists invitations (
        id uuid primary key,
        item_id uuid not null,
        owner_id uuid not null,
        email text not null,
        role text not null,
        granted_by uuid not null,
        created_at timestamptz not null default now(),
        expires_at timestamptz not null,
        constraint invitations_item_email_unique unique (item_id, email)
      )`,
      'create index if not exists invitations_by_email on invitations (email)',
    ],
  },
  {
    version: 9,
    name: 'versions by creation time',
    statements: [
      // The reconciler's incremental pass walks the versions committed since its last pass.
      'create index if not exists versions_by_created on versions (created_at, id)',
    ],
  },
  {
    version: 10,
    name: 'purge jobs: big trees deleted in batches',
    statements: [
      // A purge too big for one transaction (DSQL: 3,000 rows, 10 MiB) runs as a job of batches;
      // each batch moves walk_at and the counts in its own transaction, so a killed worker resumes.
      `create table if not exists purge_jobs (
        id uuid primary key,
        operation text not null,
        owner_id uuid not null,
        requested_by uuid,
        root_id uuid,
        reason text not null,
        cutoff timestamptz not null default now(),
        state text not null,
        phase text not null,
        walk_at uuid,
        total_rows bigint,
        done_rows bigint not null default 0,
        items bigint not null default 0,
        versions bigint not null default 0,
        bytes bigint not null default 0,
        blobs_reclaimed bigint not null default 0,
        failures integer not null default 0,
        error text,
        lease_owner uuid,
        lease_until timestamptz,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        finished_at timestamptz
      )`,
      'create index if not exists purge_jobs_by_state on purge_jobs (state, updated_at)',
      // The job that claimed a trash root (purge_started_at is set with it).
      'alter table items add column if not exists purge_job_id uuid',
      'create index if not exists items_by_purge_job on items (purge_job_id)',
    ],
  },
  {
    version: 11,
    name: 'counters: versions and bytes per node, replica-ledger counts, users by usage',
    statements: [
      // Versions and their bytes per primary node, kept in the transaction of every insert and
      // delete of a version, a row per (shard, node): a version's shard is the first byte of its id
      // (shared/domain/counter-shards.ts), so commits spread over 256 rows (no DSQL hot row) and a
      // shard can be recounted from its id range alone, in a bounded transaction.
      `create table if not exists version_counters (
        shard text not null,
        node_id text not null,
        versions bigint not null,
        bytes bigint not null,
        primary key (shard, node_id)
      )`,
      // The shards whose counters have been recounted from the versions at least once. Until a
      // shard is here its counters lack the versions written before they existed: an existing
      // deployment recounts them (CounterAudit) before it answers from them.
      `create table if not exists version_counter_shards (
        shard text primary key,
        counted_at timestamptz not null
      )`,
      // A fresh deployment has nothing to recount. (A statement of its own: DSQL runs DDL and DML
      // in separate transactions; the exists() reads one row at most, never the whole table.)
      `insert into version_counter_shards (shard, counted_at)
       select s.shard, now() from (values ${VERSION_SHARDS.map((x) => `('${x}')`).join(', ')}) as s (shard)
       where not exists (select 1 from versions) on conflict (shard) do nothing`,
      // The local StateStore's counters (StateStore.transact 'add'): a row per (item, name).
      `create table if not exists state_counters (
        pk text not null,
        sk text not null,
        name text not null,
        value bigint not null,
        primary key (pk, sk, name)
      )`,
      // Admin usage lists users by usage: the index hands over the top of the list, without
      // reading and sorting every user.
      'create index if not exists users_by_usage on users (used_bytes, id)',
    ],
  },
  {
    version: 12,
    name: 'versions by blob key',
    statements: [
      // The orphan sweep asks, for every object it lists, whether any version keeps its bytes under
      // that key; versions_by_blob leads with node_id, so without this each question read the table.
      'create index if not exists versions_by_blob_key on versions (blob_key)',
    ],
  },
];

export async function migrate(db: Database, list: readonly Migration[] = migrations): Promise<number> {
  await db.exec(`create table if not exists schema_migrations (
    version integer primary key,
    name text not null,
    applied_at timestamptz not null default now()
  )`);
  const rows = await db.query<{ version: number }>('select version from schema_migrations');
  const applied = new Set(rows.map((r) => Number(r.version)));
  let count = 0;
  for (const m of [...list].sort((a, b) => a.version - b.version)) {
    if (applied.has(m.version)) continue;
    for (const statement of m.statements) await db.exec(forDialect(statement, db.dialect));
    await db.query('insert into schema_migrations (version, name) values ($1, $2) on conflict do nothing', [
      m.version,
      m.name,
    ]);
    count++;
  }
  return count;
}

/** Aurora DSQL builds indexes on existing tables asynchronously and wants it said. */
export function forDialect(statement: string, dialect: Database['dialect']): string {
  if (dialect !== 'dsql') return statement;
  return statement.replace(
    /^create (unique )?index if not exists/i,
    (_m, u: string | undefined) => `create ${u ?? ''}index async if not exists`,
  );
}
