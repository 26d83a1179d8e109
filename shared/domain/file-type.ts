/**
 * File types from magic bytes, and the deployment's type policy. The declared type and the name's
 * extension are claims; the first bytes are evidence. An image whose bytes are not an image, and
 * above all an executable dressed as anything else, is refused (415) before anything is committed.
 */
import { errors } from './errors.ts';

export interface Sniffed {
  mime: string;
  executable: boolean;
}

const ascii = (b: Buffer, at: number, s: string) => b.subarray(at, at + s.length).toString('latin1') === s;
const bytes = (b: Buffer, at: number, hex: string) =>
  b.subarray(at, at + hex.length / 2).equals(Buffer.from(hex, 'hex'));

/** The type the first bytes show, or undefined when they match no signature we know. */
export function sniff(head: Buffer): Sniffed | undefined {
  const exe = (mime: string): Sniffed => ({ mime, executable: true });
  const doc = (mime: string): Sniffed => ({ mime, executable: false });
  if (ascii(head, 0, 'MZ')) return exe('application/vnd.microsoft.portable-executable');
  if (bytes(head, 0, '7f454c46')) return exe('application/x-elf');
  if (['feedface', 'feedfacf', 'cefaedfe', 'cffaedfe', 'cafebabe'].some((h) => bytes(head, 0, h)))
    return exe('application/x-mach-binary');
  if (ascii(head, 0, '#!')) return exe('text/x-shellscript');
  if (bytes(head, 0, '89504e470d0a1a0a')) return doc('image/png');
  if (bytes(head, 0, 'ffd8ff')) return doc('image/jpeg');
  if (ascii(head, 0, 'GIF87a') || ascii(head, 0, 'GIF89a')) return doc('image/gif');
  if (ascii(head, 0, 'RIFF') && ascii(head, 8, 'WEBP')) return doc('image/webp');
  if (ascii(head, 0, 'II*\u0000') || ascii(head, 0, 'MM\u0000*')) return doc('image/tiff');
  if (ascii(head, 4, 'ftypheic') || ascii(head, 4, 'ftypheix') || ascii(head, 4, 'ftypmif1'))
    return doc('image/heic');
  if (ascii(head, 4, 'ftyp')) return doc('video/mp4');
  if (bytes(head, 0, '00000100')) return doc('image/x-icon');
  if (ascii(head, 0, 'BM') && head.length >= 26) return doc('image/bmp');
  if (ascii(head, 0, '%PDF-')) return doc('application/pdf');
  if (bytes(head, 0, '504b0304')) return doc('application/zip');
  if (bytes(head, 0, '1f8b')) return doc('application/gzip');
  if (ascii(head, 0, '<svg') || (ascii(head, 0, '<?xml') && head.toString('utf8').includes('<svg')))
    return doc('image/svg+xml');
  return undefined;
}

const IMAGE_EXTENSIONS = new Set([
  'png',
  'jpg',
  'jpeg',
  'gif',
  'webp',
  'tif',
  'tiff',
  'heic',
  'ico',
  'bmp',
  'svg',
]);

export interface TypePolicy {
  /** Sniffed or declared types refused outright ("executable" stands for every executable format). */
  deny: string[];
  /** When not empty, only these declared types (patterns like "image/*") are accepted. */
  allow: string[];
}

const matches = (pattern: string, mime: string) =>
  pattern === '*' || pattern === mime || (pattern.endsWith('/*') && mime.startsWith(pattern.slice(0, -1)));

/** Checks what can be checked before any byte arrives: the declared type against the policy. */
export function checkDeclaredType(policy: TypePolicy, declared: string): void {
  const base = declared.split(';')[0]?.trim().toLowerCase() ?? '';
  if (policy.allow.length && !policy.allow.some((p) => matches(p, base))) {
    throw errors.unsupportedMediaType(`files of type ${base} are not accepted here`);
  }
  if (policy.deny.some((p) => p !== 'executable' && matches(p, base))) {
    throw errors.unsupportedMediaType(`files of type ${base} are not accepted here`);
  }
}

/** Checks the evidence: the first bytes against the declared type, the extension and the policy. */
export function checkContent(
  policy: TypePolicy,
  input: { name: string; declared: string; head: Buffer },
): Sniffed | undefined {
  const found = sniff(input.head);
  const declared = input.declared.split(';')[0]?.trim().toLowerCase() ?? '';
  const ext = input.name.includes('.') ? (input.name.split('.').pop() ?? '').toLowerCase() : '';
  const claimsImage = declared.startsWith('image/') || IMAGE_EXTENSIONS.has(ext);
  if (found?.executable && (claimsImage || policy.deny.includes('executable'))) {
    throw errors.unsupportedMediaType(
      claimsImage
        ? 'the file claims to be an image but is an executable'
        : `executables (${found.mime}) are not accepted here`,
    );
  }
  if (found && policy.deny.some((p) => p !== 'executable' && matches(p, found.mime))) {
    throw errors.unsupportedMediaType(`files of type ${found.mime} are not accepted here`);
  }
  if (claimsImage && !found?.mime.startsWith('image/')) {
    throw errors.unsupportedMediaType(
      `the file claims to be an image but its bytes are ${found?.mime ?? 'not an image'}`,
    );
  }
  return found;
}
