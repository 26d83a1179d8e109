/** Lambda for /v1/admin/*: admins only. */
import { errors } from '../../shared/domain/errors.ts';
import { createApiHandler, implement, type RequestInfo } from '../../shared/http/api-handler.ts';
import type { Container } from '../container.ts';
import { lazyHandler } from './lazy-handler.ts';
import { routes } from './routes.ts';

const admin = (req: RequestInfo) => {
  if (!req.principal) throw errors.unauthorized();
  if (req.principal.role !== 'admin') throw errors.forbidden('admins only');
  return req.principal;
};

export function createAdminHandler(c: Container) {
  return createApiHandler(
    [
      implement(routes.sweep, async (_input, req) => {
        admin(req);
        const report = await c.tree.sweep();
        return { status: 200, body: { ...report, rescanned: await c.uploads.rescanPending() } };
      }),
      implement(routes.adminUsage, async (_input, req) => {
        admin(req);
        return { status: 200, body: await c.ops.usage() };
      }),
    ],
    c.apiDeps,
  );
}

export const handler = lazyHandler(createAdminHandler);
