/** Lambda for /v1/auth/* (register, login, refresh, password reset, logout) and /v1/me. */
import { errors } from '../../shared/domain/errors.ts';
import { createApiHandler, implement } from '../../shared/http/api-handler.ts';
import type { AwsModules } from '../aws-container.ts';
import { cognitoIdentity } from '../aws-identity.ts';
import type { Container } from '../container.ts';
import { lazyHandler } from './lazy-handler.ts';
import { userOut } from './presenters.ts';
import { routes } from './routes.ts';

export function createAuthHandler(c: Container) {
  return createApiHandler(
    [
      implement(routes.register, async ({ body }, req) => ({
        status: 201,
        body: userOut(await c.auth.register(body.email, body.password, req.sourceIp)),
      })),
      implement(routes.login, async ({ body }, req) => ({
        status: 200,
        body: await c.auth.login(body.email, body.password, req.sourceIp),
      })),
      implement(routes.refresh, async ({ body }, req) => ({
        status: 200,
        body: await c.auth.refresh(body.refreshToken, req.sourceIp),
      })),
      implement(routes.forgotPassword, async ({ body }, req) => {
        await c.auth.forgotPassword(body.email, req.sourceIp);
        return { status: 202 };
      }),
      implement(routes.resetPassword, async ({ body }, req) => {
        await c.auth.resetPassword(body.email, body.code, body.newPassword, req.sourceIp);
        return { status: 204 };
      }),
      implement(routes.logout, async ({ body }, req) => {
        if (!req.principal) throw errors.unauthorized();
        await c.auth.logout(req.principal, body.refreshToken);
        return { status: 204 };
      }),
      implement(routes.me, async (_input, req) => {
        const user = req.principal && (await c.users.get(req.principal.userId));
        if (!user) throw errors.unauthorized();
        return { status: 200, body: userOut(user) };
      }),
    ],
    c.apiDeps,
  );
}

/** What this function's routes use beyond the common adapters. */
export const modules: AwsModules = { identity: cognitoIdentity };

export const handler = lazyHandler(createAuthHandler, modules);
