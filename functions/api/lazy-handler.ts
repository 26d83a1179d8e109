/** A Lambda entry point whose handler is built on first invocation from the process's aws container. */
import type { Context } from 'aws-lambda';
import type { ApiEvent, ApiResult } from '../../shared/http/api-handler.ts';
import { type AwsModules, awsContainer } from '../aws-container.ts';
import type { Container } from '../container.ts';

type Handler = (event: ApiEvent, context: Context) => Promise<ApiResult>;

/** `modules`: what this function's routes use beyond the common adapters (see aws-container.ts). */
export function lazyHandler(create: (c: Container) => Handler, modules: AwsModules): Handler {
  let built: Promise<Handler> | undefined;
  return async (event, context) => {
    built ??= awsContainer(modules).then(create);
    return (await built)(event, context);
  };
}
