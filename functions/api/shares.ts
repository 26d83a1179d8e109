import type { ShareLink } from '../../shared/domain/model.ts';
import {
  createApiHandler,
  implement,
  implementUnchecked,
  type RequestInfo,
} from '../../shared/http/api-handler.ts';
import { INDEX_HTML, PAGE_HEADERS } from '../../web/shell.ts';
import type { AwsModules } from '../aws-container.ts';
import { s3Storage } from '../aws-storage.ts';
import type { Container } from '../container.ts';
import { lazyHandler } from './lazy-handler.ts';
import { routes } from './routes.ts';

const shareOut = (l: ShareLink) => ({
  id: l.id,
  itemId: l.itemId,
  expiresAt: l.expiresAt.toISOString(),
  hasPassword: l.passwordHash !== null,
  maxDownloads: l.maxDownloads,
  maxBytes: l.maxBytes,
  downloads: l.downloads,
  bytesServed: l.bytesServed,
  revoked: l.revokedAt !== null,
  createdAt: l.createdAt.toISOString(),
});

export function createSharesHandler(c: Container) {
  const open = async (
    token: string,
    itemId: string | undefined,
    format: 'redirect' | 'json' | 'info' | undefined,
    req: RequestInfo,
  ) => {
    const password = req.headers['x-share-password'];
    // A browser following the link gets the dashboard's share page, which asks for the password
    // (if any) and calls back with ?format=info / ?format=json.
    if (!format && password === undefined && /\btext\/html\b/.test(req.headers.accept ?? ''))
      return { status: 200, headers: PAGE_HEADERS, body: INDEX_HTML };
    const result = await c.shares.access_(token, password, itemId, req.sourceIp, format === 'info');
    if (result.kind === 'info') return { status: 200, body: { file: result.file } };
    if (result.kind === 'file') {
      if (format === 'json')
        return { status: 200, body: { file: result.file, url: result.url, expiresAt: result.expiresAt } };
      return { status: 302, headers: { location: result.url, 'referrer-policy': 'no-referrer' } };
    }
    return {
      status: 200,
      body: {
        folder: { id: result.folder.id, name: result.folder.name },
        items: result.items.map((i) => ({
          id: i.id,
          name: i.name,
          type: i.kind,
          ...(i.kind === 'file' ? { size: i.size } : {}),
          modifiedAt: i.updatedAt.toISOString(),
        })),
      },
    };
  };
  return createApiHandler(
    [
      implement(routes.createShare, async ({ body }, req) => {
        const { link, token } = await c.shares.create(req.principal, body);
        return { status: 201, body: { ...shareOut(link), token, url: `${req.baseUrl}/s/${token}` } };
      }),
      implement(routes.listShares, async ({ query }, req) => ({
        status: 200,
        body: { items: (await c.shares.list(req.principal, query.itemId)).map(shareOut) },
      })),
      implement(routes.revokeShare, async ({ params }, req) => {
        await c.shares.revoke(req.principal, params.id);
        return { status: 204 };
      }),
      // A browser gets the share page (HTML), a client JSON or a redirect: not one schema.
      implementUnchecked(routes.openShare, async ({ params, query }, req) =>
        open(params.token, undefined, query.format, req),
      ),
      implementUnchecked(routes.openShareItem, async ({ params, query }, req) =>
        open(params.token, params.itemId, query.format, req),
      ),
    ],
    c.apiDeps,
  );
}

/** What this function's routes use beyond the common adapters. */
export const modules: AwsModules = { storage: s3Storage };

export const handler = lazyHandler(createSharesHandler, modules);
