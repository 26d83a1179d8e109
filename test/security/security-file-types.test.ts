/**
 * Attacks on the type policy over HTTP (issue 18, item 5). Executables (PE, ELF, Mach-O, `#!`
 * scripts) dressed as documents were committed `clean` and served under the declared type, and a
 * zero-width character after ".png" hid the extension from the image rule. Now: an executable is
 * committed only when its declared type and its extension both say so (and the policy allows
 * executables); the extension is read from the name's NFKC form with invisible characters removed,
 * and names carrying a zero-width space are refused; and every download serves the type the bytes
 * show when the declared one disagrees.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOCX, ELF, MACHO_FAT, PE, PNG, SHELL, ZIP } from '../support/file-signatures.ts';
import { Client, type Runtime, startRuntime } from '../support/local-runtime.ts';

const DOCX_TYPE = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';

let rt: Runtime;
let c: Client;

beforeAll(async () => {
  rt = await startRuntime({
    STRATUS_LOCAL_NODES: '1',
    STRATUS_REPLICATION_FACTOR: '1',
    STRATUS_HEALTH_INTERVAL_SECONDS: '0',
    STRATUS_RECONCILE_INTERVAL_SECONDS: '0',
  });
  c = new Client(rt.url);
  await c.signUp('file-types@example.com');
});

afterAll(async () => {
  await rt?.stop();
});

const kind = (json: Record<string, unknown>) => String(json.type).replace('urn:stratus:problem:', '');
/** A real head followed by filler, so each upload is a distinct object. */
const file = (head: Buffer) => Buffer.concat([head, randomBytes(2048)]);

async function listedNames(): Promise<string[]> {
  const res = await c.call('GET', '/v1/folders/root/children');
  return (res.json.items as { name: string }[]).map((i) => i.name);
}

/** The Content-Type a client gets when it follows the download redirect. */
async function servedType(url: string): Promise<string | null> {
  const res = await fetch(url);
  await res.arrayBuffer();
  expect(res.status).toBe(200);
  return res.headers.get('content-type');
}

async function ownerDownloadType(fileId: string) {
  const dl = await c.call('GET', `/v1/files/${fileId}/download`);
  expect(dl.status).toBe(302);
  return servedType(dl.headers.get('location') ?? '');
}

describe('executables dressed as something else', () => {
  it.each([
    ['PE as a PDF', 'invoice.pdf', 'application/pdf', PE],
    ['PE as a Word document', 'report.docx', DOCX_TYPE, PE],
    ['PE as text', 'notes.txt', 'text/plain', PE],
    ['ELF as a video', 'clip.mp4', 'video/mp4', ELF],
    ['a #! script as a PDF', 'setup.pdf', 'application/pdf', SHELL],
    ['a universal Mach-O as a PDF', 'brochure.pdf', 'application/pdf', MACHO_FAT],
    ['PE named .exe but declared a PDF', 'tool.exe', 'application/pdf', PE],
    ['PE declared an executable but named .pdf', 'statement.pdf', 'application/x-msdownload', PE],
  ])('%s is refused with 415 and nothing is committed', async (_what, name, type, head) => {
    const { created, complete } = await c.upload('root', name, file(head), type);
    expect(created.status).toBe(201);
    expect(complete?.status, JSON.stringify(complete?.json)).toBe(415);
    expect(kind(complete?.json ?? {})).toBe('unsupported-media-type');
    expect(await listedNames()).not.toContain(name);
  });
});

describe('names that hide their extension', () => {
  it('refuses a name with a zero-width space (400 naming the field) before any byte is sent', async () => {
    const { created, complete } = await c.upload('root', 'photo.png\u200b', file(PE));
    expect(created.status, JSON.stringify(created.json)).toBe(400);
    expect(kind(created.json)).toBe('validation-error');
    expect((created.json.errors as { path: string }[]).map((e) => e.path)).toEqual(['name']);
    expect(complete).toBeUndefined();
  });

  it.each([
    ['a zero-width joiner after ".png"', 'selfie.png\u200d'],
    ['a soft hyphen inside "png"', 'avatar.p\u00adng'],
    ['a fullwidth ".png" (NFKC)', 'holiday\uff0e\uff50\uff4e\uff47'],
  ])('reads the extension through %s: MZ bytes are refused as a fake image', async (_what, name) => {
    const { created, complete } = await c.upload('root', name, file(PE));
    expect(created.status).toBe(201);
    expect(complete?.status, JSON.stringify(complete?.json)).toBe(415);
    expect(String(complete?.json.detail)).toContain('image');
    expect(await listedNames()).not.toContain(name.normalize('NFC'));
  });
});

describe('honest executables', () => {
  it.each([
    ['a Windows program', 'setup.exe', 'application/x-msdownload', PE, 'application/x-msdownload'],
    ['a Linux binary with no extension', 'true', 'application/octet-stream', ELF, 'application/x-elf'],
    ['a shell script', 'deploy.sh', 'application/x-sh', SHELL, 'application/x-sh'],
  ])('%s is stored and served as an executable', async (_what, name, type, head, served) => {
    const { complete } = await c.upload('root', name, file(head), type);
    expect(complete?.status, JSON.stringify(complete?.json)).toBe(201);
    expect(await ownerDownloadType(complete?.json.fileId as string)).toBe(served);
  });
});

describe('the type the bytes show is the type served', () => {
  it.each([
    ['a PNG declared as a PDF', 'scan.pdf', 'application/pdf', PNG, 'image/png'],
    ['a zip declared as a PDF', 'bundle.pdf', 'application/pdf', ZIP, 'application/zip'],
    [
      'text declared as a PDF',
      'memo.pdf',
      'application/pdf',
      Buffer.from('not a pdf\n'),
      'application/octet-stream',
    ],
    ['a PNG declared as opaque bytes', 'picture', 'application/octet-stream', PNG, 'image/png'],
    ['a real Word document', 'letter.docx', DOCX_TYPE, DOCX, DOCX_TYPE],
    ['plain text', 'readme.txt', 'text/plain', Buffer.from('hello\n'), 'text/plain'],
  ])('%s: owner download, file metadata and share link agree', async (_what, name, type, head, served) => {
    const { complete } = await c.upload('root', name, file(head), type);
    expect(complete?.status, JSON.stringify(complete?.json)).toBe(201);
    const fileId = complete?.json.fileId as string;
    expect((await c.call('GET', `/v1/files/${fileId}`)).json.contentType).toBe(served);
    expect(await ownerDownloadType(fileId)).toBe(served);
    const share = await c.call('POST', '/v1/shares', { itemId: fileId, expiresInSeconds: 600 });
    expect(share.status).toBe(201);
    const link = await fetch(String(share.json.url), { redirect: 'manual' });
    expect(link.status).toBe(302);
    expect(await servedType(link.headers.get('location') ?? '')).toBe(served);
  });
});
