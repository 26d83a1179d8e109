import { revisionFromIfMatch } from '../../shared/domain/etag.ts';
import { createApiHandler, implement } from '../../shared/http/api-handler.ts';
import type { AwsModules } from '../aws-container.ts';
import { s3Storage } from '../aws-storage.ts';
import type { Container } from '../container.ts';
import { lazyHandler } from './lazy-handler.ts';
import { etagFor, itemOut } from './presenters.ts';
import { routes } from './routes.ts';

export function createFoldersHandler(c: Container) {
  return createApiHandler(
    [
      implement(routes.createFolder, async ({ body }, req) => {
        const folder = await c.folders.createFolder(req.principal, body.parentId, body.name);
        return {
          status: 201,
          body: itemOut(folder),
          headers: { location: `/v1/folders/${folder.id}`, etag: etagFor(folder) },
        };
      }),
      implement(routes.getFolder, async ({ params }, req) => {
        const p = req.principal;
        const { item } = await c.folders.folder(p, params.id, 'read');
        return { status: 200, body: itemOut(item), headers: { etag: etagFor(item) } };
      }),
      implement(routes.listChildren, async ({ params, query }, req) => {
        const page = await c.folders.listChildren(req.principal, params.id, {
          sort: { by: query.sort, dir: query.dir },
          ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
          limit: query.limit,
        });
        return { status: 200, body: { items: page.items.map(itemOut), nextCursor: page.nextCursor } };
      }),
      implement(routes.patchFolder, async ({ params, body }, req) => {
        const base = revisionFromIfMatch(req.headers['if-match'], params.id);
        const moved = await c.folders.relocate(req.principal, params.id, 'folder', body, base);
        return { status: 200, body: itemOut(moved), headers: { etag: etagFor(moved) } };
      }),
      implement(routes.deleteFolder, async ({ params }, req) => {
        await c.folders.trash(
          req.principal,
          params.id,
          'folder',
          revisionFromIfMatch(req.headers['if-match'], params.id),
        );
        return { status: 204 };
      }),
      implement(routes.resolvePath, async ({ query }, req) => {
        const item = await c.folders.resolvePath(req.principal, query.path);
        return { status: 200, body: itemOut(item), headers: { etag: etagFor(item) } };
      }),
    ],
    c.apiDeps,
  );
}

/** What this function's routes use beyond the common adapters. */
export const modules: AwsModules = { storage: s3Storage };

export const handler = lazyHandler(createFoldersHandler, modules);
