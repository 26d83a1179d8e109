/**
 * Downloads for those with access: a version of a file the principal may read, refused while it is
 * quarantined, signed through `DownloadLinks` (the one replica-choosing path, shared with share
 * links).
 */

import { errors } from '../domain/errors.ts';
import type { Principal } from '../domain/model.ts';
import type { ItemStore } from '../ports/metadata.ts';
import type { DownloadLinks } from './download-links.ts';
import type { FolderService } from './folder-service.ts';

export class DownloadService {
  private readonly folders: Pick<FolderService, 'item'>;
  private readonly items: ItemStore;
  private readonly links: DownloadLinks;
  private readonly urlTtlSeconds: number;

  constructor(deps: {
    folders: Pick<FolderService, 'item'>;
    items: ItemStore;
    links: DownloadLinks;
    urlTtlSeconds: number;
  }) {
    this.folders = deps.folders;
    this.items = deps.items;
    this.links = deps.links;
    this.urlTtlSeconds = deps.urlTtlSeconds;
  }

  /** A short-lived URL for the file's current version, or the one named. */
  async downloadUrl(
    p: Principal,
    fileId: string,
    versionId?: string,
  ): Promise<{ url: string; expiresAt: string }> {
    const { item: file } = await this.folders.item(p, fileId, 'file');
    const wanted = versionId ?? file.currentVersionId;
    const v = wanted ? await this.items.getVersion(wanted) : undefined;
    if (!v || v.fileId !== file.id) throw errors.notFound(versionId ? 'version' : 'file');
    if (v.scanState === 'scanning' || v.scanState === 'infected') throw errors.quarantined(v.scanState);
    const signed = await this.links.sign(v, {
      expiresInSeconds: this.urlTtlSeconds,
      fileName: file.name,
    });
    return { url: signed.url, expiresAt: signed.expiresAt.toISOString() };
  }
}
