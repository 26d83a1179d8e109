/** Lambda for /v1/files/*. */
import { errors } from '../../shared/domain/errors.ts';
import { createApiHandler, implement } from '../../shared/http/api-handler.ts';
import type { Container } from '../container.ts';
import { lazyHandler } from './lazy-handler.ts';
import { etagOf, fileOut } from './presenters.ts';
import { routes } from './routes.ts';

export function createFilesHandler(c: Container) {
  return createApiHandler(
    [
      implement(routes.getFile, async ({ params }, req) => {
        if (!req.principal) throw errors.unauthorized();
        const file = await c.files.getFile(req.principal, params.id);
        const version = await c.files.currentVersion(req.principal, params.id);
        if (!version) throw errors.notFound('file');
        return { status: 200, body: fileOut(file, version), headers: { etag: etagOf(file) } };
      }),
      implement(routes.download, async ({ params, query }, req) => {
        if (!req.principal) throw errors.unauthorized();
        const signed = await c.files.downloadUrl(req.principal, params.id);
        if (query.format === 'json') return { status: 200, body: signed };
        return { status: 302, headers: { location: signed.url } };
      }),
    ],
    c.apiDeps,
  );
}

export const handler = lazyHandler(createFilesHandler);
