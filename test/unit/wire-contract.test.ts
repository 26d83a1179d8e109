/**
 * The wire contract, one statement of it: the zod response schemas (schemas.ts). Two checks that
 * the bodies the server sends agree with them:
 * - at run time, presenter output parsed by its route's declared response schema comes back
 *   unchanged (so a field dropped, renamed, retyped, or unknown to the schema fails);
 * - at compile time (tsc reads this file; `expectTypeOf` does nothing at run time), the bodies
 *   that handlers send straight from a service conform to their route's schema type, with no
 *   field at any depth that it does not declare. `HttpResult.body` is `unknown`, so nothing else
 *   checks those; when the handlers are typed by their routes, this half can go.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { z } from 'zod';
import {
  auditOut,
  fileOut,
  itemOut,
  jobOut,
  permissionOut,
  trashOut,
  userOut,
  versionOut,
} from '../../functions/api/presenters.ts';
import { routes } from '../../functions/api/routes.ts';
import type * as w from '../../functions/api/wire-types.ts';
import type { Item, Version } from '../../shared/domain/model.ts';
import type { Route } from '../../shared/http/route.ts';
import type { AccountService } from '../../shared/services/account-service.ts';
import type { AuthService } from '../../shared/services/auth-service.ts';
import type { DownloadService } from '../../shared/services/download-service.ts';
import type { OpsService } from '../../shared/services/ops-service.ts';
import type { PurgeJobs } from '../../shared/services/purge-jobs.ts';
import type { Reconciler } from '../../shared/services/reconciler.ts';
import type { ReplicationStatus } from '../../shared/services/replication-status.ts';
import type { UploadService } from '../../shared/services/upload-service.ts';
import type { VersionService } from '../../shared/services/version-service.ts';

/** The schema a route declares for a status; the test fails if it declares none. */
function schemaOf(route: Route, status: number): z.ZodType {
  const schema = route.responses[status]?.schema;
  if (!schema) throw new Error(`${route.id} declares no ${status} body`);
  return schema;
}

/** Parsing keeps every field the schema knows and drops the rest: equal means it matches exactly. */
function expectConforms(route: Route, status: number, body: unknown) {
  expect(schemaOf(route, status).parse(body)).toStrictEqual(body);
}

const at = new Date('2025-01-02T03:04:05.000Z');
const fileId = '0f2c6a3e-5b1d-4c8e-9a7f-1234567890ab';
const folderId = '6d1f4b2a-8c3e-4f5a-b6c7-0987654321fe';
const item = (over: Partial<Item> = {}): Item => ({
  id: fileId,
  ownerId: 'u1',
  parentId: folderId,
  kind: 'file',
  name: 'report.pdf',
  contentType: null,
  size: 1234,
  currentVersionId: 'v2',
  revision: 3,
  createdAt: at,
  updatedAt: at,
  deletedAt: null,
  originalParentId: null,
  scanState: null,
  ...over,
});
const version = (over: Partial<Version> = {}): Version => ({
  id: 'v2',
  fileId,
  nodeId: 'node-a',
  blobKey: 'blobs/ab/cd',
  size: 1234,
  sha256: 'a'.repeat(64),
  contentType: 'application/pdf',
  createdBy: 'u1',
  createdAt: at,
  contentHash: null,
  partSize: null,
  partHashes: null,
  scanState: 'clean',
  ...over,
});
const folder = item({ id: folderId, kind: 'folder', name: 'Docs', parentId: null, currentVersionId: null });

describe('presenters match their routes’ response schemas at run time', () => {
  it('items: a file, a folder, a file with its version, a page of children', () => {
    expectConforms(routes.getFolder, 200, itemOut(folder));
    expectConforms(
      routes.resolvePath,
      200,
      itemOut(item({ contentType: 'application/pdf', scanState: 'scanning' })),
    );
    expectConforms(routes.getFile, 200, fileOut(item(), version({ contentHash: 'h'.repeat(32) })));
    expectConforms(routes.listChildren, 200, { items: [itemOut(folder), itemOut(item())], nextCursor: null });
    expectConforms(routes.shared, 200, { items: [{ ...itemOut(item()), role: 'viewer' }] });
  });

  it('versions, trash, grants, audit events and users', () => {
    expectConforms(routes.listVersions, 200, {
      items: [versionOut(version(), 'v2'), versionOut(version({ id: 'v1', scanState: null }), 'v2')],
    });
    expectConforms(routes.listTrash, 200, {
      items: [
        trashOut(item({ deletedAt: at, originalParentId: folderId })),
        trashOut({ ...folder, deletedAt: at }),
      ],
    });
    const grant = {
      id: 'g1',
      itemId: fileId,
      email: 'b@example.com',
      role: 'editor',
      createdAt: at,
    } as const;
    expectConforms(routes.grant, 201, permissionOut(grant));
    expectConforms(routes.listPermissions, 200, { items: [permissionOut(grant)] });
    expectConforms(routes.audit, 200, {
      items: [
        auditOut({
          id: 'e1',
          at,
          actorId: 'u1',
          ownerId: 'u1',
          itemId: null,
          action: 'file.move',
          detail: { to: folderId },
        }),
      ],
      nextCursor: 'next',
    });
    const user = {
      id: 'u1',
      email: 'a@example.com',
      role: 'user',
      rootFolderId: folderId,
      quotaBytes: 10,
      usedBytes: 1,
      keepVersions: null,
      keepDays: null,
      trashDays: null,
    } as const;
    expectConforms(routes.me, 200, userOut(user));
    expectConforms(routes.register, 201, userOut(user));
  });

  it('purge jobs: running, and done', () => {
    const job = {
      id: 'j1',
      operation: 'purge',
      ownerId: 'u1',
      requestedBy: 'u1',
      rootId: folderId,
      reason: 'explicit',
      cutoff: at,
      state: 'running',
      phase: 'walk',
      cursor: folderId,
      total: null,
      done: 10,
      purged: { items: 4, versions: 6, bytes: 60, blobsReclaimed: 2 },
      failures: 0,
      error: null,
      createdAt: at,
      updatedAt: at,
      finishedAt: null,
    } as const;
    expectConforms(routes.getJob, 200, jobOut(job));
    expectConforms(routes.purgeTrash, 202, jobOut(job));
    expectConforms(routes.emptyTrash, 202, jobOut({ ...job, operation: 'empty-trash', rootId: null }));
    expectConforms(routes.getJob, 200, jobOut({ ...job, state: 'done', total: 10, finishedAt: at }));
  });

  it('fails on a field the schema does not have, or a missing one', () => {
    const body = itemOut(item());
    expect(() => expectConforms(routes.getFolder, 200, { ...body, sizeBytes: 1 })).toThrow();
    const { etag: _dropped, ...rest } = body;
    expect(() => expectConforms(routes.getFolder, 200, rest)).toThrow();
  });
});

type Body<F extends (...args: never[]) => Promise<unknown>> = Awaited<ReturnType<F>>;
/** The paths of fields in `T` that `W` does not declare, at any depth (never when none). */
type Undeclared<T, W, P extends string = ''> = T extends readonly (infer E)[]
  ? W extends readonly (infer F)[]
    ? Undeclared<E, F, `${P}[]`>
    : never
  : T extends object
    ? W extends object
      ? {
          [K in keyof T & string]: K extends keyof W
            ? Undeclared<T[K], Exclude<W[K], undefined>, `${P}.${K}`>
            : `${P}.${K}`;
        }[keyof T & string]
      : never
    : never;
/** `true` when every member of `T` is a `W` and has no field `W` lacks; else why not. */
type Conforms<T, W> = T extends W
  ? [Undeclared<T, W>] extends [never]
    ? true
    : { undeclared: Undeclared<T, W> }
  : { notA: W; got: T };
type Without<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

describe('bodies handlers take straight from a service match their schemas (checked by tsc)', () => {
  it('auth, uploads and downloads', () => {
    expectTypeOf<Conforms<Body<AuthService['login']>, w.TokenSet>>().toEqualTypeOf<true>();
    expectTypeOf<Conforms<Body<AuthService['refresh']>, w.TokenSet>>().toEqualTypeOf<true>();
    expectTypeOf<Conforms<Body<UploadService['createUpload']>, w.CreateUploadOut>>().toEqualTypeOf<true>();
    // uploads.ts sends a committed outcome but `status` and `replayed` (that becomes the
    // Idempotent-Replayed header); a `verifying` one answers 202 with getUpload's body.
    expectTypeOf<
      Conforms<
        Without<
          Extract<Body<UploadService['completeUpload']>, { status: 'committed' }>,
          'replayed' | 'status'
        >,
        w.CompleteOut
      >
    >().toEqualTypeOf<true>();
    expectTypeOf<Conforms<Body<UploadService['getUpload']>, w.UploadOut>>().toEqualTypeOf<true>();
    expectTypeOf<Conforms<Body<UploadService['renewParts']>, w.PartsOut>>().toEqualTypeOf<true>();
    expectTypeOf<Conforms<Body<DownloadService['downloadUrl']>, w.DownloadOut>>().toEqualTypeOf<true>();
  });

  it('trash, account and admin', () => {
    type Purged<F extends (...args: never[]) => Promise<unknown>> = Extract<
      Body<F>,
      { status: 'done' }
    >['report'];
    expectTypeOf<Conforms<Purged<PurgeJobs['purge']>, w.PurgeOut>>().toEqualTypeOf<true>();
    expectTypeOf<Conforms<Purged<PurgeJobs['emptyTrash']>, w.PurgeOut>>().toEqualTypeOf<true>();
    expectTypeOf<Conforms<Body<AccountService['usage']>, w.UsageOut>>().toEqualTypeOf<true>();
    expectTypeOf<Conforms<Body<VersionService['retention']>, w.RetentionOut>>().toEqualTypeOf<true>();
    expectTypeOf<Conforms<Body<VersionService['setRetention']>, w.RetentionOut>>().toEqualTypeOf<true>();
    expectTypeOf<Conforms<Body<OpsService['usage']>, w.AdminUsageOut>>().toEqualTypeOf<true>();
    expectTypeOf<Conforms<Body<OpsService['deepHealth']>, w.DeepHealthOut>>().toEqualTypeOf<true>();
    expectTypeOf<Conforms<Body<Reconciler['sweep']>, w.ReconcileOut>>().toEqualTypeOf<true>();
    expectTypeOf<Conforms<Body<ReplicationStatus['status']>, w.ReplicationOut>>().toEqualTypeOf<true>();
  });
});
