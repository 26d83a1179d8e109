/**
 * The local profile's side of the jobs module: its state table counts open upload sessions for the
 * gauge with a real query on the JSON (not a text match), and its change feed hands a reaped
 * session to the jobs' fan-out, which cleans it up and leaves the "expired" tombstone.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Container } from '../../functions/container.ts';
import { createLocalContainer } from '../../local/local-container.ts';
import { SqlStateStore } from '../../shared/adapters/postgres/sql-state-store.ts';
import { type LocalConfig, loadConfig } from '../../shared/config/config.ts';
import { sqlBackends } from '../support/fixtures.ts';

const now = () => Math.floor(Date.now() / 1000);

describe.each(sqlBackends)('SqlStateStore.countMatching: $name', (backend) => {
  let store: SqlStateStore;
  let dispose: () => Promise<void>;
  beforeEach(async () => {
    const opened = await backend.open();
    store = new SqlStateStore(opened.db);
    dispose = opened.dispose;
  });
  afterEach(async () => {
    await dispose();
  });

  it('counts live items under the prefix whose top-level field holds one of the values', async () => {
    const put = (pk: string, data: Record<string, unknown>, expiresAt?: number) =>
      store.put({ pk, sk: 's', data, ...(expiresAt === undefined ? {} : { expiresAt }) });
    await put('upload#a', { state: 'uploading' }, now() + 3600);
    await put('upload#b', { state: 'completing', parts: [1, 2] });
    await put('upload#c', { state: 'committed' });
    await put('upload#d', { state: 'uploading' }, now() - 10); // expired, not yet reaped
    await put('other#e', { state: 'uploading' });
    // The text match this replaced counted these two: a nested field, a value inside a string.
    await put('upload#f', { state: 'aborted', parts: [{ state: 'uploading' }] });
    await put('upload#g', { state: 'aborted', note: '"state":"completing"' });
    expect(await store.countMatching('upload#', 'state', ['uploading', 'completing'])).toBe(2);
    expect(await store.countMatching('upload#', 'state', ['committed'])).toBe(1);
    expect(await store.countMatching('upload#', 'state', [])).toBe(0);
    expect(await store.countMatching('nothing#', 'state', ['uploading'])).toBe(0);
  });
});

describe('the local runtime: open-session gauge and the change feed through the jobs', () => {
  let c: Container;
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-jobs-'));
    c = await createLocalContainer(
      loadConfig({
        STRATUS_DATA_DIR: dir,
        STRATUS_LOG_LEVEL: 'silent',
        STRATUS_LOCAL_NODES: '1',
        STRATUS_REPLICATION_FACTOR: '1',
        STRATUS_KDF_COST: '10',
      }) as LocalConfig,
    );
  });
  afterAll(async () => {
    await c?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('counts an open upload, and after its session expires, the reaper cleans it up', async () => {
    const u = await c.users.ensure({
      id: crypto.randomUUID(),
      email: 'jobs@example.com',
      role: 'user',
      quotaBytes: 1e9,
    });
    const p = { userId: u.id, role: 'user' as const, tokenId: 't', expiresAt: 9e9 };
    const gauge = async () =>
      Number(/^stratus_upload_sessions_open\S* (\d+)$/m.exec((await c.prometheus?.render()) ?? '')?.[1]);
    expect(await gauge()).toBe(0);
    const created = await c.uploads.createUpload(p, {
      parentId: 'root',
      name: 'a.txt',
      size: 5,
      sha256: '0'.repeat(64),
      contentType: 'text/plain',
    });
    expect(await gauge()).toBe(1);

    // What TTL does: the session's expiry passes (moved back here), and the reaper removes it.
    const key = { pk: `upload#${created.uploadId}`, sk: 's' };
    const item = await c.state.get(key.pk, key.sk);
    await c.state.put({ ...key, data: item?.data ?? {}, expiresAt: now() - 1 });
    expect(await c.reapExpiredState?.()).toBeGreaterThanOrEqual(1);
    expect((await c.uploads.getUpload(p, created.uploadId)).state).toBe('expired');
    expect(await gauge()).toBe(0);
  });
});
