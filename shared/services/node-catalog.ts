/**
 * Nodes added or drained at run time, kept in the state store so that every process (each Lambda,
 * a restarted local runtime) sees the same set. Configured nodes are the base; the catalog adds to
 * it and marks drains.
 */
import type { StateStore } from '../ports/state-store.ts';

export type NodeSpec =
  | { id: string; kind: 'localfs'; path: string; region?: string | undefined; weight?: number | undefined }
  | {
      id: string;
      kind: 's3';
      bucket: string;
      region: string;
      endpoint?: string | undefined;
      weight?: number | undefined;
    };

export interface CatalogEntry {
  spec: NodeSpec | null;
  draining: boolean;
}

export class NodeCatalog {
  private readonly store: StateStore;

  constructor(store: StateStore) {
    this.store = store;
  }

  async all(): Promise<Record<string, CatalogEntry>> {
    return Object.fromEntries((await this.store.query<CatalogEntry>('nodes')).map((i) => [i.sk, i.data]));
  }

  async save(id: string, entry: CatalogEntry): Promise<void> {
    await this.store.put({ pk: 'nodes', sk: id, data: entry });
  }

  async remove(id: string): Promise<void> {
    await this.store.delete('nodes', id);
  }
}
