/**
 * Share links: anonymous, expiring access to a file or a folder. Tokens are 256 random bits, stored
 * only as hashes and compared in constant time. A link may carry a password (scrypt), a download
 * count and a byte budget, both spent atomically. Password guesses are throttled per link and per
 * address, and their KDF runs through a bounded queue (SharePasswordThrottle). Every error a link
 * can give says what is wrong with the link and nothing about the item behind it. Every download is
 * counted and audited. A link with a budget spends it when it signs a URL, and that URL is
 * single-use, so one spend is one fetch of the bytes (on nodes that can; S3's URLs are kept short
 * instead, see BlobStore.presignGet and docs/security.md).
 */

import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { errors } from '../domain/errors.ts';
import type { Item, Principal, ShareLink } from '../domain/model.ts';
import { hashPassword, verifyPassword } from '../domain/password-hash.ts';
import type { Logger } from '../observability/logger.ts';
import type { AuditLog, ItemStore, ShareStore } from '../ports/metadata.ts';
import type { AccessControl } from './access-control.ts';
import type { DownloadLinks } from './download-links.ts';
import type { MetadataCache } from './metadata-cache.ts';
import type { SharePasswordThrottle } from './share-password-throttle.ts';

const tokenHash = (token: string) => createHash('sha256').update(token).digest('hex');
const SHARE_URL_TTL = 60;

export const shareErrors = {
  notFound: errors.shareNotFound,
  expired: errors.shareExpired,
  revoked: errors.shareRevoked,
  exhausted: errors.shareExhausted,
  unavailable: errors.shareUnavailable,
  passwordRequired: errors.sharePasswordRequired,
  passwordWrong: errors.sharePasswordInvalid,
};

export class ShareService {
  private readonly shares: ShareStore;
  private readonly items: ItemStore;
  private readonly access: AccessControl;
  private readonly cache: MetadataCache;
  private readonly audit: AuditLog;
  private readonly downloads: DownloadLinks;
  private readonly log: Logger;
  private readonly kdfCost: number;
  private readonly passwordThrottle: SharePasswordThrottle;

  constructor(deps: {
    shares: ShareStore;
    items: ItemStore;
    access: AccessControl;
    cache: MetadataCache;
    audit: AuditLog;
    downloads: DownloadLinks;
    log: Logger;
    kdfCost: number;
    passwordThrottle: SharePasswordThrottle;
  }) {
    this.shares = deps.shares;
    this.items = deps.items;
    this.access = deps.access;
    this.cache = deps.cache;
    this.audit = deps.audit;
    this.downloads = deps.downloads;
    this.log = deps.log;
    this.kdfCost = deps.kdfCost;
    this.passwordThrottle = deps.passwordThrottle;
  }

  async create(
    p: Principal,
    input: {
      itemId: string;
      expiresInSeconds: number;
      password?: string | undefined;
      maxDownloads?: number | undefined;
      maxBytes?: number | undefined;
    },
  ): Promise<{ link: ShareLink; token: string }> {
    const { item } = await this.access.require(p, input.itemId, 'manage');
    const token = randomBytes(32).toString('base64url');
    const link = await this.shares.insert({
      id: randomUUID(),
      tokenHash: tokenHash(token),
      itemId: item.id,
      ownerId: item.ownerId,
      createdBy: p.userId,
      expiresAt: new Date(Date.now() + input.expiresInSeconds * 1000),
      passwordHash: input.password ? await hashPassword(input.password, this.kdfCost) : null,
      maxDownloads: input.maxDownloads ?? null,
      maxBytes: input.maxBytes ?? null,
    });
    await this.audit.record({
      actorId: p.userId,
      ownerId: item.ownerId,
      itemId: item.id,
      action: 'share.create',
      detail: {
        shareId: link.id,
        expiresAt: link.expiresAt.toISOString(),
        password: link.passwordHash !== null,
      },
    });
    return { link, token };
  }

  async list(p: Principal, itemId: string): Promise<ShareLink[]> {
    const { item } = await this.access.require(p, itemId, 'manage');
    return this.shares.forItem(item.id);
  }

  async revoke(p: Principal, id: string): Promise<void> {
    const link = await this.shares.get(id);
    if (!link) throw errors.notFound('share');
    await this.access.require(p, link.itemId, 'manage', 'share').catch(() => {
      throw errors.notFound('share');
    });
    await this.shares.revoke(id);
    await this.audit.record({
      actorId: p.userId,
      ownerId: link.ownerId,
      itemId: link.itemId,
      action: 'share.revoke',
      detail: { shareId: id },
    });
  }

  /** The link behind a token, checked for state and password. */
  private async open(
    token: string,
    password: string | undefined,
    ip: string,
  ): Promise<{ link: ShareLink; root: Item }> {
    if (!/^[A-Za-z0-9_-]{20,100}$/.test(token)) throw shareErrors.notFound();
    const hash = tokenHash(token);
    const link = await this.shares.byTokenHash(hash);
    // The lookup is by hash; compare again in constant time so no code path leaks a timing difference.
    if (!link || !timingSafeEqual(Buffer.from(link.tokenHash), Buffer.from(hash)))
      throw shareErrors.notFound();
    if (link.revokedAt) throw shareErrors.revoked();
    if (link.expiresAt.getTime() <= Date.now()) throw shareErrors.expired();
    if (link.maxDownloads !== null && link.downloads >= link.maxDownloads) throw shareErrors.exhausted();
    const stored = link.passwordHash;
    if (stored) {
      if (!password) throw shareErrors.passwordRequired();
      // 429 while the link or the address is locked, the right password too: no KDF run then.
      const { ok, lockedFor } = await this.passwordThrottle.verify(link.id, ip, () =>
        verifyPassword(password, stored),
      );
      if (!ok) {
        await this.audit.record({
          actorId: null,
          ownerId: link.ownerId,
          itemId: link.itemId,
          action: 'share.password_failed',
          detail: { shareId: link.id, ip, lockedFor },
        });
        if (lockedFor > 0)
          this.log.warn('share password guessing: locked', { shareId: link.id, ip, lockedFor });
        throw shareErrors.passwordWrong();
      }
    }
    const root = await this.cache.item(link.itemId);
    const chain = root ? await this.access.chain(root) : undefined;
    if (!root || !chain || root.deletedAt || chain.some((a) => a.deletedAt)) throw shareErrors.unavailable();
    return { link, root };
  }

  /**
   * `GET /s/{token}[/{itemId}]`: a folder answers its listing; a file spends one download from the
   * link's budgets and answers a short-lived signed URL, single-use when the link has a budget (a
   * URL fetched again would be a download nobody paid for). A link without one hands out ordinary
   * URLs, which a client may resume with Range.
   */
  async access_(
    token: string,
    password: string | undefined,
    itemId: string | undefined,
    ip: string,
    peek = false,
  ) {
    const { link, root } = await this.open(token, password, ip);
    let target = root;
    if (itemId && itemId !== root.id) {
      const inner = await this.cache.item(itemId);
      const chain = inner ? await this.access.chain(inner) : undefined;
      const inside = chain?.some((a) => a.id === root.id);
      const live = inner && !inner.deletedAt && chain?.every((a) => !a.deletedAt || a.id === root.id);
      if (!inner || !inside || !live || root.kind !== 'folder') throw errors.notFound('item');
      // Ancestors above the shared folder are not this link's business, but below it they must be live.
      const below =
        chain?.slice(
          0,
          chain.findIndex((a) => a.id === root.id),
        ) ?? [];
      if (below.some((a) => a.deletedAt)) throw errors.notFound('item');
      target = inner;
    }
    if (target.kind === 'folder') {
      const rows = await this.items.listChildren(target.id, { by: 'name', dir: 'asc' }, undefined, 1000);
      return { kind: 'folder' as const, folder: target, items: rows.map((r) => r.item) };
    }
    const version = target.currentVersionId
      ? await this.items.getVersion(target.currentVersionId)
      : undefined;
    if (!version) throw shareErrors.unavailable();
    // A look at what the link holds (name and size) spends nothing and signs nothing.
    if (peek)
      return { kind: 'info' as const, file: { id: target.id, name: target.name, size: version.size } };
    if (version.scanState === 'scanning' || version.scanState === 'infected')
      throw errors.quarantined(version.scanState);
    const spent = await this.shares.spend(link.id, version.size);
    if (!spent) {
      const now = await this.shares.get(link.id);
      if (now?.revokedAt) throw shareErrors.revoked();
      if (now && now.expiresAt.getTime() <= Date.now()) throw shareErrors.expired();
      throw shareErrors.exhausted();
    }
    await this.audit.record({
      actorId: null,
      ownerId: link.ownerId,
      itemId: target.id,
      action: 'share.download',
      detail: { shareId: link.id, bytes: version.size, ip, downloads: spent.downloads },
    });
    this.log.info('share download', { shareId: link.id, bytes: version.size });
    const signed = await this.downloads.sign(version, {
      expiresInSeconds: SHARE_URL_TTL,
      fileName: target.name,
      singleUse: link.maxDownloads !== null || link.maxBytes !== null,
    });
    return {
      kind: 'file' as const,
      url: signed.url,
      expiresAt: signed.expiresAt,
      file: { id: target.id, name: target.name, size: version.size },
    };
  }
}
