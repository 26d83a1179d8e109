/** Lambda for /v1/folders/*. */
import { errors } from '../../shared/domain/errors.ts';
import { createApiHandler, implement } from '../../shared/http/api-handler.ts';
import type { Container } from '../container.ts';
import { lazyHandler } from './lazy-handler.ts';
import { itemOut } from './presenters.ts';
import { routes } from './routes.ts';

export function createFoldersHandler(c: Container) {
  return createApiHandler(
    [
      implement(routes.createFolder, async ({ body }, req) => {
        if (!req.principal) throw errors.unauthorized();
        const folder = await c.files.createFolder(req.principal, body.parentId, body.name);
        return { status: 201, body: itemOut(folder), headers: { location: `/v1/folders/${folder.id}` } };
      }),
      implement(routes.listChildren, async ({ params, query }, req) => {
        if (!req.principal) throw errors.unauthorized();
        const page = await c.files.listChildren(req.principal, params.id, query.cursor, query.limit);
        return { status: 200, body: { items: page.items.map(itemOut), nextCursor: page.nextCursor } };
      }),
    ],
    c.apiDeps,
  );
}

export const handler = lazyHandler(createFoldersHandler);
