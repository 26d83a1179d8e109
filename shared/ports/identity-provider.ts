/**
 * Who a user is: sign-up, password login, refresh-token rotation and password reset. The local
 * profile has its own provider issuing Cognito-shaped RS256 JWTs; the aws profile adapts Cognito.
 * Both produce access tokens that the same verifier (aws-jwt-verify) checks.
 */
export interface TokenSet {
  accessToken: string;
  refreshToken: string;
  /** Seconds until the access token expires. */
  expiresIn: number;
}

/** Who delivers a password-reset code. */
export type PasswordResetDelivery =
  /** The provider sent it itself (Cognito emails it; for an unknown address it silently sends nothing). */
  | { by: 'provider' }
  /** The caller must deliver it: the local profile has no mail server, so the service logs it. */
  | { by: 'caller'; to: string; code: string }
  /** No such account (the local provider knows); the API answers exactly as for a real one. */
  | { by: 'nobody' };

export interface IdentityProvider {
  /**
   * Creates the account; throws email-taken on a duplicate. Returns the subject id. A failure after
   * the account was created undoes it, so the email can register again.
   */
  register(input: { email: string; password: string; role: 'admin' | 'user' }): Promise<{ userId: string }>;
  /** Throws unauthorized on a bad email or password (never saying which). */
  login(input: { email: string; password: string }): Promise<TokenSet & { userId: string }>;
  /** Rotates the refresh token. Reuse of a rotated token revokes its family and throws unauthorized. */
  refresh(refreshToken: string): Promise<TokenSet>;
  /** Revokes the refresh token's family. Unknown tokens are ignored. */
  revokeRefreshToken(refreshToken: string): Promise<void>;
  // The members below are optional so a composition without a provider (a stub) need not have
  // them; both real adapters implement them all.
  /** Deletes the account: the undo of a registration whose later steps failed. Unknown emails are ignored. */
  deleteAccount?(email: string): Promise<void>;
  /**
   * Starts a password reset: a one-time code for the account, valid about an hour. Says nothing
   * about whether the account exists (unknown emails are not an error).
   */
  requestPasswordReset?(email: string): Promise<PasswordResetDelivery>;
  /** Sets the new password if the code is right; a wrong, expired or spent code is a 400. */
  confirmPasswordReset?(input: { email: string; code: string; newPassword: string }): Promise<void>;
  /**
   * Ends every session of the user (all refresh-token families). Returns the family ids it
   * revoked, when the provider knows them, so access tokens minted from them can be revoked too.
   */
  signOutEverywhere?(input: { userId: string; email: string }): Promise<string[]>;
  /**
   * Revokes the refresh-token family an access token names (its `origin_jti`): logout without the
   * refresh token. Families of other users are left alone. Cognito has no such call (RevokeToken
   * needs the refresh token itself), so its adapter leaves this out and the service's revocation
   * list, which every refresh through the API consults, ends the family instead.
   */
  revokeFamily?(input: { familyId: string; userId: string }): Promise<void>;
  /**
   * Makes the provider's group membership match the role the users table now holds (Cognito:
   * AdminAddUserToGroup, then AdminRemoveUserFromGroup for the other group). Idempotent. The local
   * provider reads the users table whenever it issues tokens, so it needs nothing here.
   */
  setRole?(input: { userId: string; email: string; role: 'admin' | 'user' }): Promise<void>;
}
