/** Runs a Redis command; any client or connection failure becomes a 503 domain error naming `what`. */
import { errors } from '../../domain/errors.ts';

export async function redisCall<R>(what: string, op: () => Promise<R>): Promise<R> {
  try {
    return await op();
  } catch {
    throw errors.unavailable(what);
  }
}
