/**
 * The first bytes of real files, for the type policy's tests. Each head was read from a real file
 * (a Windows launcher from pip, /bin/true, images and archives shipped with Python and Rust docs) or
 * built to its format's spec, and checked with file(1): the description it printed is beside each.
 */

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

export interface Signature {
  /** What file(1) calls it. */
  what: string;
  head: Buffer;
  /** What `sniff` must say: the canonical type, and whether it runs. */
  mime: string | undefined;
  executable: boolean;
}

/** pip's distlib w64.exe: "PE32+ executable (console) x86-64, for MS Windows" (DOS header, stub, PE). */
export const PE = hex(`
  4d5a90000300000004000000ffff0000b800000000000000400000000000000000000000000000000000000000000000
  000000000000000000000000f00000000e1fba0e00b409cd21b8014ccd21546869732070726f6772616d2063616e6e6f
  742062652072756e20696e20444f53206d6f64652e0d0d0a2400000000000000b098dcadf4f9b2fef4f9b2fef4f9b2fe`);
/** /bin/true: "ELF 64-bit LSB pie executable, x86-64". */
export const ELF = hex(`
  7f454c4602010100000000000000000003003e0001000000d0230000000000004000000000000000908300000000000000
  000000400038000d0040001f001e00`);
/** "Mach-O 64-bit arm64 executable" (MH_MAGIC_64, little-endian on disk). */
export const MACHO_ARM64 = hex('cffaedfe0c000001000000000200000000000000000000008500200000000000');
/** "Mach-O i386 executable" (MH_MAGIC, 32-bit). */
export const MACHO_I386 = hex('cefaedfe070000000300000002000000000000000000000000000000');
/** "Mach-O universal binary with 2 architectures: [x86_64] [arm64]" (FAT_MAGIC, big-endian). */
export const MACHO_FAT = hex(`
  cafebabe00000002010000070000000300004000000010000000000e0100000c0000000000008000000010000000000e`);
/** gettext's javaversion.class: "compiled Java class data, version 45.3" (also starts CAFEBABE). */
export const JAVA_CLASS = hex('cafebabe0003002d00210a0007001009001100120800130a001100140a001500');
export const SHELL = Buffer.from('#!/bin/sh\nset -e\nexec "$@"\n');
/** /usr/bin/pip3: "Python script, ASCII text executable". */
export const PYTHON = Buffer.from('#!/usr/bin/python3\n# -*- coding: utf-8 -*-\nimport re\n');
export const ENV_NODE = Buffer.from('#! /usr/bin/env node\nconsole.log(1)\n');
/** A Rust crate root: "#!" but not a shebang (the kernel needs an interpreter path). */
export const RUST_ATTRIBUTE = Buffer.from('#![deny(missing_docs)]\n//! A crate.\n');

/** rustdoc's collapsed-trait-impls.png: "PNG image data". */
export const PNG = hex('89504e470d0a1a0a0000000d49484452000002600000011308020000001e572d');
/** embedded-book f3.jpg: "JPEG image data" (starts with a DQT segment, no JFIF). */
export const JPEG = hex('ffd8ffdb00430001010101010101010101010101010102010101010102020202');
export const GIF = hex('4749463839618002a501f7023100000000000900ff0001000b01010003021004');
export const WEBP = hex('52494646a801000057454250565038580a000000100000000f00000f0000414c');
export const TIFF = hex('49492a00080000000000000000000000000000000000000000000000000000000000');
export const HEIC = hex('000000186674797068656963000000006d69663168656963000000106d6574610000000000000000');
export const AVIF = hex('00000020667479706176696600000000617669666d6966316d6961664d413142000000106d657461');
export const JXL = hex('ff0afa7f01904a0f');
export const ICO = hex('000001000400101000000100200068040000460000002020000001002000a810');
export const BMP = hex('424d8a040000000000008a0000007c0000001000000010000000010020000300');
/** rustdoc's favicon: an SVG with no XML declaration. */
export const SVG = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 199.7 184.2">\n');
export const SVG_DOCTYPE = Buffer.from(
  '\ufeff<?xml version="1.0"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x">\n<svg xmlns="http://www.w3.org/2000/svg"/>',
);
/** libtasn1.pdf: "PDF document, version 1.5". */
export const PDF = hex('255044462d312e350a25d0d4c5d80a312030206f626a0a3c3c0a2f4c656e6774');
/** "Zip archive data": a zip whose first entry is [Content_Types].xml, as every OOXML file is. */
export const DOCX = hex(`
  504b0304140000000800af39825dee4758661f0000001d000000130000005b436f6e74656e745f54797065735d2e786d`);
/** Python's zipdir.zip: "Zip archive data". */
export const ZIP = hex('504b03040a0000000000fdba253a00000000000000000000000002001500612f');
/** pyenv's package-1.0.0.tar.gz: "gzip compressed data". */
export const GZIP = hex('1f8b08009a4aaa500003edd2db0ec140108061d77d8a75b8c5eceaf03c5b2915');
/** "ISO Media, MP4 Base Media v1". */
export const MP4 = hex('000000206674797069736f6d0000020069736f6d69736f32617663316d7034310000000866726565');
/** "ISO Media, Apple QuickTime movie". */
export const MOV = hex('00000014667479707174202000000200717420200000000877696465');
/** "ISO Media, Apple iTunes ALAC/AAC-LC (.M4A) Audio". */
export const M4A = hex('00000020667479704d344120000000004d3441206d70343269736f6d00000000');

export const SIGNATURES: Signature[] = [
  {
    what: 'PE32+ executable',
    head: PE,
    mime: 'application/vnd.microsoft.portable-executable',
    executable: true,
  },
  { what: 'ELF 64-bit executable', head: ELF, mime: 'application/x-elf', executable: true },
  { what: 'Mach-O 64-bit arm64', head: MACHO_ARM64, mime: 'application/x-mach-binary', executable: true },
  { what: 'Mach-O i386', head: MACHO_I386, mime: 'application/x-mach-binary', executable: true },
  { what: 'Mach-O universal', head: MACHO_FAT, mime: 'application/x-mach-binary', executable: true },
  { what: 'POSIX shell script', head: SHELL, mime: 'text/x-shellscript', executable: true },
  { what: 'Python script', head: PYTHON, mime: 'text/x-python', executable: true },
  { what: 'env node script', head: ENV_NODE, mime: 'text/javascript', executable: true },
  { what: 'compiled Java class', head: JAVA_CLASS, mime: 'application/java-vm', executable: false },
  { what: 'Rust inner attribute', head: RUST_ATTRIBUTE, mime: undefined, executable: false },
  { what: 'PNG image', head: PNG, mime: 'image/png', executable: false },
  { what: 'JPEG image', head: JPEG, mime: 'image/jpeg', executable: false },
  { what: 'GIF image', head: GIF, mime: 'image/gif', executable: false },
  { what: 'WebP image', head: WEBP, mime: 'image/webp', executable: false },
  { what: 'TIFF image', head: TIFF, mime: 'image/tiff', executable: false },
  { what: 'HEIF image', head: HEIC, mime: 'image/heic', executable: false },
  { what: 'AVIF image', head: AVIF, mime: 'image/avif', executable: false },
  { what: 'JPEG XL codestream', head: JXL, mime: 'image/jxl', executable: false },
  { what: 'MS Windows icon', head: ICO, mime: 'image/x-icon', executable: false },
  { what: 'PC bitmap', head: BMP, mime: 'image/bmp', executable: false },
  { what: 'SVG image', head: SVG, mime: 'image/svg+xml', executable: false },
  { what: 'SVG with BOM and doctype', head: SVG_DOCTYPE, mime: 'image/svg+xml', executable: false },
  { what: 'PDF document', head: PDF, mime: 'application/pdf', executable: false },
  { what: 'Zip (OOXML)', head: DOCX, mime: 'application/zip', executable: false },
  { what: 'Zip archive', head: ZIP, mime: 'application/zip', executable: false },
  { what: 'gzip data', head: GZIP, mime: 'application/gzip', executable: false },
  { what: 'MP4 video', head: MP4, mime: 'video/mp4', executable: false },
  { what: 'QuickTime movie', head: MOV, mime: 'video/quicktime', executable: false },
  { what: 'M4A audio', head: M4A, mime: 'audio/mp4', executable: false },
];
