import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addAccount, setPassword, type Role } from '../src/domain/accounts.js';
import { importSubscribers } from '../src/domain/audience.js';
import { ObservationStore } from '../src/domain/observations.js';
import { periodOf, previousPeriod } from '../src/domain/periods.js';
import { catalogueFor } from '../src/metrics-config.js';
import { chromiumPath, launchChromium } from './helpers/chromium.js';
import { londonIn } from './helpers/crier.js';
import { startRig, type Rig } from './helpers/rig.js';

/**
 * The dashboard in real headless Chromium against the real server, workers,
 * Redis and an SMTP sink: an editor composes an email + X campaign (the X
 * count turns red past 280), a viewer can neither see an Approve button nor
 * approve through the API, an approver approves, the calendar shows it, the
 * campaign page's counts rise live as it goes out, and signing out ends the
 * session. SCREENSHOTS=1 also copies the main pages at desktop and phone
 * width into docs/screenshots/.
 */

const executable = chromiumPath();
const PASSWORD = 'correct horse battery staple';
const NEWS = ['ann@example.org', 'bob@example.org', 'cat@example.org'];
const DOCS = path.resolve(import.meta.dirname, '..', 'docs', 'screenshots');
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 900 };

describe.skipIf(!executable)('dashboard in headless Chromium', () => {
  let rig: Rig;
  let browser: Browser;
  const offHost: string[] = [];
  const pageErrors: string[] = [];
  let campaignId = '';

  async function signIn(who: string, viewport = DESKTOP): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport, locale: 'en-GB', timezoneId: 'Europe/London', acceptDownloads: true });
    await context.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (url.hostname === '127.0.0.1') return route.continue();
      offHost.push(url.href);
      return route.abort();
    });
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(`${rig.baseUrl}/dashboard`);
    expect(new URL(page.url()).pathname).toBe('/login');
    await page.getByLabel('Email').fill(`${who}@example.org`);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/\/dashboard\/calendar/);
    return { context, page };
  }

  async function shot(page: Page, name: string): Promise<void> {
    // A sandboxed iframe is painted in its own process and a full-page shot leaves it blank below the fold:
    // make the viewport as tall as the page, let each frame render, shoot, and restore.
    const viewport = page.viewportSize()!;
    const height = await page.evaluate(() => document.documentElement.scrollHeight);
    await page.setViewportSize({ width: viewport.width, height });
    for (const frame of await page.locator('iframe').all()) await frame.contentFrame().locator('body').waitFor();
    await page.waitForTimeout(300); // let the frames paint (a screenshot only, no assertion depends on it)
    const file = path.join(rig.crier.config.dataDir, `${name}.png`);
    await page.screenshot({ path: file });
    await page.setViewportSize(viewport);
    if (process.env.SCREENSHOTS === '1') {
      mkdirSync(DOCS, { recursive: true });
      copyFileSync(file, path.join(DOCS, `${name}.png`));
    }
  }

  beforeAll(async () => {
    [rig, browser] = await Promise.all([startRig('approval:\n  kinds: [newsletter, social]\norganisation: Office of the Police and Crime Commissioner'), launchChromium()]);
    const { handle, config } = rig.crier;
    const roles: Array<[string, Role]> = [['editor', 'editor'], ['approver', 'approver'], ['viewer', 'viewer'], ['admin', 'admin']];
    for (const [who, role] of roles) {
      await addAccount(handle.redis, handle.prefix, `${who}@example.org`, role, new Date());
      await setPassword(handle.redis, handle.prefix, `${who}@example.org`, PASSWORD);
    }
    const file = path.join(config.dataDir, 'news.csv');
    writeFileSync(file, `email,name,area,topics\n${NEWS.map((e) => `${e},Reader ${e.split('@')[0]},Rugby,`).join('\n')}\n`);
    await importSubscribers(handle.redis, handle.prefix, file, 'news', { rejectsDir: config.dataDir });
  });

  afterAll(async () => {
    await browser?.close();
    await rig?.close();
  });

  it('an editor composes email + X with live previews; the X count turns red past 280; the author gets no Approve button', async () => {
    const { context, page } = await signIn('editor');
    try {
      await page.getByRole('link', { name: 'New campaign' }).click();
      await page.getByLabel('Title').fill('Rugby safety newsletter');
      await page.getByLabel('Kind').selectOption('newsletter');
      // Far enough ahead for the approval below, near enough to watch it go out.
      await page.getByLabel(/Send at/).fill(londonIn(25_000).replace(' ', 'T'));
      await page.getByLabel('List', { exact: true }).fill('news');
      await page.getByLabel(/^Subject/).first().fill('Safer streets in Rugby, {{name}}');
      await page.locator('#email_body').fill('# New patrols\n\nThe **community hub** opens on Monday.');
      const emailFrame = page.frameLocator('iframe[title="email email preview"]');
      await expect.poll(async () => emailFrame.locator('strong', { hasText: 'community hub' }).count(), { timeout: 10_000 }).toBe(1);
      // The preview re-renders as the form changes: poll, a frame read between renders holds nothing yet.
      await expect.poll(async () => emailFrame.getByRole('heading', { name: 'New patrols' }).count(), { timeout: 10_000 }).toBe(1);
      expect(await page.locator('.channel-preview[data-channel="email"]').innerText()).toContain('Safer streets in Rugby, Sample Subscriber');

      await page.getByRole('checkbox', { name: 'X (Twitter)' }).check();
      const count = page.getByTestId('twitter-count');
      // A link counts 23 whatever its length (X's weighting, channels/twitter/text.ts).
      const long = `New patrols in Rugby from Monday: https://example.org/${'a'.repeat(80)} ${'More officers on foot in the town centre. '.repeat(6)}`;
      await page.locator('#twitter_text').fill(long);
      await expect.poll(async () => count.innerText(), { timeout: 10_000 }).toMatch(/^2\d\d \/ 280|^3\d\d \/ 280/);
      const over = await count.innerText();
      expect(Number(over.split(' ')[0])).toBeGreaterThan(280);
      expect(await count.getAttribute('class')).toContain('over');
      // Polled: htmx may swap in a newer preview between finding the element and reading its style (a detached one reads '').
      const colour = () => count.evaluate((el) => (el.isConnected ? getComputedStyle(el).color : 'detached'));
      await expect.poll(colour, { timeout: 10_000 }).toBe('rgb(177, 14, 30)');
      await shot(page, 'compose-desktop');

      await page.locator('#twitter_text').fill('New patrols in Rugby from Monday: https://example.org/patrols #Rugby');
      await expect.poll(async () => count.innerText(), { timeout: 10_000 }).toBe('64 / 280 characters');
      expect(await count.getAttribute('class')).not.toContain('over');
      await expect.poll(colour, { timeout: 10_000 }).toMatch(/^rgb\((?!177, 14, 30)/);

      await page.getByRole('button', { name: 'Create campaign' }).click();
      await page.waitForURL(/\/dashboard\/campaigns\/c[a-z0-9]+/);
      campaignId = new URL(page.url()).pathname.split('/').pop()!;
      expect(await page.getByTestId('status').innerText()).toBe('Awaiting approval');
      expect(await page.getByRole('button', { name: 'Approve' }).count()).toBe(0);
      expect(await page.locator('body').innerText()).toContain('Waiting for an approver other than you');
    } catch (err) {
      // If this fails on a loaded machine, keep what the browser showed.
      const file = path.join(rig.crier.config.dataDir, 'compose-failure.png');
      await page.screenshot({ path: file, fullPage: true }).catch(() => undefined);
      console.error(`compose test failed at ${page.url()}; screenshot ${file}`);
      throw err;
    } finally {
      await context.close();
    }
  });

  it('a viewer sees no Approve button and the API refuses the viewer', async () => {
    const { context, page } = await signIn('viewer');
    try {
      await page.goto(`${rig.baseUrl}/dashboard/campaigns/${campaignId}`);
      expect(await page.getByTestId('status').innerText()).toBe('Awaiting approval');
      expect(await page.getByRole('button', { name: 'Approve' }).count()).toBe(0);
      expect(await page.getByRole('link', { name: 'New campaign' }).count()).toBe(0);
      // The viewer's own session, with a valid CSRF token: refused on the role, not the token.
      const res = await page.evaluate(async (id) => {
        const token = JSON.parse(document.body.getAttribute('hx-headers') ?? '{}')['x-csrf-token'] as string;
        const r = await fetch(`/api/v1/campaigns/${id}/approve`, { method: 'POST', headers: { 'x-csrf-token': token } });
        return { status: r.status, body: (await r.json()) as { code: string } };
      }, campaignId);
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('CRIER_ERR_FORBIDDEN');
    } finally {
      await context.close();
    }
    expect((await rig.crier.show(campaignId)).status).toBe('awaiting_approval');
  });

  it('an approver approves; the calendar shows it; the campaign page counts rise live until sent; signing out ends the session', async () => {
    const { context, page } = await signIn('approver');
    try {
      await page.goto(`${rig.baseUrl}/dashboard/campaigns/${campaignId}`);
      await page.getByRole('button', { name: 'Approve' }).click();
      await expect.poll(async () => page.getByTestId('status').innerText(), { timeout: 10_000 }).toMatch(/Scheduled|Sending|Sent/);
      expect((await rig.crier.show(campaignId)).approvedBy).toBe('approver@example.org');

      await page.getByRole('link', { name: 'Calendar' }).click();
      const entry = page.getByRole('link', { name: /Rugby safety newsletter/ });
      expect(await entry.count()).toBe(1);
      await shot(page, 'calendar-desktop');
      await page.getByRole('link', { name: 'Week view' }).click();
      expect(await page.getByRole('link', { name: /Rugby safety newsletter/ }).count()).toBe(1);

      await page.goto(`${rig.baseUrl}/dashboard/campaigns/${campaignId}`);
      const sent = page.getByTestId('email-sent');
      const seen = new Set<string>([await sent.innerText()]);
      // htmx polls the progress every 2 s: the page changes without a reload.
      await expect
        .poll(
          async () => {
            seen.add(await sent.innerText());
            return page.getByTestId('status').innerText();
          },
          { timeout: 60_000, interval: 250 },
        )
        .toBe('Sent');
      seen.add(await sent.innerText());
      expect(await sent.innerText()).toBe('3');
      expect(seen.has('0')).toBe(true);
      expect(await page.getByTestId('twitter-sent').innerText()).toBe('1');
      expect(rig.sink.messages.map((m) => m.to[0]).sort()).toEqual([...NEWS].sort());
      await shot(page, 'campaign-desktop');

      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.waitForURL(/\/login\?out=1/);
      expect(await page.getByRole('status').innerText()).toContain('You are signed out');
      await page.goto(`${rig.baseUrl}/dashboard/calendar`);
      expect(new URL(page.url()).pathname).toBe('/login');
      const api = await page.evaluate(async () => (await fetch('/api/v1/campaigns')).status);
      expect(api).toBe(401);
    } finally {
      await context.close();
    }
  }, 90_000);

  it('audience import from the page: progress to done, the rejected rows to download; Bull Board for the admin', async () => {
    const { context, page } = await signIn('admin');
    try {
      await page.goto(`${rig.baseUrl}/dashboard/audience`);
      await page.getByLabel(/^List/).fill('community');
      const rows = Array.from({ length: 40 }, (_, i) => `person${i}@example.org,Person ${i},Rugby,burglary`);
      await page.getByLabel(/^CSV file/).setInputFiles({ name: 'community.csv', mimeType: 'text/csv', buffer: Buffer.from(`email,name,area,topics\n${rows.join('\n')}\nnot-an-address,Bad Row,,\n`) });
      await page.getByRole('button', { name: 'Import' }).click();
      const status = page.locator('#import-status');
      await expect.poll(async () => status.innerText(), { timeout: 20_000 }).toContain('Importing into community: done');
      expect(await status.innerText()).toContain('Imported 40, updated 0, rejected 1');
      expect(await page.locator('#import-progress').getAttribute('value')).toBe('100');
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download the rejected rows' }).click()]);
      const rejects = await download.path().then((f) => (f ? readFileSync(f, 'utf8') : ''));
      expect(rejects).toContain('not-an-address');
      await page.getByRole('link', { name: 'Refresh the list sizes' }).click();
      expect(await page.getByRole('row', { name: /community/ }).innerText()).toMatch(/40/);

      await page.getByRole('link', { name: 'Queues' }).click();
      await page.waitForURL(/\/queues/);
      await expect.poll(async () => page.locator('body').innerText(), { timeout: 15_000 }).toContain('deliver-email');
    } finally {
      await context.close();
    }
  });

  it('pages work at phone width: calendar, campaign, composer, audience (screenshots)', async () => {
    const { context, page } = await signIn('admin', PHONE);
    try {
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
      await shot(page, 'calendar-phone');
      await page.goto(`${rig.baseUrl}/dashboard/campaigns/${campaignId}`);
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
      expect(await page.frameLocator('iframe').first().getByRole('heading', { name: 'New patrols' }).count()).toBe(1);
      await shot(page, 'campaign-phone');
      await page.goto(`${rig.baseUrl}/dashboard/compose`);
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
      await shot(page, 'compose-phone');
      // Eight weeks of a few measures (one week missing), the rest empty: "no data", never 0.
      const { config, handle } = rig.crier;
      const store = new ObservationStore(handle.redis, handle.prefix, catalogueFor(config.metrics), { zone: config.timezone });
      const week = periodOf('week', new Date(), config.timezone);
      const visits = [880, 910, 1020, 990, 1130, 1210, 1190, 1310];
      for (let i = 0; i < 8; i++) {
        const p = previousPeriod(week, 7 - i);
        await store.record({ measure: 'website.visits', period: p.key, value: visits[i]!, source: 'manual' });
        if (i !== 5) await store.record({ measure: 'email.list_size', period: p.key, dimensions: { list: 'news' }, value: 400 + i * 12, source: 'manual' });
        await store.record({ measure: 'website.bounce_rate', period: p.key, value: 48 - i, source: 'manual' });
      }
      await page.goto(`${rig.baseUrl}/dashboard/audience`);
      expect(await page.locator('body').innerText()).toMatch(/news/);
      // Growth comes from the email.list_size measure; a list without readings says so.
      expect(await page.getByRole('row', { name: /^news/ }).innerText()).toContain('+12');
      expect(await page.getByRole('row', { name: /^community/ }).innerText()).toContain('no data');
      await shot(page, 'audience-phone');
      await page.setViewportSize(DESKTOP);
      await shot(page, 'audience-desktop');

      await page.goto(`${rig.baseUrl}/dashboard/measures`);
      const visitsRow = page.locator('tr[data-measure="website.visits"]');
      expect(await visitsRow.innerText()).toContain('1,310');
      expect(await page.locator('tr[data-measure="website.pageviews"]').innerText()).toContain('no data');
      await shot(page, 'measures-desktop');
      await page.setViewportSize(PHONE);
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
      await shot(page, 'measures-phone');
      // Keyboard: the skip link is the first stop and lands on the main content.
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
      expect(await page.getAttribute('html', 'lang')).toBe('en');
    } finally {
      await context.close();
    }
    expect(offHost).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
