/**
 * A storage node as the core sees it: a blob store with its place (region, weight) and state
 * (health, draining). Adapters build them from node specs (s3-node.ts, the local profile).
 */
import type { BlobStore } from './blob-store.ts';

export type NodeHealth = 'healthy' | 'degraded' | 'down';

export interface StorageNode {
  id: string;
  kind: 's3' | 'localfs';
  region: string;
  weight: number;
  store: BlobStore;
  health: NodeHealth;
  draining: boolean;
}
