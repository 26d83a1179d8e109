/**
 * Purge jobs over real HTTP on the local runtime (its change feed runs the worker): a tree too big
 * for the request answers 202 with a Location, leaves the trash at once, cannot be restored, and
 * the job's progress reaches `done` with every byte given back; only its owner (and admins) see it.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, adminEnv, Client, type Runtime, startRuntime } from '../support/local-runtime.ts';

let rt: Runtime;
beforeAll(async () => {
  rt = await startRuntime({
    ...adminEnv('purge-admin@example.com'),
    // Small batches and a small inline limit, so a tree of a hundred rows is a job of several batches.
    STRATUS_PURGE_BATCH_ROWS: '40',
    STRATUS_PURGE_INLINE_ROWS: '20',
  });
});
afterAll(async () => {
  await rt?.stop();
});

const kind = (json: Record<string, unknown>) => String(json.type).replace('urn:stratus:problem:', '');

async function folder(c: Client, parentId: string, name: string): Promise<string> {
  const res = await c.call('POST', '/v1/folders', { parentId, name });
  if (res.status !== 201) throw new Error(`mkdir ${name}: ${res.status}`);
  return res.json.id as string;
}

describe('purge jobs', () => {
  it('purges a big tree as a job: 202 + Location, progress to done, 404 for anyone else', async () => {
    const owner = new Client(rt.url);
    await owner.signUp('purge-owner@example.com');
    const stranger = new Client(rt.url);
    await stranger.signUp('purge-stranger@example.com');
    const admin = new Client(rt.url);
    await admin.signInAdmin('purge-admin@example.com', ADMIN_PASSWORD);

    // 1 + 6 + 48 folders and 10 files of one version each: 75 rows.
    const top = await folder(owner, 'root', 'Big');
    const leaves: string[] = [];
    for (let i = 0; i < 6; i++) {
      const mid = await folder(owner, top, `m${i}`);
      for (let j = 0; j < 8; j++) leaves.push(await folder(owner, mid, `l${j}`));
    }
    let bytes = 0;
    for (let k = 0; k < 10; k++) {
      const data = randomBytes(100 + k);
      const up = await owner.upload(leaves[k * 4] as string, `f${k}.bin`, data);
      expect(up.complete?.status).toBe(201);
      bytes += data.length;
    }
    expect((await owner.call('GET', '/v1/usage')).json.usedBytes).toBe(bytes);
    expect((await owner.call('DELETE', `/v1/folders/${top}`)).status).toBe(204);

    const purge = await owner.call('DELETE', `/v1/trash/${top}`);
    expect(purge.status).toBe(202);
    const location = purge.headers.get('location');
    expect(location).toBe(`/v1/jobs/${purge.json.id}`);
    expect(purge.headers.get('retry-after')).toBe('1');
    expect(purge.json).toMatchObject({ operation: 'purge', rootId: top, requestedBy: expect.any(String) });
    expect(['queued', 'running', 'done']).toContain(purge.json.state);
    // From the 202 on: out of the trash, past restoring; a second purge answers the same job.
    expect((await owner.call('GET', '/v1/trash')).json.items).toEqual([]);
    const restore = await owner.call('POST', `/v1/trash/${top}/restore`);
    expect(restore.status).toBe(404);
    const twice = await owner.call('DELETE', `/v1/trash/${top}`);
    if (twice.status === 202) expect(twice.json.id).toBe(purge.json.id);
    else expect(twice.status).toBe(404); // it finished in between: nothing in the trash by that id

    // Anyone else: 404 as for a job that does not exist; no token: 401.
    const theirs = await stranger.call('GET', String(location));
    expect(theirs.status).toBe(404);
    expect(kind(theirs.json)).toBe('not-found');
    expect(JSON.stringify(theirs.json)).not.toContain(top);
    expect((await stranger.call('GET', `/v1/jobs/${crypto.randomUUID()}`)).status).toBe(404);
    expect((await new Client(rt.url).call('GET', String(location))).status).toBe(401);
    expect((await owner.call('GET', '/v1/jobs/not-a-uuid')).status).toBe(400);

    // The owner polls the Location until the job is done; progress only goes up.
    let last = -1;
    let job: Record<string, unknown> = {};
    const until = Date.now() + 60_000;
    for (;;) {
      const res = await owner.call('GET', String(location));
      expect(res.status).toBe(200);
      job = res.json;
      const progress = job.progress as { done: number; total: number | null };
      expect(progress.done).toBeGreaterThanOrEqual(last);
      last = progress.done;
      if (job.state === 'done') break;
      expect(['queued', 'running']).toContain(job.state);
      expect(res.headers.get('retry-after')).toBe('1');
      if (Date.now() > until) throw new Error(`job still ${job.state}: ${JSON.stringify(job)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(job).toMatchObject({
      state: 'done',
      progress: { done: 75, total: 75 },
      purged: { items: 65, versions: 10, bytes },
      error: null,
      finishedAt: expect.any(String),
    });
    expect((job.purged as { blobsReclaimed: number }).blobsReclaimed).toBe(10);
    expect((await owner.call('GET', '/v1/usage')).json.usedBytes).toBe(0);
    expect((await owner.call('DELETE', `/v1/trash/${top}`)).status).toBe(404);
    // An admin sees it too; the stranger still does not.
    expect((await admin.call('GET', String(location))).json).toMatchObject({
      id: purge.json.id,
      state: 'done',
    });
    expect((await stranger.call('GET', String(location))).status).toBe(404);
  });

  it('answers a small purge in the request, with its job beside it', async () => {
    const c = new Client(rt.url);
    await c.signUp('purge-small@example.com');
    const up = await c.upload('root', 'small.txt', Buffer.from('small'));
    const fileId = up.complete?.json.fileId as string;
    expect((await c.call('DELETE', `/v1/files/${fileId}`)).status).toBe(204);
    const emptied = await c.call('DELETE', '/v1/trash');
    expect(emptied.status).toBe(200);
    expect(emptied.json).toEqual({ items: 1, versions: 1, bytes: 5, blobsReclaimed: 1 });
    const at = emptied.headers.get('content-location');
    expect(at).toMatch(/^\/v1\/jobs\/[0-9a-f-]{36}$/);
    expect((await c.call('GET', String(at))).json).toMatchObject({
      operation: 'empty-trash',
      state: 'done',
      progress: { done: 2, total: 2 },
    });
  });

  it('documents the job route in the OpenAPI description', async () => {
    const doc = (await new Client(rt.url).call('GET', '/openapi.json')).json as {
      paths: Record<string, Record<string, { description?: string; responses: Record<string, unknown> }>>;
    };
    expect(doc.paths['/v1/jobs/{id}']?.get?.description).toMatch(/owner of the purged trash and to admins/);
    expect(Object.keys(doc.paths['/v1/trash/{id}']?.delete?.responses ?? {})).toEqual(
      expect.arrayContaining(['200', '202', '404']),
    );
  });
});
