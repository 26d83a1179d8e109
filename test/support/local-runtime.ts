/** Starts the local runtime in-process on a free port with its own data directory, and an HTTP client for it. */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Container } from '../../functions/container.ts';
import { type Gateway, startGateway } from '../../local/gateway.ts';
import { createLocalContainer, type LocalOverrides } from '../../local/local-container.ts';
import { type LocalConfig, loadConfig } from '../../shared/config/config.ts';
import { freePort } from './services.ts';

export interface Runtime {
  url: string;
  dataDir: string;
  container: Container;
  stop(): Promise<void>;
}

export async function startRuntime(
  env: Record<string, string> = {},
  dataDir?: string,
  overrides: LocalOverrides = {},
): Promise<Runtime> {
  const dir = dataDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-e2e-')));
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const config = loadConfig({
    STRATUS_DATA_DIR: dir,
    PORT: String(port),
    STRATUS_KDF_COST: '10',
    STRATUS_LOG_LEVEL: 'silent',
    // The layout `npm start` runs (three local nodes, replication factor 2) comes from the config's
    // defaults; a suite pins another (one node, an S3 node beside local ones) through `env`.
    // Suites make many requests from one address; the limiter has its own tests with tight limits.
    STRATUS_RATE_LIMITS: JSON.stringify(
      Object.fromEntries(
        ['auth', 'read', 'write', 'public'].map((k) => [
          k,
          {
            perIp: { capacity: 1e6, refillPerSecond: 1e6 },
            perUser: { capacity: 1e6, refillPerSecond: 1e6 },
          },
        ]),
      ),
    ),
    ...env,
  }) as LocalConfig;
  const container = await createLocalContainer(config, overrides);
  const gw: Gateway = await startGateway(container, '127.0.0.1', port);
  return {
    url: gw.url,
    dataDir: dir,
    container,
    async stop() {
      await gw.close();
      await container.close();
    },
  };
}

/** The password the suites give STRATUS_ADMIN_PASSWORD (and every account by default). */
export const ADMIN_PASSWORD = 'correct horse battery';

/** The environment of a runtime whose operator configured `email` as the first admin. */
export const adminEnv = (email: string) => ({
  STRATUS_ADMIN_EMAIL: email,
  STRATUS_ADMIN_PASSWORD: ADMIN_PASSWORD,
});

export const sha256 = (b: Buffer | Uint8Array) => createHash('sha256').update(b).digest('hex');

export interface Json {
  [k: string]: unknown;
}

/**
 * GET /metrics as an admin, as Prometheus scrapes it (the endpoint needs an admin token): an admin
 * account made through the services, so the scrape spends no auth rate-limit tokens.
 */
export async function scrapeMetrics(rt: Runtime): Promise<Response> {
  const email = `metrics-${crypto.randomUUID()}@example.com`;
  const password = 'correct horse battery';
  const user = await rt.container.auth.register(email, password, '127.0.0.1');
  await rt.container.users.update(user.id, { role: 'admin' });
  const tokens = await rt.container.auth.login(email, password, '127.0.0.1');
  return fetch(`${rt.url}/metrics`, { headers: { authorization: `Bearer ${tokens.accessToken}` } });
}

export class Client {
  accessToken?: string;
  refreshToken?: string;
  readonly base: string;

  constructor(base: string) {
    this.base = base;
  }

  async call(method: string, p: string, body?: unknown, headers: Record<string, string> = {}) {
    const res = await fetch(this.base + p, {
      method,
      redirect: 'manual',
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(this.accessToken ? { authorization: `Bearer ${this.accessToken}` } : {}),
        ...headers,
      },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await res.text();
    let json: Json = {};
    try {
      json = text ? (JSON.parse(text) as Json) : {};
    } catch {
      json = { text };
    }
    return { status: res.status, headers: res.headers, json };
  }

  async signUp(email: string, password = 'correct horse battery') {
    const reg = await this.call('POST', '/v1/auth/register', { email, password });
    if (reg.status !== 201) throw new Error(`register ${reg.status} ${JSON.stringify(reg.json)}`);
    await this.login(email, password);
    return reg.json as { id: string; rootFolderId: string; role: string };
  }

  /**
   * Signs in as the operator's admin, which the runtime created at start-up from
   * STRATUS_ADMIN_EMAIL + STRATUS_ADMIN_PASSWORD (registration never grants admin); answers as
   * `signUp` does.
   */
  async signInAdmin(email: string, password = ADMIN_PASSWORD) {
    await this.login(email, password);
    const me = await this.call('GET', '/v1/me');
    if (me.status !== 200 || me.json.role !== 'admin')
      throw new Error(`${email} is not an admin: ${me.status} ${JSON.stringify(me.json)}`);
    return me.json as { id: string; rootFolderId: string; role: string };
  }

  async login(email: string, password = 'correct horse battery') {
    const res = await this.call('POST', '/v1/auth/login', { email, password });
    if (res.status !== 200) throw new Error(`login ${res.status} ${JSON.stringify(res.json)}`);
    this.accessToken = res.json.accessToken as string;
    this.refreshToken = res.json.refreshToken as string;
    return res;
  }

  /**
   * Uploads through presigned URLs, parts in parallel, then completes. With `declareParts`, the
   * per-part SHA-256s go up front: URLs come back bound to them and unchanged parts of the current
   * version are reused server-side (only the returned parts are sent).
   */
  async upload(
    parentId: string,
    name: string,
    data: Buffer,
    contentType = 'application/octet-stream',
    /** `sha256`: the whole-file hash to declare, when not the data's own (a lying client). */
    opts: { declareParts?: boolean; partSize?: number; sha256?: string } = {},
  ) {
    const body: Record<string, unknown> = {
      parentId,
      name,
      size: data.length,
      sha256: opts.sha256 ?? sha256(data),
      contentType,
    };
    if (opts.partSize) body.partSize = opts.partSize;
    if (opts.declareParts) {
      const partSize = opts.partSize ?? 16 * 1024 * 1024;
      const count = Math.max(1, Math.ceil(data.length / partSize));
      body.parts = Array.from({ length: count }, (_, i) => ({
        partNumber: i + 1,
        sha256: sha256(data.subarray(i * partSize, (i + 1) * partSize)),
      }));
    }
    const created = await this.call('POST', '/v1/uploads', body);
    if (created.status !== 201) return { created, complete: undefined, sentBytes: 0 };
    const { partSize, parts, uploadId } = created.json as {
      partSize: number;
      uploadId: string;
      parts: { partNumber: number; url: string; headers: Record<string, string> }[];
    };
    let sentBytes = 0;
    const etags = await Promise.all(
      parts.map(async (p) => {
        const slice = data.subarray((p.partNumber - 1) * partSize, p.partNumber * partSize);
        sentBytes += slice.length;
        const res = await fetch(p.url, {
          method: 'PUT',
          headers: p.headers,
          body: slice as Uint8Array<ArrayBuffer>,
        });
        if (res.status !== 200) throw new Error(`part ${p.partNumber}: ${res.status} ${await res.text()}`);
        return { partNumber: p.partNumber, etag: res.headers.get('etag') ?? '' };
      }),
    );
    const complete = await this.call('POST', `/v1/uploads/${uploadId}/complete`, { parts: etags });
    return { created, complete, uploadId, sentBytes, etags };
  }

  /**
   * What a complete ends in, as a client sees it: a 201's body, or, after a 202 (the upload is
   * verified in the background), the session's `result` once it is committed. A session that
   * failed answers its status and error instead.
   */
  async committed(
    complete: { status: number; json: Json } | undefined,
    uploadId: string,
    timeoutMs = 120_000,
  ): Promise<{ status: number; json: Json }> {
    if (complete?.status !== 202) return complete ?? { status: 0, json: {} };
    const end = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.call('GET', `/v1/uploads/${uploadId}`);
      if (s.json.state === 'committed') return { status: 201, json: s.json.result as Json };
      if (s.json.state !== 'verifying') return { status: 422, json: s.json };
      if (Date.now() > end) throw new Error(`upload ${uploadId} still verifying`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async download(fileId: string): Promise<{ status: number; body?: Buffer; location?: string }> {
    const res = await this.call('GET', `/v1/files/${fileId}/download`);
    if (res.status !== 302) return { status: res.status };
    const location = res.headers.get('location') ?? '';
    const got = await fetch(location);
    return { status: got.status, body: Buffer.from(await got.arrayBuffer()), location };
  }
}
