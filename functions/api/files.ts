/** Lambda for /v1/files/* and /v1/trash/*. */
import { errors } from '../../shared/domain/errors.ts';
import { revisionFromIfMatch } from '../../shared/domain/etag.ts';
import { createApiHandler, implement, type RequestInfo } from '../../shared/http/api-handler.ts';
import type { Container } from '../container.ts';
import { lazyHandler } from './lazy-handler.ts';
import { etagFor, fileOut, itemOut, trashOut, versionOut } from './presenters.ts';
import { routes } from './routes.ts';

const principal = (req: RequestInfo) => {
  if (!req.principal) throw errors.unauthorized();
  return req.principal;
};

export function createFilesHandler(c: Container) {
  return createApiHandler(
    [
      implement(routes.getFile, async ({ params }, req) => {
        const { file, version } = await c.versions.fileWithVersion(principal(req), params.id);
        return { status: 200, body: fileOut(file, version), headers: { etag: etagFor(file) } };
      }),
      implement(routes.download, async ({ params, query }, req) => {
        const signed = await c.downloads.downloadUrl(principal(req), params.id, query.versionId);
        if (query.format === 'json') return { status: 200, body: signed };
        return { status: 302, headers: { location: signed.url } };
      }),
      implement(routes.patchFile, async ({ params, body }, req) => {
        const base = revisionFromIfMatch(req.headers['if-match'], params.id);
        const moved = await c.folders.relocate(principal(req), params.id, 'file', body, base);
        return { status: 200, body: itemOut(moved), headers: { etag: etagFor(moved) } };
      }),
      implement(routes.deleteFile, async ({ params }, req) => {
        await c.folders.trash(
          principal(req),
          params.id,
          'file',
          revisionFromIfMatch(req.headers['if-match'], params.id),
        );
        return { status: 204 };
      }),
      implement(routes.copyFile, async ({ params, body }, req) => {
        const copy = await c.folders.copyFile(principal(req), params.id, body);
        return {
          status: 201,
          body: itemOut(copy),
          headers: { location: `/v1/files/${copy.id}`, etag: etagFor(copy) },
        };
      }),
      implement(routes.listVersions, async ({ params }, req) => {
        const { file, versions } = await c.versions.versions(principal(req), params.id);
        return { status: 200, body: { items: versions.map((v) => versionOut(v, file.currentVersionId)) } };
      }),
      implement(routes.restoreVersion, async ({ params }, req) => {
        const base = revisionFromIfMatch(req.headers['if-match'], params.id);
        const { file, version } = await c.versions.restoreVersion(
          principal(req),
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
        body: { items: (await c.folders.listTrash(principal(req), 1000)).map(trashOut) },
      })),
      implement(routes.restoreTrash, async ({ params }, req) => {
        const item = await c.folders.restoreFromTrash(principal(req), params.id);
        return { status: 200, body: itemOut(item), headers: { etag: etagFor(item) } };
      }),
      implement(routes.purgeTrash, async ({ params }, req) => ({
        status: 200,
        body: await c.folders.purge(principal(req), params.id),
      })),
      implement(routes.emptyTrash, async (_input, req) => ({
        status: 200,
        body: await c.folders.emptyTrash(principal(req)),
      })),
    ],
    c.apiDeps,
  );
}

export const handler = lazyHandler(createFilesHandler);
