/**
 * The jobs module (shared/services/jobs.ts) with fake services: what each maintenance task runs and
 * answers, the state-change fan-out, and the stream Lambda's per-record failures on top of it
 * (Powertools' batch processor). The AWS and local adapters under them have their own suites
 * (upload-cleanup, replication-streams, iam-usage in integration).
 */

import type { DynamoDBRecord } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import type { Container } from '../../functions/container.ts';
import { createStateStreamHandler } from '../../functions/streams/state-stream.ts';
import { MemoryStateStore } from '../../shared/adapters/memory/memory-state-store.ts';
import type { User } from '../../shared/domain/model.ts';
import type { Logger } from '../../shared/observability/logger.ts';
import type { StateChange } from '../../shared/ports/state-store.ts';
import { type JobDeps, Jobs } from '../../shared/services/jobs.ts';
import type { UploadService } from '../../shared/services/upload-service.ts';

function recordingLog() {
  const lines: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
  const log: Logger = {
    debug: (msg, fields) => lines.push({ level: 'debug', msg, fields }),
    info: (msg, fields) => lines.push({ level: 'info', msg, fields }),
    warn: (msg, fields) => lines.push({ level: 'warn', msg, fields }),
    error: (msg, fields) => lines.push({ level: 'error', msg, fields }),
    child: () => log,
  };
  return { log, lines };
}

const retention = { items: 1, versions: 2, bytes: 3, blobsReclaimed: 4, trashRoots: 5 };
const reconcileReport = { scanned: 7 };

function fakes(over: Partial<JobDeps> = {}) {
  const { log, lines } = recordingLog();
  const calls: string[] = [];
  const released: unknown[] = [];
  const deps = {
    log,
    state: new MemoryStateStore(),
    auth: {
      updateUser: vi.fn(
        async (_actor: unknown, userId: string, patch: { role?: 'admin' | 'user' }) =>
          ({ id: userId, email: 'ann@example.com', role: patch.role ?? 'user' }) as User,
      ),
    },
    users: {
      byEmail: vi.fn(async (email: string) => (email === 'ann@example.com' ? { id: 'u1' } : undefined)),
    },
    versions: {
      sweep: vi.fn(async () => {
        calls.push('versions.sweep');
        return retention;
      }),
    },
    verification: {
      rescanPending: vi.fn(async () => {
        calls.push('verification.rescanPending');
        return 2;
      }),
    },
    uploads: {
      releaseStorage: vi.fn(async (s: unknown) => {
        calls.push('uploads.releaseStorage');
        released.push(s);
      }),
    } as unknown as UploadService,
    health: {
      checkAll: vi.fn(async () => {
        calls.push('health.checkAll');
        return {};
      }),
    },
    reconciler: {
      sweep: vi.fn(async () => {
        calls.push('reconciler.sweep');
        return reconcileReport as never;
      }),
    },
    replicator: {
      handle: vi.fn(async (change: StateChange) => {
        calls.push(`replicator.handle ${change.item.pk}`);
      }),
    },
    purges: {
      // As PurgeJobs.onTrigger: only `purgejob#` upserts concern it.
      onTrigger: vi.fn(async (change: StateChange) => {
        if (change.item.pk.startsWith('purgejob#')) calls.push(`purges.onTrigger ${change.item.pk}`);
      }),
      resumeStalled: vi.fn(async () => {
        calls.push('purges.resumeStalled');
        return 0;
      }),
    },
    backgroundVerifier: {
      verifyInBackground: vi.fn(async (uploadId: string) => {
        calls.push(`verifier.verifyInBackground ${uploadId}`);
        return 'committed' as const;
      }),
      resumeStalled: vi.fn(async () => {
        calls.push('verifier.resumeStalled');
        return 0;
      }),
    },
    ...over,
  } satisfies JobDeps;
  return { deps, jobs: new Jobs(deps), calls, lines, released };
}

const session = (state: string) => ({
  uploadId: 'up1',
  nodeId: 'n1',
  blobKey: 'v/up1',
  state,
});

describe('maintenance tasks', () => {
  it('answers each task name as the scheduled function always has', async () => {
    const { jobs, calls } = fakes();
    expect(await jobs.run('health')).toEqual({ health: {} });
    expect(await jobs.run('reconcile')).toEqual({ reconcile: reconcileReport });
    expect(await jobs.run('retention')).toEqual({ retention, rescanned: 2 });
    expect(calls).toEqual([
      'health.checkAll',
      // the reconcile task first hands stalled background verifications and purge jobs over again
      // (a sweep that runs out of time must not starve them), then sweeps
      'verifier.resumeStalled',
      'purges.resumeStalled',
      'reconciler.sweep',
      'versions.sweep',
      'verification.rescanPending',
    ]);
  });

  it('rescan rescans the quarantined versions only, without a retention sweep (GuardDuty tag events)', async () => {
    const { jobs, calls } = fakes();
    expect(await jobs.run('rescan')).toEqual({ rescanned: 2 });
    expect(calls).toEqual(['verification.rescanPending']);
  });

  it('runs retention for an event without a known task', async () => {
    const { jobs } = fakes();
    expect(await jobs.run(undefined)).toEqual({ retention, rescanned: 2 });
    expect(await jobs.run('something-else')).toEqual({ retention, rescanned: 2 });
  });

  it('answers the admin sweep flat: the retention report with the rescans', async () => {
    const { jobs } = fakes();
    expect(await jobs.retention()).toEqual({ ...retention, rescanned: 2 });
  });

  it('passes reconciliation options through (the admin route verifies checksums)', async () => {
    const { jobs, deps } = fakes();
    await jobs.reconcile({ verifyChecksums: true });
    expect(deps.reconciler.sweep).toHaveBeenCalledWith({ verifyChecksums: true });
  });

  it('sweeps the partition a Distributed Map item names; only the first also hands over', async () => {
    const first = fakes();
    await first.jobs.run('reconcile', { partition: { index: 0, count: 8 } });
    expect(first.deps.reconciler.sweep).toHaveBeenCalledWith({ partition: { index: 0, count: 8 } });
    expect(first.calls).toEqual(['verifier.resumeStalled', 'purges.resumeStalled', 'reconciler.sweep']);
    const other = fakes();
    await other.jobs.run('reconcile', { partition: { index: 5, count: 8 } });
    expect(other.deps.reconciler.sweep).toHaveBeenCalledWith({ partition: { index: 5, count: 8 } });
    expect(other.calls).toEqual(['reconciler.sweep']);
    for (const partition of [
      { index: 8, count: 8 },
      { index: -1, count: 8 },
      { index: 0, count: 0 },
      { index: 0, count: 257 },
      { index: 0.5, count: 2 },
    ])
      await expect(other.jobs.run('reconcile', { partition }), JSON.stringify(partition)).rejects.toThrow(
        /sweep partition/,
      );
  });

  it('logs a background reconciliation that fails as "<what> failed", and throws at nobody', async () => {
    const { jobs, lines } = fakes({
      reconciler: { sweep: async () => Promise.reject(new Error('node gone')) },
    });
    jobs.reconcileInBackground('backfill');
    await vi.waitFor(() =>
      expect(lines).toContainEqual({
        level: 'error',
        msg: 'backfill failed',
        fields: { err: 'Error: node gone' },
      }),
    );
  });

  it('promotes a registered account to admin, by email in any case', async () => {
    const { jobs, deps, lines } = fakes();
    expect(await jobs.run('promote-admin', { email: ' Ann@Example.com ' })).toEqual({
      admin: { id: 'u1', email: 'ann@example.com', role: 'admin' },
    });
    expect(deps.users.byEmail).toHaveBeenCalledWith('ann@example.com');
    expect(deps.auth.updateUser).toHaveBeenCalledWith(
      expect.objectContaining({ userId: 'u1', role: 'admin', tokenId: 'operator' }),
      'u1',
      { role: 'admin' },
    );
    expect(lines).toContainEqual({
      level: 'info',
      msg: 'admin promoted by the account operator',
      fields: { userId: 'u1' },
    });
  });

  it('refuses to promote without an email, or an email nobody registered', async () => {
    const { jobs, deps } = fakes();
    await expect(jobs.run('promote-admin', {})).rejects.toThrow(/needs \{"email"/);
    await expect(jobs.run('promote-admin', { email: 'bob@example.com' })).rejects.toThrow(
      'no registered account has the email bob@example.com',
    );
    expect(deps.auth.updateUser).not.toHaveBeenCalled();
  });

  it('reaps and keeps house only where the profile attached those jobs, read when they run', async () => {
    const { jobs, deps } = fakes();
    expect(await jobs.reapExpiredState()).toBe(0);
    expect(jobs.hasDatabaseHousekeeping).toBe(false);
    await jobs.databaseHousekeeping();
    // The local profile attaches them to its container after the services are built.
    const vacuum = vi.fn(async () => undefined);
    Object.assign(deps, { reapExpiredState: async () => 3, maintainDatabase: vacuum });
    expect(await jobs.reapExpiredState()).toBe(3);
    expect(jobs.hasDatabaseHousekeeping).toBe(true);
    await jobs.databaseHousekeeping();
    expect(vacuum).toHaveBeenCalledOnce();
  });
});

describe('the state-change fan-out', () => {
  it('cleans up after an expired upload session and leaves an "expired" tombstone', async () => {
    const { jobs, deps, calls, released } = fakes();
    await jobs.onStateChange({
      kind: 'remove',
      item: { pk: 'upload#up1', sk: 's', data: session('uploading'), version: 3 },
      expired: true,
    });
    expect(released).toEqual([session('uploading')]);
    expect((await deps.state.get('upload#up1', 's'))?.data).toMatchObject({ state: 'expired' });
    expect(calls).toEqual(['uploads.releaseStorage', 'replicator.handle upload#up1']);
  });

  it('leaves a committed session alone and hands ledger writes to the replicator', async () => {
    const { jobs, calls } = fakes();
    await jobs.onStateChange({
      kind: 'remove',
      item: { pk: 'upload#up1', sk: 's', data: session('committed'), version: 3 },
      expired: true,
    });
    await jobs.onStateChange({
      kind: 'upsert',
      item: { pk: 'ledger#v1', sk: 'n2', data: { state: 'pending' }, version: 1 },
    });
    expect(calls).toEqual(['replicator.handle upload#up1', 'replicator.handle ledger#v1']);
  });

  it('hands purge-job triggers to the purge jobs (locally; in AWS the background function does)', async () => {
    const { jobs, calls } = fakes();
    await jobs.onStateChange({
      kind: 'upsert',
      item: { pk: 'purgejob#j1', sk: 'j', data: { jobId: 'j1' }, version: 1 },
    });
    expect(calls).toEqual(['replicator.handle purgejob#j1', 'purges.onTrigger purgejob#j1']);
  });

  it('throws for a session it cannot read, before the replicator sees it (a retry, then the DLQ)', async () => {
    const { jobs, calls } = fakes();
    await expect(
      jobs.onStateChange({
        kind: 'remove',
        item: { pk: 'upload#x', sk: 's', data: { state: 'uploading' }, version: 1 },
        expired: true,
      }),
    ).rejects.toThrow('malformed upload session in upload#x');
    expect(calls).toEqual([]);
  });
});

describe('the state-stream handler (Powertools batch processing)', () => {
  const removal = (seq: string, data: Record<string, { S: string }>) =>
    ({
      eventID: `e${seq}`,
      eventName: 'REMOVE',
      userIdentity: { type: 'Service', principalId: 'dynamodb.amazonaws.com' },
      dynamodb: {
        SequenceNumber: seq,
        OldImage: { pk: { S: `upload#${seq}` }, sk: { S: 's' }, ver: { N: '1' }, data: { M: data } },
      },
    }) as unknown as DynamoDBRecord;
  const good = (seq: string) =>
    removal(seq, {
      uploadId: { S: seq },
      nodeId: { S: 'n1' },
      blobKey: { S: `v/${seq}` },
      state: { S: 'aborted' },
    });
  const broken = (seq: string) => removal(seq, { state: { S: 'uploading' } });

  it('reports the records it cannot process by sequence number, and processes the rest in order', async () => {
    const { deps, calls, lines } = fakes();
    const handler = createStateStreamHandler(deps as unknown as Container);
    const result = await handler({ Records: [good('10'), broken('11'), good('12'), broken('13')] });
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: '11' }, { itemIdentifier: '13' }]);
    expect(calls).toEqual([
      'uploads.releaseStorage',
      'replicator.handle upload#10',
      'uploads.releaseStorage',
      'replicator.handle upload#12',
    ]);
    expect(lines.filter((l) => l.msg === 'stream record failed').map((l) => l.fields?.eventId)).toEqual([
      'e11',
      'e13',
    ]);
  });

  it('answers a batch that failed whole with every record, rather than throwing', async () => {
    const { deps } = fakes();
    const handler = createStateStreamHandler(deps as unknown as Container);
    expect(await handler({ Records: [broken('20'), broken('21')] })).toEqual({
      batchItemFailures: [{ itemIdentifier: '20' }, { itemIdentifier: '21' }],
    });
  });

  it('answers no failures for a batch it processed, and keeps no records between batches', async () => {
    const { deps } = fakes();
    const handler = createStateStreamHandler(deps as unknown as Container);
    await handler({ Records: [broken('30')] });
    expect(await handler({ Records: [good('31')] })).toEqual({ batchItemFailures: [] });
  });
});
