import { describe, expect, it } from 'vitest';
import { type NodeInfo, place } from '../../shared/domain/placement.ts';

const node = (id: string, region = 'r1', weight = 1, writable = true): NodeInfo => ({
  id,
  region,
  weight,
  writable,
});
const keys = Array.from({ length: 4000 }, (_, i) => `version-${i}`);

describe('placement', () => {
  it('is deterministic and independent of the order nodes are listed in', () => {
    const a = [node('n1'), node('n2'), node('n3'), node('n4')];
    const b = [...a].reverse();
    for (const k of keys.slice(0, 200))
      expect(place(k, a, 2).map((n) => n.id)).toEqual(place(k, b, 2).map((n) => n.id));
  });

  it('spreads evenly, and by weight', () => {
    const count = (nodes: NodeInfo[]) => {
      const c = new Map<string, number>();
      for (const k of keys) for (const n of place(k, nodes, 1)) c.set(n.id, (c.get(n.id) ?? 0) + 1);
      return c;
    };
    const even = count([node('a'), node('b'), node('c'), node('d')]);
    for (const v of even.values()) expect(v / keys.length).toBeCloseTo(0.25, 1);
    const weighted = count([node('a', 'r1', 3), node('b', 'r1', 1)]);
    expect((weighted.get('a') ?? 0) / keys.length).toBeCloseTo(0.75, 1);
  });

  it('moves only about 1/n of the versions when a node is added', () => {
    const before = [node('a'), node('b'), node('c')];
    const after = [...before, node('d')];
    const moved = keys.filter((k) => place(k, before, 1)[0]?.id !== place(k, after, 1)[0]?.id).length;
    expect(moved / keys.length).toBeGreaterThan(0.15);
    expect(moved / keys.length).toBeLessThan(0.35);
    // Everything that moved went to the new node.
    expect(
      keys
        .filter((k) => place(k, before, 1)[0]?.id !== place(k, after, 1)[0]?.id)
        .every((k) => place(k, after, 1)[0]?.id === 'd'),
    ).toBe(true);
  });

  it('puts replicas in different regions while it can', () => {
    const nodes = [node('a1', 'eu'), node('a2', 'eu'), node('a3', 'eu'), node('b1', 'us')];
    for (const k of keys.slice(0, 500)) {
      const regions = place(k, nodes, 2).map((n) => n.region);
      expect(new Set(regions).size).toBe(2);
    }
    expect(place('x', nodes, 3)).toHaveLength(3);
  });

  it('skips nodes that cannot take data, and returns fewer when not enough are left', () => {
    const nodes = [node('a'), node('b', 'r1', 1, false), node('c')];
    for (const k of keys.slice(0, 200))
      expect(
        place(k, nodes, 3)
          .map((n) => n.id)
          .sort(),
      ).toEqual(['a', 'c']);
    expect(place('x', [node('z', 'r1', 0)], 1)).toEqual([]);
  });
});
