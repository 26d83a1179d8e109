/** Share links in the system of record. */
import type { ShareLink } from '../../domain/model.ts';
import type { SqlExecutor } from '../../ports/database.ts';
import type { ShareStore } from '../../ports/metadata.ts';

interface Row {
  id: string;
  token_hash: string;
  item_id: string;
  owner_id: string;
  created_by: string;
  created_at: Date | string;
  expires_at: Date | string;
  password_hash: string | null;
  max_downloads: number | null;
  max_bytes: number | string | null;
  downloads: number;
  bytes_served: number | string;
  revoked_at: Date | string | null;
}

const d = (v: Date | string) => (v instanceof Date ? v : new Date(v));
const toLink = (r: Row): ShareLink => ({
  id: r.id,
  tokenHash: r.token_hash,
  itemId: r.item_id,
  ownerId: r.owner_id,
  createdBy: r.created_by,
  createdAt: d(r.created_at),
  expiresAt: d(r.expires_at),
  passwordHash: r.password_hash,
  maxDownloads: r.max_downloads === null ? null : Number(r.max_downloads),
  maxBytes: r.max_bytes === null ? null : Number(r.max_bytes),
  downloads: Number(r.downloads),
  bytesServed: Number(r.bytes_served),
  revokedAt: r.revoked_at === null ? null : d(r.revoked_at),
});

export class ShareRepository implements ShareStore {
  private readonly q: SqlExecutor;

  constructor(q: SqlExecutor) {
    this.q = q;
  }

  with(tx: SqlExecutor) {
    return new ShareRepository(tx);
  }

  async insert(
    l: Omit<ShareLink, 'createdAt' | 'downloads' | 'bytesServed' | 'revokedAt'>,
  ): Promise<ShareLink> {
    const rows = await this.q.query<Row>(
      `insert into share_links (id, token_hash, item_id, owner_id, created_by, expires_at, password_hash, max_downloads, max_bytes)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning *`,
      [
        l.id,
        l.tokenHash,
        l.itemId,
        l.ownerId,
        l.createdBy,
        l.expiresAt,
        l.passwordHash,
        l.maxDownloads,
        l.maxBytes,
      ],
    );
    return toLink(rows[0] as Row);
  }

  async byTokenHash(hash: string): Promise<ShareLink | undefined> {
    const rows = await this.q.query<Row>('select * from share_links where token_hash = $1', [hash]);
    return rows[0] ? toLink(rows[0]) : undefined;
  }

  async get(id: string): Promise<ShareLink | undefined> {
    const rows = await this.q.query<Row>('select * from share_links where id = $1', [id]);
    return rows[0] ? toLink(rows[0]) : undefined;
  }

  async forItem(itemId: string): Promise<ShareLink[]> {
    const rows = await this.q.query<Row>(
      'select * from share_links where item_id = $1 order by created_at desc',
      [itemId],
    );
    return rows.map(toLink);
  }

  async revoke(id: string): Promise<void> {
    await this.q.query('update share_links set revoked_at = now() where id = $1 and revoked_at is null', [
      id,
    ]);
  }

  /** Counts one download of `bytes`, only while the link is live and within its budgets. */
  async spend(id: string, bytes: number): Promise<ShareLink | undefined> {
    const rows = await this.q.query<Row>(
      `update share_links set downloads = downloads + 1, bytes_served = bytes_served + $2
       where id = $1 and revoked_at is null and expires_at > now()
         and (max_downloads is null or downloads < max_downloads)
         and (max_bytes is null or bytes_served + $2 <= max_bytes)
       returning *`,
      [id, bytes],
    );
    return rows[0] ? toLink(rows[0]) : undefined;
  }
}
