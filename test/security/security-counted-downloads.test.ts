/**
 * A counted share link's downloads are counted where the bytes go (#18 item 4), attacked over HTTP
 * on the layout `npm start` runs (three local nodes, replication factor 2). A link with
 * `maxDownloads: 1` once spent its one download when it signed a URL, and the URL then served the
 * file 7–10 times in its 60 s. Now such a URL carries a nonce inside its signature, and the node
 * spends it on the first fetch, in the state store every node shares and that outlives a restart:
 * of any number of fetches, sequential or concurrent, exactly one gets the bytes, the rest 410
 * `download-url-used`. A changed or dropped nonce breaks the signature. An owner's download URL
 * stays multi-use and resumable (Range), as S3's are.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UrlNonceLedger } from '../../shared/adapters/localfs/url-nonce-ledger.ts';
import { newNonce } from '../../shared/adapters/localfs/url-signer.ts';
import { Client, type Runtime, startRuntime } from '../support/local-runtime.ts';

let rt: Runtime;
let owner: Client;
let fileId: string;
const content = randomBytes(256 * 1024 + 7);

beforeAll(async () => {
  rt = await startRuntime();
  expect(rt.container.nodes.all()).toHaveLength(3);
  owner = new Client(rt.url);
  await owner.signUp('counted-owner@example.com');
  const { complete } = await owner.upload('root', 'counted.bin', content);
  expect(complete?.status).toBe(201);
  fileId = complete?.json.fileId as string;
});
afterAll(async () => {
  await rt?.stop();
});

const kind = (json: Record<string, unknown>) => String(json.type).replace('urn:stratus:problem:', '');

async function fetchBytes(url: string, headers: Record<string, string> = {}, method = 'GET') {
  const res = await fetch(url, { method, headers });
  const body = Buffer.from(await res.arrayBuffer());
  const isProblem = res.headers.get('content-type') === 'application/problem+json' && body.length > 0;
  return {
    status: res.status,
    headers: res.headers,
    body,
    problem: (isProblem ? JSON.parse(body.toString('utf8')) : {}) as Record<string, unknown>,
  };
}

async function share(budget: { maxDownloads?: number; maxBytes?: number }, id = fileId) {
  const res = await owner.call('POST', '/v1/shares', { itemId: id, expiresInSeconds: 3600, ...budget });
  expect(res.status, JSON.stringify(res.json)).toBe(201);
  return res.json as { id: string; url: string };
}

/** The signed URL a link hands out for its file (one download spent). */
async function signedUrl(link: { url: string }): Promise<URL> {
  const res = await fetch(`${link.url}?format=json`);
  expect(res.status).toBe(200);
  return new URL(((await res.json()) as { url: string }).url);
}

function statusCounts(statuses: number[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const s of statuses) counts[s] = (counts[s] ?? 0) + 1;
  return counts;
}

describe('a link with maxDownloads 1', () => {
  it('serves its one URL once, whole, however often it is fetched in a row', async () => {
    const url = await signedUrl(await share({ maxDownloads: 1 }));
    const answers = [];
    for (let i = 0; i < 10; i++) answers.push(await fetchBytes(url.href));
    expect(statusCounts(answers.map((a) => a.status))).toEqual({ 200: 1, 410: 9 });
    expect(answers[0]?.status).toBe(200);
    expect(answers[0]?.body.equals(content)).toBe(true);
    for (const a of answers.slice(1)) {
      expect(a.headers.get('content-type')).toBe('application/problem+json');
      expect(kind(a.problem)).toBe('download-url-used');
      expect(a.problem.status).toBe(410);
    }
  });

  it('gives exactly one of 20 concurrent fetches the bytes', async () => {
    const url = await signedUrl(await share({ maxDownloads: 1 }));
    const answers = await Promise.all(Array.from({ length: 20 }, () => fetchBytes(url.href)));
    expect(statusCounts(answers.map((a) => a.status))).toEqual({ 200: 1, 410: 19 });
    expect(answers.find((a) => a.status === 200)?.body.equals(content)).toBe(true);
    expect(answers.filter((a) => kind(a.problem) === 'download-url-used')).toHaveLength(19);
  });

  it("rests on a ledger that lets one of 30 racing spends win, on the runtime's own state store", async () => {
    const ledger = new UrlNonceLedger(rt.container.state);
    const nonce = newNonce();
    const exp = Math.floor(Date.now() / 1000) + 60;
    const wins = await Promise.all(
      Array.from({ length: 30 }, (_, i) => ledger.consume(nonce, `local-${(i % 3) + 1}`, exp)),
    );
    expect(wins.filter(Boolean)).toHaveLength(1);
  });

  it('spends the download once the link is used up, too: the link answers share-exhausted', async () => {
    const link = await share({ maxDownloads: 1 });
    const url = await signedUrl(link);
    const again = await fetch(`${link.url}?format=json`);
    expect(again.status).toBe(410);
    expect(kind((await again.json()) as Record<string, unknown>)).toBe('share-exhausted');
    expect((await fetchBytes(url.href)).status).toBe(200);
    expect((await fetchBytes(url.href)).status).toBe(410);
  });

  it('refuses a changed or dropped nonce as a bad signature, and the real URL still works once', async () => {
    const url = await signedUrl(await share({ maxDownloads: 1 }));
    const nonce = url.searchParams.get('nonce');
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const forged = new URL(url);
    forged.searchParams.set('nonce', randomBytes(16).toString('base64url'));
    const flipped = new URL(url);
    flipped.searchParams.set(
      'nonce',
      `${nonce?.slice(0, -2)}${nonce?.at(-2) === 'A' ? 'B' : 'A'}${nonce?.at(-1)}`,
    );
    const dropped = new URL(url);
    dropped.searchParams.delete('nonce');
    for (const tampered of [forged, flipped, dropped]) {
      for (let i = 0; i < 3; i++) {
        const res = await fetchBytes(tampered.href);
        expect(res.status, tampered.search).toBe(403);
        expect(kind(res.problem)).toBe('signature-invalid');
      }
    }
    const real = await fetchBytes(url.href);
    expect(real.status).toBe(200);
    expect(real.body.equals(content)).toBe(true);
    expect((await fetchBytes(url.href)).status).toBe(410);
  });

  it('does not let a Range request split the one download: the first fetch gets it all', async () => {
    const url = await signedUrl(await share({ maxDownloads: 1 }));
    const first = await fetchBytes(url.href, { range: 'bytes=0-9' });
    expect(first.status).toBe(200);
    expect(first.headers.get('accept-ranges')).toBe('none');
    expect(first.body.equals(content)).toBe(true);
    const resume = await fetchBytes(url.href, { range: 'bytes=10-' });
    expect(resume.status).toBe(410);
    expect(kind(resume.problem)).toBe('download-url-used');
  });

  it('lets a HEAD look without spending, and answers 410 to it once the URL is spent', async () => {
    const url = await signedUrl(await share({ maxDownloads: 1 }));
    const look = await fetchBytes(url.href, {}, 'HEAD');
    expect(look.status).toBe(200);
    expect(look.headers.get('content-length')).toBe(String(content.length));
    expect((await fetchBytes(url.href)).status).toBe(200);
    expect((await fetchBytes(url.href, {}, 'HEAD')).status).toBe(410);
  });

  it('holds on every node of the default profile: each node spends its URLs once', async () => {
    const served = new Set<string>();
    for (let i = 0; i < 9; i++) {
      const { complete } = await owner.upload('root', `spread-${i}.bin`, randomBytes(100 + i));
      expect(complete?.status).toBe(201);
      const url = await signedUrl(await share({ maxDownloads: 1 }, complete?.json.fileId as string));
      served.add(url.searchParams.get('node') ?? '');
      const answers = await Promise.all([1, 2, 3].map(() => fetchBytes(url.href)));
      expect(statusCounts(answers.map((a) => a.status))).toEqual({ 200: 1, 410: 2 });
      // The same query under another node's path is that node's URL no more than it is this one's.
      for (const other of ['local-1', 'local-2', 'local-3'].filter(
        (n) => n !== url.searchParams.get('node'),
      )) {
        const moved = new URL(url);
        moved.pathname = url.pathname.replace(/\/storage\/[^/]+\//, `/storage/${other}/`);
        expect((await fetchBytes(moved.href)).status).toBe(403);
      }
    }
    expect(served.size).toBeGreaterThanOrEqual(2);
  });
});

describe('a link with a byte budget', () => {
  it('hands out single-use URLs too', async () => {
    const url = await signedUrl(await share({ maxBytes: content.length * 5 }));
    expect(url.searchParams.get('nonce')).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const answers = await Promise.all(Array.from({ length: 5 }, () => fetchBytes(url.href)));
    expect(statusCounts(answers.map((a) => a.status))).toEqual({ 200: 1, 410: 4 });
  });
});

describe('URLs that spend no budget', () => {
  it("keeps an owner's download URL multi-use, and resumable with Range", async () => {
    const dl = await owner.call('GET', `/v1/files/${fileId}/download`);
    expect(dl.status).toBe(302);
    const url = new URL(dl.headers.get('location') ?? '');
    expect(url.searchParams.has('nonce')).toBe(false);
    for (let i = 0; i < 2; i++) {
      const whole = await fetchBytes(url.href);
      expect(whole.status).toBe(200);
      expect(whole.headers.get('accept-ranges')).toBe('bytes');
      expect(whole.body.equals(content)).toBe(true);
    }
    const part = await fetchBytes(url.href, { range: 'bytes=1000-1999' });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 1000-1999/${content.length}`);
    expect(part.body.equals(content.subarray(1000, 2000))).toBe(true);
    const rest = await fetchBytes(url.href, { range: 'bytes=200000-' });
    expect(rest.status).toBe(206);
    expect(rest.body.equals(content.subarray(200000))).toBe(true);
    const tail = await fetchBytes(url.href, { range: 'bytes=-7' });
    expect(tail.status).toBe(206);
    expect(tail.body.equals(content.subarray(-7))).toBe(true);
    const beyond = await fetchBytes(url.href, { range: `bytes=${content.length}-` });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get('content-range')).toBe(`bytes */${content.length}`);
    expect(kind(beyond.problem)).toBe('range-not-satisfiable');
  });

  it('keeps the URL of a link without a budget multi-use', async () => {
    const url = await signedUrl(await share({}));
    expect(url.searchParams.has('nonce')).toBe(false);
    for (let i = 0; i < 2; i++) expect((await fetchBytes(url.href)).body.equals(content)).toBe(true);
  });
});

describe('across a restart', () => {
  it('remembers a spent URL: the node refuses it after the runtime comes back on the same data', async () => {
    const url = await signedUrl(await share({ maxDownloads: 1 }));
    expect((await fetchBytes(url.href)).status).toBe(200);
    const port = new URL(rt.url).port;
    await rt.stop();
    rt = await startRuntime({ PORT: port }, rt.dataDir);
    const after = await fetchBytes(url.href);
    expect(after.status).toBe(410);
    expect(kind(after.problem)).toBe('download-url-used');
    // The runtime is back, and a URL it has not served yet still works once.
    owner = new Client(rt.url);
    await owner.login('counted-owner@example.com');
    const fresh = await signedUrl(await share({ maxDownloads: 1 }));
    expect((await fetchBytes(fresh.href)).status).toBe(200);
    expect((await fetchBytes(fresh.href)).status).toBe(410);
  });
});
