/**
 * Cleans up after upload sessions that end without a commit. The session store expires them (TTL);
 * its change stream reports the removal here (DynamoDB Streams -> Lambda in AWS, the local feed
 * otherwise). The storage they held is released (the multipart upload aborted, partial parts and
 * any assembled object deleted) and a tombstone answers `expired` for a while.
 */
import type { UploadSession } from '../domain/upload-session.ts';
import type { Logger } from '../observability/logger.ts';
import type { StateChange, StateStore } from '../ports/state-store.ts';
import type { UploadService } from './upload-service.ts';
import { sessionKey, TOMBSTONE_SECONDS } from './upload-state.ts';

export class SessionCleanup {
  private readonly uploads: UploadService;
  private readonly sessions: StateStore;
  private readonly log: Logger;

  constructor(uploads: UploadService, sessions: StateStore, log: Logger) {
    this.uploads = uploads;
    this.sessions = sessions;
    this.log = log;
  }

  /** Handles one change; returns true when it cleaned something up. Throws to ask for a retry. */
  async handle(change: StateChange): Promise<boolean> {
    if (change.kind !== 'remove' || !change.item.pk.startsWith('upload#')) return false;
    const s = change.item.data as unknown as UploadSession;
    if (s.state === 'committed' || s.state === 'expired') return false;
    // A record we cannot read must not vanish quietly: failing sends it to the retry path / DLQ.
    if (typeof s.uploadId !== 'string' || typeof s.nodeId !== 'string' || typeof s.blobKey !== 'string') {
      throw new Error(`malformed upload session in ${change.item.pk}`);
    }
    await this.uploads.releaseStorage(s);
    if (change.expired && (s.state === 'uploading' || s.state === 'completing')) {
      await this.sessions
        .put(
          {
            ...sessionKey(s.uploadId),
            data: { ...s, state: 'expired' },
            expiresAt: Math.floor(Date.now() / 1000) + TOMBSTONE_SECONDS,
          },
          { kind: 'absent' },
        )
        .catch(() => undefined); // a newer item under the key wins
    }
    this.log.info('upload session cleaned up', {
      uploadId: s.uploadId,
      state: s.state,
      expired: change.expired,
    });
    return true;
  }
}
