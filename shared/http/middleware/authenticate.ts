/**
 * The caller of a route with `auth: true`: the access token's claims, as API Gateway's JWT
 * authorizer (AWS) or the local gateway's (same verifier) passed them, checked against the
 * revocation list, with the role the users table holds now. Routes without auth get no principal.
 */
import { errors } from '../../domain/errors.ts';
import type { Principal } from '../../domain/model.ts';
import type { RevocationList } from '../../services/revocation-list.ts';
import type { ApiEvent, ApiMiddleware, Authenticated, Routed } from './types.ts';

export interface AuthenticateOptions {
  revocations: RevocationList;
  /**
   * The principal's current role (the users table, briefly cached). Without it the token's
   * `cognito:groups` decide, which are frozen when the token is issued.
   */
  roles?: { roleOf(userId: string): Promise<'admin' | 'user'> } | undefined;
}

export function authenticate(opts: AuthenticateOptions): ApiMiddleware<Routed & Authenticated> {
  return {
    before: async (request) => {
      request.internal.principal = request.internal.target.route.auth
        ? await principalOf(request.event, opts)
        : undefined;
    },
  };
}

async function principalOf(event: ApiEvent, opts: AuthenticateOptions): Promise<Principal> {
  const claims = event.requestContext?.authorizer?.jwt?.claims;
  if (claims?.token_use !== 'access' || typeof claims.sub !== 'string' || typeof claims.jti !== 'string') {
    throw errors.unauthorized();
  }
  const origin = typeof claims.origin_jti === 'string' ? claims.origin_jti : undefined;
  const [revoked, role] = await Promise.all([
    opts.revocations.isRevoked([claims.jti, origin]),
    opts.roles
      ? opts.roles.roleOf(claims.sub)
      : groupsOf(claims['cognito:groups']).includes('admin')
        ? ('admin' as const)
        : ('user' as const),
  ]);
  if (revoked) throw errors.unauthorized('the token has been revoked');
  return {
    userId: claims.sub,
    role,
    tokenId: claims.jti,
    ...(origin ? { originTokenId: origin } : {}),
    expiresAt: Number(claims.exp),
  };
}

/** API Gateway flattens array claims to "[a b]"; the local gateway passes arrays. Accept both. */
export function groupsOf(raw: unknown): string[] {
  if (Array.isArray(raw)) return raw.map(String);
  if (typeof raw === 'string')
    return raw
      .replace(/^\[|\]$/g, '')
      .split(/[\s,]+/)
      .filter(Boolean);
  return [];
}
