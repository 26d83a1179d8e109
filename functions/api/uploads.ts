/** Lambda for /v1/uploads/*. It signs and verifies; the bytes go straight to storage. */
import { errors } from '../../shared/domain/errors.ts';
import { createApiHandler, implement } from '../../shared/http/api-handler.ts';
import { PROBLEM_TYPE_PREFIX } from '../../shared/http/problem.ts';
import type { AwsModules } from '../aws-container.ts';
import { s3Storage } from '../aws-storage.ts';
import type { Container } from '../container.ts';
import { lazyHandler } from './lazy-handler.ts';
import { routes } from './routes.ts';

/** The session as the API shows it: a refusal's type as the problem type URI its 4xx would carry. */
const uploadOut = <U extends { error?: { type: string; detail: string } }>(u: U): U =>
  u.error ? { ...u, error: { ...u.error, type: `${PROBLEM_TYPE_PREFIX}${u.error.type}` } } : u;

export function createUploadsHandler(c: Container) {
  return createApiHandler(
    [
      implement(routes.createUpload, async ({ body }, req) => {
        if (!req.principal) throw errors.unauthorized();
        return { status: 201, body: await c.uploads.createUpload(req.principal, body) };
      }),
      implement(routes.completeUpload, async ({ params, body }, req) => {
        if (!req.principal) throw errors.unauthorized();
        const outcome = await c.uploads.completeUpload(req.principal, params.id, body.parts, body.onConflict);
        if (outcome.status === 'verifying')
          return {
            status: 202,
            body: uploadOut(await c.uploads.getUpload(req.principal, params.id)),
            headers: { location: `/v1/uploads/${params.id}`, 'retry-after': '1' },
          };
        const { status: _committed, replayed, ...result } = outcome;
        const headers: Record<string, string> = replayed ? { 'idempotent-replayed': 'true' } : {};
        return { status: 201, body: result, headers };
      }),
      implement(routes.getUpload, async ({ params }, req) => {
        if (!req.principal) throw errors.unauthorized();
        return { status: 200, body: uploadOut(await c.uploads.getUpload(req.principal, params.id)) };
      }),
      implement(routes.renewParts, async ({ params, body }, req) => {
        if (!req.principal) throw errors.unauthorized();
        return { status: 200, body: await c.uploads.renewParts(req.principal, params.id, body.parts) };
      }),
      implement(routes.abortUpload, async ({ params }, req) => {
        if (!req.principal) throw errors.unauthorized();
        await c.uploads.abortUpload(req.principal, params.id);
        return { status: 204 };
      }),
    ],
    c.apiDeps,
  );
}

/** What this function's routes use beyond the common adapters. */
export const modules: AwsModules = { storage: s3Storage };

export const handler = lazyHandler(createUploadsHandler, modules);
