import { revisionFromIfMatch } from '../../shared/domain/etag.ts';
import { createApiHandler, implement } from '../../shared/http/api-handler.ts';
import type { PurgeOutcome } from '../../shared/services/purge-jobs.ts';
import type { AwsModules } from '../aws-container.ts';
import { s3Storage } from '../aws-storage.ts';
import type { Container } from '../container.ts';
import { lazyHandler } from './lazy-handler.ts';
import { etagFor, fileOut, itemOut, jobOut, jobPath, trashOut, versionOut } from './presenters.ts';
import { routes } from './routes.ts';

/** 200 with what was purged (the job it ran as beside it), or 202 with the job still at work. */
function purgeAnswer(o: PurgeOutcome) {
  const headers: Record<string, string> =
    o.status === 'done'
      ? o.jobId
        ? { 'content-location': jobPath(o.jobId) }
        : {}
      : { location: jobPath(o.job.id), 'retry-after': '1' };
  return o.status === 'done'
    ? { status: 200 as const, body: o.report, headers }
    : { status: 202 as const, body: jobOut(o.job), headers };
}

export function createFilesHandler(c: Container) {
  return createApiHandler(
    [
      implement(routes.getFile, async ({ params }, req) => {
        const { file, version } = await c.versions.fileWithVersion(req.principal, params.id);
        return { status: 200, body: fileOut(file, version), headers: { etag: etagFor(file) } };
      }),
      implement(routes.download, async ({ params, query }, req) => {
        const signed = await c.downloads.downloadUrl(req.principal, params.id, query.versionId);
        if (query.format === 'json') return { status: 200, body: signed };
        return { status: 302, headers: { location: signed.url } };
      }),
      implement(routes.patchFile, async ({ params, body }, req) => {
        const base = revisionFromIfMatch(req.headers['if-match'], params.id);
        const moved = await c.folders.relocate(req.principal, params.id, 'file', body, base);
        return { status: 200, body: itemOut(moved), headers: { etag: etagFor(moved) } };
      }),
      implement(routes.deleteFile, async ({ params }, req) => {
        await c.folders.trash(
          req.principal,
          params.id,
          'file',
          revisionFromIfMatch(req.headers['if-match'], params.id),
        );
        return { status: 204 };
      }),
      implement(routes.copyFile, async ({ params, body }, req) => {
        const copy = await c.folders.copyFile(req.principal, params.id, body);
        return {
          status: 201,
          body: itemOut(copy),
          headers: { location: `/v1/files/${copy.id}`, etag: etagFor(copy) },
        };
      }),
      implement(routes.listVersions, async ({ params }, req) => {
        const { file, versions } = await c.versions.versions(req.principal, params.id);
        return { status: 200, body: { items: versions.map((v) => versionOut(v, file.currentVersionId)) } };
      }),
      implement(routes.restoreVersion, async ({ params }, req) => {
        const base = revisionFromIfMatch(req.headers['if-match'], params.id);
        const { file, version } = await c.versions.restoreVersion(
          req.principal,
          params.id,
          params.versionId,
          base,
        );
        return {
          status: 201,
          body: {
            fileId: file.id,
            versionId: version.id,
            restoredFrom: params.versionId,
            etag: etagFor(file),
          },
          headers: { etag: etagFor(file) },
        };
      }),
      implement(routes.listTrash, async (_input, req) => ({
        status: 200,
        body: { items: (await c.folders.listTrash(req.principal, 1000)).map(trashOut) },
      })),
      implement(routes.restoreTrash, async ({ params }, req) => {
        const item = await c.folders.restoreFromTrash(req.principal, params.id);
        return { status: 200, body: itemOut(item), headers: { etag: etagFor(item) } };
      }),
      implement(routes.purgeTrash, async ({ params }, req) =>
        purgeAnswer(await c.purges.purge(req.principal, params.id)),
      ),
      implement(routes.emptyTrash, async (_input, req) =>
        purgeAnswer(await c.purges.emptyTrash(req.principal)),
      ),
      implement(routes.getJob, async ({ params }, req) => {
        const job = await c.purges.get(req.principal, params.id);
        const open = job.state === 'queued' || job.state === 'running';
        const headers: Record<string, string> = open ? { 'retry-after': '1' } : {};
        return { status: 200, body: jobOut(job), headers };
      }),
    ],
    c.apiDeps,
  );
}

/** What this function's routes use beyond the common adapters. */
export const modules: AwsModules = { storage: s3Storage };

export const handler = lazyHandler(createFilesHandler, modules);
