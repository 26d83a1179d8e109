/**
 * The storage nodes this deployment writes to, with their health and the replication factor.
 * Placement of a version is computed here from the node list (see domain/placement.ts).
 */
import { errors } from '../domain/errors.ts';
import { type NodeInfo, place } from '../domain/placement.ts';
import type { BlobStore } from '../ports/blob-store.ts';
import type { NodeHealth, StorageNode } from '../ports/storage-node.ts';

export type { NodeHealth, StorageNode } from '../ports/storage-node.ts';

/** Where a process reads the health verdicts another process (the canary) wrote. */
export interface HealthSource {
  load(): Promise<void>;
  maxAgeMs: number;
}

export class NodeRegistry {
  private readonly nodes = new Map<string, StorageNode>();
  private readonly factor: number;
  private health: HealthSource | undefined;
  private loadedAt = Number.NEGATIVE_INFINITY;
  private loading: Promise<void> | undefined;

  constructor(nodes: StorageNode[], replicationFactor: number) {
    for (const n of nodes) this.nodes.set(n.id, n);
    this.factor = Math.max(1, replicationFactor);
  }

  /** The configured factor, capped by how many nodes can hold data. */
  get replicationFactor(): number {
    return Math.min(this.factor, Math.max(1, this.all().filter((n) => !n.draining).length));
  }

  all(): StorageNode[] {
    return [...this.nodes.values()];
  }

  get(id: string): StorageNode | undefined {
    return this.nodes.get(id);
  }

  store(id: string): BlobStore | undefined {
    return this.nodes.get(id)?.store;
  }

  add(node: StorageNode): void {
    if (this.nodes.has(node.id)) throw errors.conflict(`node ${node.id} exists already`);
    this.nodes.set(node.id, node);
  }

  drain(id: string): StorageNode {
    const n = this.nodes.get(id);
    if (!n) throw errors.notFound('node');
    n.draining = true;
    return n;
  }

  remove(id: string): void {
    this.nodes.delete(id);
  }

  useHealthSource(source: HealthSource): void {
    this.health = source;
  }

  /**
   * Brings node health up to date with the shared verdicts, at most every `maxAgeMs` (one state
   * store read shared by concurrent callers). A read that fails keeps the last known health.
   */
  async fresh(): Promise<void> {
    const source = this.health;
    if (!source || performance.now() - this.loadedAt < source.maxAgeMs) return;
    this.loading ??= source
      .load()
      .then(() => {
        this.loadedAt = performance.now();
      })
      .catch(() => undefined)
      .finally(() => {
        this.loading = undefined;
      });
    await this.loading;
  }

  setHealth(id: string, health: NodeHealth): void {
    const n = this.nodes.get(id);
    if (n) n.health = health;
  }

  /** The nodes a version is written to now, best first (down nodes skipped). Throws 503 when no node can take data. */
  placement(key: string): StorageNode[] {
    const chosen = this.rank(key, (n) => n.health !== 'down' && !n.draining);
    if (chosen.length === 0) throw errors.unavailable('storage');
    return chosen;
  }

  /**
   * The nodes a version belongs on when every node is up: the layout rebalancing converges to. It
   * ignores health, so a node that is down for a while does not move data away and back again;
   * while it is down, placement() picks the stand-in that keeps the factor.
   */
  home(key: string): StorageNode[] {
    return this.rank(key, (n) => !n.draining);
  }

  private rank(key: string, writable: (n: StorageNode) => boolean): StorageNode[] {
    const infos: NodeInfo[] = this.all().map((n) => ({
      id: n.id,
      region: n.region,
      weight: n.weight,
      writable: writable(n),
    }));
    return place(key, infos, this.replicationFactor).map((i) => this.nodes.get(i.id) as StorageNode);
  }
}
