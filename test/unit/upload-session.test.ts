import { describe, expect, it } from 'vitest';
import {
  MAX_OBJECT,
  MAX_PARTS,
  MIN_PART,
  MiB,
  partLength,
  planParts,
} from '../../shared/domain/upload-session.ts';

describe('part planning', () => {
  it('uses a single PUT when the file fits in one part', () => {
    expect(planParts(0, 16 * MiB)).toEqual({ mode: 'single', partSize: 0, partCount: 1 });
    expect(planParts(16 * MiB, 16 * MiB)).toMatchObject({ mode: 'single', partCount: 1 });
  });

  it('splits larger files into parts whose lengths add up', () => {
    const size = 20 * MiB + 7;
    const plan = planParts(size, 16 * MiB);
    expect(plan).toEqual({ mode: 'multipart', partSize: 16 * MiB, partCount: 2 });
    const total = Array.from({ length: plan.partCount }, (_, i) => partLength(size, plan, i + 1)).reduce(
      (a, b) => a + b,
      0,
    );
    expect(total).toBe(size);
  });

  it('never uses parts under 5 MiB', () => {
    expect(planParts(12 * MiB, 1024).partSize).toBe(MIN_PART);
  });

  it('grows the part size so no file needs more than 10,000 parts, up to 48.8 TiB', () => {
    const plan = planParts(MAX_OBJECT, 16 * MiB);
    expect(plan.partCount).toBeLessThanOrEqual(MAX_PARTS);
    expect(plan.partSize * plan.partCount).toBeGreaterThanOrEqual(MAX_OBJECT);
    expect(plan.partSize % MiB).toBe(0);
  });

  it('refuses sizes outside 0 .. 48.8 TiB', () => {
    expect(() => planParts(-1, 16 * MiB)).toThrow(RangeError);
    expect(() => planParts(MAX_OBJECT + 1, 16 * MiB)).toThrow(RangeError);
    expect(() => planParts(1.5, 16 * MiB)).toThrow(RangeError);
  });
});
