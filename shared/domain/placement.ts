/**
 * Where a version's replicas live: weighted rendezvous (highest-random-weight) hashing. Every
 * caller computes the same order for a version from the node list alone, adding a node moves only
 * about 1/n of the versions, and weights skew the share. Replicas spread across regions first, then
 * fill from the remaining order. Nodes that are down are skipped; draining nodes take no new data.
 */
import { createHash } from 'node:crypto';

export interface NodeInfo {
  id: string;
  region: string;
  weight: number;
  /** Whether the node may receive new replicas (healthy and not draining). */
  writable: boolean;
}

/** A score in (0, ∞): weight / -ln(u), u uniform in (0, 1) from the hash (Schindelhauer & Schomaker). */
export function score(key: string, node: NodeInfo): number {
  const h = createHash('sha256').update(`${key}\u0000${node.id}`).digest();
  const u = (h.readUIntBE(0, 6) + 1) / (2 ** 48 + 1);
  return node.weight / -Math.log(u);
}

/** The nodes for `key`, best first: up to `factor` of them, distinct regions first. */
export function place(key: string, nodes: readonly NodeInfo[], factor: number): NodeInfo[] {
  const ranked = nodes
    .filter((n) => n.writable && n.weight > 0)
    .map((n) => ({ n, s: score(key, n) }))
    .sort((a, b) => b.s - a.s || (a.n.id < b.n.id ? -1 : 1))
    .map((x) => x.n);
  const chosen: NodeInfo[] = [];
  const regions = new Set<string>();
  for (const n of ranked) {
    if (chosen.length >= factor) break;
    if (!regions.has(n.region)) {
      chosen.push(n);
      regions.add(n.region);
    }
  }
  for (const n of ranked) {
    if (chosen.length >= factor) break;
    if (!chosen.includes(n)) chosen.push(n);
  }
  return chosen;
}
