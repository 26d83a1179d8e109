/** A Lambda entry point whose handler is built on first invocation from the process container. */
import type { Context } from 'aws-lambda';
import type { ApiEvent, ApiResult } from '../../shared/http/api-handler.ts';
import { type Container, container } from '../container.ts';

type Handler = (event: ApiEvent, context: Context) => Promise<ApiResult>;

export function lazyHandler(create: (c: Container) => Handler): Handler {
  let built: Promise<Handler> | undefined;
  return async (event, context) => {
    built ??= container().then(create);
    return (await built)(event, context);
  };
}
