import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listReleases } from '../channels/press/store.js';
import { getSubscriber, importSubscribers, subscriberId } from '../src/domain/audience.js';
import { chromiumPath, launchChromium } from './helpers/chromium.js';
import { londonIn } from './helpers/crier.js';
import { startRig, type Rig } from './helpers/rig.js';
import type { SinkMessage } from './helpers/smtp-sink.js';

/**
 * Crier's two browser-facing pages in a real headless Chromium (Debian's
 * package, driven by playwright-core): the unsubscribe page a newsletter links
 * to, and a published press release page. Real Redis, real BullMQ workers, real
 * SMTP (smtp-server in this process), the real HTTP server on 127.0.0.1; the
 * browser may talk to 127.0.0.1 only.
 */

const executable = chromiumPath();
if (!executable) console.warn('Chromium not found: browser tests skipped (apt-get install chromium, or set CHROMIUM_PATH)');

const NEWS = ['ann@example.org', 'bob@example.org', 'cat@example.org'] as const;
const HEADLINE = 'Commissioner opens new community safety hub';
const BODY = 'The hub in Rugby opens on Monday with **extended hours** for residents.';


async function importList(r: Rig, list: string, emails: readonly string[]): Promise<void> {
  const { config, handle } = r.crier;
  const file = path.join(config.dataDir, `${list}.csv`);
  writeFileSync(file, `email,name,area,topics\n${emails.map((e) => `${e},Reader ${e.split('@')[0]},,`).join('\n')}\n`);
  const result = await importSubscribers(handle.redis, config.redis_prefix, file, list, { rejectsDir: config.dataDir });
  expect(result).toMatchObject({ imported: emails.length, rejected: 0 });
}

function unsubscribeLink(r: Rig, msg: SinkMessage): string {
  const line = msg.parsed?.headerLines.find((h) => h.key === 'list-unsubscribe')?.line ?? '';
  const value = line.slice(line.indexOf(':') + 1).trim();
  const m = /<(https?:\/\/[^>]+)>/.exec(value);
  expect(m, `List-Unsubscribe: ${value}`).not.toBeNull();
  const url = m![1]!;
  expect(url.startsWith(`${r.baseUrl}/u/`)).toBe(true);
  return url;
}

describe.skipIf(!executable)('browser-facing pages in headless Chromium', () => {
  let rig: Rig | undefined;
  let browser: Browser | undefined;
  /** One unsubscribe link per newsletter recipient. */
  const links = new Map<string, string>();
  let slug = '';
  /** Requests the browser tried to make anywhere but 127.0.0.1 (aborted). */
  const offHost: string[] = [];

  const r = (): Rig => rig!;
  const statusOf = async (email: string) => (await getSubscriber(r().crier.handle.redis, r().crier.config.redis_prefix, subscriberId(email)))?.status;
  const statuses = async () => Object.fromEntries(await Promise.all(NEWS.map(async (e) => [e, await statusOf(e)] as const)));

  /** A fresh browser context (no cookies, no cache) that aborts any request not to 127.0.0.1. */
  async function newPage(): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser!.newContext();
    await context.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (url.hostname === '127.0.0.1') return route.continue();
      offHost.push(url.href);
      return route.abort();
    });
    const page = await context.newPage();
    page.setDefaultTimeout(5000);
    return { context, page };
  }

  beforeAll(async () => {
    const [started, launched] = await Promise.all([startRig(), launchChromium()]);
    rig = started;
    browser = launched;
    await importList(rig, 'news', NEWS);
    await importList(rig, 'media', ['desk@newsroom.example']);

    const newsletter = await rig.crier.create(
      [
        'title: Browser test newsletter',
        'kind: newsletter',
        `send_at: ${londonIn(1000)}`,
        'channels:',
        '  email:',
        '    list: news',
        '    subject: "News for {{name}}"',
        '    body: "# Hello {{name}}\\n\\nThis month: **new patrols**."',
      ].join('\n'),
    );
    const press = await rig.crier.create(
      [
        'title: Browser test press release',
        'kind: press',
        `send_at: ${londonIn(1000)}`,
        'channels:',
        '  press:',
        `    headline: "${HEADLINE}"`,
        `    body: "${BODY}"`,
        '    list: media',
      ].join('\n'),
    );
    for (const id of [newsletter.id, press.id]) {
      expect((await rig.crier.waitForStatus(id, ['sent', 'partially_failed', 'failed'])).status).toBe('sent');
    }
    for (const msg of rig.sink.messages) {
      const to = msg.to[0]!;
      if ((NEWS as readonly string[]).includes(to)) links.set(to, unsubscribeLink(rig, msg));
    }
    expect([...links.keys()].sort()).toEqual([...NEWS].sort());

    const releases = await listReleases(rig.crier.handle.redis, rig.crier.config.redis_prefix, 10, new Date());
    expect(releases.map((x) => x.headline)).toEqual([HEADLINE]);
    slug = releases[0]!.slug;
  });

  afterAll(async () => {
    await browser?.close();
    await rig?.close();
  });

  it('unsubscribe: GET shows both choices and changes nothing; the first button takes that subscriber off this list only, the second off everything', async () => {
    const who = NEWS[0];
    const bystander = NEWS[1];
    const link = links.get(who)!;
    const { redis } = r().crier.handle;
    const key = `${r().crier.config.redis_prefix}:sub:${subscriberId(who)}`;
    const { context, page } = await newPage();
    try {
      const res = await page.goto(link);
      expect(res?.status()).toBe(200);
      expect(await page.title()).toBe('Unsubscribe');
      expect(await page.locator('body').innerText()).toContain('Stop receiving emails from the news list?');
      const fromList = page.getByRole('button', { name: 'Unsubscribe from news' });
      const fromAll = page.getByRole('button', { name: 'Unsubscribe from everything' });
      expect(await fromList.isVisible()).toBe(true);
      expect(await fromAll.isVisible()).toBe(true);
      await page.screenshot({ path: path.join(r().crier.config.dataDir, 'unsubscribe-page.png'), fullPage: true });
      // Mail scanners follow links: opening the page must not unsubscribe anyone.
      expect(await statusOf(who)).toBe('subscribed');
      expect(await redis.hexists(key, 'unsub:news')).toBe(0);

      const [posted] = await Promise.all([page.waitForResponse((x) => x.request().method() === 'POST' && x.url() === link), fromList.click()]);
      expect(posted.status()).toBe(200);
      await page.getByRole('heading', { name: 'Unsubscribed' }).waitFor();
      expect(await page.locator('body').innerText()).toMatch(/you are unsubscribed from the news list/i);
      await page.screenshot({ path: path.join(r().crier.config.dataDir, 'unsubscribed-page.png'), fullPage: true });
      // Off the news list only: the subscriber stays subscribed to any other list.
      expect(await redis.hexists(key, 'unsub:news')).toBe(1);
      expect(await statusOf(who)).toBe('subscribed');
      expect(await statusOf(bystander)).toBe('subscribed');

      // The result page still offers "from everything".
      const again = page.getByRole('button', { name: 'Unsubscribe from everything' });
      const [second] = await Promise.all([page.waitForResponse((x) => x.request().method() === 'POST' && x.url() === link), again.click()]);
      expect(second.status()).toBe(200);
      await page.getByText(/unsubscribed from every list/i).waitFor();
      expect(await statusOf(who)).toBe('unsubscribed');
      expect(await statusOf(bystander)).toBe('subscribed');
    } finally {
      await context.close();
    }
    expect(offHost).toEqual([]);
  });

  it('unsubscribe: a forged or altered token is a 400 "not valid" page and changes nobody', async () => {
    const before = await statuses();
    const target = links.get(NEWS[2])!;
    const token = target.slice(target.lastIndexOf('/') + 1);
    const [idPart, listPart, macPart] = token.split('.') as [string, string, string];
    const other = links.get(NEWS[1])!;
    const otherMac = other.slice(other.lastIndexOf('.') + 1);
    const mid = Math.floor(macPart.length / 2);
    const altered = `${idPart}.${listPart}.${macPart.slice(0, mid)}${macPart[mid] === 'A' ? 'B' : 'A'}${macPart.slice(mid + 1)}`;
    const id = subscriberId(NEWS[2]);
    const alteredId = `${id.slice(0, -1)}${id.endsWith('0') ? '1' : '0'}`;
    const bad = [
      altered, // one character of the MAC changed
      `${idPart}.${listPart}.${otherMac}`, // this subscriber's id, someone else's MAC
      `${Buffer.from(alteredId, 'utf8').toString('base64url')}.${listPart}.${macPart}`, // another subscriber id, this MAC
      `${idPart}..${macPart}`, // the list removed (would mean "everything")
      'not-a-token',
    ];
    const { context, page } = await newPage();
    try {
      for (const t of bad) {
        const url = `${r().baseUrl}/u/${t}`;
        const res = await page.goto(url);
        expect(res?.status(), url).toBe(400);
        expect(await page.title()).toBe('Link not valid');
        expect(await page.locator('body').innerText()).toMatch(/this unsubscribe link is not valid/i);
        expect(await page.getByRole('button').count(), 'no unsubscribe button on a bad link').toBe(0);
      }
    } finally {
      await context.close();
    }
    expect(await statuses()).toEqual(before);
    expect(before[NEWS[2]]).toBe('subscribed');
    expect(offHost).toEqual([]);
  });

  it('press release page renders: headline in the title, body visible, RSS alternate link, no console errors', async () => {
    const { context, page } = await newPage();
    const errors: string[] = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
    });
    page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
    try {
      const res = await page.goto(`${r().baseUrl}/press/${slug}`);
      expect(res?.status()).toBe(200);
      await page.waitForLoadState('load');
      expect(await page.title()).toContain(HEADLINE);
      expect(await page.getByRole('heading', { level: 1 }).innerText()).toBe(HEADLINE);
      const article = page.locator('article');
      expect(await article.isVisible()).toBe(true);
      expect(await article.innerText()).toContain('The hub in Rugby opens on Monday with extended hours for residents.');
      expect(await article.locator('strong', { hasText: 'extended hours' }).count()).toBe(1);

      const rss = page.locator('head link[rel="alternate"][type="application/rss+xml"]');
      expect(await rss.count()).toBe(1);
      expect(await rss.getAttribute('href')).toBe(`${r().baseUrl}/press.rss`);

      const shot = path.join(r().crier.config.dataDir, 'press-release.png');
      await page.screenshot({ path: shot, fullPage: true });
      expect(statSync(shot).size).toBeGreaterThan(1000);
      expect(readFileSync(shot).subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a'); // PNG signature
    } finally {
      await context.close();
    }
    expect(errors).toEqual([]);
    expect(offHost).toEqual([]);
  });
});
