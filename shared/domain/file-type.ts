/**
 * File types from magic bytes, and the deployment's type policy. The declared type and the name's
 * extension are claims; the first bytes are evidence.
 *
 * - An executable (PE, ELF, Mach-O thin or universal, a `#!` script) is accepted only when the
 *   declared type and the extension both say executable, or both claim nothing (declared
 *   `application/octet-stream` under no extension, `.bin` or `.dat`: backup chunks, encrypted
 *   blobs; random bytes begin with `MZ` once in 65,536 files), and the policy does not deny
 *   executables. Anything else wearing an executable's bytes (a PE named `invoice.pdf`) is refused
 *   (415).
 * - A name or type that claims an image must carry an image's bytes.
 * - The type stored on the version, and so served by every download, is the declared one only when
 *   the bytes agree with it (the same format, or a format built on it: a .docx is a zip); otherwise
 *   it is the type the bytes show, or `application/octet-stream` when the declared format has a
 *   signature the bytes lack.
 *
 * The extension is read from the name's NFKC form with default-ignorable code points (zero-width
 * and bidi controls, soft hyphens) removed, so "photo.png" + U+200D or a fullwidth "．ｐｎｇ" is read
 * as the ".png" a person sees.
 */
import { errors } from './errors.ts';

export interface Sniffed {
  mime: string;
  executable: boolean;
}

const ascii = (b: Buffer, at: number, s: string) => b.subarray(at, at + s.length).toString('latin1') === s;
const bytes = (b: Buffer, at: number, hex: string) =>
  b.subarray(at, at + hex.length / 2).equals(Buffer.from(hex, 'hex'));

/**
 * A shebang is "#!" then an interpreter path (the kernel needs one); "#![...]" opens Rust files.
 * The type follows the interpreter, through `env` when it is one.
 */
function shebang(head: Buffer): string | undefined {
  const line = /^#![ \t]*(\/\S*)(?:[ \t]+(.*))?/.exec(head.subarray(0, 256).toString('latin1'));
  if (!line) return undefined;
  const program = line[1]?.split('/').pop() ?? '';
  const args = (line[2] ?? '').split(/[ \t]+/).filter((a) => a && !a.startsWith('-') && !a.includes('='));
  const interpreter = program === 'env' ? (args[0] ?? '') : program;
  if (/^python/.test(interpreter)) return 'text/x-python';
  if (/^perl/.test(interpreter)) return 'text/x-perl';
  if (/^ruby/.test(interpreter)) return 'text/x-ruby';
  if (/^(node|nodejs|deno|bun)$/.test(interpreter)) return 'text/javascript';
  if (/^php/.test(interpreter)) return 'application/x-httpd-php';
  return 'text/x-shellscript';
}

/** ISO base media files (MP4, QuickTime, HEIF, AVIF) name their format in the `ftyp` major brand. */
function isoMedia(head: Buffer): string | undefined {
  if (!ascii(head, 4, 'ftyp')) return undefined;
  const brand = head.subarray(8, 12).toString('latin1');
  if (['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1'].includes(brand)) return 'image/heic';
  if (brand === 'avif' || brand === 'avis') return 'image/avif';
  if (brand === 'qt  ') return 'video/quicktime';
  if (brand === 'M4A ' || brand === 'M4B ') return 'audio/mp4';
  return 'video/mp4';
}

/** SVG: XML (after an optional BOM and whitespace, a declaration, comments or a doctype) with <svg. */
function isSvg(head: Buffer): boolean {
  const text = head.toString('utf8').replace(/^\ufeff?\s*/u, '');
  if (text.startsWith('<svg')) return true;
  return /^<(\?xml|!--|!doctype svg)/iu.test(text) && /<svg[\s>/]/u.test(text);
}

/** The type the first bytes show, or undefined when they match no signature we know. */
export function sniff(head: Buffer): Sniffed | undefined {
  const exe = (mime: string): Sniffed => ({ mime, executable: true });
  const doc = (mime: string): Sniffed => ({ mime, executable: false });
  // "MZ" alone: the PE header may sit past what is sniffed, and the loader only needs e_lfanew.
  if (ascii(head, 0, 'MZ')) return exe('application/vnd.microsoft.portable-executable');
  if (bytes(head, 0, '7f454c46')) return exe('application/x-elf');
  if (['feedface', 'feedfacf', 'cefaedfe', 'cffaedfe'].some((h) => bytes(head, 0, h)))
    return exe('application/x-mach-binary');
  // CAFEBABE is both a universal Mach-O and a Java class; the next word is the architecture count
  // (a handful) or the class-file version (45 and up), as file(1) tells them apart.
  if (bytes(head, 0, 'cafebabe') || bytes(head, 0, 'cafebabf')) {
    return head.length >= 8 && head.readUInt32BE(4) > 30 && bytes(head, 0, 'cafebabe')
      ? doc('application/java-vm')
      : exe('application/x-mach-binary');
  }
  const script = shebang(head);
  if (script) return exe(script);
  if (bytes(head, 0, '89504e470d0a1a0a')) return doc('image/png');
  if (bytes(head, 0, 'ffd8ff')) return doc('image/jpeg');
  if (ascii(head, 0, 'GIF87a') || ascii(head, 0, 'GIF89a')) return doc('image/gif');
  if (ascii(head, 0, 'RIFF') && ascii(head, 8, 'WEBP')) return doc('image/webp');
  if (ascii(head, 0, 'II*\u0000') || ascii(head, 0, 'MM\u0000*')) return doc('image/tiff');
  if (bytes(head, 0, 'ff0a') || bytes(head, 0, '0000000c4a584c200d0a870a')) return doc('image/jxl');
  const iso = isoMedia(head);
  if (iso) return doc(iso);
  if (bytes(head, 0, '00000100')) return doc('image/x-icon');
  if (ascii(head, 0, 'BM') && head.length >= 26) return doc('image/bmp');
  if (ascii(head, 0, '%PDF-')) return doc('application/pdf');
  if (ascii(head, 0, '8BPS')) return doc('image/vnd.adobe.photoshop');
  if (['504b0304', '504b0506', '504b0708'].some((h) => bytes(head, 0, h))) return doc('application/zip');
  if (bytes(head, 0, '1f8b')) return doc('application/gzip');
  if (isSvg(head)) return doc('image/svg+xml');
  return undefined;
}

const IMAGE_EXTENSIONS = new Set([
  'png',
  'apng',
  'jpg',
  'jpeg',
  'jpe',
  'jfif',
  'gif',
  'webp',
  'tif',
  'tiff',
  'heic',
  'heif',
  'avif',
  'jxl',
  'ico',
  'bmp',
  'svg',
  'psd',
]);

/**
 * The declared types each sniffed format agrees with: itself, its aliases, and formats built on it.
 * A declared type in one of these lists but not in the bytes' own is a disagreement.
 */
const ISO_AV = [
  'video/mp4',
  'video/quicktime',
  'video/x-m4v',
  'audio/mp4',
  'audio/x-m4a',
  'audio/m4a',
  'video/3gpp',
  'video/3gpp2',
  'audio/3gpp',
  'audio/3gpp2',
  'application/mp4',
];
const PE_TYPES = [
  'application/vnd.microsoft.portable-executable',
  'application/x-msdownload',
  'application/x-msdos-program',
  'application/x-dosexec',
  'application/x-ms-dos-executable',
  'application/x-executable',
  'application/efi',
];
const UNIX_BINARY_TYPES = [
  'application/x-executable',
  'application/x-sharedlib',
  'application/x-pie-executable',
  'application/x-object',
];
const ELF_TYPES = ['application/x-elf', ...UNIX_BINARY_TYPES];
const MACHO_TYPES = ['application/x-mach-binary', 'application/x-mach-o-executable', ...UNIX_BINARY_TYPES];
// Scripts are text: a truthful client may call one text/plain.
const SCRIPT_TYPES = [
  'text/x-shellscript',
  'application/x-shellscript',
  'application/x-sh',
  'text/x-sh',
  'application/x-csh',
  'text/x-python',
  'text/x-python3',
  'text/x-python-script',
  'text/x-script.python',
  'application/x-python',
  'text/x-perl',
  'application/x-perl',
  'text/x-ruby',
  'application/x-ruby',
  'text/javascript',
  'application/javascript',
  'application/x-javascript',
  'text/typescript',
  'application/typescript',
  'text/x-php',
  'application/x-php',
  'application/x-httpd-php',
  'text/x-lua',
  'text/x-tcl',
  'application/x-tcl',
  'text/plain',
];
const AGREES: Record<string, string[]> = {
  'image/png': ['image/png', 'image/apng', 'image/x-png'],
  'image/jpeg': ['image/jpeg', 'image/jpg', 'image/pjpeg'],
  'image/gif': ['image/gif'],
  'image/webp': ['image/webp'],
  // Camera raw formats built on TIFF.
  'image/tiff': ['image/tiff', 'image/x-tiff', 'image/x-adobe-dng', 'image/x-nikon-nef', 'image/x-canon-cr2'],
  'image/heic': ['image/heic', 'image/heif', 'image/heic-sequence', 'image/heif-sequence'],
  'image/avif': ['image/avif', 'image/avif-sequence'],
  'image/jxl': ['image/jxl'],
  'image/x-icon': ['image/x-icon', 'image/vnd.microsoft.icon', 'image/ico', 'image/icon'],
  'image/bmp': ['image/bmp', 'image/x-bmp', 'image/x-ms-bmp'],
  'image/svg+xml': ['image/svg+xml'],
  'image/vnd.adobe.photoshop': ['image/vnd.adobe.photoshop', 'image/x-photoshop', 'application/x-photoshop'],
  'video/mp4': ISO_AV,
  'video/quicktime': ISO_AV,
  'audio/mp4': ISO_AV,
  'application/pdf': ['application/pdf', 'application/x-pdf', 'application/illustrator'],
  'application/zip': [
    'application/zip',
    'application/x-zip',
    'application/x-zip-compressed',
    'application/java-archive',
    'application/x-java-archive',
    'application/vnd.android.package-archive',
    'application/epub+zip',
    'application/vnd.ms-xpsdocument',
    'application/oxps',
  ],
  'application/gzip': [
    'application/gzip',
    'application/x-gzip',
    'application/x-gtar',
    'application/x-tgz',
    'application/x-compressed-tar',
  ],
  'application/java-vm': ['application/java-vm', 'application/x-java-class'],
  'application/vnd.microsoft.portable-executable': PE_TYPES,
  'application/x-elf': ELF_TYPES,
  'application/x-mach-binary': MACHO_TYPES,
  'text/x-shellscript': SCRIPT_TYPES,
  'text/x-python': SCRIPT_TYPES,
  'text/x-perl': SCRIPT_TYPES,
  'text/x-ruby': SCRIPT_TYPES,
  'text/javascript': SCRIPT_TYPES,
  'application/x-httpd-php': SCRIPT_TYPES,
};
/** Zip-based document families named by prefix or suffix rather than one by one. */
const isZipBased = (t: string) =>
  t.endsWith('+zip') ||
  t.startsWith('application/vnd.openxmlformats-officedocument.') ||
  t.startsWith('application/vnd.oasis.opendocument.') ||
  t.startsWith('application/vnd.apple.') ||
  (t.startsWith('application/vnd.ms-') && t.includes('.macroenabled'));

const agrees = (sniffed: string, declared: string) =>
  (AGREES[sniffed] ?? [sniffed]).includes(declared) ||
  (sniffed === 'application/zip' && isZipBased(declared)) ||
  (sniffed === 'application/gzip' && declared.endsWith('+gzip'));

/** Declared types whose format has a signature: bytes without it disagree with them. */
const SIGNED_TYPES = new Set(
  Object.values(AGREES)
    .filter((declared) => declared !== SCRIPT_TYPES)
    .flat(),
);
const hasSignature = (declared: string) =>
  SIGNED_TYPES.has(declared) || isZipBased(declared) || declared.endsWith('+gzip');

/**
 * Readers accept a PDF header anywhere in the first KiB (after a print job's preamble, say): weak
 * evidence, enough to keep a declared PDF, not enough to call other files PDFs.
 */
const pdfAfterJunk = (declared: string, head: Buffer) =>
  agrees('application/pdf', declared) && head.subarray(0, 1024).includes('%PDF-');

/** Extensions that claim nothing about the bytes (with `application/octet-stream`: opaque data). */
const OPAQUE_EXTENSIONS = new Set(['', 'bin', 'dat']);

/** Extensions that say "executable", per format; a Unix program or script may have none. */
type ExecutableFormat = 'pe' | 'elf' | 'macho' | 'script';
const EXECUTABLE_EXTENSIONS: Record<ExecutableFormat, { exts: Set<string>; none: boolean }> = {
  pe: {
    exts: new Set(['exe', 'dll', 'sys', 'scr', 'com', 'cpl', 'ocx', 'drv', 'efi', 'mui', 'ax', 'node']),
    none: false,
  },
  elf: {
    exts: new Set(['so', 'o', 'ko', 'elf', 'bin', 'run', 'out', 'axf', 'prx', 'appimage', 'node']),
    none: true,
  },
  macho: { exts: new Set(['dylib', 'bundle', 'so', 'o', 'node']), none: true },
  script: {
    exts: new Set(
      'sh bash zsh ksh csh tcsh fish command py pyw pl pm rb js mjs cjs ts php lua tcl awk'.split(' '),
    ),
    none: true,
  },
};
const formatOf = (mime: string): ExecutableFormat =>
  mime === 'application/vnd.microsoft.portable-executable'
    ? 'pe'
    : mime === 'application/x-elf'
      ? 'elf'
      : mime === 'application/x-mach-binary'
        ? 'macho'
        : 'script';

/**
 * The name as the type policy reads it: NFKC (so fullwidth and compatibility forms read as the
 * letters they look like), without default-ignorable code points (invisible: zero-width, bidi
 * controls, soft hyphens, variation selectors), without the trailing dots and spaces Windows drops.
 */
export function nameForType(name: string): string {
  return name
    .normalize('NFKC')
    .replace(/\p{Default_Ignorable_Code_Point}/gu, '')
    .replace(/[. ]+$/u, '');
}

/** The extension a person (and an operating system) would read, lower case; '' when there is none. */
export function extensionOf(name: string): string {
  const shown = nameForType(name);
  const dot = shown.lastIndexOf('.');
  // A leading dot marks a hidden file, not an extension; "libz.so.1" is a shared object.
  if (dot <= 0) return '';
  if (/\.so(\.\d+)+$/u.test(shown)) return 'so';
  return shown.slice(dot + 1).toLowerCase();
}

export interface TypePolicy {
  /** Sniffed or declared types refused outright ("executable" stands for every executable format). */
  deny: string[];
  /** When not empty, only these types (patterns like "image/*") are accepted, declared and stored. */
  allow: string[];
}

const matches = (pattern: string, mime: string) =>
  pattern === '*' || pattern === mime || (pattern.endsWith('/*') && mime.startsWith(pattern.slice(0, -1)));
const baseOf = (declared: string) => declared.split(';')[0]?.trim().toLowerCase() ?? '';
const EXECUTABLE_DECLARED = new Set([...PE_TYPES, ...ELF_TYPES, ...MACHO_TYPES]);

/** Checks what can be checked before any byte arrives: the declared type against the policy. */
export function checkDeclaredType(policy: TypePolicy, declared: string): void {
  const base = baseOf(declared);
  const refuse = () => {
    throw errors.unsupportedMediaType(`files of type ${base} are not accepted here`);
  };
  if (policy.allow.length && !policy.allow.some((p) => matches(p, base))) refuse();
  if (policy.deny.some((p) => p !== 'executable' && matches(p, base))) refuse();
  if (policy.deny.includes('executable') && EXECUTABLE_DECLARED.has(base)) refuse();
}

/** What the bytes were found to be, and the type the version is stored (and served) with. */
export interface ContentVerdict {
  sniffed: Sniffed | undefined;
  contentType: string;
}

/**
 * Checks the evidence: the first bytes against the declared type, the extension and the policy;
 * throws a 415 domain error, or says which type to store.
 */
export function checkContent(
  policy: TypePolicy,
  input: { name: string; declared: string; head: Buffer },
): ContentVerdict {
  const found = sniff(input.head);
  const declared = baseOf(input.declared);
  const ext = extensionOf(input.name);
  const claimsImage = declared.startsWith('image/') || IMAGE_EXTENSIONS.has(ext);
  if (found?.executable) {
    if (claimsImage) throw errors.unsupportedMediaType('the file claims to be an image but is an executable');
    if (policy.deny.includes('executable'))
      throw errors.unsupportedMediaType(`executables (${found.mime}) are not accepted here`);
    const allowed = EXECUTABLE_EXTENSIONS[formatOf(found.mime)];
    const typeSays = declared === 'application/octet-stream' || agrees(found.mime, declared);
    const nameSays = ext === '' ? allowed.none : allowed.exts.has(ext);
    const opaque = declared === 'application/octet-stream' && OPAQUE_EXTENSIONS.has(ext);
    if (!opaque && (!typeSays || !nameSays)) {
      throw errors.unsupportedMediaType(
        `the file is an executable (${found.mime}) but its ${typeSays ? 'name' : 'declared type'} ` +
          'says otherwise; executables are accepted only under an executable name and type',
      );
    }
  }
  const contentType = found
    ? agrees(found.mime, declared)
      ? input.declared
      : found.mime
    : hasSignature(declared) && !pdfAfterJunk(declared, input.head)
      ? 'application/octet-stream'
      : input.declared;
  const stored = baseOf(contentType);
  for (const t of new Set([found?.mime, stored])) {
    if (t && policy.deny.some((p) => p !== 'executable' && matches(p, t)))
      throw errors.unsupportedMediaType(`files of type ${t} are not accepted here`);
  }
  if (claimsImage && !found?.mime.startsWith('image/')) {
    throw errors.unsupportedMediaType(
      `the file claims to be an image but its bytes are ${found?.mime ?? 'not an image'}`,
    );
  }
  if (policy.allow.length && !policy.allow.some((p) => matches(p, stored)))
    throw errors.unsupportedMediaType(`the bytes are ${stored}, which is not accepted here`);
  return { sniffed: found, contentType };
}
