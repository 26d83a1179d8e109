/**
 * The local node's signed URLs, attacked field by field over real HTTP (issue 18, item 9). Two
 * nodes share one signing secret, as the local runtime's nodes do, so a URL moved to the other node
 * is a real attack. For each op (put, part, get), every parameter is changed, dropped and
 * duplicated; parameters the op does not carry, unknown ones and other spellings of the same
 * number are added; the path's node and op are changed; and the signature is re-spelled. Each
 * variant must be a 403 `signature-invalid` that leaves nothing behind, while the URL as issued
 * still works.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStorageNodeServer } from '../../shared/adapters/localfs/local-storage-node-server.ts';
import { LocalFsBlobStore } from '../../shared/adapters/localfs/localfs-blob-store.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const FIELDS = ['op', 'node', 'key', 'upload', 'part', 'len', 'sha', 'exp', 'name', 'type', 'sig'] as const;

let dir: string;
let server: http.Server;
let base: string;
let n1: LocalFsBlobStore;
let n2: LocalFsBlobStore;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-sig-'));
  const nodes: LocalFsBlobStore[] = [];
  server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    void new LocalStorageNodeServer(nodes).handle(req, res, url).then((handled) => {
      if (!handled) res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const secret = randomBytes(32);
  n1 = await new LocalFsBlobStore('n1', path.join(dir, 'n1'), `${base}/storage/n1`, secret).init();
  n2 = await new LocalFsBlobStore('n2', path.join(dir, 'n2'), `${base}/storage/n2`, secret).init();
  nodes.push(n1, n2);
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await fs.rm(dir, { recursive: true, force: true });
});

type Pairs = [string, string][];

interface Issued {
  nodeId: string;
  op: string;
  pairs: Pairs;
}

function issued(url: string): Issued {
  const u = new URL(url);
  const m = /^\/storage\/([^/]+)\/([^/]+)$/.exec(u.pathname);
  return { nodeId: m?.[1] ?? '', op: m?.[2] ?? '', pairs: [...u.searchParams.entries()] };
}

/** Builds the URL byte for byte: order, repeats and spelling exactly as given. */
function build(nodeId: string, op: string, pairs: Pairs): string {
  const q = pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  return `${base}/storage/${nodeId}/${op}?${q}`;
}

/** A different value of the same kind for each field. */
function other(field: string, value: string): string {
  switch (field) {
    case 'op':
      return value === 'get' ? 'put' : 'get';
    case 'node':
      return value === 'n1' ? 'n2' : 'n1';
    case 'key':
      return `${value}-other`;
    case 'upload':
      return '00000000-0000-4000-8000-000000000000';
    case 'part':
    case 'len':
      return String(Number(value) + 1);
    case 'exp':
      return String(Number(value) + 3600);
    case 'sha':
      return sha(Buffer.from('something else'));
    case 'name':
      return 'evil.html';
    case 'type':
      return 'text/html';
    case 'sig':
      return `${value.slice(0, -2)}${value.at(-2) === 'A' ? 'B' : 'A'}${value.at(-1)}`;
    default:
      return `${value}x`;
  }
}

/** A plausible value for a field the URL does not carry. */
const plausible: Record<string, string> = {
  upload: '00000000-0000-4000-8000-000000000001',
  part: '1',
  len: '10',
  sha: sha(Buffer.from('x')),
  name: 'a.txt',
  type: 'text/plain',
};

/** The base64url alphabet index of a character, and back. */
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Every tampered variant of an issued URL, with a label saying what was done. */
function variants(u: Issued): { label: string; nodeId: string; op: string; pairs: Pairs }[] {
  const out: { label: string; nodeId: string; op: string; pairs: Pairs }[] = [];
  const same = (label: string, pairs: Pairs) => out.push({ label, nodeId: u.nodeId, op: u.op, pairs });
  const present = u.pairs.map(([k]) => k);
  for (const [i, [k, v]] of u.pairs.entries()) {
    same(
      `${k} changed`,
      u.pairs.map((p, j) => (j === i ? [k, other(k, v)] : p)),
    );
    same(
      `${k} dropped`,
      u.pairs.filter((_, j) => j !== i),
    );
    same(
      `${k} emptied`,
      u.pairs.map((p, j) => (j === i ? [k, ''] : p)),
    );
    same(`${k} duplicated, other value after`, [...u.pairs, [k, other(k, v)]]);
    same(`${k} duplicated, other value before`, [[k, other(k, v)], ...u.pairs]);
    same(`${k} duplicated, same value`, [...u.pairs, [k, v]]);
    same(
      `${k} renamed to ${k.toUpperCase()}`,
      u.pairs.map((p, j) => (j === i ? [k.toUpperCase(), v] : p)),
    );
    if (/^\d+$/.test(v) && k !== 'sig') {
      const spellings = [`0${v}`, `+${v}`, ` ${v}`, `${v}.0`, `${v}e0`, `0x${Number(v).toString(16)}`];
      for (const spelled of spellings)
        same(
          `${k} spelled ${JSON.stringify(spelled)}`,
          u.pairs.map((p, j) => (j === i ? [k, spelled] : p)),
        );
    }
  }
  for (const k of FIELDS.filter((f) => !present.includes(f))) {
    same(`${k} added`, [...u.pairs, [k, plausible[k] ?? 'x']]);
    same(`${k} added, empty`, [...u.pairs, [k, '']]);
  }
  for (const extra of ['x', 'sig2', 'X-Amz-Signature', 'op ', ''])
    same(`unknown ${JSON.stringify(extra)} added`, [...u.pairs, [extra, '1']]);
  // The same 32 MAC bytes spelled otherwise: the last of 43 characters carries 4 bits, the other 2
  // are padding; base64 padding; the standard alphabet for the URL-safe one; junk the decoder skips.
  const sig = u.pairs.find(([k]) => k === 'sig')?.[1] ?? '';
  const last = B64.indexOf(sig.at(-1) ?? 'A');
  const respell = (label: string, s: string) => {
    if (s !== sig)
      same(
        `sig spelled ${label}`,
        u.pairs.map(([k, v]) => [k, k === 'sig' ? s : v]),
      );
  };
  respell('with its padding bits set', `${sig.slice(0, -1)}${B64[last ^ 1]}`);
  respell('with = padding', `${sig}=`);
  respell('in the standard alphabet', sig.replaceAll('-', '+').replaceAll('_', '/'));
  respell('with a junk character', `${sig.slice(0, 10)}!${sig.slice(10)}`);
  respell('with a trailing character', `${sig}A`);
  respell('truncated', sig.slice(0, -1));
  const elsewhere = u.nodeId === 'n1' ? 'n2' : 'n1';
  out.push({ label: 'path node changed', nodeId: elsewhere, op: u.op, pairs: u.pairs });
  out.push({
    label: 'path node and node changed',
    nodeId: elsewhere,
    op: u.op,
    pairs: u.pairs.map(([k, v]) => [k, k === 'node' ? elsewhere : v]),
  });
  for (const op of ['put', 'part', 'get'].filter((o) => o !== u.op)) {
    out.push({ label: `path op changed to ${op}`, nodeId: u.nodeId, op, pairs: u.pairs });
    out.push({
      label: `path op and op changed to ${op}`,
      nodeId: u.nodeId,
      op,
      pairs: u.pairs.map(([k, v]) => [k, k === 'op' ? op : v]),
    });
  }
  return out;
}

async function attack(u: Issued, send: (url: string, op: string) => Promise<Response>) {
  const accepted: string[] = [];
  const wrong: string[] = [];
  for (const v of variants(u)) {
    const res = await send(build(v.nodeId, v.op, v.pairs), v.op);
    const text = await res.text();
    if (res.status < 300) accepted.push(`${v.label}: ${res.status}`);
    else if (res.status !== 403 || !text.includes('urn:stratus:problem:signature-invalid'))
      wrong.push(`${v.label}: ${res.status} ${text.slice(0, 120)}`);
  }
  return { accepted, wrong, tried: variants(u).length };
}

describe('local node signed URLs, field by field', () => {
  const body = Buffer.from('0123456789');

  it('put: every tampered variant is a 403 signature-invalid, and stores nothing', async () => {
    const put = await n1.presignPut({
      key: 'v/put',
      contentLength: body.length,
      sha256: sha(body),
      expiresInSeconds: 600,
    });
    const u = issued(put.url);
    expect(u.pairs.map(([k]) => k).sort()).toEqual(['exp', 'key', 'len', 'node', 'op', 'sha', 'sig']);
    const { accepted, wrong, tried } = await attack(u, (url, op) =>
      fetch(url, { method: op === 'get' ? 'GET' : 'PUT', ...(op === 'get' ? {} : { body }) }),
    );
    expect(tried).toBeGreaterThanOrEqual(80);
    expect(accepted).toEqual([]);
    expect(wrong).toEqual([]);
    for (const n of [n1, n2]) {
      expect(await n.stat('v/put')).toBeUndefined();
      expect(await n.stat('v/put-other')).toBeUndefined();
    }
    expect((await fetch(put.url, { method: 'PUT', body })).status).toBe(200);
    expect(await n1.stat('v/put')).toEqual({ size: body.length });
  });

  it('part: every tampered variant is a 403 signature-invalid, and stores no part', async () => {
    const id = await n1.createMultipartUpload('v/part', { partChecksums: true });
    const other = await n1.createMultipartUpload('v/part', { partChecksums: true });
    const part = await n1.presignUploadPart({
      key: 'v/part',
      storageUploadId: id,
      partNumber: 1,
      contentLength: body.length,
      sha256: sha(body),
      expiresInSeconds: 600,
    });
    const u = issued(part.url);
    expect(u.pairs.map(([k]) => k).sort()).toEqual([
      'exp',
      'key',
      'len',
      'node',
      'op',
      'part',
      'sha',
      'sig',
      'upload',
    ]);
    const { accepted, wrong, tried } = await attack(u, (url, op) =>
      fetch(url, { method: op === 'get' ? 'GET' : 'PUT', ...(op === 'get' ? {} : { body }) }),
    );
    // The URL moved to the other upload of the same key, which exists.
    const moved = await fetch(
      build(
        u.nodeId,
        u.op,
        u.pairs.map(([k, v]) => [k, k === 'upload' ? other : v]),
      ),
      {
        method: 'PUT',
        body,
      },
    );
    expect(moved.status).toBe(403);
    expect(tried).toBeGreaterThanOrEqual(80);
    expect(accepted).toEqual([]);
    expect(wrong).toEqual([]);
    expect(await n1.listParts('v/part', id)).toEqual([]);
    expect(await n1.listParts('v/part', other)).toEqual([]);
    expect(await n1.stat('v/part')).toBeUndefined();
    expect((await fetch(part.url, { method: 'PUT', body })).status).toBe(200);
    expect((await n1.listParts('v/part', id)).map((p) => p.partNumber)).toEqual([1]);
  });

  it('get: every tampered variant is a 403 signature-invalid, and serves no byte', async () => {
    await n1.write('v/get', body);
    await n1.write('v/get-other', Buffer.from('another object'));
    await n2.write('v/get', Buffer.from('n2 copy'));
    const get = await n1.presignGet({
      key: 'v/get',
      expiresInSeconds: 600,
      fileName: 'a.txt',
      contentType: 'text/plain',
    });
    const ok = await fetch(get.url);
    expect(ok.status).toBe(200);
    expect(Buffer.from(await ok.arrayBuffer())).toEqual(body);
    const u = issued(get.url);
    expect(u.pairs.map(([k]) => k).sort()).toEqual(['exp', 'key', 'name', 'node', 'op', 'sig', 'type']);
    const { accepted, wrong, tried } = await attack(u, (url, op) =>
      fetch(url, { method: op === 'get' ? 'GET' : 'PUT', ...(op === 'get' ? {} : { body }) }),
    );
    // 79 or 80: the standard-alphabet respelling exists only when the random MAC has a '-' or '_'.
    expect(tried).toBeGreaterThanOrEqual(79);
    expect(accepted).toEqual([]);
    expect(wrong).toEqual([]);
    expect(await n1.stat('v/get')).toEqual({ size: body.length });
  });
});
