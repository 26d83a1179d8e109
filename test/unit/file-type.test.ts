import { describe, expect, it } from 'vitest';
import { DomainError } from '../../shared/domain/errors.ts';
import {
  checkContent,
  checkDeclaredType,
  extensionOf,
  sniff,
  type TypePolicy,
} from '../../shared/domain/file-type.ts';
import { statusOf } from '../../shared/http/problem.ts';
import {
  DOCX,
  ELF,
  ENV_NODE,
  GZIP,
  JAVA_CLASS,
  JPEG,
  MACHO_ARM64,
  MACHO_FAT,
  MOV,
  MP4,
  PDF,
  PE,
  PNG,
  PYTHON,
  RUST_ATTRIBUTE,
  SHELL,
  SIGNATURES,
  SVG,
  ZIP,
} from '../support/file-signatures.ts';

const open: TypePolicy = { deny: [], allow: [] };
const noExe: TypePolicy = { deny: ['executable'], allow: [] };
const PE_MIME = 'application/vnd.microsoft.portable-executable';
const DOCX_TYPE = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';

const status = (f: () => unknown) => {
  try {
    f();
    return 0;
  } catch (e) {
    return e instanceof DomainError ? statusOf(e) : -1;
  }
};
const stored = (name: string, declared: string, head: Buffer, policy = open) =>
  checkContent(policy, { name, declared, head }).contentType;
const refused = (name: string, declared: string, head: Buffer, policy = open) =>
  status(() => checkContent(policy, { name, declared, head }));

describe('magic-byte sniffing against real signatures', () => {
  it.each(SIGNATURES.map((s) => [s.what, s]))('%s', (_what, s) => {
    const found = sniff(s.head);
    expect(found?.mime).toBe(s.mime);
    expect(found?.executable ?? false).toBe(s.executable);
  });

  it('knows nothing of plain text, and an empty file', () => {
    expect(sniff(Buffer.from('hello world'))).toBeUndefined();
    expect(sniff(Buffer.alloc(0))).toBeUndefined();
  });
});

describe('names as the type policy reads them', () => {
  it.each([
    ['photo.png', 'png'],
    ['Photo.PNG', 'png'],
    ['photo.png\u200b', 'png'],
    ['photo.png\u200d', 'png'],
    ['photo.p\u00adng', 'png'],
    ['photo.png\u202e', 'png'],
    ['photo\uff0e\uff50\uff4e\uff47', 'png'],
    ['invoice.pdf.exe', 'exe'],
    ['setup.exe. . ', 'exe'],
    ['libz.so.1.3', 'so'],
    ['.bashrc', ''],
    ['Makefile', ''],
  ])('%j has extension %j', (name, ext) => {
    expect(extensionOf(name)).toBe(ext);
  });
});

describe('executables', () => {
  it.each([
    ['PE as a PDF', 'invoice.pdf', 'application/pdf', PE],
    ['PE as a Word document', 'report.docx', DOCX_TYPE, PE],
    ['PE as text', 'notes.txt', 'text/plain', PE],
    ['PE named .exe, declared a PDF', 'tool.exe', 'application/pdf', PE],
    ['PE declared an executable, named .pdf', 'statement.pdf', 'application/x-msdownload', PE],
    ['PE with no extension, declared a document', 'setup', 'application/pdf', PE],
    ['PE named .bin, declared a video', 'clip.bin', 'video/mp4', PE],
    ['ELF as a video', 'clip.mp4', 'video/mp4', ELF],
    ['ELF as a zip', 'archive.zip', 'application/zip', ELF],
    ['Mach-O as a PDF', 'brochure.pdf', 'application/pdf', MACHO_ARM64],
    ['universal Mach-O as a PDF', 'brochure.pdf', 'application/pdf', MACHO_FAT],
    ['a shell script as a PDF', 'setup.pdf', 'application/pdf', SHELL],
    ['a shell script as text', 'notes.txt', 'text/plain', SHELL],
    ['a Python script as a Word document', 'cv.docx', DOCX_TYPE, PYTHON],
    ['PE as an image by type', 'cat', 'image/png', PE],
    ['ELF as an image by extension', 'cat.jpg', 'application/octet-stream', ELF],
    ['MZ behind a zero-width joiner', 'photo.png\u200d', 'application/octet-stream', PE],
    ['MZ behind a fullwidth .png', 'photo\uff0e\uff50\uff4e\uff47', 'application/octet-stream', PE],
  ])('refuses %s (415)', (_what, name, declared, head) => {
    expect(refused(name, declared, head)).toBe(415);
  });

  it.each([
    ['a Windows program', 'setup.exe', 'application/x-msdownload', PE, 'application/x-msdownload'],
    ['a DLL as opaque bytes', 'core.dll', 'application/octet-stream', PE, PE_MIME],
    ['a Linux program', 'true', 'application/octet-stream', ELF, 'application/x-elf'],
    ['a versioned shared object', 'libz.so.1', 'application/x-sharedlib', ELF, 'application/x-sharedlib'],
    ['a Mach-O dylib', 'libfoo.dylib', 'application/octet-stream', MACHO_ARM64, 'application/x-mach-binary'],
    [
      'a universal macOS program',
      'tool',
      'application/x-mach-binary',
      MACHO_FAT,
      'application/x-mach-binary',
    ],
    ['a shell script', 'deploy.sh', 'application/x-sh', SHELL, 'application/x-sh'],
    ['a Python script as text', 'build.py', 'text/plain', PYTHON, 'text/plain'],
    ['a node script with no extension', 'cli', 'application/octet-stream', ENV_NODE, 'text/javascript'],
    // opaque data that claims nothing (backup chunks, encrypted blobs: random bytes start with MZ
    // once in 65,536 files), served as the bytes' own type
    ['opaque bytes that begin like a PE, no extension', '3f9a0c', 'application/octet-stream', PE, PE_MIME],
    ['opaque bytes that begin like a PE, .bin', 'chunk.bin', 'application/octet-stream', PE, PE_MIME],
    ['opaque bytes that begin like a PE, .dat', 'blob.dat', 'application/octet-stream', PE, PE_MIME],
  ])('accepts %s named and declared as one, stored as %s', (_what, name, declared, head, type) => {
    expect(stored(name, declared, head)).toBe(type);
  });

  it('refuses every executable when the policy denies them, at create time when the type says so', () => {
    expect(refused('setup.exe', 'application/x-msdownload', PE, noExe)).toBe(415);
    expect(refused('deploy.sh', 'application/x-sh', SHELL, noExe)).toBe(415);
    expect(status(() => checkDeclaredType(noExe, 'application/x-msdownload'))).toBe(415);
    expect(status(() => checkDeclaredType(noExe, 'application/pdf'))).toBe(0);
  });

  it('does not take a Rust attribute or a Java class for an executable', () => {
    expect(stored('lib.rs', 'text/x-rust', RUST_ATTRIBUTE)).toBe('text/x-rust');
    expect(stored('Main.class', 'application/java-vm', JAVA_CLASS)).toBe('application/java-vm');
  });
});

describe('the stored type follows the bytes', () => {
  it.each([
    ['a PNG declared a PDF', 'scan.pdf', 'application/pdf', PNG, 'image/png'],
    ['a zip declared a PDF', 'bundle.pdf', 'application/pdf', ZIP, 'application/zip'],
    ['a PDF declared a video', 'talk.mp4', 'video/mp4', PDF, 'application/pdf'],
    ['a PNG declared opaque', 'picture', 'application/octet-stream', PNG, 'image/png'],
    [
      'text declared a PDF',
      'memo.pdf',
      'application/pdf',
      Buffer.from('not a pdf'),
      'application/octet-stream',
    ],
    ['text declared a Word document', 'cv.docx', DOCX_TYPE, Buffer.from('plain'), 'application/octet-stream'],
  ])('%s is stored as %s', (_what, name, declared, head, type) => {
    expect(stored(name, declared, head)).toBe(type);
  });

  it.each([
    ['a Word document (a zip)', 'letter.docx', DOCX_TYPE, DOCX],
    ['a spreadsheet (a zip)', 'q3.ods', 'application/vnd.oasis.opendocument.spreadsheet', ZIP],
    ['a jar (a zip)', 'app.jar', 'application/java-archive', ZIP],
    ['a tarball', 'src.tgz', 'application/x-gtar', GZIP],
    ['a QuickTime movie', 'clip.mov', 'video/quicktime', MOV],
    ['an MP4 declared QuickTime', 'clip.mov', 'video/quicktime', MP4],
    ['a JPEG declared image/jpg', 'cat.jpg', 'image/jpg', JPEG],
    [
      'a PDF after a print-job preamble',
      'job.pdf',
      'application/pdf',
      Buffer.from('\x1b%-12345X@PJL\n%PDF-1.4'),
    ],
    ['plain text', 'readme.txt', 'text/plain', Buffer.from('hello')],
    ['CSV', 'data.csv', 'text/csv', Buffer.from('a,b\n1,2\n')],
  ])('keeps the declared type of %s', (_what, name, declared, head) => {
    expect(stored(name, declared, head)).toBe(declared);
  });
});

describe('images', () => {
  it('refuses an "image" whose bytes are not an image, by type or by extension', () => {
    expect(refused('x.png', 'image/png', Buffer.from('just text'))).toBe(415);
    expect(refused('x.png', 'application/octet-stream', PDF)).toBe(415);
    expect(refused('x.svg', 'image/svg+xml', Buffer.from('<html><script>1</script>'))).toBe(415);
  });

  it('accepts real images whatever image type they claim, stored as what they are', () => {
    expect(stored('cat.png', 'image/png', PNG)).toBe('image/png');
    expect(stored('cat.png', 'image/png', JPEG)).toBe('image/jpeg');
    expect(stored('logo.svg', 'image/svg+xml', SVG)).toBe('image/svg+xml');
  });
});

describe('deny and allow lists', () => {
  it('denies by the type the bytes show, not only the declared one', () => {
    const noZip: TypePolicy = { deny: ['application/zip'], allow: [] };
    expect(refused('a.zip', 'application/zip', ZIP, noZip)).toBe(415);
    expect(refused('a.pdf', 'application/pdf', ZIP, noZip)).toBe(415);
    expect(status(() => checkDeclaredType(noZip, 'application/zip'))).toBe(415);
  });

  it('allows by the declared type up front and by the stored type once the bytes are in', () => {
    const imagesOnly: TypePolicy = { deny: [], allow: ['image/*', 'application/pdf'] };
    expect(status(() => checkDeclaredType(imagesOnly, 'image/png'))).toBe(0);
    expect(status(() => checkDeclaredType(imagesOnly, 'application/pdf'))).toBe(0);
    expect(status(() => checkDeclaredType(imagesOnly, 'text/plain'))).toBe(415);
    expect(stored('a.pdf', 'application/pdf', PDF, imagesOnly)).toBe('application/pdf');
    expect(refused('a.pdf', 'application/pdf', ZIP, imagesOnly)).toBe(415);
    expect(refused('a.pdf', 'application/pdf', Buffer.from('text'), imagesOnly)).toBe(415);
  });
});
