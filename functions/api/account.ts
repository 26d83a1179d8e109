import { createApiHandler, implement } from '../../shared/http/api-handler.ts';
import type { AwsModules } from '../aws-container.ts';
import { s3Storage } from '../aws-storage.ts';
import type { Container } from '../container.ts';
import { lazyHandler } from './lazy-handler.ts';
import { auditOut, itemOut, permissionOut } from './presenters.ts';
import { routes } from './routes.ts';

export function createAccountHandler(c: Container) {
  return createApiHandler(
    [
      implement(routes.grant, async ({ body }, req) => {
        const sharing = await c.permissions.grant(req.principal, body.itemId, body.email, body.role);
        return { status: 201, body: permissionOut(sharing) };
      }),
      implement(routes.listPermissions, async ({ query }, req) => ({
        status: 200,
        body: {
          items: (await c.permissions.listGrants(req.principal, query.itemId)).map(permissionOut),
        },
      })),
      implement(routes.revoke, async ({ params }, req) => {
        await c.permissions.revoke(req.principal, params.id);
        return { status: 204 };
      }),
      implement(routes.shared, async (_input, req) => ({
        status: 200,
        body: {
          items: (await c.permissions.sharedWithMe(req.principal)).map((s) => ({
            ...itemOut(s.item),
            role: s.role,
          })),
        },
      })),
      implement(routes.usage, async (_input, req) => ({
        status: 200,
        body: await c.account.usage(req.principal),
      })),
      implement(routes.audit, async ({ query }, req) => {
        const page = await c.account.auditTrail(req.principal, {
          ...(query.itemId ? { itemId: query.itemId } : {}),
          ...(query.action ? { action: query.action } : {}),
          ...(query.cursor ? { cursor: query.cursor } : {}),
          limit: query.limit,
        });
        return { status: 200, body: { items: page.items.map(auditOut), nextCursor: page.nextCursor } };
      }),
      implement(routes.getRetention, async (_input, req) => ({
        status: 200,
        body: await c.versions.retention(req.principal),
      })),
      implement(routes.setRetention, async ({ body }, req) => ({
        status: 200,
        body: await c.versions.setRetention(req.principal, body),
      })),
    ],
    c.apiDeps,
  );
}

/** What this function's routes use beyond the common adapters. */
export const modules: AwsModules = { storage: s3Storage };

export const handler = lazyHandler(createAccountHandler, modules);
