/**
 * The dashboard's uploads panel when the service verifies in the background
 * (STRATUS_INLINE_VERIFY_BYTES=0: complete answers 202 for every upload). After the last part the
 * row is in a Verifying phase, and stays there while the test holds the runtime's verifier (never
 * "Done" or a stuck "100%" before the service has committed), then Done; a refusal by the verifier shows its reason and offers no Retry. The refusal is
 * provoked by rewriting the declared SHA-256 of the create request in flight (the page itself
 * always declares the right one).
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Runtime, startRuntime } from '../support/local-runtime.ts';
import { CHROMIUM } from '../support/services.ts';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const email = `verify-web-${randomBytes(4).toString('hex')}@example.com`;

let rt: Runtime;
let browser: Browser;
let page: Page;
let work: string;
/** While set, the runtime's background verifier waits for it before it reads an upload. */
let gate: Promise<void> | undefined;

interface Seen {
  state: string;
  status: string;
  overall: string;
}

/** Records every (state, status line, overall line) the row of `name` goes through. */
async function watchRow(name: string) {
  await page.evaluate((n) => {
    const seen: Seen[] = [];
    (window as unknown as { seen: Seen[] }).seen = seen;
    new MutationObserver(() => {
      const li = document.querySelector(`aside.uploads li[data-path="${n}"]`) as HTMLLIElement | null;
      if (!li) return;
      const entry = {
        state: li.dataset.state ?? '',
        status: li.querySelector('.status')?.textContent ?? '',
        overall: document.querySelector('#overall-text')?.textContent ?? '',
      };
      const last = seen.at(-1);
      if (
        !last ||
        last.state !== entry.state ||
        last.status !== entry.status ||
        last.overall !== entry.overall
      )
        seen.push(entry);
    }).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
  }, name);
  return () => page.evaluate(() => (window as unknown as { seen: Seen[] }).seen);
}

beforeAll(async () => {
  rt = await startRuntime({ STRATUS_INLINE_VERIFY_BYTES: '0' });
  const verifier = rt.container.backgroundVerifier;
  const verify = verifier.verifyInBackground.bind(verifier);
  verifier.verifyInBackground = async (uploadId) => {
    if (gate) await gate;
    return verify(uploadId);
  };
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-web-verify-'));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  page = await (await browser.newContext({ acceptDownloads: true })).newPage();
});

afterAll(async () => {
  await browser?.close();
  await rt?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

describe('dashboard uploads verified in the background', () => {
  it('signs up', async () => {
    await page.goto(rt.url);
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password (at least 8 characters)').fill('correct horse battery');
    await page.getByRole('button', { name: 'Create account' }).click();
    await expect.poll(() => page.locator('header .who').textContent()).toContain(email);
  });

  it('shows a Verifying phase after the parts, and Done only once the service has committed', async () => {
    const data = randomBytes(12 * MiB + 5); // two 8 MiB parts
    const file = path.join(work, 'video.bin');
    await fs.writeFile(file, data);
    const seen = await watchRow('video.bin');
    let release: () => void = () => undefined;
    gate = new Promise((r) => {
      release = r;
    });
    const item = page.locator('aside.uploads li[data-path="video.bin"]');
    try {
      await page.locator('#upload-files').setInputFiles(file);
      await expect.poll(() => item.getAttribute('data-state'), { timeout: 60_000 }).toBe('verifying');
      // Held by the service: the row waits in Verifying (polling), and the file is not listed yet.
      await new Promise((r) => setTimeout(r, 3000));
      expect(await item.getAttribute('data-state')).toBe('verifying');
      expect(await item.locator('.status').textContent()).toBe('Verifying 0%');
      expect(await page.locator('tr[data-name="video.bin"]').count()).toBe(0);
    } finally {
      gate = undefined;
      release();
    }
    await expect.poll(() => item.getAttribute('data-state'), { timeout: 60_000 }).toBe('done');
    await expect.poll(() => page.locator('tr[data-name="video.bin"]').count()).toBe(1);

    const states = (await seen()).map((s) => s.state);
    const verifying = (await seen()).filter((s) => s.state === 'verifying');
    expect(states.indexOf('verifying')).toBeGreaterThan(states.lastIndexOf('uploading'));
    expect(states.indexOf('done')).toBeGreaterThan(states.lastIndexOf('verifying'));
    expect(verifying.map((s) => s.status)).toContain('Verifying 0%');
    for (const s of verifying) {
      expect(s.status).toMatch(/^Verifying( \d+%|…)$/);
      // Not done while the service is still checking: the overall line stays below 100%.
      expect(s.overall).toMatch(/^\d+% · 0 of \d+ done · 1 in progress/);
      expect(s.overall.startsWith('100%')).toBe(false);
    }
    // The service has the bytes.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download video.bin' }).click(),
    ]);
    expect(sha(await fs.readFile(await download.path()))).toBe(sha(data));
  });

  it('a refusal shows the service’s reason, offers no Retry, and leaves nothing to resume', async () => {
    const data = randomBytes(9 * MiB);
    const file = path.join(work, 'tampered.bin');
    await fs.writeFile(file, data);
    await page.route(`${rt.url}/v1/uploads`, async (route) => {
      const req = route.request();
      if (req.method() !== 'POST') return route.continue();
      const body = { ...req.postDataJSON(), sha256: sha(Buffer.from('not these bytes')) };
      return route.continue({ postData: JSON.stringify(body) });
    });
    try {
      await page.locator('#upload-files').setInputFiles(file);
      const item = page.locator('aside.uploads li[data-path="tampered.bin"]');
      await expect.poll(() => item.getAttribute('data-state'), { timeout: 60_000 }).toBe('failed');
      expect(await item.locator('.status').textContent()).toMatch(/^Failed: verification failed: .*SHA-256/);
      expect(await item.getByRole('button', { name: 'Retry tampered.bin' }).count()).toBe(0);
      expect(await item.getByRole('button', { name: 'Dismiss tampered.bin' }).count()).toBe(1);
      expect(await page.evaluate(() => localStorage.getItem('stratus.uploads'))).toBe('[]');
      expect(await page.locator('#overall-text').textContent()).toContain('1 failed');
    } finally {
      await page.unroute(`${rt.url}/v1/uploads`);
    }
  });
});
