/**
 * Item names. Names are stored NFC-normalised and case-preserving; uniqueness within a folder is
 * case-insensitive (as in Dropbox, macOS and Windows), so a tree syncs to every desktop client
 * without two names colliding on disk. `nameKey` is the comparison form stored beside the name.
 */
import { errors } from './errors.ts';

const MAX_NAME_BYTES = 255;
// C0 and C1 controls plus DEL, matched by code point (biome rightly flags literal controls in regexes).
const isControl = (cp: number) => cp <= 0x1f || (cp >= 0x7f && cp <= 0x9f);
const hasControl = (s: string) => [...s].some((ch) => isControl(ch.codePointAt(0) ?? 0));
// Bidi embeddings, overrides and isolates, used to disguise extensions (e.g. "exe.txt" shown reversed).
const BIDI = /[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/u;
// Invisible characters with no use in a name, which hide what it says ("photo.png" + U+200B):
// zero-width space, word joiner and invisible operators, the BOM, the Mongolian vowel separator,
// deprecated format controls. Refused, not stripped: a name the server silently changed would
// come back to a sync client as a rename. ZWJ and ZWNJ stay (emoji sequences and Persian or Indic
// words need them); the type policy reads extensions with every invisible character removed.
const INVISIBLE = /[\u200b\u2060-\u2064\u206a-\u206f\ufeff\u180e]/u;
const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/iu;
const WINDOWS_FORBIDDEN = /[<>:"\\|?*]/u;

/** Validate and normalise a user-supplied item name; throws a 400 domain error naming the rule. */
export function normaliseName(raw: string): string {
  const name = raw.normalize('NFC');
  const reject = (why: string) => {
    throw errors.validation(`invalid name: ${why}`, [{ path: 'name', message: why }]);
  };
  if (name.length === 0 || name.trim().length === 0) reject('name is empty');
  if (name === '.' || name === '..') reject('"." and ".." are not names');
  if (name.includes('/')) reject('name contains "/"');
  if (hasControl(name)) reject('name contains a NUL or control character');
  if (BIDI.test(name)) reject('name contains a bidirectional override character');
  if (INVISIBLE.test(name)) reject('name contains an invisible character (zero-width space or similar)');
  if (WINDOWS_FORBIDDEN.test(name)) reject('name contains a character Windows forbids (<>:"\\|?*)');
  if (/[. ]$/u.test(name)) reject('name ends with a dot or space');
  if (WINDOWS_RESERVED.test(name)) reject('name is reserved on Windows');
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) reject(`name is longer than ${MAX_NAME_BYTES} bytes`);
  return name;
}

/** The form used for uniqueness: NFC then locale-independent lower case. */
export function nameKey(name: string): string {
  return name.normalize('NFC').toLowerCase().normalize('NFC');
}
