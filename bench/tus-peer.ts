/**
 * The peer, measured the way its users run it: `@tus/server` with `@tus/file-store` on a plain
 * `node:http` server in a process of its own (bench/tus-server.ts; ours is `npm start`), driven by `tus-js-client`'s Node build with its default options
 * (one PATCH streaming the whole file: `chunkSize` Infinity, `parallelUploads` 1), given an
 * `fs.ReadStream` as its README shows for Node.
 *
 * Two client HTTP stacks, both reported: the package's default (`node:http`), and the `fetch` our
 * own clients use (`FetchHttpStack` below, a `tus-js-client` HttpStack over the same undici
 * `fetch` as `fetchPutPart`), so neither side wins or loses by its HTTP client. Ratios are taken
 * against the faster of the two.
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { HttpRequest, HttpResponse, HttpStack } from 'tus-js-client';
import * as tus from 'tus-js-client';
import { mbps, ROOT, type Spread, spread, timed } from './lib.ts';

/** A tus-js-client HttpStack over global `fetch` (undici): the HTTP client of Stratus's own clients. */
export class FetchHttpStack implements HttpStack {
  createRequest(method: string, url: string): HttpRequest {
    return new FetchRequest(method, url);
  }

  getName(): string {
    return 'FetchHttpStack';
  }
}

class FetchRequest implements HttpRequest {
  private readonly headers: Record<string, string> = {};
  private readonly controller = new AbortController();
  private readonly method: string;
  private readonly url: string;

  constructor(method: string, url: string) {
    this.method = method;
    this.url = url;
  }

  getMethod() {
    return this.method;
  }

  getURL() {
    return this.url;
  }

  setHeader(header: string, value: string) {
    this.headers[header] = value;
  }

  getHeader(header: string) {
    return this.headers[header];
  }

  setProgressHandler() {
    // Progress is not what is measured here.
  }

  async send(body: unknown): Promise<HttpResponse> {
    const init: RequestInit & { duplex?: 'half' } = {
      method: this.method,
      headers: { ...this.headers },
      signal: this.controller.signal,
    };
    if (body instanceof Readable) {
      // A file slice (tus-js-client's FileSource): streamed, with its length, as the default stack does.
      const size = (body as Readable & { size?: number }).size;
      if (size !== undefined) (init.headers as Record<string, string>)['content-length'] = String(size);
      init.body = Readable.toWeb(body) as ReadableStream<Uint8Array>;
      init.duplex = 'half';
    } else if (body instanceof Uint8Array) {
      init.body = body as Uint8Array<ArrayBuffer>;
    } else if (body != null) {
      init.body = String(body);
    }
    const res = await fetch(this.url, init);
    const text = await res.text();
    return {
      getStatus: () => res.status,
      getHeader: (h: string) => res.headers.get(h) ?? undefined,
      getBody: () => text,
      getUnderlyingObject: () => res,
    };
  }

  async abort() {
    this.controller.abort();
  }

  getUnderlyingObject() {
    return this.controller;
  }
}

function tusUpload(file: string, endpoint: string, httpStack?: HttpStack): Promise<void> {
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(createReadStream(file) as never, {
      endpoint,
      metadata: { filename: path.basename(file) },
      ...(httpStack ? { httpStack } : {}),
      onError: reject,
      onSuccess: () => resolve(),
    });
    upload.start();
  });
}

export interface TusResult {
  server: string;
  client: string;
  /** tus-js-client with its own default HTTP stack (node:http). */
  defaultStack: { uploadMBps: Spread };
  /** tus-js-client over fetch, as Stratus's clients send. */
  fetchStack: { uploadMBps: Spread };
  /** The faster of the two: what ratios are taken against. */
  uploadMBps: Spread;
  ratioAgainst: 'defaultStack' | 'fetchStack';
}

export async function tusPeer(bigFile: string, workDir: string, runs: number): Promise<TusResult> {
  const dir = path.join(workDir, 'tus');
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  const server = spawn(process.execPath, [path.join(ROOT, 'bench', 'tus-server.ts'), dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const endpoint = await new Promise<string>((resolve, reject) => {
    server.once('exit', (code) => reject(new Error(`tus server exited with ${code}`)));
    server.stdout?.on('data', (c: Buffer) => {
      const m = /listening at (\S+)/.exec(c.toString());
      if (m?.[1]) resolve(m[1]);
    });
  });
  const { size } = await fs.stat(bigFile);
  const byStack: Record<'defaultStack' | 'fetchStack', number[]> = { defaultStack: [], fetchStack: [] };
  try {
    // Interleaved, so drift in the machine's load falls on both stacks alike.
    for (let r = 0; r < runs; r++) {
      for (const stack of ['defaultStack', 'fetchStack'] as const) {
        const t = await timed(() =>
          tusUpload(bigFile, endpoint, stack === 'fetchStack' ? new FetchHttpStack() : undefined),
        );
        byStack[stack].push(mbps(size, t.ms));
        // Each upload is its own file in the store; drop it so the disk holds one at a time.
        for (const f of await fs.readdir(dir)) await fs.rm(path.join(dir, f), { force: true });
      }
    }
  } finally {
    server.removeAllListeners('exit');
    const exited = new Promise((r) => server.once('exit', r));
    server.kill('SIGTERM');
    await exited;
    await fs.rm(dir, { recursive: true, force: true });
  }
  const version = async (pkg: string) =>
    JSON.parse(await fs.readFile(path.join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')).version;
  const defaultStack = spread(byStack.defaultStack);
  const fetchStack = spread(byStack.fetchStack);
  const ratioAgainst = defaultStack.median >= fetchStack.median ? 'defaultStack' : 'fetchStack';
  return {
    server: `@tus/server ${await version('@tus/server')} + @tus/file-store ${await version('@tus/file-store')}`,
    client: `tus-js-client ${await version('tus-js-client')} (defaults)`,
    defaultStack: { uploadMBps: defaultStack },
    fetchStack: { uploadMBps: fetchStack },
    uploadMBps: ratioAgainst === 'defaultStack' ? defaultStack : fetchStack,
    ratioAgainst,
  };
}
