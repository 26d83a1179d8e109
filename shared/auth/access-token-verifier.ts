/**
 * Verifies access tokens with aws-jwt-verify. The same code checks Cognito's tokens (issuer
 * https://cognito-idp.<region>.amazonaws.com/<pool>) and the local identity provider's, which are
 * shaped like them: RS256, `kid`, `token_use: access`, `client_id` instead of `aud`.
 */
import { JwtRsaVerifier } from 'aws-jwt-verify';
import type { JwtPayload } from 'aws-jwt-verify/jwt-model';
import { errors } from '../domain/errors.ts';

export interface VerifierOptions {
  issuer: string;
  clientId: string;
  jwksUri: string;
  /** Pre-loaded keys (the local IdP's), so no network fetch is needed. */
  jwks?: { keys: object[] };
}

export type AccessClaims = JwtPayload & {
  sub: string;
  jti: string;
  exp: number;
  token_use: 'access';
  client_id: string;
  origin_jti?: string;
  'cognito:groups'?: string[];
};

export interface AccessTokenVerifier {
  verify(token: string): Promise<AccessClaims>;
}

export function createAccessTokenVerifier(opts: VerifierOptions): AccessTokenVerifier {
  const verifier = JwtRsaVerifier.create({
    issuer: opts.issuer,
    audience: null, // Cognito access tokens carry client_id, not aud: checked below.
    jwksUri: opts.jwksUri,
    customJwtCheck: ({ payload }) => {
      if (payload.token_use !== 'access') throw new Error('not an access token');
      if (payload.client_id !== opts.clientId) throw new Error('token issued to another client');
      if (typeof payload.jti !== 'string' || typeof payload.sub !== 'string')
        throw new Error('missing jti/sub');
    },
  });
  if (opts.jwks) verifier.cacheJwks(opts.jwks as Parameters<typeof verifier.cacheJwks>[0]);
  return {
    async verify(token) {
      try {
        return (await verifier.verify(token)) as AccessClaims;
      } catch {
        throw errors.unauthorized('the access token is invalid or expired');
      }
    },
  };
}

/** Extracts the bearer token from an Authorization header value. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer ([A-Za-z0-9._~+/=-]{10,8192})$/.exec(header ?? '');
  return m?.[1];
}
