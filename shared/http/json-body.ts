/** Request-body parsing with hard limits, before any schema sees the data. */
import { errors } from '../domain/errors.ts';

export const MAX_JSON_DEPTH = 32;

export function parseJsonBody(raw: string | undefined, isBase64: boolean, maxBytes: number): unknown {
  if (raw === undefined || raw === '') return undefined;
  const text = isBase64 ? Buffer.from(raw, 'base64').toString('utf8') : raw;
  if (Buffer.byteLength(text, 'utf8') > maxBytes) throw errors.payloadTooLarge(maxBytes);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw errors.malformedBody('the request body is not valid JSON');
  }
  if (depthOf(value) > MAX_JSON_DEPTH)
    throw errors.malformedBody(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
  return value;
}

function depthOf(value: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [v, d] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== 'object') continue;
    if (d > max) max = d;
    if (max > MAX_JSON_DEPTH) return max;
    for (const child of Object.values(v)) stack.push([child, d + 1]);
  }
  return max;
}
