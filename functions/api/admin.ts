/** Lambda for /v1/admin/*: admins only. */
import { errors } from '../../shared/domain/errors.ts';
import { createApiHandler, implement, type RequestInfo } from '../../shared/http/api-handler.ts';
import { Jobs } from '../../shared/services/jobs.ts';
import { verifiedByNode } from '../../shared/services/replica-ledger.ts';
import type { AwsModules } from '../aws-container.ts';
import { cognitoIdentity } from '../aws-identity.ts';
import { s3Storage } from '../aws-storage.ts';
import type { Container } from '../container.ts';
import { lazyHandler } from './lazy-handler.ts';
import { userOut } from './presenters.ts';
import { routes } from './routes.ts';

const admin = (req: RequestInfo) => {
  if (!req.principal) throw errors.unauthorized();
  if (req.principal.role !== 'admin') throw errors.forbidden('admins only');
  return req.principal;
};

export function createAdminHandler(c: Container) {
  const jobs = new Jobs(c);
  return createApiHandler(
    [
      implement(routes.sweep, async (_input, req) => {
        admin(req);
        return { status: 200, body: await jobs.retention() };
      }),
      implement(routes.patchUser, async ({ params, body }, req) => {
        const actor = admin(req);
        const user = await c.auth.updateUser(actor, params.id, {
          ...(body.role === undefined ? {} : { role: body.role }),
          ...(body.quotaBytes === undefined ? {} : { quotaBytes: body.quotaBytes }),
        });
        return {
          status: 200,
          body: { ...userOut(user), quotaBytes: user.quotaBytes, usedBytes: user.usedBytes },
        };
      }),
      implement(routes.adminUsage, async (_input, req) => {
        admin(req);
        return { status: 200, body: await c.ops.usage() };
      }),
      implement(routes.listNodes, async (_input, req) => {
        admin(req);
        return {
          status: 200,
          body: {
            replicationFactor: c.nodes.replicationFactor,
            items: await nodesOut(
              c,
              c.nodes.all().map((n) => n.id),
            ),
          },
        };
      }),
      implement(routes.addNode, async ({ body }, req) => {
        admin(req);
        if (c.nodes.get(body.id)) throw errors.conflict(`node ${body.id} exists already`);
        await c.addNode(body);
        // Backfill now where the process lives on (locally); the schedule covers Lambda.
        jobs.reconcileInBackground('backfill');
        return { status: 201, body: await nodeOut(c, body.id) };
      }),
      implement(routes.drainNode, async ({ params }, req) => {
        admin(req);
        await c.drainNode(params.id);
        jobs.reconcileInBackground('drain');
        return { status: 202, body: await nodeOut(c, params.id) };
      }),
      implement(routes.removeNode, async ({ params }, req) => {
        admin(req);
        const n = c.nodes.get(params.id);
        if (!n) throw errors.notFound('node');
        if (!n.draining) throw errors.conflict('drain the node before removing it', { state: 'active' });
        // An exact answer in one read; the figure from the counters.
        if (await c.ledger.holdsAny(params.id)) {
          const left = Math.max(1, verifiedByNode(await c.ledger.counts()).get(params.id) ?? 0);
          throw errors.conflict(`the node still holds ${left} replicas`, {
            state: 'draining',
            replicas: left,
          });
        }
        await c.removeNode(params.id);
        return { status: 204 };
      }),
      implement(routes.reconcile, async (_input, req) => {
        admin(req);
        return { status: 200, body: await jobs.reconcile({ verifyChecksums: true }) };
      }),
      implement(routes.replication, async (_input, req) => {
        admin(req);
        return { status: 200, body: await c.replication.status() };
      }),
    ],
    c.apiDeps,
  );
}

/** What this function's routes use beyond the common adapters. */
export const modules: AwsModules = { storage: s3Storage, identity: cognitoIdentity };

export const handler = lazyHandler(createAdminHandler, modules);

async function nodeOut(c: Container, id: string) {
  const [n] = await nodesOut(c, [id]);
  if (!n) throw errors.notFound('node');
  return n;
}

/**
 * The nodes as the admin routes answer them. Replica figures come from the ledger's counters (a
 * fixed number of reads, whatever the nodes hold); whether a draining node is drained is asked of
 * its index, one item.
 */
async function nodesOut(c: Container, ids: readonly string[]) {
  await c.nodes.fresh();
  const perNode = verifiedByNode(await c.ledger.counts());
  return Promise.all(
    ids.map(async (id) => {
      const n = c.nodes.get(id);
      if (!n) throw errors.notFound('node');
      const held = !n.draining || (await c.ledger.holdsAny(id));
      const replicas = held ? (perNode.get(id) ?? 0) : 0;
      const status = c.health.of(id);
      return {
        id: n.id,
        kind: n.kind,
        region: n.region,
        state: n.draining ? (held ? ('draining' as const) : ('drained' as const)) : ('active' as const),
        health: n.health,
        latencyMs: status.latencyMs,
        lastCheck: status.lastCheck,
        replicas,
      };
    }),
  );
}
