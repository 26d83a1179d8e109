/**
 * The Stratus API client shared by the CLI (Node) and the web dashboard (browser): plain `fetch`,
 * no Node built-ins. Problems (RFC 9457) become `ApiError`s carrying the stable type slug; an expired
 * access token is refreshed once with the refresh token (rotation: the new pair is handed to
 * `onTokens` so the caller can persist it). A 429, or a 502/503/504 to an idempotent request, is
 * waited out and repeated as `clients/retry.ts` says (Retry-After, else jittered back-off; bounded).
 */
import type {
  ChildrenOut,
  CompleteOut,
  CreatedShareOut,
  CreateUploadOut,
  DownloadOut,
  FileOut,
  ItemOut,
  JobOut,
  NodeOut,
  NodesOut,
  PartsOut,
  PurgeOut,
  ReplicationOut,
  RestoredVersionOut,
  ShareOut,
  TokenSet,
  TrashItemOut,
  TrashOut,
  UploadOut,
  UsageOut,
  UserOut,
  VersionOut,
  VersionsOut,
} from '../functions/api/wire-types.ts';
import {
  Backoff,
  idempotentMethod,
  isRetryable,
  type RetryClock,
  type RetryEvent,
  type RetryPolicy,
  systemClock,
} from './retry.ts';
import { awaitVerification, type VerificationWait } from './upload-verification.ts';

export interface Tokens {
  accessToken: string;
  refreshToken: string;
  /** Epoch milliseconds when the access token expires. */
  expiresAt: number;
}

/**
 * Response bodies are the server's zod schemas' output types (`functions/api/wire-types.ts`: a
 * types-only module, so nothing of the server reaches a client bundle), under the names the CLI
 * and the dashboard use.
 */
export type { PartUrl } from '../functions/api/wire-types.ts';
export type Item = ItemOut;
export type FileItem = FileOut;
export type Version = VersionOut;
export type TrashItem = TrashItemOut;
export type CreatedUpload = CreateUploadOut;
export type UploadStatus = UploadOut;
export type Committed = CompleteOut;
export type Share = ShareOut;
export type NodeInfo = NodeOut;

/** What completing answered: committed (201), or assembled and being verified in the background (202). */
export type CompleteAnswer =
  | { state: 'committed'; result: Committed }
  | {
      state: 'verifying';
      upload: UploadStatus;
      /** Where to poll the session: the 202's Location as a path under the endpoint. */
      statusPath: string;
      retryAfter: string | null;
    };

/** A problem answered by the API (or a transport failure, with status 0). */
export class ApiError extends Error {
  readonly status: number;
  /** The problem type's slug, e.g. `not-found` for `urn:stratus:problem:not-found`. */
  readonly slug: string;
  readonly problem: Record<string, unknown>;

  constructor(status: number, problem: Record<string, unknown>) {
    const detail = typeof problem.detail === 'string' ? problem.detail : undefined;
    const title = typeof problem.title === 'string' ? problem.title : `HTTP ${status}`;
    super(detail ?? title);
    this.name = 'ApiError';
    this.status = status;
    const type = typeof problem.type === 'string' ? problem.type : '';
    this.slug = type.startsWith('urn:stratus:problem:') ? type.slice('urn:stratus:problem:'.length) : type;
    this.problem = problem;
  }
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  headers?: Record<string, string>;
  auth?: boolean;
  /**
   * Safe to repeat after a 502/503/504 (the default follows RFC 9110: GET, PUT, DELETE… yes, POST
   * and PATCH no). A 429 is repeated either way: it means nothing was done.
   */
  idempotent?: boolean;
}

export interface ApiResponse<T> {
  status: number;
  headers: Headers;
  data: T;
}

export interface ClientOptions {
  endpoint: string;
  tokens?: Tokens | undefined;
  onTokens?: (t: Tokens | undefined) => void;
  fetch?: typeof fetch;
  /** How retries are bounded (defaults: `DEFAULT_RETRY_POLICY`); `{ maxAttempts: 1 }` turns them off. */
  retry?: Partial<RetryPolicy>;
  /** Time and chance for the back-off (tests inject their own). */
  clock?: RetryClock;
  /** Ends back-off waits early (Ctrl-C): the request then rejects with the signal's reason. */
  signal?: AbortSignal;
  onRetry?: (e: RetryEvent) => void;
}

export class StratusApi {
  readonly endpoint: string;
  tokens: Tokens | undefined;
  private readonly onTokens: (t: Tokens | undefined) => void;
  private readonly doFetch: typeof fetch;
  private refreshing: Promise<void> | undefined;
  readonly retry: Partial<RetryPolicy>;
  readonly clock: RetryClock;
  readonly signal: AbortSignal | undefined;
  private readonly onRetry: ((e: RetryEvent) => void) | undefined;

  constructor(opts: ClientOptions) {
    this.endpoint = opts.endpoint.replace(/\/+$/, '');
    this.tokens = opts.tokens;
    this.onTokens = opts.onTokens ?? (() => undefined);
    this.doFetch = opts.fetch ?? ((input, init) => fetch(input, init));
    this.retry = opts.retry ?? {};
    this.clock = opts.clock ?? systemClock;
    this.signal = opts.signal;
    this.onRetry = opts.onRetry;
  }

  async request<T>(method: string, path: string, o: RequestOptions = {}): Promise<ApiResponse<T>> {
    const auth = o.auth ?? true;
    const idempotent = o.idempotent ?? idempotentMethod(method);
    const backoff = new Backoff(this.retry, this.clock);
    let refreshed = false;
    for (;;) {
      if (auth && this.tokens && this.tokens.expiresAt - Date.now() < 15_000) await this.refresh();
      const res = await this.send(method, path, o, auth);
      if (res.status === 401 && auth && this.tokens && !refreshed) {
        refreshed = true;
        await res.body?.cancel().catch(() => undefined);
        await this.refresh();
        continue;
      }
      const text = await res.text();
      let data: unknown = {};
      if (text) {
        try {
          data = JSON.parse(text);
        } catch {
          data = { detail: text.slice(0, 200) };
        }
      }
      if (res.status < 400) return { status: res.status, headers: res.headers, data: data as T };
      const err = new ApiError(res.status, data as Record<string, unknown>);
      const delayMs = isRetryable(res.status, idempotent, err.slug)
        ? backoff.next(res.headers.get('retry-after'))
        : undefined;
      if (delayMs === undefined) throw err;
      this.onRetry?.({
        method,
        url: this.endpoint + path,
        status: res.status,
        attempt: backoff.attempts,
        delayMs,
      });
      await this.clock.sleep(delayMs, this.signal);
    }
  }

  private async send(method: string, path: string, o: RequestOptions, auth: boolean): Promise<Response> {
    const url = new URL(this.endpoint + path);
    for (const [k, v] of Object.entries(o.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: 'application/json', ...(o.headers ?? {}) };
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    if (auth) {
      if (!this.tokens) throw new ApiError(401, { type: 'not-signed-in', detail: 'not signed in' });
      headers.authorization = `Bearer ${this.tokens.accessToken}`;
    }
    try {
      return await this.doFetch(url, {
        method,
        headers,
        redirect: 'manual',
        ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }),
      });
    } catch (err) {
      throw new ApiError(0, {
        type: 'unreachable',
        detail: `cannot reach ${this.endpoint}: ${(err as Error).cause ?? (err as Error).message}`,
      });
    }
  }

  private setTokens(t: TokenSet | undefined) {
    this.tokens = t && {
      accessToken: t.accessToken,
      refreshToken: t.refreshToken,
      expiresAt: Date.now() + t.expiresIn * 1000,
    };
    this.onTokens(this.tokens);
  }

  /** Rotates the refresh token; concurrent callers share one rotation (a second would be "reuse"). */
  async refresh(): Promise<void> {
    if (!this.tokens) throw new ApiError(401, { type: 'not-signed-in', detail: 'not signed in' });
    this.refreshing ??= (async () => {
      try {
        const { data } = await this.request<TokenSet>('POST', '/v1/auth/refresh', {
          auth: false,
          body: { refreshToken: this.tokens?.refreshToken },
        });
        this.setTokens(data);
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) this.setTokens(undefined);
        throw err;
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  async register(email: string, password: string) {
    return (
      await this.request<UserOut>('POST', '/v1/auth/register', {
        auth: false,
        body: { email, password },
      })
    ).data;
  }

  async login(email: string, password: string): Promise<Tokens> {
    const { data } = await this.request<TokenSet>('POST', '/v1/auth/login', {
      auth: false,
      body: { email, password },
    });
    this.setTokens(data);
    return this.tokens as Tokens;
  }

  async logout(): Promise<void> {
    if (!this.tokens) return;
    try {
      await this.request('POST', '/v1/auth/logout', { body: { refreshToken: this.tokens.refreshToken } });
    } finally {
      this.setTokens(undefined);
    }
  }

  async me() {
    return (await this.request<UserOut>('GET', '/v1/me')).data;
  }

  /** The item at a path such as `/Docs/report.pdf`; `/` is the root folder. */
  async resolve(path: string): Promise<Item> {
    const parts = splitPath(path);
    if (parts.length === 0) return this.folder('root');
    return (await this.request<ItemOut>('GET', '/v1/paths', { query: { path: `/${parts.join('/')}` } })).data;
  }

  /** Like `resolve`, but undefined when nothing is at the path. */
  async tryResolve(path: string): Promise<Item | undefined> {
    try {
      return await this.resolve(path);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  async folder(id: string) {
    return (await this.request<ItemOut>('GET', `/v1/folders/${encodeURIComponent(id)}`)).data;
  }

  async file(id: string) {
    return (await this.request<FileOut>('GET', `/v1/files/${encodeURIComponent(id)}`)).data;
  }

  async children(
    folderId: string,
    o: {
      cursor?: string | undefined;
      limit?: number;
      sort?: 'name' | 'size' | 'modified';
      dir?: 'asc' | 'desc';
    } = {},
  ) {
    return (
      await this.request<ChildrenOut>('GET', `/v1/folders/${encodeURIComponent(folderId)}/children`, {
        query: { cursor: o.cursor, limit: o.limit, sort: o.sort, dir: o.dir },
      })
    ).data;
  }

  async allChildren(folderId: string): Promise<Item[]> {
    const out: Item[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.children(folderId, { cursor, limit: 1000 });
      out.push(...page.items);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return out;
  }

  async createFolder(parentId: string, name: string) {
    return (await this.request<ItemOut>('POST', '/v1/folders', { body: { parentId, name } })).data;
  }

  /** Renames and/or moves an item, guarded by its ETag. */
  async patch(item: Item, change: { name?: string; parentId?: string }) {
    const kind = item.type === 'file' ? 'files' : 'folders';
    return (
      await this.request<ItemOut>('PATCH', `/v1/${kind}/${item.id}`, {
        body: change,
        headers: { 'if-match': item.etag },
      })
    ).data;
  }

  async remove(item: Item) {
    const kind = item.type === 'file' ? 'files' : 'folders';
    await this.request('DELETE', `/v1/${kind}/${item.id}`, { headers: { 'if-match': item.etag } });
  }

  async versions(fileId: string) {
    return (await this.request<VersionsOut>('GET', `/v1/files/${fileId}/versions`)).data.items;
  }

  async restoreVersion(fileId: string, versionId: string) {
    return (
      await this.request<RestoredVersionOut>('POST', `/v1/files/${fileId}/versions/${versionId}/restore`)
    ).data;
  }

  async trash() {
    return (await this.request<TrashOut>('GET', '/v1/trash')).data.items;
  }

  async restoreFromTrash(id: string) {
    return (await this.request<ItemOut>('POST', `/v1/trash/${id}/restore`)).data;
  }

  /**
   * Deletes a trash root (or, without `id`, the whole trash) for good: what was purged, or, for a
   * tree too big for one request (202), the job purging it (`job(id)` polls it).
   */
  async purge(id?: string): Promise<{ purged: PurgeOut } | { job: JobOut }> {
    const res = await this.request<PurgeOut | JobOut>('DELETE', id ? `/v1/trash/${id}` : '/v1/trash');
    return res.status === 202 ? { job: res.data as JobOut } : { purged: res.data as PurgeOut };
  }

  /** A purge job: its state and progress. */
  async job(id: string) {
    return (await this.request<JobOut>('GET', `/v1/jobs/${id}`)).data;
  }

  async downloadUrl(fileId: string, versionId?: string) {
    return (
      await this.request<DownloadOut>('GET', `/v1/files/${fileId}/download`, {
        query: { format: 'json', versionId },
      })
    ).data;
  }

  async createShare(itemId: string, expiresInSeconds: number, password?: string) {
    return (
      await this.request<CreatedShareOut>('POST', '/v1/shares', {
        body: { itemId, expiresInSeconds, ...(password ? { password } : {}) },
      })
    ).data;
  }

  async usage() {
    return (await this.request<UsageOut>('GET', '/v1/usage')).data;
  }

  async nodes() {
    return (await this.request<NodesOut>('GET', '/v1/admin/nodes')).data;
  }

  async replication() {
    return (await this.request<ReplicationOut>('GET', '/v1/admin/replication')).data;
  }

  async createUpload(body: {
    parentId: string;
    name: string;
    size: number;
    sha256: string;
    contentType?: string;
    partSize?: number;
    baseVersionId?: string | null;
    parts?: { partNumber: number; sha256: string }[];
  }) {
    return (await this.request<CreateUploadOut>('POST', '/v1/uploads', { body })).data;
  }

  async upload(id: string) {
    return (await this.request<UploadOut>('GET', `/v1/uploads/${id}`)).data;
  }

  async renewParts(id: string, parts: { partNumber: number; sha256?: string }[]) {
    // Only signs URLs: repeating it changes nothing.
    return (
      await this.request<PartsOut>('POST', `/v1/uploads/${id}/parts`, {
        body: { parts },
        idempotent: true,
      })
    ).data.parts;
  }

  /**
   * Asks the service to commit the uploaded parts and returns what it committed. A small upload is
   * verified in the request (201); a big one answers 202 once its parts are assembled and is
   * verified in the background: this waits for the verdict (`clients/upload-verification.ts`),
   * reporting the verifier's progress to `wait.onProgress`, and throws `UploadVerificationFailed`
   * when it refuses the bytes.
   */
  async completeUpload(
    id: string,
    parts: { partNumber: number; etag: string }[],
    wait: VerificationWait = {},
  ): Promise<Committed> {
    const answer = await this.requestComplete(id, parts);
    if (answer.state === 'committed') return answer.result;
    return awaitVerification(this, answer.upload, answer.statusPath, answer.retryAfter, wait);
  }

  /**
   * One complete request, answered as it was: committed (201), or verifying (202, with where to
   * poll). The service replays a committed session's answer, so a repeat after a lost answer is safe.
   */
  async requestComplete(id: string, parts: { partNumber: number; etag: string }[]): Promise<CompleteAnswer> {
    const res = await this.request<CompleteOut | UploadOut>('POST', `/v1/uploads/${id}/complete`, {
      body: { parts },
      idempotent: true,
    });
    if (res.status !== 202) return { state: 'committed', result: res.data as CompleteOut };
    return {
      state: 'verifying',
      upload: res.data as UploadOut,
      statusPath:
        this.pathOf(res.headers.get('location'), `/v1/uploads/${id}/complete`) ?? `/v1/uploads/${id}`,
      retryAfter: res.headers.get('retry-after'),
    };
  }

  /** A session by the path of its status resource (a 202's Location), with the answer's Retry-After. */
  async uploadAt(statusPath: string) {
    const res = await this.request<UploadOut>('GET', statusPath);
    return { upload: res.data, retryAfter: res.headers.get('retry-after') };
  }

  /**
   * A `Location` as a path under the endpoint, resolved (RFC 9110) against the request it answered;
   * undefined when it points outside the endpoint (another origin, or above its base path).
   */
  private pathOf(location: string | null, requestPath: string): string | undefined {
    if (!location) return undefined;
    let url: URL;
    try {
      url = new URL(location, this.endpoint + requestPath);
    } catch {
      return undefined;
    }
    const base = new URL(`${this.endpoint}/`);
    if (url.origin !== base.origin || !url.pathname.startsWith(base.pathname)) return undefined;
    return `/${url.pathname.slice(base.pathname.length)}${url.search}`;
  }

  async abortUpload(id: string) {
    await this.request('DELETE', `/v1/uploads/${id}`);
  }
}

/** `/Docs//report.pdf/` -> `['Docs', 'report.pdf']`. */
export function splitPath(path: string): string[] {
  return path.split('/').filter((s) => s.length > 0 && s !== '.');
}

export function joinPath(...segments: string[]): string {
  return `/${segments.flatMap(splitPath).join('/')}`;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
