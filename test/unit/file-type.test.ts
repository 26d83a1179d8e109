import { describe, expect, it } from 'vitest';
import { DomainError } from '../../shared/domain/errors.ts';
import { checkContent, checkDeclaredType, sniff, type TypePolicy } from '../../shared/domain/file-type.ts';
import { statusOf } from '../../shared/http/problem.ts';

const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
const JPEG = Buffer.from('ffd8ffe000104a464946', 'hex');
const ELF = Buffer.concat([Buffer.from('7f454c46020101', 'hex'), Buffer.alloc(40)]);
const PE = Buffer.concat([Buffer.from('MZ'), Buffer.alloc(60)]);
const open: TypePolicy = { deny: [], allow: [] };

const status = (f: () => unknown) => {
  try {
    f();
    return 0;
  } catch (e) {
    return e instanceof DomainError ? statusOf(e) : -1;
  }
};

describe('magic-byte sniffing', () => {
  it.each([
    [PNG, 'image/png', false],
    [JPEG, 'image/jpeg', false],
    [Buffer.from('GIF89a...'), 'image/gif', false],
    [Buffer.from('%PDF-1.7'), 'application/pdf', false],
    [Buffer.from('504b030414', 'hex'), 'application/zip', false],
    [ELF, 'application/x-elf', true],
    [PE, 'application/vnd.microsoft.portable-executable', true],
    [Buffer.from('cffaedfe07', 'hex'), 'application/x-mach-binary', true],
    [Buffer.from('#!/bin/sh\nrm -rf /'), 'text/x-shellscript', true],
  ])('recognises %s as %s', (head, mime, executable) => {
    expect(sniff(head)).toEqual({ mime, executable });
  });

  it('knows nothing of plain text', () => {
    expect(sniff(Buffer.from('hello world'))).toBeUndefined();
  });
});

describe('type policy', () => {
  it('refuses executables disguised as images, by declared type or by extension', () => {
    expect(status(() => checkContent(open, { name: 'cat.png', declared: 'image/png', head: ELF }))).toBe(415);
    expect(
      status(() => checkContent(open, { name: 'cat.jpg', declared: 'application/octet-stream', head: PE })),
    ).toBe(415);
  });

  it('refuses an "image" whose bytes are not an image', () => {
    expect(
      status(() =>
        checkContent(open, { name: 'x.png', declared: 'image/png', head: Buffer.from('just text') }),
      ),
    ).toBe(415);
  });

  it('accepts real images whatever image type they claim, and ordinary files', () => {
    expect(checkContent(open, { name: 'cat.png', declared: 'image/png', head: PNG })?.mime).toBe('image/png');
    expect(checkContent(open, { name: 'cat.png', declared: 'image/png', head: JPEG })?.mime).toBe(
      'image/jpeg',
    );
    expect(
      checkContent(open, { name: 'notes.txt', declared: 'text/plain', head: Buffer.from('hi') }),
    ).toBeUndefined();
    expect(
      checkContent(open, { name: 'tool', declared: 'application/octet-stream', head: ELF })?.executable,
    ).toBe(true);
  });

  it('applies a deployment\u2019s deny and allow lists', () => {
    const noExe: TypePolicy = { deny: ['executable', 'application/zip'], allow: [] };
    expect(
      status(() => checkContent(noExe, { name: 'tool', declared: 'application/octet-stream', head: ELF })),
    ).toBe(415);
    expect(
      status(() =>
        checkContent(noExe, {
          name: 'a.zip',
          declared: 'application/zip',
          head: Buffer.from('504b0304', 'hex'),
        }),
      ),
    ).toBe(415);
    const imagesOnly: TypePolicy = { deny: [], allow: ['image/*', 'application/pdf'] };
    expect(status(() => checkDeclaredType(imagesOnly, 'image/png'))).toBe(0);
    expect(status(() => checkDeclaredType(imagesOnly, 'application/pdf'))).toBe(0);
    expect(status(() => checkDeclaredType(imagesOnly, 'text/plain'))).toBe(415);
    expect(
      status(() =>
        checkDeclaredType({ deny: ['application/x-msdownload'], allow: [] }, 'application/x-msdownload'),
      ),
    ).toBe(415);
  });
});
