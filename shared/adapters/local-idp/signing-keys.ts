/**
 * The local identity provider's RS256 key pair, created on first start and kept (mode 0600) in the
 * data directory so issued tokens stay valid across restarts. The kid is the RFC 7638 thumbprint.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  publicJwk: { kty: 'RSA'; n: string; e: string; kid: string; alg: 'RS256'; use: 'sig' };
}

export function signingKeyFrom(privateKey: KeyObject): SigningKey {
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' }) as { n: string; e: string };
  const kid = createHash('sha256')
    .update(JSON.stringify({ e: jwk.e, kty: 'RSA', n: jwk.n }))
    .digest('base64url');
  return { kid, privateKey, publicJwk: { kty: 'RSA', n: jwk.n, e: jwk.e, kid, alg: 'RS256', use: 'sig' } };
}

export function generateSigningKey(): SigningKey {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return signingKeyFrom(privateKey);
}

export async function loadOrCreateSigningKey(dataDir: string): Promise<SigningKey> {
  const file = path.join(dataDir, 'keys', 'idp-signing-key.pem');
  try {
    return signingKeyFrom(createPrivateKey(await fs.readFile(file, 'utf8')));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const key = generateSigningKey();
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const pem = key.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  await fs.writeFile(file, pem, { mode: 0o600, flag: 'wx' }).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  // Another process may have won the race: the file on disk is the key.
  return signingKeyFrom(createPrivateKey(await fs.readFile(file, 'utf8')));
}
