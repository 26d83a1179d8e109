/**
 * Who a user is: sign-up, password login and refresh-token rotation. The local profile has its own
 * provider issuing Cognito-shaped RS256 JWTs; the aws profile adapts Cognito. Both produce access
 * tokens that the same verifier (aws-jwt-verify) checks.
 */
export interface TokenSet {
  accessToken: string;
  refreshToken: string;
  /** Seconds until the access token expires. */
  expiresIn: number;
}

export interface IdentityProvider {
  /** Creates the account; throws email-taken on a duplicate. Returns the subject id. */
  register(input: { email: string; password: string; role: 'admin' | 'user' }): Promise<{ userId: string }>;
  /** Throws unauthorized on a bad email or password (never saying which). */
  login(input: { email: string; password: string }): Promise<TokenSet & { userId: string }>;
  /** Rotates the refresh token. Reuse of a rotated token revokes its family and throws unauthorized. */
  refresh(refreshToken: string): Promise<TokenSet>;
  /** Revokes the refresh token's family. Unknown tokens are ignored. */
  revokeRefreshToken(refreshToken: string): Promise<void>;
}
