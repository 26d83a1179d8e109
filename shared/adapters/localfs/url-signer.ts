/**
 * HMAC-SHA256 signatures for the local storage node's URLs. Every parameter is inside the MAC, in
 * an encoding with one reading only (a JSON array of every field in a fixed order, `null` for an
 * absent one, numbers as numbers), so no change to the query, however spelled, keeps a signature
 * valid. Parsing is strict: each op has a fixed set of parameters, and a query with an unknown
 * parameter, a parameter the op does not take, a repeated one, a missing required one, a number
 * in any spelling but plain decimal, or a signature in any spelling but the one `sign` produces,
 * is not a signed URL at all.
 *
 * A GET may carry a `nonce`: 128 random bits that make the URL single-use. The nonce is inside the
 * MAC like every other field, so it can be neither changed (a fresh nonce for a spent URL) nor
 * dropped (a multi-use URL from a single-use one); the node consumes it on the first fetch.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export interface SignedFields {
  op: 'put' | 'part' | 'get';
  node: string;
  key: string;
  upload?: string;
  part?: number;
  len?: number;
  sha?: string;
  name?: string;
  type?: string;
  /** Single-use GETs only: the node serves the URL once (see LocalStorageNodeServer). */
  nonce?: string;
  exp: number;
}

type Field = keyof SignedFields;

/** The MAC's field order. Changing it, or the tag, invalidates every URL issued before. */
const ORDER = ['op', 'node', 'key', 'upload', 'part', 'len', 'sha', 'name', 'type', 'nonce', 'exp'] as const;
const TAG = 'stratus-localfs-url-v3';

const NUMERIC = new Set<Field>(['part', 'len', 'exp']);

/** Which parameters each op takes (`sig` aside): required, then optional. */
const SHAPE: Record<SignedFields['op'], { required: readonly Field[]; optional: readonly Field[] }> = {
  put: { required: ['op', 'node', 'key', 'len', 'exp'], optional: ['sha'] },
  part: { required: ['op', 'node', 'key', 'upload', 'part', 'len', 'exp'], optional: ['sha'] },
  get: { required: ['op', 'node', 'key', 'exp'], optional: ['name', 'type', 'nonce'] },
};

/** Plain decimal, no sign, no leading zero, no exponent, no fraction: one spelling per number. */
const DECIMAL = /^(0|[1-9][0-9]{0,15})$/;
/** A 32-byte HMAC in unpadded base64url: 43 characters, the last carrying 4 bits (2 zero bits). */
const SIG = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;
/** 16 random bytes in unpadded base64url (`newNonce`): 22 characters, the last carrying 2 bits. */
const NONCE = /^[A-Za-z0-9_-]{21}[AQgw]$/;

/** A fresh nonce for a single-use URL. */
export function newNonce(): string {
  return randomBytes(16).toString('base64url');
}

function canonical(f: SignedFields): string {
  return JSON.stringify([TAG, ...ORDER.map((k) => f[k] ?? null)]);
}

function fitsShape(f: SignedFields): boolean {
  const shape = SHAPE[f.op];
  if (!shape) return false;
  for (const k of ORDER) {
    const v = f[k];
    if (v === undefined) {
      if (shape.required.includes(k)) return false;
      continue;
    }
    if (!shape.required.includes(k) && !shape.optional.includes(k)) return false;
    if (NUMERIC.has(k) ? !Number.isSafeInteger(v) || (v as number) < 0 : typeof v !== 'string') return false;
    if (k === 'nonce' && !NONCE.test(v as string)) return false;
  }
  return true;
}

export class UrlSigner {
  private readonly secret: Buffer;

  constructor(secret: Buffer) {
    this.secret = secret;
    if (secret.length < 32) throw new Error('signing secret must be at least 32 bytes');
  }

  sign(f: SignedFields): string {
    return createHmac('sha256', this.secret).update(canonical(f)).digest('base64url');
  }

  /** Constant-time check of the signature (exactly as `sign` spells it), its fields, and expiry. */
  verify(f: SignedFields, sig: string, nowSeconds: number): boolean {
    const expected = Buffer.from(this.sign(f), 'ascii');
    const given = Buffer.from(sig, 'ascii');
    const ok = given.length === expected.length && timingSafeEqual(given, expected);
    return ok && fitsShape(f) && f.exp > nowSeconds;
  }

  /** The query string carrying the fields and their signature. */
  query(f: SignedFields): string {
    if (!fitsShape(f)) throw new Error(`fields do not fit a signed ${f.op} URL`);
    const q = new URLSearchParams();
    for (const k of ORDER) if (f[k] !== undefined) q.set(k, String(f[k]));
    q.set('sig', this.sign(f));
    return q.toString();
  }

  /** The fields of a well-formed signed query (see the file's comment), or undefined. */
  static parse(q: URLSearchParams): { fields: SignedFields; sig: string } | undefined {
    const seen = new Map<string, string>();
    for (const [k, v] of q) {
      if (seen.has(k)) return undefined;
      seen.set(k, v);
    }
    const op = seen.get('op');
    if (op !== 'put' && op !== 'part' && op !== 'get') return undefined;
    const shape = SHAPE[op];
    const sig = seen.get('sig');
    if (sig === undefined || !SIG.test(sig)) return undefined;
    for (const k of seen.keys())
      if (k !== 'sig' && !shape.required.includes(k as Field) && !shape.optional.includes(k as Field))
        return undefined;
    const fields: Record<string, string | number> = {};
    for (const k of [...shape.required, ...shape.optional]) {
      const v = seen.get(k);
      if (v === undefined) {
        if (shape.required.includes(k)) return undefined;
        continue;
      }
      if (NUMERIC.has(k)) {
        if (!DECIMAL.test(v)) return undefined;
        fields[k] = Number(v);
      } else {
        // Only a downloaded file's name and type may be empty (as the issuer gave them).
        if (v === '' && k !== 'name' && k !== 'type') return undefined;
        fields[k] = v;
      }
    }
    const parsed = fields as unknown as SignedFields;
    return fitsShape(parsed) ? { fields: parsed, sig } : undefined;
  }
}
