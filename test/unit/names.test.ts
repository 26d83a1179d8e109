import { describe, expect, it } from 'vitest';
import { DomainError } from '../../shared/domain/errors.ts';
import { nameKey, normaliseName } from '../../shared/domain/names.ts';
import { statusOf } from '../../shared/http/problem.ts';

describe('item names', () => {
  it('normalises to NFC and keeps case', () => {
    const decomposed = 'Cafe\u0301.txt';
    expect(normaliseName(decomposed)).toBe('Café.txt');
    expect(normaliseName('Report.PDF')).toBe('Report.PDF');
  });

  it('compares case-insensitively and across normal forms', () => {
    expect(nameKey('Café.TXT')).toBe(nameKey('cafe\u0301.txt'));
    expect(nameKey('A')).not.toBe(nameKey('B'));
  });

  it.each([
    ['', 'empty'],
    ['   ', 'empty'],
    ['.', '"."'],
    ['..', '"."'],
    ['a/b', '"/"'],
    ['a\u0000b', 'control'],
    ['tab\there', 'control'],
    ['a\u0085b', 'control'],
    ['evil\u202Etxt.exe', 'bidirectional'],
    ['CON', 'reserved'],
    ['lpt1.txt', 'reserved'],
    ['what?', 'forbids'],
    ['trailing.', 'ends with'],
    ['x'.repeat(256), '255 bytes'],
    ['é'.repeat(128), '255 bytes'],
  ])('rejects %j (%s)', (name, why) => {
    let err: unknown;
    try {
      normaliseName(name);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DomainError);
    expect(statusOf(err)).toBe(400);
    expect((err as DomainError).message).toContain(why);
  });

  it('accepts ordinary names up to 255 bytes', () => {
    expect(normaliseName('x'.repeat(255))).toHaveLength(255);
    expect(normaliseName('年度報告 (final) v2.docx')).toBe('年度報告 (final) v2.docx');
    expect(normaliseName('.bashrc')).toBe('.bashrc');
  });
});
