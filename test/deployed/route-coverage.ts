/**
 * Route coverage of the deployed suite: every route of the route table (functions/api/routes.ts)
 * must be deployed as an API Gateway route and reached by at least one request of this suite.
 *
 * Importing this module wraps `globalThis.fetch` (which the project's `StratusApi`, the upload
 * client and the tests' own `fetch` calls all go through) and records every exchange with the
 * deployed API: method, path, status, and whether the response came from a Stratus handler.
 * `describeRouteCoverage()`, called last in the suite's one test file (api.test.ts), then compares
 * the recording with the route table, generated at test time, never hard-coded.
 *
 * The rule: a route is **covered** when at least one recorded request
 *  - has the route's method and a path matching its template (`{x}` is one non-empty segment; of
 *    several matching templates the one with the most literal segments wins, as in API Gateway),
 *  - was answered by the route's handler, i.e. the response carries `x-request-id`, which only the
 *    shared handler middleware sets (shared/http/api-handler.ts): API Gateway's own answers (404 no
 *    route, 401/403 from the JWT authorizer, 500/502/503 integration failures) and the emulator's
 *    never carry it, and a redirect that fetch followed ends on storage, not on the API,
 *  - with a 2xx or 3xx status: a route only rejecting input or answering 404/500 has not been
 *    exercised (a 500 is a bug, to be listed below as "bug: …").
 *
 * A route that cannot run in the emulator goes into `EXCEPTIONS` with its reason; the check fails
 * when an exception is stale (the route is covered after all, or no longer in the table).
 * Separately, every route must be deployed: a route key in the HTTP API, with the authorizer the
 * table asks for and an integration on its group's Lambda (infra/stateless-stack.ts).
 */
import { describe, expect, inject, it } from 'vitest';
import { allRoutes } from '../../functions/api/routes.ts';
import { type Route, routeKey } from '../../shared/http/route.ts';

/** Routes that cannot be exercised in MiniStack, by route key, with the reason. */
export const EXCEPTIONS: Record<string, string> = {};

export interface Exchange {
  method: string;
  path: string;
  status: number;
  /** The response carries the handler's `x-request-id`. */
  handled: boolean;
}

const exchanges: Exchange[] = [];
let apiBase: string | undefined;

/** Records requests to URLs under `base` (the deployed API's path-form URL). Idempotent. */
export function recordRequestsTo(base: string): void {
  apiBase = base.replace(/\/+$/, '');
  const g = globalThis as { __stratusRecorder?: true };
  if (g.__stratusRecorder) return;
  g.__stratusRecorder = true;
  const original = globalThis.fetch;
  globalThis.fetch = async (input: string | URL | Request, init?: RequestInit) => {
    const url = input instanceof Request ? input.url : String(input);
    const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
    const res = await original(input, init);
    if (apiBase && url.startsWith(`${apiBase}/`)) {
      const { pathname } = new URL(url);
      const basePath = new URL(apiBase).pathname;
      exchanges.push({
        method,
        path: pathname.slice(basePath.length) || '/',
        status: res.status,
        handled: res.headers.has('x-request-id') && !res.redirected,
      });
    }
    return res;
  };
}

// Installed on import, before any test runs (requests are only made while tests run).
recordRequestsTo(inject('deployedApi'));

export function recorded(): readonly Exchange[] {
  return exchanges;
}

const segments = (p: string) => (p === '/' ? [] : p.replace(/^\/|\/$/g, '').split('/'));

/** The route a request went to, as API Gateway picks it (most literal segments first). */
export function matchRoute(method: string, path: string, routes: readonly Route[] = allRoutes) {
  const got = segments(path);
  let best: { route: Route; literals: number } | undefined;
  for (const r of routes) {
    if (r.method !== method) continue;
    const want = segments(r.path);
    if (want.length !== got.length) continue;
    let literals = 0;
    const ok = want.every((w, i) => {
      if (/^\{[^}]+\}$/.test(w)) return (got[i] ?? '') !== '';
      literals++;
      return w === got[i];
    });
    if (ok && (!best || literals > best.literals)) best = { route: r, literals };
  }
  return best?.route;
}

export const counts = (e: Exchange) => e.handled && e.status >= 200 && e.status < 400;

/** Per route key: the statuses it was answered with (to explain an uncovered route). */
export function coverage(routes: readonly Route[] = allRoutes, log: readonly Exchange[] = exchanges) {
  const seen = new Map<string, Exchange[]>(routes.map((r) => [routeKey(r), []]));
  for (const e of log) {
    const r = matchRoute(e.method, e.path, routes);
    if (r) seen.get(routeKey(r))?.push(e);
  }
  const uncovered: { key: string; why: string }[] = [];
  for (const [key, list] of seen)
    if (!list.some(counts)) {
      const answers = list.map((e) => `${e.status}${e.handled ? '' : ' (not from the handler)'}`);
      uncovered.push({
        key,
        why: answers.length ? `only ${[...new Set(answers)].join(', ')}` : 'no request',
      });
    }
  return { seen, uncovered };
}

interface DeployedRoute {
  routeKey: string;
  target?: string;
  authorizationType?: string;
}
interface DeployedIntegration {
  integrationId: string;
  integrationUri?: string;
}

/** The HTTP API's routes and integrations as the emulator's API Gateway v2 API lists them. */
async function deployedRoutes(emulator: string, apiBase: string) {
  const apiId = /\/_aws\/execute-api\/([^/]+)/.exec(apiBase)?.[1];
  if (!apiId) throw new Error(`no API id in ${apiBase}`);
  const get = async <T>(what: string) => {
    const res = await fetch(`${emulator}/v2/apis/${apiId}/${what}`, {
      headers: {
        // Any SigV4-shaped credential: the emulator routes by the path and does not check it.
        authorization:
          'AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/apigateway/aws4_request, SignedHeaders=host, Signature=0',
      },
    });
    expect(res.status, `GET /v2/apis/${apiId}/${what}`).toBe(200);
    return ((await res.json()) as { items: T[] }).items;
  };
  return {
    routes: await get<DeployedRoute>('routes'),
    integrations: await get<DeployedIntegration>('integrations'),
  };
}

/** The coverage checks; call it last in the suite's test file, after every other describe. */
export function describeRouteCoverage(opts: { emulatorEndpoint: string; apiBase: string }) {
  describe('route coverage (generated from functions/api/routes.ts)', () => {
    it('deploys every route of the table: route key, authorizer, and its group’s function', async () => {
      const { routes, integrations } = await deployedRoutes(opts.emulatorEndpoint, opts.apiBase);
      const byKey = new Map(routes.map((r) => [r.routeKey, r]));
      const uri = new Map(integrations.map((i) => [i.integrationId, i.integrationUri ?? '']));
      const problems: string[] = [];
      for (const r of allRoutes) {
        const key = routeKey(r);
        const d = byKey.get(key);
        if (!d) {
          problems.push(`${key}: not deployed`);
          continue;
        }
        const auth = d.authorizationType ?? 'NONE';
        if (auth !== (r.auth ? 'JWT' : 'NONE')) problems.push(`${key}: authorization ${auth}`);
        const target = uri.get((d.target ?? '').replace(/^integrations\//, '')) ?? '';
        // CloudFormation names the functions after their construct ids (`Fn-<group>` -> `Fn<group>…`).
        if (!target.includes(`Fn${r.group}`))
          problems.push(`${key}: integration ${target || d.target} is not the ${r.group} function`);
      }
      const table = new Set(allRoutes.map(routeKey));
      for (const d of routes)
        if (!table.has(d.routeKey)) problems.push(`${d.routeKey}: deployed, not in the table`);
      expect(problems, problems.join('\n')).toEqual([]);
    });

    it('reaches every route of the table through its handler (or lists why not)', () => {
      const { uncovered } = coverage();
      const missing = uncovered.filter((u) => !(u.key in EXCEPTIONS));
      const table = new Set(allRoutes.map(routeKey));
      const stale = Object.keys(EXCEPTIONS).filter(
        (key) => !table.has(key) || !uncovered.some((u) => u.key === key),
      );
      const report = [
        ...missing.map((m) => `no deployed-API test reaches ${m.key} (${m.why})`),
        ...stale.map((k) => `stale exception (covered or no longer a route): ${k}`),
      ];
      expect(report, `\n${report.join('\n')}\n`).toEqual([]);
      // The recording itself worked: at least every covered route was seen.
      expect(recorded().length).toBeGreaterThan(allRoutes.length);
    });
  });
}
