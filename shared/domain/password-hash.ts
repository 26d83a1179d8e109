/**
 * Password hashing with scrypt, a memory-hard KDF built into Node (no native add-on to ship to
 * Lambda). The parameters are stored in the hash, so the cost can be raised without a migration.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';

const KEY_LEN = 32;
const R = 8;
const P = 1;

function scrypt(password: string, salt: Buffer, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(
      password.normalize('NFKC'),
      salt,
      KEY_LEN,
      { N: n, r: R, p: P, maxmem: 256 * n * R + 1024 * 1024 },
      (err, key) => (err ? reject(err) : resolve(key)),
    ),
  );
}

export async function hashPassword(password: string, log2N: number): Promise<string> {
  const salt = randomBytes(16);
  const n = 2 ** log2N;
  const key = await scrypt(password, salt, n);
  return `scrypt$${log2N}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [alg, log2N, r, p, salt, key] = stored.split('$');
  if (alg !== 'scrypt' || !log2N || !salt || !key || r !== String(R) || p !== String(P)) return false;
  const expected = Buffer.from(key, 'base64url');
  const actual = await scrypt(password, Buffer.from(salt, 'base64url'), 2 ** Number(log2N));
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
