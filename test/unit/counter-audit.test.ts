/**
 * The counters' drift check as the maintenance runs drive it: nothing on the first run (the
 * counters were just seeded or backfilled), then a full recount once a period has passed, spread
 * over runs by their budget and resumed from its cursor, correcting what was written around the
 * counters; then nothing until the next period. On the in-memory adapters.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createMemoryMetadata } from '../../shared/adapters/memory/memory-metadata.ts';
import { MemoryStateStore } from '../../shared/adapters/memory/memory-state-store.ts';
import { createLogger } from '../../shared/observability/logger.ts';
import { CounterAudit } from '../../shared/services/counter-audit.ts';
import { ledgerPk, type Replica, ReplicaLedger } from '../../shared/services/replica-ledger.ts';

describe('CounterAudit.run', () => {
  it('recounts once a period, over as many runs as its budget needs, and corrects drift', async () => {
    const { items } = createMemoryMetadata();
    const state = new MemoryStateStore();
    const ledger = new ReplicaLedger(state);
    const ids: string[] = [];
    for (let i = 0; i < 450; i++) {
      const v = await items.insertVersion({
        id: randomUUID(),
        fileId: randomUUID(),
        nodeId: 'n1',
        blobKey: `v/${i}`,
        size: 10,
        sha256: 'a'.repeat(64),
        contentType: 'x/y',
        createdBy: randomUUID(),
        contentHash: null,
        partSize: null,
        partHashes: null,
        scanState: null,
      });
      ids.push(v.id);
      await ledger.plan({ versionId: v.id, blobKey: v.blobKey, size: 10, sha256: v.sha256 }, 'n1', ['n2']);
    }
    // Two replicas written around the counters, as code from before them did.
    for (const id of [ids[3], ids[400]] as string[]) {
      const data: Replica = {
        versionId: id,
        nodeId: 'n3',
        blobKey: 'k',
        size: 10,
        sha256: 'a'.repeat(64),
        state: 'failed',
        attempts: 5,
        createdAt: new Date().toISOString(),
      };
      await state.put({ pk: ledgerPk(id), sk: 'n3', data });
    }
    expect((await ledger.counts()).replicas.failed).toBe(0);

    const audit = new CounterAudit({ items, ledger, state, log: createLogger('silent'), cycleSeconds: 3600 });
    const t0 = Date.parse('2030-01-01T00:00:00Z');
    const at = (seconds: number) => new Date(t0 + seconds * 1000);
    expect(await audit.run({ now: at(0) })).toMatchObject({ shards: 0, ledgerVersions: 0, complete: true });
    expect(await audit.run({ now: at(1800) })).toMatchObject({
      shards: 0,
      ledgerVersions: 0,
      complete: true,
    });

    // Due: with no time to spare each run does one step, and the next goes on where it stopped.
    const total = { runs: 0, shards: 0, ledgerVersions: 0, ledgerCorrected: 0 };
    for (let complete = false; !complete && total.runs < 1000; ) {
      const r = await audit.run({ now: at(3700), budgetMs: 0 });
      total.runs++;
      total.shards += r.shards;
      total.ledgerVersions += r.ledgerVersions;
      total.ledgerCorrected += r.ledgerCorrected;
      complete = r.complete;
    }
    // 256 shards one by one, then the 450 versions a page (200) at a time.
    expect(total).toEqual({ runs: 256 + 3, shards: 256, ledgerVersions: 450, ledgerCorrected: 2 });
    expect((await ledger.counts()).replicas).toEqual({ pending: 450, verified: 450, failed: 2, missing: 0 });
    // Not due again until a period after that cycle began.
    expect(await audit.run({ now: at(3700 + 1800) })).toMatchObject({ shards: 0, complete: true });
    expect(await audit.run({ now: at(3700 + 3601), budgetMs: 60_000 })).toMatchObject({
      shards: 256,
      ledgerVersions: 450,
      ledgerCorrected: 0,
      complete: true,
    });
  });
});
