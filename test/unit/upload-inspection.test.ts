/**
 * A resumable inspection that stops at every checkpoint and goes on from it gives what one pass
 * gives: the same SHA-256, part hashes, content hash, head and scan verdict (issue 17: files too
 * big for one 15-minute verifier run).
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { wasmSha256 } from '../../shared/adapters/hash-wasm/wasm-sha256.ts';
import { EICAR, EicarScanner } from '../../shared/adapters/scanners/eicar-scanner.ts';
import { contentHash } from '../../shared/domain/content-hash.ts';
import type { Scanner } from '../../shared/ports/scanner.ts';
import {
  CannotResume,
  Inspection,
  type InspectionCheckpoint,
} from '../../shared/services/upload-inspection.ts';

const MiB = 1024 * 1024;
const target = { nodeId: 'n1', key: 'v/x' };

/** The bytes from `from` on, in chunks of uneven sizes (as a socket or a file stream gives them). */
function streamFrom(data: Buffer, from: number): Readable {
  const chunks: Buffer[] = [];
  let sizes = [65_536, 1_000_003, 7, 300_000];
  for (let off = from; off < data.length; ) {
    const n = sizes[0] ?? 65_536;
    sizes = [...sizes.slice(1), n];
    chunks.push(data.subarray(off, off + n));
    off += n;
  }
  return Readable.from(chunks);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const partsOf = (data: Buffer, partSize: number) =>
  Array.from({ length: Math.max(1, Math.ceil(data.length / partSize)) }, (_, i) =>
    sha(data.subarray(i * partSize, (i + 1) * partSize)),
  );

/** Runs an inspection to the end, stopping at every checkpoint; returns the result and the runs. */
async function inStops(data: Buffer, partSize: number, scanner: Scanner | undefined) {
  let from: InspectionCheckpoint | undefined;
  const kept = new Map<number, string>();
  const checkpoints: InspectionCheckpoint[] = [];
  for (let run = 0; run < 1000; run++) {
    const i = await Inspection.open({
      size: data.length,
      partSize,
      scanner,
      target,
      resumable: wasmSha256,
      ...(from ? { from: JSON.parse(JSON.stringify(from)) as InspectionCheckpoint } : {}),
    });
    // stopAfter 0 has always passed: the run stops at its first checkpoint
    const fed = await i.feed(streamFrom(data, i.position), { stopAfter: 0 });
    if (fed === 'done') return { result: await i.finish(kept), checkpoints };
    for (const [n, h] of i.takeParts()) kept.set(n, h);
    from = i.checkpoint();
    checkpoints.push(from);
  }
  throw new Error('never finished');
}

describe('resumable inspection', () => {
  it('gives across stops what one pass gives, with parts that do not align to 4 MiB blocks', async () => {
    const data = randomBytes(47 * MiB + 12_345);
    const partSize = 5 * MiB;
    const once = await Inspection.open({
      size: data.length,
      partSize,
      scanner: undefined,
      target,
      resumable: false,
    });
    expect(await once.feed(streamFrom(data, 0), { stopAfter: 0 })).toBe('done');
    const one = await once.finish();
    const { result, checkpoints } = await inStops(data, partSize, undefined);

    // stops fall where a part and a content block both end: every 20 MiB here
    expect(checkpoints.map((c) => c.offset)).toEqual([20 * MiB, 40 * MiB]);
    expect(checkpoints.map((c) => c.runs)).toEqual([1, 2]);
    for (const r of [one, result]) {
      expect(r.sha256).toBe(sha(data));
      expect(r.contentHash).toBe(contentHash(data));
      expect(r.partHashes).toEqual(partsOf(data, partSize));
      expect(r.head.equals(data.subarray(0, 4096))).toBe(true);
      expect(r.scan).toEqual({ state: 'clean' });
    }
    // what rides on the session stays small
    expect(JSON.stringify(checkpoints[1]).length).toBeLessThan(8_000);
  });

  it('stops at every 4 MiB block when parts and blocks rarely align, keeping the part in flight', async () => {
    // lcm(5 MiB + 3, 4 MiB) is far past the file: stops fall inside parts instead
    const data = randomBytes(23 * MiB + 5);
    const partSize = 5 * MiB + 3;
    const { result, checkpoints } = await inStops(data, partSize, new EicarScanner());
    expect(checkpoints.map((c) => c.offset)).toEqual([4, 8, 12, 16, 20].map((m) => m * MiB));
    expect(checkpoints.filter((c) => c.partState !== undefined).length).toBeGreaterThan(0);
    expect(result.sha256).toBe(sha(data));
    expect(result.partHashes).toEqual(partsOf(data, partSize));
    expect(result.contentHash).toBe(contentHash(data));
  });

  it('refuses a stream that ends short, and a checkpoint another scanner made', async () => {
    const data = randomBytes(9 * MiB);
    const i = await Inspection.open({
      size: data.length,
      partSize: 5 * MiB,
      scanner: undefined,
      target,
      resumable: wasmSha256,
    });
    await expect(i.feed(Readable.from([data.subarray(0, 6 * MiB)]))).rejects.toThrow(/ended at byte/);
    const { checkpoints } = await inStops(randomBytes(25 * MiB), 5 * MiB, new EicarScanner());
    const from = checkpoints[0];
    expect(from?.scanner).toBe('eicar');
    await expect(
      Inspection.open({
        size: 25 * MiB,
        partSize: 5 * MiB,
        scanner: undefined,
        target,
        resumable: wasmSha256,
        ...(from ? { from } : {}),
      }),
    ).rejects.toBeInstanceOf(CannotResume);
  });

  it('finds the EICAR string straddling a stop', async () => {
    const data = randomBytes(30 * MiB);
    Buffer.from(EICAR, 'latin1').copy(data, 20 * MiB - 30);
    const { result, checkpoints } = await inStops(data, 5 * MiB, new EicarScanner());
    expect(checkpoints.map((c) => c.offset)).toEqual([20 * MiB]);
    expect(result.scan).toEqual({ state: 'infected', signature: 'EICAR-Test-File' });
    expect(result.sha256).toBe(sha(data));
  });

  it('runs to the end when its scanner reads bytes but cannot checkpoint', async () => {
    const plain: Scanner = {
      name: 'plain',
      needsBytes: true,
      start: () => ({ update() {}, finish: async () => ({ verdict: 'clean' }) }),
    };
    const data = randomBytes(25 * MiB);
    const i = await Inspection.open({
      size: data.length,
      partSize: 5 * MiB,
      scanner: plain,
      target,
      resumable: wasmSha256,
    });
    expect(await i.feed(streamFrom(data, 0), { stopAfter: 0 })).toBe('done');
    expect((await i.finish()).sha256).toBe(sha(data));
  });

  it('an empty object and a single-part one hash like one pass', async () => {
    for (const data of [Buffer.alloc(0), randomBytes(3 * MiB)]) {
      const { result } = await inStops(data, Math.max(data.length, 1), undefined);
      expect(result.sha256).toBe(sha(data));
      expect(result.partHashes).toEqual([sha(data)]);
      expect(result.contentHash).toBe(contentHash(data));
    }
  });
});
