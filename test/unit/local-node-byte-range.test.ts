/** The one byte range a local node serves for a multi-use GET URL's `Range` header (RFC 9110 §14). */
import { describe, expect, it } from 'vitest';
import { byteRange } from '../../shared/adapters/localfs/local-storage-node-server.ts';
import { DomainError } from '../../shared/domain/errors.ts';

const SIZE = 1000;

describe('byteRange', () => {
  it.each([
    ['bytes=0-9', { start: 0, end: 9 }],
    ['bytes=990-', { start: 990, end: 999 }],
    ['bytes=-10', { start: 990, end: 999 }],
    ['bytes=-5000', { start: 0, end: 999 }],
    ['bytes=500-99999', { start: 500, end: 999 }],
    ['bytes=999-999', { start: 999, end: 999 }],
  ])('reads %s', (header, range) => {
    expect(byteRange(header, SIZE)).toEqual(range);
  });

  it.each([
    ['no header', undefined],
    ['another unit', 'items=0-9'],
    ['several ranges', 'bytes=0-9,20-29'],
    ['a reversed range', 'bytes=9-0'],
    ['no numbers', 'bytes=-'],
    ['garbage', 'bytes=a-b'],
  ])('serves the whole object for %s', (_what, header) => {
    expect(byteRange(header, SIZE)).toBeUndefined();
  });

  it.each([
    ['a start past the end', 'bytes=1000-'],
    ['an empty suffix', 'bytes=-0'],
  ])('refuses %s as not satisfiable, naming the size', (_what, header) => {
    let thrown: unknown;
    try {
      byteRange(header, SIZE);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(DomainError);
    expect((thrown as DomainError).slug).toBe('range-not-satisfiable');
    expect((thrown as DomainError).extra.size).toBe(SIZE);
  });
});
