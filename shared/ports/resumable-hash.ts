/**
 * A SHA-256 whose state can be saved and loaded again, so a hash over a file can stop in one run
 * and go on in another (the background verifier's runs: services/upload-inspection.ts). Node's
 * own hash cannot hand over its state.
 */
export interface ResumableHash {
  update(b: Buffer): void;
  digest(): Buffer;
  /** The state so far, as a string; only before `digest`. */
  save(): string;
  /** Starts over, as a new hash (after `digest`, to hash the next part). */
  reset(): void;
}

/** A new SHA-256, or one continuing from a `save()`d state. */
export type ResumableSha256 = (state?: string) => Promise<ResumableHash>;
