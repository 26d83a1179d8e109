/**
 * The web dashboard end to end: Debian's Chromium driven by playwright-core against the local
 * runtime serving the page at `/`. One browser, one user, steps in order as a person would take
 * them; the share link is opened in a fresh context (no cookies, no storage).
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Runtime, startRuntime } from '../support/local-runtime.ts';
import { CHROMIUM } from '../support/services.ts';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const email = `web-${randomBytes(4).toString('hex')}@example.com`;
const password = 'correct horse battery';

let rt: Runtime;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let work: string;

async function writeLocal(name: string, bytes: Buffer) {
  const p = path.join(work, name);
  await fs.writeFile(p, bytes);
  return p;
}

async function downloadedHash(click: () => Promise<void>, p: Page = page) {
  const [download] = await Promise.all([p.waitForEvent('download'), click()]);
  const file = await download.path();
  return sha(await fs.readFile(file));
}

const row = (name: string) => page.locator(`tr[data-name="${name}"]`);

beforeAll(async () => {
  rt = await startRuntime();
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-web-'));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  context = await browser.newContext({ acceptDownloads: true });
  page = await context.newPage();
  page.on('dialog', (d) => void d.accept());
});

afterAll(async () => {
  await browser?.close();
  await rt?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

describe('web dashboard', () => {
  it('signs up and lands in an empty root folder', async () => {
    await page.goto(rt.url);
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password (at least 8 characters)').fill(password);
    await page.getByRole('button', { name: 'Create account' }).click();
    await expect.poll(() => page.locator('header .who').textContent()).toContain(email);
    await expect.poll(() => page.locator('[aria-current="page"]').textContent()).toBe('My files');
    await expect.poll(() => page.locator('#usage-meter').count()).toBe(1);
  });

  it('uploads a multi-part file and the progress reaches 100%', async () => {
    const data = randomBytes(20 * MiB + 777); // three 8 MiB parts
    const file = await writeLocal('report.bin', data);
    // Record every value the file's progress bar shows.
    await page.evaluate(() => {
      const seen: number[] = [];
      (window as unknown as { seen: number[] }).seen = seen;
      new MutationObserver(() => {
        const bar = document.querySelector(
          'aside.uploads li[data-path="report.bin"] progress',
        ) as HTMLProgressElement;
        if (bar) seen.push(bar.value);
      }).observe(document.body, { subtree: true, childList: true, attributes: true });
    });
    await page.locator('#upload-files').setInputFiles(file);
    const item = page.locator('aside.uploads li[data-path="report.bin"]');
    await expect.poll(() => item.getAttribute('data-state'), { timeout: 60_000 }).toBe('done');
    const seen = await page.evaluate(() => (window as unknown as { seen: number[] }).seen);
    expect(seen.at(-1)).toBe(100);
    expect(Math.max(...seen)).toBe(100);
    expect(await page.locator('#overall-progress').evaluate((e) => (e as HTMLProgressElement).value)).toBe(
      100,
    );
    await expect.poll(() => row('report.bin').count()).toBe(1);
    await expect.poll(() => row('report.bin').locator('td.size').textContent()).toBe('20 MiB');
    // The server holds exactly those bytes.
    const hash = await downloadedHash(() =>
      page.getByRole('button', { name: 'Download report.bin' }).click(),
    );
    expect(hash).toBe(sha(data));
  });

  it('resumes an upload after a reload in the middle of it', async () => {
    const data = randomBytes(24 * MiB + 5); // four parts
    const file = await writeLocal('big.bin', data);
    // One part at a time over a 2 MiB/s link (Chromium's own throttling), so the reload lands
    // after the first part is stored and before the last one is.
    await page.evaluate(() => localStorage.setItem('stratus.parallel', '1'));
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: 2 * MiB,
    });
    await page.locator('#upload-files').setInputFiles(file);
    const item = page.locator('aside.uploads li[data-path="big.bin"]');
    await expect.poll(() => item.getAttribute('data-state'), { timeout: 30_000 }).toBe('uploading');
    const saved = await page.evaluate(() => JSON.parse(localStorage.getItem('stratus.uploads') ?? '[]'));
    expect(saved).toHaveLength(1);
    const uploadId = saved[0].uploadId as string;
    const tokens = await page.evaluate(() => JSON.parse(localStorage.getItem('stratus.tokens') ?? '{}'));
    const status = async () => {
      const res = await fetch(`${rt.url}/v1/uploads/${uploadId}`, {
        headers: { authorization: `Bearer ${tokens.accessToken}` },
      });
      return (await res.json()) as { state: string; receivedParts: unknown[] };
    };
    await expect
      .poll(async () => (await status()).receivedParts.length, { timeout: 30_000 })
      .toBeGreaterThanOrEqual(1);
    await page.reload();
    await cdp.detach().catch(() => undefined);
    const before = await status();
    expect(before.state).toBe('uploading');
    expect(before.receivedParts.length).toBeLessThan(4);
    await page.evaluate(() => localStorage.removeItem('stratus.parallel'));

    const interrupted = page.locator('aside.uploads li[data-path="big.bin"]');
    await expect.poll(() => interrupted.getAttribute('data-state')).toBe('interrupted');
    await expect.poll(() => interrupted.locator('.status').textContent()).toContain('choose the file again');
    await page.getByLabel('Choose big.bin again to resume').setInputFiles(file);
    await expect.poll(() => interrupted.getAttribute('data-state'), { timeout: 60_000 }).toBe('done');

    // The same session was completed (not a new one).
    expect((await status()).state).toBe('committed');
    expect(await page.evaluate(() => localStorage.getItem('stratus.uploads'))).toBe('[]');

    const hash = await downloadedHash(() => page.getByRole('button', { name: 'Download big.bin' }).click());
    expect(hash).toBe(sha(data));
  });

  it('restores an old version', async () => {
    const v1 = Buffer.from('first draft\n');
    const v2 = Buffer.from('second draft, much better\n');
    await page.locator('#upload-files').setInputFiles(await writeLocal('draft.txt', v1));
    await expect.poll(() => row('draft.txt').count(), { timeout: 30_000 }).toBe(1);
    await fs.writeFile(path.join(work, 'draft.txt'), v2);
    await page.locator('#upload-files').setInputFiles(path.join(work, 'draft.txt'));
    await expect
      .poll(() => row('draft.txt').locator('td.size').textContent(), { timeout: 30_000 })
      .toBe('26 B');

    await page.getByRole('button', { name: 'Versions draft.txt' }).click();
    const dialog = page.getByRole('dialog', { name: 'Versions of draft.txt' });
    await expect.poll(() => dialog.locator('tbody tr').count()).toBe(2);
    await dialog.getByRole('button', { name: 'Restore version 1' }).click();
    await expect.poll(() => row('draft.txt').locator('td.size').textContent()).toBe('12 B');
    const hash = await downloadedHash(() => page.getByRole('button', { name: 'Download draft.txt' }).click());
    expect(hash).toBe(sha(v1));
  });

  it('deletes a file and restores it from the trash', async () => {
    await page.getByRole('button', { name: 'Delete draft.txt' }).click();
    await page.getByRole('button', { name: 'Move to trash' }).click();
    await expect.poll(() => row('draft.txt').count()).toBe(0);
    await page.getByRole('link', { name: 'Trash' }).click();
    await expect.poll(() => row('draft.txt').count()).toBe(1);
    await page.getByRole('button', { name: 'Restore draft.txt' }).click();
    await expect.poll(() => page.locator('p.empty').textContent()).toBe('The trash is empty.');
    await page.getByRole('link', { name: 'Files' }).click();
    await expect.poll(() => row('draft.txt').count()).toBe(1);
  });

  it('creates a password-protected share link that opens in a fresh browser context', async () => {
    await page.getByRole('button', { name: 'Share report.bin' }).click();
    await page.getByLabel('Link expires after').selectOption('86400');
    await page.getByLabel('Password (optional)').fill('open sesame');
    await page.getByRole('button', { name: 'Create link' }).click();
    const url = await page.locator('#share-url').inputValue();
    expect(url.startsWith(`${rt.url}/s/`)).toBe(true);
    await page.getByRole('button', { name: 'Close' }).click();

    const stranger = await browser.newContext({ acceptDownloads: true });
    try {
      const p = await stranger.newPage();
      await p.goto(url);
      await p.getByLabel('This link needs a password:').fill('wrong one');
      await p.getByRole('button', { name: 'Open' }).click();
      await p.getByLabel('Wrong password. Try again:').fill('open sesame');
      await p.getByRole('button', { name: 'Open' }).click();
      await expect.poll(() => p.locator('h1').textContent()).toBe('report.bin');
      const original = await fs.readFile(path.join(work, 'report.bin'));
      const hash = await downloadedHash(() => p.getByRole('button', { name: 'Download' }).click(), p);
      expect(hash).toBe(sha(original));
      expect(await p.evaluate(() => localStorage.getItem('stratus.tokens'))).toBeNull();
    } finally {
      await stranger.close();
    }
  });

  it('works on a phone-sized screen with every control labelled', async () => {
    await page.setViewportSize({ width: 375, height: 740 });
    await page.goto(`${rt.url}/#/files/root`);
    await expect.poll(() => row('report.bin').count()).toBe(1);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll('input, select, progress, meter, button')]
        .filter((el) => {
          const e = el as HTMLInputElement;
          const name = e.getAttribute('aria-label') ?? (e.labels?.length ? 'label' : '');
          return !name && !(el.textContent ?? '').trim();
        })
        .map((el) => el.outerHTML.slice(0, 80)),
    );
    expect(unlabelled).toEqual([]);
    // Keyboard: Tab reaches the upload control, and Enter on a folder link opens it.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.tagName)).not.toBe('BODY');
  });
});
