/**
 * The dashboard's folder upload of many small files against a runtime with the service's real,
 * built-in rate limits (the other suites lift them), and what the uploads panel says at the end:
 * every file done and "100%" only then; after a refusal that retrying cannot fix (quota), the file
 * counts as failed, the overall line says so, and no useless Retry is offered.
 *
 * How many files: each costs two `write` tokens (create, complete) from a bucket of 300 refilled at
 * 10 per second. Whether a given count outruns that depends on how fast this machine drives the
 * browser (400 files hit it 32 times on one run and not once on a slower one), so the test first
 * empties the user's write bucket with cheap refused requests, as a user who has just uploaded
 * something else would have. Then every one of the 2,000 writes of 1,000 files (over six times
 * the bucket) waits for the refill: 200 s at least, hundreds of 429s on any machine; the issue asks
 * for 1,000 through either client, and the CLI suite (test/e2e/cli-bulk.test.ts) does the same.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, type Runtime, scrapeMetrics, startRuntime } from '../support/local-runtime.ts';
import { CHROMIUM } from '../support/services.ts';

const FILES = 1000;
const QUOTA = 4 * 1024 * 1024;
const email = `bulk-${randomBytes(4).toString('hex')}@example.com`;
const password = 'correct horse battery';

let rt: Runtime;
let browser: Browser;
let page: Page;
let work: string;

const overallText = () => page.locator('#overall-text');
const jobs = (state: string) => page.locator(`aside.uploads li[data-state="${state}"]`);

/**
 * Spends the user's (and this address's) write tokens until the limiter refuses: POSTs with an
 * invalid body take a token and then fail validation, so nothing is created.
 */
async function drainWriteBucket(api: Client) {
  for (let sent = 0; sent < 1000; sent += 25) {
    const statuses = await Promise.all(
      Array.from({ length: 25 }, async () => (await api.call('POST', '/v1/folders', {})).status),
    );
    if (statuses.some((s) => s === 429)) return;
    expect(statuses.every((s) => s === 400)).toBe(true);
  }
  throw new Error('the write bucket never ran dry: are the default limits on?');
}

/** Requests the runtime refused with 429 so far, per its Prometheus counter. */
async function rejections(): Promise<number> {
  const text = await (await scrapeMetrics(rt)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('stratus_rate_limit_rejections_total'))
    .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
}

beforeAll(async () => {
  // '{}' is the setting's own default: no overrides, the built-in limits of request-limits.ts.
  rt = await startRuntime({ STRATUS_RATE_LIMITS: '{}', STRATUS_DEFAULT_QUOTA_BYTES: String(QUOTA) });
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-web-bulk-'));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  page = await (await browser.newContext()).newPage();
});

afterAll(async () => {
  await browser?.close();
  await rt?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

describe('dashboard bulk upload with the default rate limits', () => {
  it(`uploads a folder of ${FILES} files with 0 failures and says "100%" only when all are done`, async () => {
    const dir = path.join(work, 'Photos');
    await fs.mkdir(dir);
    for (let i = 0; i < FILES; i++)
      await fs.writeFile(path.join(dir, `p${String(i).padStart(4, '0')}.txt`), randomBytes(20 + (i % 50)));

    await page.goto(rt.url);
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password (at least 8 characters)').fill(password);
    await page.getByRole('button', { name: 'Create account' }).click();
    await expect.poll(() => page.locator('header .who').textContent()).toContain(email);

    // Every line the overall status ever shows.
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { overallSeen: string[] }).overallSeen = seen;
      new MutationObserver(() => {
        const t = document.getElementById('overall-text')?.textContent ?? '';
        if (t && t !== seen.at(-1)) seen.push(t);
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    const api = new Client(rt.url);
    await api.login(email, password);
    await drainWriteBucket(api);
    const refusedBefore = await rejections();
    const started = Date.now();
    await page.locator('#upload-folder').setInputFiles(dir);
    await expect.poll(() => overallText().getAttribute('data-state'), { timeout: 60_000 }).toBe('active');
    await expect
      .poll(() => overallText().getAttribute('data-state'), { timeout: 480_000, interval: 1000 })
      .not.toBe('active');
    const seconds = (Date.now() - started) / 1000;

    expect(await jobs('failed').count()).toBe(0);
    expect(await jobs('done').count()).toBe(FILES);
    expect(await overallText().textContent()).toBe(`100% · all ${FILES} done`);
    expect(await page.locator('#overall-progress').evaluate((e) => (e as HTMLProgressElement).value)).toBe(
      100,
    );
    const seen = await page.evaluate(() => (window as unknown as { overallSeen: string[] }).overallSeen);
    expect(seen.filter((t) => t.startsWith('100%'))).toEqual([`100% · all ${FILES} done`]);
    // The limit was really in the way, and the panel said so while waiting.
    expect((await rejections()) - refusedBefore).toBeGreaterThan(10);
    expect(seen.some((t) => t.includes('server busy, retrying'))).toBe(true);

    // The server holds all of them.
    const root = await api.call('GET', '/v1/folders/root/children');
    const photos = (root.json.items as { id: string; name: string }[]).find((i) => i.name === 'Photos');
    expect(photos).toBeDefined();
    const listed = await api.call('GET', `/v1/folders/${photos?.id}/children?limit=1000`);
    expect((listed.json.items as unknown[]).length).toBe(FILES);
    console.log(`dashboard upload of ${FILES} files with default limits: ${seconds.toFixed(0)} s`);
  }, 600_000);

  it('a quota refusal counts as failed, the overall line says so, and no Retry is offered', async () => {
    await page.getByRole('button', { name: 'Clear finished' }).click();
    const big = path.join(work, 'too-big.bin');
    await fs.writeFile(big, randomBytes(QUOTA + 1));
    await page.locator('#upload-files').setInputFiles(big);
    const item = page.locator('aside.uploads li[data-path="too-big.bin"]');
    await expect.poll(() => item.getAttribute('data-state'), { timeout: 30_000 }).toBe('failed');
    expect(await item.locator('.status').textContent()).toBe('Failed: this would exceed the storage quota');
    expect(await overallText().textContent()).toBe('0% · 0 of 1 done · 1 failed');
    expect(await overallText().getAttribute('data-state')).toBe('failed');
    expect(await item.getByRole('button', { name: /^(Retry|Resume)/ }).count()).toBe(0);
    await item.getByRole('button', { name: 'Dismiss too-big.bin' }).click();
    await expect.poll(() => item.count()).toBe(0);
  });
});
