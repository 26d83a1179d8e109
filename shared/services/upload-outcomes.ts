/** What completing an upload answers, and how a refused verification ends a session (upload-completion.ts). */
import { DomainError } from '../domain/errors.ts';
import type { UploadError, UploadSession } from '../domain/upload-session.ts';
import type { Logger } from '../observability/logger.ts';
import type { ReservationStore } from '../ports/metadata.ts';
import { type CompletionLease, type SessionRecords, TOMBSTONE_SECONDS } from './upload-state.ts';
import type { UploadStorage } from './upload-storage.ts';
import type { Verified } from './upload-verification.ts';

/** What a complete answers: the committed version (201), or that it is being verified (202). */
export type CompleteOutcome =
  | {
      status: 'committed';
      fileId: string;
      versionId: string;
      name: string;
      size: number;
      sha256: string;
      contentHash?: string;
      scanState?: Verified['scanState'];
      replayed: boolean;
    }
  | { status: 'verifying' };

/** What one run of the background verifier did. */
export type BackgroundOutcome = 'committed' | 'failed' | 'busy' | 'done' | 'continued';

/** How long each run of a verification that goes on in another run keeps the session alive. */
export const VERIFY_RUN_KEEPS_SECONDS = 86_400;

/** How often the background verifier writes its progress on the session (bytes read). */
export const PROGRESS_EVERY_BYTES = 64 * 1024 * 1024;

/** The problem a refusal tells the client: the domain error's type slug and message. */
function uploadErrorOf(err: unknown): UploadError {
  if (err instanceof DomainError) return { type: err.slug, detail: err.message };
  return { type: 'internal', detail: 'verification failed' };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A refused verification ends the session (`aborted` inside a request, which answers the error;
 * `failed` in the background, where the session tells it) with the reason, and removes its
 * bytes and its quota reservation: nothing half-written stays.
 */
export async function discardUpload(
  deps: {
    readonly reservations: Pick<ReservationStore, 'release'>;
    readonly storage: Pick<UploadStorage, 'release'>;
    readonly records: Pick<SessionRecords, 'verificationDone'>;
    readonly log: Logger;
  },
  lease: CompletionLease,
  s: UploadSession,
  reason: string,
  error: unknown,
  state: 'aborted' | 'failed',
) {
  await deps.reservations.release(s.uploadId);
  await deps.storage.release(s);
  const { completingUntil: _held, verifiedBytes: _read, verifyCheckpoint: _at, ...settled } = s;
  await lease
    .write(
      { ...settled, state, error: uploadErrorOf(error) },
      Math.floor(Date.now() / 1000) + TOMBSTONE_SECONDS,
    )
    .catch(() => undefined);
  if (state === 'failed') await deps.records.verificationDone(s.uploadId);
  deps.log.warn(state === 'failed' ? 'upload failed verification' : 'upload discarded', {
    uploadId: s.uploadId,
    reason,
  });
}
