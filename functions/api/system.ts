/** Lambda for /health, /openapi.json and the web dashboard (/, /app/*). */
import { errors } from '../../shared/domain/errors.ts';
import { createApiHandler, implement } from '../../shared/http/api-handler.ts';
import { buildOpenApi } from '../../shared/http/openapi.ts';
import { webAssets } from '../../web/assets.ts';
import { INDEX_HTML, PAGE_HEADERS } from '../../web/shell.ts';
import type { AwsModules } from '../aws-container.ts';
import { s3Storage } from '../aws-storage.ts';
import { type Container, VERSION } from '../container.ts';
import { lazyHandler } from './lazy-handler.ts';
import { allRoutes, routes } from './routes.ts';

export function createSystemHandler(c: Container) {
  let doc: Record<string, unknown> | undefined;
  return createApiHandler(
    [
      implement(routes.health, async () => ({
        status: 200,
        body: { status: 'ok' as const, version: VERSION },
      })),
      implement(routes.deepHealth, async () => {
        const report = await c.ops.deepHealth();
        return { status: report.status === 'ok' ? 200 : 503, body: report };
      }),
      implement(routes.webIndex, async () => ({ status: 200, headers: PAGE_HEADERS, body: INDEX_HTML })),
      implement(routes.webAsset, async ({ params }) => {
        const asset = (await webAssets()).get(params.file);
        if (!asset) throw errors.notFound('file');
        return {
          status: 200,
          headers: { 'content-type': asset.type, 'cache-control': 'no-cache' },
          body: asset.body,
        };
      }),
      implement(routes.openapi, async () => {
        doc ??= buildOpenApi(allRoutes, { title: 'Stratus API', version: VERSION });
        return { status: 200, body: doc };
      }),
    ],
    c.apiDeps,
  );
}

/** What this function's routes use beyond the common adapters. */
export const modules: AwsModules = { storage: s3Storage };

export const handler = lazyHandler(createSystemHandler, modules);
