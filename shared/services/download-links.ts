/**
 * The one read path: every download of a version's bytes (owner downloads, named versions, share
 * links of files and of folders) is signed here, on a replica that holds the object. The ledger
 * says which nodes hold verified copies; the primary goes first, and each candidate is checked
 * with a HEAD before its URL is handed out, because signing is offline and a node that lost the
 * object (or is down) would otherwise answer the client 404.
 */

import { errors } from '../domain/errors.ts';
import type { Version } from '../domain/model.ts';
import type { Logger } from '../observability/logger.ts';
import type { BlobStore } from '../ports/blob-store.ts';
import type { NodeRegistry } from './node-registry.ts';
import type { ReplicaLedger } from './replica-ledger.ts';

export interface SignedDownload {
  url: string;
  expiresAt: Date;
  nodeId: string;
}

export class DownloadLinks {
  private readonly nodes: NodeRegistry;
  private readonly ledger: ReplicaLedger;
  private readonly log: Logger;

  constructor(deps: { nodes: NodeRegistry; ledger: ReplicaLedger; log: Logger }) {
    this.nodes = deps.nodes;
    this.ledger = deps.ledger;
    this.log = deps.log;
  }

  /**
   * A short-lived GET URL for the version's bytes, on the first replica that has them. `singleUse`
   * for a download that spent a budget: the node serves it once where it can (see BlobStore).
   */
  async sign(
    v: Version,
    opts: { expiresInSeconds: number; fileName: string; singleUse?: boolean },
  ): Promise<SignedDownload> {
    const { id, store } = await this.replica(v);
    const signed = await store.presignGet({
      key: v.blobKey,
      expiresInSeconds: opts.expiresInSeconds,
      fileName: opts.fileName,
      contentType: v.contentType,
      ...(opts.singleUse ? { singleUse: true } : {}),
    });
    return { url: signed.url, expiresAt: signed.expiresAt, nodeId: id };
  }

  /**
   * A node holding the version's bytes: verified replicas on nodes that are up, the primary first,
   * then the others the ledger knows; when none answers, the primary as a last resort, else 503.
   */
  async replica(v: Version): Promise<{ id: string; store: BlobStore }> {
    await this.nodes.fresh();
    const replicas = (await this.ledger.forVersion(v.id)).map((r) => r.data);
    const verified = replicas.filter((r) => r.state === 'verified');
    // Then replicas the ledger has not verified yet (a copy may have landed), then the primary.
    const order = [
      ...verified.filter((r) => r.nodeId === v.nodeId),
      ...verified.filter((r) => r.nodeId !== v.nodeId),
      ...replicas.filter((r) => r.state !== 'verified'),
    ].map((r) => r.nodeId);
    if (!order.includes(v.nodeId)) order.push(v.nodeId);
    for (const nodeId of order) {
      const n = this.nodes.get(nodeId);
      if (!n || n.health === 'down') continue;
      const stat = await n.store.stat(v.blobKey).catch(() => undefined);
      if (stat?.size === v.size) return { id: n.id, store: n.store };
      this.log.warn('replica unavailable for download; trying the next', { versionId: v.id, nodeId: n.id });
    }
    const primary = this.nodes.store(v.nodeId);
    if (!primary) throw errors.unavailable(`storage node ${v.nodeId}`);
    return { id: v.nodeId, store: primary };
  }
}
