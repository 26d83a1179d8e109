/** Lambda for /health and /openapi.json. */
import { createApiHandler, implement } from '../../shared/http/api-handler.ts';
import { buildOpenApi } from '../../shared/http/openapi.ts';
import { type Container, VERSION } from '../container.ts';
import { lazyHandler } from './lazy-handler.ts';
import { allRoutes, routes } from './routes.ts';

export function createSystemHandler(c: Container) {
  let doc: unknown;
  return createApiHandler(
    [
      implement(routes.health, async () => ({ status: 200, body: { status: 'ok', version: VERSION } })),
      implement(routes.deepHealth, async () => {
        const report = await c.ops.deepHealth();
        return { status: report.status === 'ok' ? 200 : 503, body: report };
      }),
      implement(routes.openapi, async () => {
        doc ??= buildOpenApi(allRoutes, { title: 'Stratus API', version: VERSION });
        return { status: 200, body: doc };
      }),
    ],
    c.apiDeps,
  );
}

export const handler = lazyHandler(createSystemHandler);
