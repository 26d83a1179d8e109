/**
 * HMAC-SHA256 signatures for the local storage node's URLs. Every field the node enforces is in the
 * signed string, so changing any query parameter (length, hash, expiry, key) breaks the signature.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

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
  exp: number;
}

const ORDER = ['op', 'node', 'key', 'upload', 'part', 'len', 'sha', 'name', 'type', 'exp'] as const;

function canonical(f: SignedFields): string {
  return ORDER.map((k) => `${k}=${f[k] === undefined ? '' : encodeURIComponent(String(f[k]))}`).join('\n');
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

  /** Constant-time check of signature and expiry. */
  verify(f: SignedFields, sig: string, nowSeconds: number): boolean {
    const expected = Buffer.from(this.sign(f), 'base64url');
    const given = Buffer.from(sig, 'base64url');
    const ok = given.length === expected.length && timingSafeEqual(given, expected);
    return ok && f.exp > nowSeconds;
  }

  /** The query string carrying the fields and their signature. */
  query(f: SignedFields): string {
    const q = new URLSearchParams();
    for (const k of ORDER) if (f[k] !== undefined) q.set(k, String(f[k]));
    q.set('sig', this.sign(f));
    return q.toString();
  }

  static parse(q: URLSearchParams): { fields: SignedFields; sig: string } | undefined {
    const op = q.get('op');
    const node = q.get('node');
    const key = q.get('key');
    const exp = Number(q.get('exp'));
    const sig = q.get('sig');
    if (
      (op !== 'put' && op !== 'part' && op !== 'get') ||
      !node ||
      !key ||
      !sig ||
      !Number.isSafeInteger(exp)
    ) {
      return undefined;
    }
    const num = (name: string) => {
      const v = q.get(name);
      if (v === null) return undefined;
      const n = Number(v);
      return /^\d{1,16}$/.test(v) && Number.isSafeInteger(n) ? n : Number.NaN;
    };
    const fields: SignedFields = { op, node, key, exp };
    const upload = q.get('upload');
    const part = num('part');
    const len = num('len');
    if (upload !== null) fields.upload = upload;
    if (part !== undefined) fields.part = part;
    if (len !== undefined) fields.len = len;
    for (const k of ['sha', 'name', 'type'] as const) {
      const v = q.get(k);
      if (v !== null) fields[k] = v;
    }
    if (Number.isNaN(fields.part) || Number.isNaN(fields.len)) return undefined;
    return { fields, sig };
  }
}
