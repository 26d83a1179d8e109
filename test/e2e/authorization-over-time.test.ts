/**
 * Authorization that must hold at every step, not only when a request first arrives: an editor
 * whose grant is revoked or downgraded mid-upload, a folder trashed under an open upload, and ids
 * spelled in upper case (which once missed the cache's invalidation and kept a former viewer's
 * access for five minutes).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, type Runtime, sha256, startRuntime } from '../support/local-runtime.ts';

const MiB = 1024 * 1024;
let rt: Runtime;
let owner: Client;
let editor: Client;

beforeAll(async () => {
  rt = await startRuntime();
  owner = new Client(rt.url);
  editor = new Client(rt.url);
  await owner.signUp('time-owner@example.com');
  await editor.signUp('time-editor@example.com');
});
afterAll(async () => {
  await rt?.stop();
});

const kind = (json: Record<string, unknown>) => String(json.type).replace('urn:stratus:problem:', '');

async function sharedFolder(name: string, role: 'editor' | 'viewer' = 'editor') {
  const folder = await owner.call('POST', '/v1/folders', { parentId: 'root', name });
  const grant = await owner.call('POST', '/v1/permissions', {
    itemId: folder.json.id,
    email: 'time-editor@example.com',
    role,
  });
  expect(grant.status).toBe(201);
  return { folderId: String(folder.json.id), grantId: String(grant.json.id) };
}

/** An upload into `parentId` by `c` with every part sent, not yet completed. */
async function staged(c: Client, parentId: string, name: string) {
  const data = randomBytes(6 * MiB);
  const created = await c.call('POST', '/v1/uploads', {
    parentId,
    name,
    size: data.length,
    sha256: sha256(data),
    partSize: 5 * MiB,
  });
  expect(created.status, JSON.stringify(created.json)).toBe(201);
  const { partSize, parts, uploadId } = created.json as {
    partSize: number;
    uploadId: string;
    parts: { partNumber: number; url: string; headers: Record<string, string> }[];
  };
  const etags = [];
  for (const p of parts) {
    const res = await fetch(p.url, {
      method: 'PUT',
      headers: p.headers,
      body: data.subarray((p.partNumber - 1) * partSize, p.partNumber * partSize) as Uint8Array<ArrayBuffer>,
    });
    etags.push({ partNumber: p.partNumber, etag: res.headers.get('etag') ?? '' });
  }
  return { uploadId, etags };
}

const names = async (folderId: string) =>
  ((await owner.call('GET', `/v1/folders/${folderId}/children`)).json.items as { name: string }[]).map(
    (i) => i.name,
  );

describe('an upload whose right to write ends before it completes', () => {
  it('stops when the grant is revoked: no renewal, no commit', async () => {
    const { folderId, grantId } = await sharedFolder('Revoked');
    const u = await staged(editor, folderId, 'late.bin');
    expect((await owner.call('DELETE', `/v1/permissions/${grantId}`)).status).toBe(204);
    const renew = await editor.call('POST', `/v1/uploads/${u.uploadId}/parts`, {
      parts: [{ partNumber: 1 }],
    });
    expect(renew.status).toBe(404);
    const done = await editor.call('POST', `/v1/uploads/${u.uploadId}/complete`, { parts: u.etags });
    expect(done.status).toBe(404);
    expect(await names(folderId)).toEqual([]);
  });

  it('stops when the grant is downgraded to viewer', async () => {
    const { folderId, grantId } = await sharedFolder('Downgraded');
    const u = await staged(editor, folderId, 'late.bin');
    expect((await owner.call('DELETE', `/v1/permissions/${grantId}`)).status).toBe(204);
    const viewer = await owner.call('POST', '/v1/permissions', {
      itemId: folderId,
      email: 'time-editor@example.com',
      role: 'viewer',
    });
    expect(viewer.status).toBe(201);
    const done = await editor.call('POST', `/v1/uploads/${u.uploadId}/complete`, { parts: u.etags });
    expect(done.status).toBe(403);
    expect(await names(folderId)).toEqual([]);
    // The upload is not lost: it is still open, should the owner restore the grant.
    expect((await editor.call('GET', `/v1/uploads/${u.uploadId}`)).json.state).toBe('uploading');
  });

  it('stops when an ancestor of the folder goes to the trash, even the owner’s own', async () => {
    const top = await owner.call('POST', '/v1/folders', { parentId: 'root', name: 'Top' });
    const inner = await owner.call('POST', '/v1/folders', { parentId: top.json.id, name: 'Inner' });
    const u = await staged(owner, String(inner.json.id), 'orphaned.bin');
    expect(
      (
        await owner.call('DELETE', `/v1/folders/${top.json.id}`, undefined, {
          'if-match': top.headers.get('etag') ?? '',
        })
      ).status,
    ).toBe(204);
    const done = await owner.call('POST', `/v1/uploads/${u.uploadId}/complete`, { parts: u.etags });
    expect(done.status).toBe(404);
    expect(kind(done.json)).toBe('not-found');
    const usage = await owner.call('GET', '/v1/usage');
    expect(usage.json.usedBytes).toBe(0);
  });
});

describe('ids in upper case', () => {
  it('are the same ids: a former viewer loses access at once, however the id is spelled', async () => {
    const { folderId } = await sharedFolder('Spelled', 'viewer');
    const data = Buffer.from('case matters not');
    const { complete } = await owner.upload(folderId, 'note.txt', data);
    const fileId = String(complete?.json.fileId);
    const upper = fileId.toUpperCase();
    // Read once under the upper-case spelling, so a cache keyed by spelling would hold it.
    const seen = await editor.call('GET', `/v1/files/${upper}`);
    expect(seen.status).toBe(200);
    // The owner moves the file out of the shared folder: the viewer's access ends with it.
    const moved = await owner.call(
      'PATCH',
      `/v1/files/${fileId}`,
      { parentId: 'root' },
      {
        'if-match': seen.headers.get('etag') ?? '',
      },
    );
    expect(moved.status).toBe(200);
    for (const id of [upper, fileId]) {
      expect((await editor.call('GET', `/v1/files/${id}`)).status).toBe(404);
      expect((await editor.call('GET', `/v1/files/${id}/download`)).status).toBe(404);
    }
    // And the owner's upper-case spelling answers the canonical id.
    const mine = await owner.call('GET', `/v1/files/${upper}`);
    expect(mine.status).toBe(200);
    expect(mine.json.id).toBe(fileId);
  });
});
