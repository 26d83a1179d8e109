/**
 * The routes the first part of the deployed suite (api.test.ts) does not reach, each through
 * `call` (status, handler, declared body schema) and then checked by its effect as another request
 * sees it. Imported by api.test.ts, the suite's one test file, so the route-coverage check there
 * sees these requests too (route-coverage.ts).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { StratusApi } from '../../clients/api.ts';
import { allRoutes, routes } from '../../functions/api/routes.ts';
import {
  call,
  EMULATOR,
  email,
  emailsTo,
  eventually,
  type Out,
  PASSWORD,
  sha256,
  signedIn,
  text,
  upload,
} from './support.ts';

const emulator = {
  region: 'us-east-1',
  endpoint: EMULATOR,
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
};

type Item = Out<'ItemOut'>;
const names = async (api: StratusApi, folderId: string) =>
  (await api.allChildren(folderId)).map((i) => i.name);
const trashIds = async (api: StratusApi) =>
  (await call<Out<'TrashOut'>>(routes.listTrash, { as: api, expect: 200 })).body.items.map((i) => i.id);

/** The accounts most tests share (each sign-up and sign-in spends from the per-IP auth limit). */
let accounts:
  | Promise<{
      owner: StratusApi;
      ownerEmail: string;
      rootId: string;
      friend: StratusApi;
      friendEmail: string;
    }>
  | undefined;
const people = () =>
  (accounts ??= (async () => {
    const o = await signedIn();
    const f = await signedIn();
    return { owner: o.api, ownerEmail: o.email, rootId: o.rootId, friend: f.api, friendEmail: f.email };
  })());

/** One statement on the deployed stack's database (what only an operator could do). */
async function sql(query: string, params: unknown[]) {
  const c = new pg.Client({ connectionString: inject('deployedDatabaseUrl') });
  await c.connect();
  try {
    return await c.query(query, params);
  } finally {
    await c.end();
  }
}

/** Moves an item's trash time back by `days` (the retention sweep only purges old trash). */
async function ageTrash(itemId: string, days: number) {
  const r = await sql(
    'update items set deleted_at = deleted_at - make_interval(days => $2) where id = $1 and deleted_at is not null',
    [itemId, days],
  );
  expect(r.rowCount).toBe(1);
}

/** Registers the describes; api.test.ts calls it after its own and before the coverage check. */
export function describeOtherRoutes() {
  describe('the system function: OpenAPI, the dashboard, deep health', () => {
    it('serves the OpenAPI document of every route in the table', async () => {
      const { body } = await call<{ openapi: string; paths: Record<string, Record<string, unknown>> }>(
        routes.openapi,
        { expect: 200 },
      );
      expect(body.openapi).toMatch(/^3\.1/);
      const missing = allRoutes.filter((r) => !body.paths[r.path]?.[r.method.toLowerCase()]);
      expect(missing.map((r) => `${r.method} ${r.path}`)).toEqual([]);
    });

    it('serves the dashboard page and the assets it loads', async () => {
      const page = await call<string>(routes.webIndex, { headers: { accept: 'text/html' }, expect: 200 });
      expect(page.headers.get('content-type')).toContain('text/html');
      const assets = [...page.text.matchAll(/\/app\/([a-z0-9-]+\.(?:js|css))/g)].map((m) => m[1] as string);
      expect(assets).toContain('app.js');
      for (const file of new Set(assets)) {
        const a = await call<string>(routes.webAsset, { params: { file }, expect: 200 });
        expect(a.headers.get('content-type')).toMatch(file.endsWith('.js') ? /javascript/ : /css/);
        expect(a.text.length).toBeGreaterThan(100);
      }
      await call(routes.webAsset, { params: { file: 'no-such-file.js' }, expect: 404 });
    });

    it('checks the database, cache, state store and the storage node (deep health)', async () => {
      const { body } = await call<Out<'DeepHealthOut'>>(routes.deepHealth, { expect: 200 });
      expect(body.status).toBe('ok');
      expect(Object.keys(body.checks).length).toBeGreaterThanOrEqual(3);
      for (const [name, check] of Object.entries(body.checks)) expect(check.ok, name).toBe(true);
    });
  });

  describe('password reset through the deployed user pool (ForgotPassword, ConfirmForgotPassword)', () => {
    it('emails a code, sets the new password with it, and ends the old sessions', async () => {
      const { api, email: address } = await signedIn();
      const oldRefresh = api.tokens?.refreshToken ?? '';
      await call(routes.forgotPassword, { body: { email: address }, expect: 202 });
      // No account enumeration: an unknown address is answered the same way.
      await call(routes.forgotPassword, { body: { email: email() }, expect: 202 });
      const mail = await eventually(async () => {
        const m = (await emailsTo(address)).at(-1);
        expect(m, `a reset email to ${address}`).toBeDefined();
        return m as NonNullable<typeof m>;
      });
      const code = /\b(\d{6})\b/.exec(`${mail.BodyText} ${mail.BodyHtml ?? ''}`)?.[1];
      expect(code, mail.BodyText).toBeDefined();

      const newPassword = 'a brand new passphrase';
      // MiniStack checks reset codes only under AUTH=true (which also enforces SigV4 and IAM on
      // every call, not how this deploy runs), so a wrong code is not refused here; the local
      // profile's tests cover that. A malformed one is refused by the route's schema.
      await call(routes.resetPassword, { body: { email: address, code: '1', newPassword }, expect: 400 });
      // MiniStack revokes tokens issued strictly before the sign-out second (`iat < signout_at`):
      // let the sign-in's second pass, or its refresh token would look issued after the reset.
      await new Promise((r) => setTimeout(r, 1100));
      await call(routes.resetPassword, { body: { email: address, code, newPassword }, expect: 204 });

      await call(routes.login, { body: { email: address, password: PASSWORD }, expect: 401 });
      await call(routes.login, { body: { email: address, password: newPassword }, expect: 200 });
      // Every refresh token issued before the reset is revoked (AdminUserGlobalSignOut).
      await call(routes.refresh, { body: { refreshToken: oldRefresh }, expect: 401 });
    });
  });

  describe('folders and files: create, resolve, rename, move, copy, trash and purge', () => {
    let owner: StratusApi;
    let rootId: string;
    let folder: Item;
    let fileId: string;

    beforeAll(async () => {
      ({ owner, rootId } = await people());
    });

    it('creates a folder, reads it with its ETag, and resolves its path', async () => {
      folder = (
        await call<Item>(routes.createFolder, {
          as: owner,
          body: { parentId: 'root', name: 'Docs' },
          expect: 201,
        })
      ).body;
      expect(folder).toMatchObject({ name: 'Docs', type: 'folder', parentId: rootId });
      const got = await call<Item>(routes.getFolder, { as: owner, params: { id: folder.id }, expect: 200 });
      expect(got.body.id).toBe(folder.id);
      expect(got.headers.get('etag')).toBeTruthy();
      const root = await call<Item>(routes.getFolder, { as: owner, params: { id: 'root' }, expect: 200 });
      expect(root.body.id).toBe(rootId);
      const resolved = await call<Item>(routes.resolvePath, {
        as: owner,
        query: { path: '/Docs' },
        expect: 200,
      });
      expect(resolved.body.id).toBe(folder.id);
      await call(routes.createFolder, { as: owner, body: { parentId: 'root', name: 'Docs' }, expect: 409 });
    });

    it('renames a folder only with If-Match; the listing shows the new name', async () => {
      await call(routes.patchFolder, {
        as: owner,
        params: { id: folder.id },
        body: { name: 'X' },
        expect: 428,
      });
      const renamed = await call<Item>(routes.patchFolder, {
        as: owner,
        params: { id: folder.id },
        headers: { 'if-match': folder.etag },
        body: { name: 'Papers' },
        expect: 200,
      });
      expect(renamed.body.name).toBe('Papers');
      folder = renamed.body;
      const listing = await names(owner, rootId);
      expect(listing).toContain('Papers');
      expect(listing).not.toContain('Docs');
    });

    it('renames and moves a file; its path and both listings follow', async () => {
      fileId = (await upload(owner, folder.id, 'draft.txt', text('the draft'))).fileId;
      const before = await call<Out<'FileOut'>>(routes.getFile, {
        as: owner,
        params: { id: fileId },
        expect: 200,
      });
      const moved = await call<Item>(routes.patchFile, {
        as: owner,
        params: { id: fileId },
        headers: { 'if-match': before.body.etag },
        body: { name: 'final.txt', parentId: 'root' },
        expect: 200,
      });
      expect(moved.body).toMatchObject({ name: 'final.txt', parentId: rootId });
      // The old ETag is stale now.
      await call(routes.patchFile, {
        as: owner,
        params: { id: fileId },
        headers: { 'if-match': before.body.etag },
        body: { name: 'again.txt' },
        expect: 409,
      });
      expect(await names(owner, rootId)).toContain('final.txt');
      expect(await names(owner, folder.id)).not.toContain('draft.txt');
      const resolved = await call<Item>(routes.resolvePath, {
        as: owner,
        query: { path: '/final.txt' },
        expect: 200,
      });
      expect(resolved.body.id).toBe(fileId);
    });

    it('copies a file into a folder: same bytes under the new name', async () => {
      const copy = await call<Item>(routes.copyFile, {
        as: owner,
        params: { id: fileId },
        body: { parentId: folder.id, name: 'copy.txt' },
        expect: 201,
      });
      expect(copy.body).toMatchObject({ name: 'copy.txt', parentId: folder.id, type: 'file' });
      expect(copy.body.id).not.toBe(fileId);
      expect(await names(owner, folder.id)).toContain('copy.txt');
      const dl = await call<Out<'DownloadOut'>>(routes.download, {
        as: owner,
        params: { id: copy.body.id },
        query: { format: 'json' },
        expect: 200,
      });
      expect(await (await fetch(dl.body.url)).text()).toBe('the draft');
      // The default download answer is a redirect to the same kind of signed URL.
      const redirect = await call(routes.download, { as: owner, params: { id: copy.body.id }, expect: 302 });
      expect(redirect.headers.get('location')).toMatch(/^https?:\/\//);
    });

    it('trashes a folder with what is in it, and purges it for good', async () => {
      const current = await call<Item>(routes.getFolder, {
        as: owner,
        params: { id: folder.id },
        expect: 200,
      });
      await call(routes.deleteFolder, {
        as: owner,
        params: { id: folder.id },
        headers: { 'if-match': current.body.etag },
        expect: 204,
      });
      await call(routes.getFolder, { as: owner, params: { id: folder.id }, expect: 404 });
      expect(await names(owner, rootId)).not.toContain('Papers');
      expect(await trashIds(owner)).toContain(folder.id);

      const purged = await call<Out<'PurgeOut'>>(routes.purgeTrash, {
        as: owner,
        params: { id: folder.id },
        expect: 200,
      });
      // The folder and the copy inside it.
      expect(purged.body.items).toBeGreaterThanOrEqual(2);
      expect(purged.body.versions).toBeGreaterThanOrEqual(1);
      expect(await trashIds(owner)).not.toContain(folder.id);
      await call(routes.restoreTrash, { as: owner, params: { id: folder.id }, expect: 404 });
      // The original of the copy is untouched.
      await call(routes.getFile, { as: owner, params: { id: fileId }, expect: 200 });
    });

    it('empties the whole trash', async () => {
      const a = (await upload(owner, rootId, 'a.txt', text('a'))).fileId;
      const b = (await upload(owner, rootId, 'b.txt', text('bb'))).fileId;
      for (const id of [a, b]) await call(routes.deleteFile, { as: owner, params: { id }, expect: 204 });
      expect(await trashIds(owner)).toEqual(expect.arrayContaining([a, b]));
      const emptied = await call<Out<'PurgeOut'>>(routes.emptyTrash, { as: owner, expect: 200 });
      expect(emptied.body.items).toBe(2);
      expect(emptied.body.bytes).toBe(3);
      expect(await trashIds(owner)).toEqual([]);
      // It ran as a job in the request; the job is beside the answer, done.
      const jobId = emptied.headers.get('content-location')?.split('/').pop() ?? '';
      const job = await call<Out<'JobOut'>>(routes.getJob, { as: owner, params: { id: jobId }, expect: 200 });
      expect(job.body).toMatchObject({
        operation: 'empty-trash',
        state: 'done',
        progress: { done: 4, total: 4 },
      });
      await call(routes.getFile, { as: owner, params: { id: a }, expect: 404 });
    });
  });

  describe('an upload session: inspect, renew part URLs, abort', () => {
    it('shows the parts storage received, and aborting commits nothing', async () => {
      const { owner: api } = await people();
      const bytes = text('never committed');
      const created = await call<Out<'CreateUploadOut'>>(routes.createUpload, {
        as: api,
        body: { parentId: 'root', name: 'aborted.txt', size: bytes.length, sha256: sha256(bytes) },
        expect: 201,
      });
      const uploadId = created.body.uploadId;
      const fresh = await call<Out<'UploadOut'>>(routes.getUpload, {
        as: api,
        params: { id: uploadId },
        expect: 200,
      });
      expect(fresh.body).toMatchObject({ state: 'uploading', name: 'aborted.txt', receivedParts: [] });

      const renewed = await call<Out<'PartsOut'>>(routes.renewParts, {
        as: api,
        params: { id: uploadId },
        body: { parts: [{ partNumber: 1, sha256: sha256(bytes) }] },
        expect: 200,
      });
      const part = renewed.body.parts[0];
      expect(part?.partNumber).toBe(1);
      const put = await fetch(part?.url ?? '', { method: 'PUT', headers: part?.headers, body: bytes });
      expect(put.status).toBe(200);
      const received = await call<Out<'UploadOut'>>(routes.getUpload, {
        as: api,
        params: { id: uploadId },
        expect: 200,
      });
      expect(received.body.receivedParts).toMatchObject([{ partNumber: 1, size: bytes.length }]);

      await call(routes.abortUpload, { as: api, params: { id: uploadId }, expect: 204 });
      const after = await call<Out<'UploadOut'>>(routes.getUpload, {
        as: api,
        params: { id: uploadId },
        expect: 200,
      });
      expect(after.body.state).toBe('aborted');
      expect(await names(api, 'root')).not.toContain('aborted.txt');
      await call(routes.completeUpload, {
        as: api,
        params: { id: uploadId },
        body: { parts: [{ partNumber: 1, etag: received.body.receivedParts[0]?.etag ?? 'x' }] },
        expect: 409,
      });
    });
  });

  describe('sharing: grants to other users, and share links', () => {
    let owner: StratusApi;
    let friend: StratusApi;
    let friendEmail: string;
    let folder: Item;
    let fileId: string;

    beforeAll(async () => {
      ({ owner, friend, friendEmail } = await people());
      folder = await owner.createFolder('root', 'Team');
      fileId = (await upload(owner, folder.id, 'plan.txt', text('the plan'))).fileId;
    });

    it('grants a folder to another user, who sees it until the grant is revoked', async () => {
      await call(routes.getFolder, { as: friend, params: { id: folder.id }, expect: 404 });
      const grant = await call<Out<'PermissionOut'>>(routes.grant, {
        as: owner,
        body: { itemId: folder.id, email: friendEmail, role: 'viewer' },
        expect: 201,
      });
      expect(grant.body).toMatchObject({ itemId: folder.id, role: 'viewer' });
      const list = await call<Out<'PermissionsOut'>>(routes.listPermissions, {
        as: owner,
        query: { itemId: folder.id },
        expect: 200,
      });
      expect(list.body.items.map((g) => g.id)).toEqual([grant.body.id]);
      const shared = await call<Out<'SharedOut'>>(routes.shared, { as: friend, expect: 200 });
      expect(shared.body.items).toMatchObject([{ id: folder.id, name: 'Team', role: 'viewer' }]);
      // The grant reaches the subtree; a viewer reads but does not rename.
      await call(routes.getFile, { as: friend, params: { id: fileId }, expect: 200 });
      const f = await owner.file(fileId);
      await call(routes.patchFile, {
        as: friend,
        params: { id: fileId },
        headers: { 'if-match': f.etag },
        body: { name: 'mine.txt' },
        expect: 403,
      });

      await call(routes.revoke, { as: owner, params: { id: grant.body.id }, expect: 204 });
      expect((await call<Out<'SharedOut'>>(routes.shared, { as: friend, expect: 200 })).body.items).toEqual(
        [],
      );
      await call(routes.getFile, { as: friend, params: { id: fileId }, expect: 404 });
      const none = await call<Out<'PermissionsOut'>>(routes.listPermissions, {
        as: owner,
        query: { itemId: folder.id },
        expect: 200,
      });
      expect(none.body.items).toEqual([]);
    });

    it('shares a folder by link: listing, a file inside, then revoked', async () => {
      const link = await call<Out<'CreatedShareOut'>>(routes.createShare, {
        as: owner,
        body: { itemId: folder.id, expiresInSeconds: 3600 },
        expect: 201,
      });
      const { token, id } = link.body;
      const listing = await call<Out<'PublicFolderOut'>>(routes.openShare, {
        params: { token },
        expect: 200,
      });
      expect(listing.body.folder.id).toBe(folder.id);
      expect(listing.body.items).toMatchObject([{ id: fileId, name: 'plan.txt', type: 'file', size: 8 }]);

      const inside = await call<Out<'SharedFileOut'>>(routes.openShareItem, {
        params: { token, itemId: fileId },
        query: { format: 'json' },
        expect: 200,
      });
      expect(inside.body.file.name).toBe('plan.txt');
      expect(await (await fetch(inside.body.url ?? '')).text()).toBe('the plan');
      const redirect = await call(routes.openShareItem, { params: { token, itemId: fileId }, expect: 302 });
      expect(await (await fetch(redirect.headers.get('location') ?? '')).text()).toBe('the plan');

      const links = await call<Out<'SharesOut'>>(routes.listShares, {
        as: owner,
        query: { itemId: folder.id },
        expect: 200,
      });
      expect(links.body.items).toMatchObject([{ id, revoked: false, downloads: 2 }]);
      await call(routes.revokeShare, { as: owner, params: { id }, expect: 204 });
      await call(routes.openShare, { params: { token }, expect: 410 });
      const after = await call<Out<'SharesOut'>>(routes.listShares, {
        as: owner,
        query: { itemId: folder.id },
        expect: 200,
      });
      expect(after.body.items).toMatchObject([{ id, revoked: true }]);
    });
  });

  describe('account settings and the audit trail', () => {
    it('keeps the retention policy that was set', async () => {
      const { owner: api } = await people();
      const before = await call<Out<'RetentionOut'>>(routes.getRetention, { as: api, expect: 200 });
      expect(before.body.trashDays).toBeGreaterThan(0);
      const policy = { keepVersions: 3, keepDays: 90, trashDays: 14 };
      const set = await call<Out<'RetentionOut'>>(routes.setRetention, {
        as: api,
        body: policy,
        expect: 200,
      });
      expect(set.body).toEqual(policy);
      expect((await call(routes.getRetention, { as: api, expect: 200 })).body).toEqual(policy);
      await call(routes.setRetention, { as: api, body: { ...policy, trashDays: 0 }, expect: 400 });
    });

    it('records what was done to an item, newest first, and filters by item', async () => {
      const { owner: api } = await people();
      const f = await api.createFolder('root', 'Audited');
      await api.patch(f, { name: 'Audited again' });
      const trail = await call<Out<'AuditOut'>>(routes.audit, {
        as: api,
        query: { itemId: f.id },
        expect: 200,
      });
      expect(trail.body.items.map((e) => e.action)).toEqual(['item.rename', 'folder.create']);
      expect(trail.body.items.every((e) => e.itemId === f.id)).toBe(true);
      const creates = await call<Out<'AuditOut'>>(routes.audit, {
        as: api,
        query: { action: 'folder.create', limit: 1 },
        expect: 200,
      });
      expect(creates.body.items).toHaveLength(1);
    });
  });

  describe('admin routes, as an admin', () => {
    let admin: StratusApi;
    let adminId: string;
    let owner: StratusApi;
    let ownerEmail: string;

    beforeAll(async () => {
      ({ owner, ownerEmail } = await people());
      await upload(owner, 'root', 'usage.bin', randomBytes(1000));
      const a = await signedIn();
      admin = a.api;
      adminId = (await admin.me()).id;
      // The role lives in the users table, which every request's principal reads (a few seconds'
      // cache per function). docs/deploy.md ("The first admin") still says to add the user to the
      // pool's admin group, which no longer changes that table; so the suite makes its first admin
      // where the role is kept, as an operator of the database would.
      await sql(`update users set role = 'admin' where id = $1`, [adminId]);
      await eventually(() => call(routes.adminUsage, { as: admin, expect: 200 }));
      expect((await admin.me()).role).toBe('admin');
    });

    it('changes a user’s role and quota, and never leaves no admin', async () => {
      const { friend, friendEmail } = await people();
      const friendId = (await friend.me()).id;
      await call(routes.patchUser, {
        as: friend,
        params: { id: adminId },
        body: { role: 'user' },
        expect: 403,
      });
      const promoted = await call<Out<'AdminUserOut'>>(routes.patchUser, {
        as: admin,
        params: { id: friendId },
        body: { role: 'admin', quotaBytes: 5_000_000 },
        expect: 200,
      });
      expect(promoted.body).toMatchObject({
        id: friendId,
        email: friendEmail,
        role: 'admin',
        quotaBytes: 5_000_000,
      });
      // The friend's live token is an admin's now, and the quota is the friend's.
      await eventually(() => call(routes.listNodes, { as: friend, expect: 200 }));
      const usage = await call<Out<'UsageOut'>>(routes.usage, { as: friend, expect: 200 });
      expect(usage.body.quotaBytes).toBe(5_000_000);

      await call(routes.patchUser, {
        as: admin,
        params: { id: friendId },
        body: { role: 'user' },
        expect: 200,
      });
      await eventually(() => call(routes.listNodes, { as: friend, expect: 403 }));
      // Now the only admin: it cannot demote itself.
      await call(routes.patchUser, {
        as: admin,
        params: { id: adminId },
        body: { role: 'user' },
        expect: 409,
      });
      await call(routes.patchUser, {
        as: admin,
        params: { id: randomUUID() },
        body: { quotaBytes: 1 },
        expect: 404,
      });
      const audit = await call<Out<'AuditOut'>>(routes.audit, {
        as: admin,
        query: { action: 'admin.user_updated' },
        expect: 200,
      });
      expect(audit.body.items.filter((e) => e.ownerId === friendId)).toHaveLength(2);
    });

    it('refuses a user, and shows an admin every user’s usage', async () => {
      await call(routes.adminUsage, { as: owner, expect: 403 });
      const usage = await call<Out<'AdminUsageOut'>>(routes.adminUsage, { as: admin, expect: 200 });
      const mine = usage.body.users.find((u) => u.email === ownerEmail);
      const own = await call<Out<'UsageOut'>>(routes.usage, { as: owner, expect: 200 });
      expect(own.body.usedBytes).toBeGreaterThanOrEqual(1000);
      expect(mine?.usedBytes).toBe(own.body.usedBytes);
      expect(usage.body.totalBytes).toBeGreaterThanOrEqual(
        usage.body.users.reduce((n, u) => n + u.usedBytes, 0),
      );
      expect(usage.body.nodes.map((n) => n.nodeId)).toContain('s3-us-east-1');
    });

    it('reports replication and reconciles with checksums', async () => {
      const state = await call<Out<'ReplicationOut'>>(routes.replication, { as: admin, expect: 200 });
      expect(state.body.versions).toBeGreaterThan(0);
      expect(state.body.failed).toBe(0);
      const report = await call<Out<'ReconcileOut'>>(routes.reconcile, { as: admin, expect: 200 });
      expect(report.body.versions).toBe(state.body.versions);
      expect(report.body.missing).toBe(0);
      expect(report.body.corrupt).toBe(0);
    });

    it('sweeps trash past its retention now (the scheduled sweep, on demand)', async () => {
      const { fileId } = await upload(owner, 'root', 'old.txt', text('old'));
      await call(routes.deleteFile, { as: owner, params: { id: fileId }, expect: 204 });
      await ageTrash(fileId, 400);
      const swept = await call<Out<'SweepOut'>>(routes.sweep, { as: admin, expect: 200 });
      expect(swept.body.trashRoots).toBeGreaterThanOrEqual(1);
      expect(swept.body.items).toBeGreaterThanOrEqual(1);
      expect(await trashIds(owner)).not.toContain(fileId);
      await call(routes.sweep, { as: owner, expect: 403 });
    });

    it('adds an S3 node, drains it and removes it', async () => {
      const bucket = `stratus-extra-${randomBytes(4).toString('hex')}`;
      await new S3Client({ ...emulator, forcePathStyle: true }).send(
        new CreateBucketCommand({ Bucket: bucket }),
      );
      const id = `extra-${randomBytes(3).toString('hex')}`;
      const added = await call<Out<'NodeOut'>>(routes.addNode, {
        as: admin,
        body: { id, kind: 's3', bucket, region: 'us-east-1', endpoint: EMULATOR },
        expect: 201,
      });
      expect(added.body).toMatchObject({ id, kind: 's3', state: 'active' });
      const nodes = await call<Out<'NodesOut'>>(routes.listNodes, { as: admin, expect: 200 });
      expect(nodes.body.items.map((n) => n.id)).toEqual(expect.arrayContaining(['s3-us-east-1', id]));
      await call(routes.addNode, {
        as: admin,
        body: { id, kind: 's3', bucket, region: 'us-east-1', endpoint: EMULATOR },
        expect: 409,
      });
      // Only a drained node can be removed.
      await call(routes.removeNode, { as: admin, params: { id }, expect: 409 });

      const draining = await call<Out<'NodeOut'>>(routes.drainNode, {
        as: admin,
        params: { id },
        expect: 202,
      });
      expect(['draining', 'drained']).toContain(draining.body.state);
      await eventually(async () => {
        await call(routes.reconcile, { as: admin, expect: 200 });
        const list = await call<Out<'NodesOut'>>(routes.listNodes, { as: admin, expect: 200 });
        expect(list.body.items.find((n) => n.id === id)).toMatchObject({ state: 'drained', replicas: 0 });
      });
      await call(routes.removeNode, { as: admin, params: { id }, expect: 204 });
      const after = await call<Out<'NodesOut'>>(routes.listNodes, { as: admin, expect: 200 });
      expect(after.body.items.map((n) => n.id)).not.toContain(id);
      await call(routes.drainNode, { as: admin, params: { id }, expect: 404 });
    });
  });
}
