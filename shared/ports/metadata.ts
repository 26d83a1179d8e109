/**
 * The metadata ports: what the core needs of the system of record (items and versions, users,
 * grants, share links, the audit trail, quota reservations). The PostgreSQL repositories in
 * shared/adapters/postgres implement them for PGlite, PostgreSQL, Aurora and DSQL; services import
 * only these interfaces and shared/domain.
 *
 * Transactions: `Database.transaction(work)` (shared/ports/database.ts) hands `work` a handle;
 * `store.with(tx)` is the same store bound to that transaction, so several stores change together
 * or not at all.
 */
import type {
  AuditEvent,
  ChildCursor,
  ChildSort,
  Grant,
  Invitation,
  Item,
  ScanState,
  ShareLink,
  User,
  Version,
  VersionRef,
} from '../domain/model.ts';
import type { SqlExecutor } from './database.ts';

/** A transaction handle, as `Database.transaction` gives it. */
export type Tx = SqlExecutor;

export interface ItemStore {
  with(tx: Tx): ItemStore;
  get(id: string): Promise<Item | undefined>;
  /**
   * Locks the owner's root folder row. Every transaction that locks an ancestor chain (moves,
   * restores, commits) takes this first, so they queue per tree instead of deadlocking.
   */
  lockTree(ownerId: string): Promise<void>;
  /** The folder `id` and its ancestors up to the root, each locked for the transaction; nearest first. */
  lockChain(id: string, maxDepth?: number): Promise<Item[]>;
  findLiveChild(parentId: string, nameKey: string): Promise<Item | undefined>;
  insertFolder(input: {
    id: string;
    ownerId: string;
    parentId: string;
    name: string;
    nameKey: string;
  }): Promise<Item>;
  insertFile(input: {
    id: string;
    ownerId: string;
    parentId: string;
    name: string;
    nameKey: string;
    contentType: string;
    size: number;
    versionId: string;
    scanState?: ScanState | null;
  }): Promise<Item>;
  setCurrentVersion(
    fileId: string,
    v: { versionId: string; size: number; contentType: string; scanState?: ScanState | null },
  ): Promise<Item>;
  insertVersion(v: Omit<Version, 'createdAt'>): Promise<Version>;
  /** Records a scan verdict on the version and, when it is current, on its file. */
  setScanState(versionId: string, state: ScanState): Promise<void>;
  versionsAwaitingScan(limit: number): Promise<Version[]>;
  getVersion(id: string): Promise<Version | undefined>;
  /** Live children of a folder in a keyset order: by name, size or modified time. */
  listChildren(
    parentId: string,
    sort: ChildSort,
    after: ChildCursor | undefined,
    limit: number,
  ): Promise<{ item: Item; cursor: ChildCursor }[]>;
  /** Renames and/or moves, only if the item is still at `revision` (optimistic concurrency). */
  relocate(
    id: string,
    to: { parentId: string; name: string; nameKey: string },
    revision: number,
  ): Promise<Item | undefined>;
  /** Marks a trash root. Its name is freed; its descendants are hidden by it. */
  trash(id: string, by: string, revision?: number): Promise<Item | undefined>;
  untrash(id: string, to: { parentId: string; name: string; nameKey: string }): Promise<Item | undefined>;
  /** Trash roots of an owner, newest first, but for those a purge job is deleting (not failed). */
  listTrash(ownerId: string, limit: number): Promise<Item[]>;
  /** Unclaimed trash roots whose owner's trash retention (or `defaultDays`) has passed at `now`. */
  trashPastRetention(now: Date, defaultDays: number, limit: number): Promise<string[]>;
  /** Files with a non-current version older than their owner's `keepDays` at `now`. */
  filesPastKeepDays(now: Date, limit: number): Promise<string[]>;
  /** The item and everything under it, whatever its state. */
  subtree(rootId: string): Promise<Item[]>;
  listVersions(fileId: string, limit?: number): Promise<Version[]>;
  versionsOfFiles(fileIds: readonly string[], limit: number): Promise<Version[]>;
  /** Versions in id order after `afterId` (and up to `upTo`, inclusive, when given), a page at a time. */
  versionsAfter(afterId: string, limit: number, upTo?: string): Promise<VersionRef[]>;
  /**
   * Versions created at or after `since`, in (created_at, id) order, a page at a time: `after` is
   * the last row of the previous page (`at` is an opaque, exact stamp). The reconciler's
   * incremental pass walks what was committed since its last pass. With `ids`, only versions whose
   * id is after `ids.after` and up to `ids.upTo` (one sweep partition's range).
   */
  versionsCreatedSince(
    since: Date,
    after: { at: string; id: string } | undefined,
    limit: number,
    ids?: { after: string; upTo: string },
  ): Promise<(VersionRef & { at: string })[]>;
  /**
   * How many versions there are, from the version counters: `insertVersion` and `deleteVersions`
   * keep them in their own transaction, a row per (shard, node) (shared/domain/counter-shards.ts),
   * so this reads at most 256 rows per node whatever the size of the table. Exact once every shard
   * is counted (`uncountedShards`).
   */
  countVersions(): Promise<number>;
  /** Bytes and versions whose primary copy is on each node, from the same counters; nodes with none left out. */
  bytesByNode(): Promise<{ nodeId: string; bytes: number; versions: number }[]>;
  /** Shards whose counters have never been recounted (an existing deployment, until its backfill). */
  uncountedShards(): Promise<string[]>;
  /**
   * Recounts one shard from the versions in its id range and sets its counters to the result, in
   * one transaction that commits may run beside (they change the counters in theirs: whichever
   * commits second sees or waits for the other). Marks the shard counted; returns how far the
   * counters were off (counters minus versions; zero when they were right). Not inside a `with(tx)`.
   */
  recountShard(shard: string): Promise<{ versions: number; bytes: number }>;
  /** Deletes versions; returns the ids it deleted (a concurrent purge may have taken some). */
  deleteVersions(ids: readonly string[]): Promise<Set<string>>;
  /** Claims a trash root for purging, so a purge and a restore never both act on it. */
  claimForPurge(id: string): Promise<Item | undefined>;
  deleteItems(ids: readonly string[]): Promise<void>;
  /** Whether a version's primary copy on `nodeId` is stored under this key. */
  blobReferenced(nodeId: string, blobKey: string): Promise<boolean>;
  /** Whether any version stores its bytes under this key (on any node). */
  blobKeyInUse(blobKey: string): Promise<boolean>;
  /** Sum of the sizes of every retained version of an owner's files (the usage invariant). */
  sumVersionSizes(ownerId: string): Promise<number>;
  /** Adds to usage unless it would pass the quota; false when refused. Negative deltas always apply. */
  chargeUsage(userId: string, delta: number): Promise<boolean>;
  addUsage(userId: string, delta: number): Promise<void>;
}

export interface UserStore {
  get(id: string): Promise<User | undefined>;
  byEmail(email: string): Promise<User | undefined>;
  /** The user's current role (the system of record for authorization); undefined for no such user. */
  roleOf(id: string): Promise<'admin' | 'user' | undefined>;
  /** Changes role and/or quota; refuses to leave no admin. */
  update(
    id: string,
    patch: { role?: 'admin' | 'user'; quotaBytes?: number },
  ): Promise<{ user: User; previous: User } | 'not-found' | 'last-admin'>;
  /** Creates the user and root folder unless they exist (idempotent). */
  ensure(input: { id: string; email: string; role: 'admin' | 'user'; quotaBytes: number }): Promise<User>;
  /** Sets the retention policy, in `tx` when given. */
  setRetention(
    id: string,
    policy: { keepVersions: number | null; keepDays: number | null; trashDays: number },
    tx?: Tx,
  ): Promise<void>;
  /** Users by stored bytes, most first. */
  byUsage(limit: number): Promise<User[]>;
}

export interface PermissionStore {
  with(tx: Tx): PermissionStore;
  /** Grants to `granteeId` on any of `itemIds` (an item and its ancestors). */
  grantsOn(granteeId: string, itemIds: readonly string[]): Promise<Grant[]>;
  /** Inserts or changes the role of a grant. */
  upsert(g: Omit<Grant, 'createdAt'>): Promise<Grant>;
  get(id: string): Promise<Grant | undefined>;
  forItem(itemId: string): Promise<Grant[]>;
  forGrantee(granteeId: string, limit: number): Promise<Grant[]>;
  delete(id: string): Promise<void>;
  /** Removes the grants and invitations on these items. */
  deleteForItems(itemIds: readonly string[]): Promise<void>;
  /** Inserts or changes the role (and expiry) of the invitation of `email` to the item. */
  invite(i: Omit<Invitation, 'createdAt'>): Promise<Invitation>;
  getInvitation(id: string): Promise<Invitation | undefined>;
  /** The item's invitations that have not expired, oldest first. */
  invitationsFor(itemId: string): Promise<Invitation[]>;
  deleteInvitation(id: string): Promise<void>;
  /** Removes the invitations of `email` and returns those that had not expired (oldest first). */
  takeInvitations(email: string): Promise<Invitation[]>;
}

export interface ShareStore {
  with(tx: Tx): ShareStore;
  insert(l: Omit<ShareLink, 'createdAt' | 'downloads' | 'bytesServed' | 'revokedAt'>): Promise<ShareLink>;
  byTokenHash(hash: string): Promise<ShareLink | undefined>;
  get(id: string): Promise<ShareLink | undefined>;
  forItem(itemId: string): Promise<ShareLink[]>;
  revoke(id: string): Promise<void>;
  /** Counts one download of `bytes`, only while the link is live and within its budgets. */
  spend(id: string, bytes: number): Promise<ShareLink | undefined>;
}

export interface AuditLog {
  with(tx: Tx): AuditLog;
  record(e: {
    actorId: string | null;
    ownerId: string | null;
    itemId: string | null;
    action: string;
    detail?: Record<string, unknown>;
  }): Promise<void>;
  /** Newest first; `ownerId` undefined means every owner (admins). */
  list(
    filter: { ownerId?: string; itemId?: string; action?: string; before?: { at: string; id: string } },
    limit: number,
  ): Promise<{ event: AuditEvent; cursor: { at: string; id: string } }[]>;
}

export type ReserveResult = 'reserved' | 'quota' | 'too-many-open';

/**
 * Quota reservations of open uploads: creating an upload reserves its size, the commit turns it
 * into usage, abort or refusal releases it, and an unsettled one stops counting at expiry.
 */
export interface ReservationStore {
  with(tx: Tx): ReservationStore;
  /** Reserves `size` bytes of the owner's quota for an upload; run inside a transaction. */
  reserve(input: {
    uploadId: string;
    ownerId: string;
    createdBy: string;
    size: number;
    blobKey: string;
    expiresAt: Date;
    maxOpen: number;
  }): Promise<ReserveResult>;
  /** Ends a reservation (commit, abort, refusal). Idempotent. */
  release(uploadId: string): Promise<void>;
  /**
   * Moves a live reservation's expiry to `until` if that is later (a verification that outlasts
   * the session's first day keeps its quota and its object). No-op for one that has ended.
   */
  extend(uploadId: string, until: Date): Promise<void>;
  /** Whether an upload that is still open will write (or has written) this object. */
  heldByOpenUpload(blobKey: string): Promise<boolean>;
  /** Bytes an owner has reserved in open uploads. */
  reservedBytes(ownerId: string): Promise<number>;
}
