/** Helpers of the deployed suite: accounts, uploads, and `call`, one request to one route. */
import { createHash, randomBytes } from 'node:crypto';
import { expect, inject } from 'vitest';
import type { z } from 'zod';
import { StratusApi } from '../../clients/api.ts';
import { nodeHasher } from '../../clients/node-io.ts';
import { fetchPutPart, type UploadSource, uploadFile } from '../../clients/upload.ts';
import type * as s from '../../functions/api/schemas.ts';
import { type Route, routeKey } from '../../shared/http/route.ts';

export const API = inject('deployedApi');
export const EMULATOR = inject('emulatorEndpoint');
export const PASSWORD = 'correct horse battery staple';

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
export const email = () => `deployed-${randomBytes(4).toString('hex')}@example.com`;
export const text = (t: string) => new TextEncoder().encode(t);

/** The wire type of a response schema of functions/api/schemas.ts, e.g. `Out<'ItemOut'>`. */
export type Out<K extends keyof typeof s> = (typeof s)[K] extends z.ZodType ? z.output<(typeof s)[K]> : never;

export function memorySource(bytes: Uint8Array): UploadSource {
  return { size: bytes.length, read: async (start, end) => bytes.subarray(start, end) };
}

export async function upload(
  api: StratusApi,
  parentId: string,
  name: string,
  bytes: Uint8Array,
  baseVersionId?: string,
  onProgress?: Parameters<typeof uploadFile>[0]['onProgress'],
) {
  return uploadFile({
    api,
    source: memorySource(bytes),
    parentId,
    name,
    contentType: 'application/octet-stream',
    ...(baseVersionId ? { baseVersionId } : {}),
    newHasher: nodeHasher,
    putPart: fetchPutPart(),
    concurrency: 3,
    ...(onProgress ? { onProgress } : {}),
  });
}

/** A fresh account, signed in. */
export async function signedIn(address = email(), password = PASSWORD) {
  const api = new StratusApi({ endpoint: API });
  await api.register(address, password);
  await api.login(address, password);
  return { api, email: address, rootId: (await api.me()).rootFolderId };
}

export interface Reply<T> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/**
 * One request to `route` (its path template filled from `params`), as `as` (or anonymously), with
 * no redirect followed. Asserts the status, that the route's handler answered (`x-request-id`), and
 * that the body matches the schema the route table declares for that status.
 */
export async function call<T = Record<string, unknown>>(
  route: Route,
  o: {
    as?: StratusApi;
    params?: Record<string, string>;
    query?: Record<string, string | number>;
    body?: unknown;
    headers?: Record<string, string>;
    expect: number;
  },
): Promise<Reply<T>> {
  const path = route.path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const v = o.params?.[name];
    if (v === undefined) throw new Error(`${routeKey(route)}: no value for {${name}}`);
    return encodeURIComponent(v);
  });
  const url = new URL(API + path);
  for (const [k, v] of Object.entries(o.query ?? {})) url.searchParams.set(k, String(v));
  const headers: Record<string, string> = { accept: 'application/json', ...o.headers };
  if (o.body !== undefined) headers['content-type'] = 'application/json';
  if (o.as) headers.authorization = `Bearer ${o.as.tokens?.accessToken ?? ''}`;
  const send = () =>
    fetch(url, {
      method: route.method,
      headers,
      redirect: 'manual',
      ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }),
    });
  let res = await send();
  // Like the project's clients: a 429 is waited out (Retry-After) and repeated, a few times. The
  // auth routes allow 20 requests per IP and minute, and every test here comes from one address.
  for (let attempt = 1; res.status === 429 && o.expect !== 429 && attempt < 8; attempt++) {
    await res.body?.cancel();
    const wait = Number(res.headers.get('retry-after') ?? '1');
    await new Promise((r) => setTimeout(r, Math.min(Math.max(wait, 1), 10) * 1000));
    res = await send();
  }
  const raw = await res.text();
  const what = `${route.method} ${url.pathname}${url.search}`;
  expect(res.status, `${what} answered ${res.status}: ${raw.slice(0, 600)}`).toBe(o.expect);
  expect(res.headers.get('x-request-id'), `${what}: answered by its handler`).toBeTruthy();
  let body: unknown = raw;
  if ((res.headers.get('content-type') ?? '').includes('json') && raw) body = JSON.parse(raw);
  const schema = route.responses[o.expect]?.schema;
  if (schema) {
    const parsed = schema.safeParse(body);
    expect(parsed.success, `${what}: body as declared: ${parsed.error?.message ?? ''}`).toBe(true);
  }
  return { status: res.status, headers: res.headers, body: body as T, text: raw };
}

/** Emails the emulator's SES recorded (Cognito's messages land there), newest last. */
export async function emailsTo(address: string) {
  const res = await fetch(`${EMULATOR}/_ministack/ses/messages`);
  expect(res.status).toBe(200);
  const all = (await res.json()) as {
    messages: Record<string, { To: string[]; Subject: string; BodyText: string; BodyHtml?: string }[]>;
  };
  return Object.values(all.messages)
    .flat()
    .filter((m) => m.To.some((t) => t.toLowerCase() === address.toLowerCase()));
}

/** Polls until `check` returns a value (or the deadline passes: the last error is thrown). */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
