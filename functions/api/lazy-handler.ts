/** A Lambda entry point whose handler is built on first invocation from the process's aws container. */
import type { Context } from 'aws-lambda';
import type { ApiEvent, ApiResult } from '../../shared/http/api-handler.ts';
import { awsContainer } from '../aws-container.ts';
import type { Container } from '../container.ts';

type Handler = (event: ApiEvent, context: Context) => Promise<ApiResult>;

export function lazyHandler(create: (c: Container) => Handler): Handler {
  let built: Promise<Handler> | undefined;
  return async (event, context) => {
    built ??= awsContainer().then(create);
    return (await built)(event, context);
  };
}
