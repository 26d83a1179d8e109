import { describe, expect, it } from 'vitest';
import { EICAR, EicarScanner, UnavailableScanner } from '../../shared/adapters/scanners/eicar-scanner.ts';

const scan = async (chunks: Buffer[]) => {
  const s = new EicarScanner().start();
  for (const c of chunks) s.update(c);
  return (await s.finish()).verdict;
};

describe('EICAR reference scanner', () => {
  it('finds the test string in one chunk, inside a larger file, and across a chunk boundary', async () => {
    expect(await scan([Buffer.from(EICAR)])).toBe('infected');
    expect(await scan([Buffer.concat([Buffer.alloc(10_000), Buffer.from(EICAR), Buffer.alloc(10)])])).toBe(
      'infected',
    );
    const whole = Buffer.concat([Buffer.alloc(100), Buffer.from(EICAR)]);
    for (const cut of [101, 120, 160])
      expect(await scan([whole.subarray(0, cut), whole.subarray(cut)])).toBe('infected');
    const bytes = [...Buffer.from(EICAR)].map((b) => Buffer.from([b]));
    expect(await scan(bytes)).toBe('infected');
  });

  it('passes clean data, including a near miss', async () => {
    expect(await scan([Buffer.from('hello')])).toBe('clean');
    expect(await scan([Buffer.from(EICAR.slice(0, -1))])).toBe('clean');
  });

  it('a scanner that is down throws rather than passing anything', async () => {
    await expect(new UnavailableScanner().start().finish()).rejects.toThrow();
  });
});
