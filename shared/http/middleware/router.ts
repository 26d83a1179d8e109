/** Finds the route a request is for by API Gateway's route key; an unknown key is a 404 problem. */
import { HttpError } from '../problem.ts';
import { routeKey } from '../route.ts';
import type { ApiMiddleware, Bound, Routed } from './types.ts';

export function router(bound: readonly Bound[]): ApiMiddleware<Routed> {
  const byKey = new Map(bound.map((b) => [routeKey(b.route), b]));
  return {
    before: (request) => {
      const target = byKey.get(request.event.routeKey);
      if (!target) throw new HttpError('route-not-found', `no route ${request.event.routeKey}`);
      request.internal.target = target;
    },
  };
}
