import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { markdownToHtml, markdownToText } from '../channels/email/markdown.js';
import { releaseTail } from '../channels/press/release.js';
import { listReleases, publishRelease, slugify } from '../channels/press/store.js';
import { importSubscribers } from '../src/domain/audience.js';
import { chromiumPath, launchChromium } from './helpers/chromium.js';
import { londonIn } from './helpers/crier.js';
import { ROOT } from './helpers/dist.js';
import { startRig, type Rig } from './helpers/rig.js';
import type { SinkMessage } from './helpers/smtp-sink.js';

/**
 * The organisation's public face in headless Chromium (issue 9): the press
 * room lists published releases newest first, every link on every page and in
 * the feeds answers 2xx, and the organisation's name is on every page and
 * email, with its masthead and footer; press releases lead with the headline
 * and end with ENDS, the notes to editors and the press contact.
 *
 * It also takes the README's screenshots: UPDATE_SCREENSHOTS=1 writes them to
 * docs/ (otherwise to a temp dir, so a plain run never dirties the tree).
 */

const executable = chromiumPath();
if (!executable) console.warn('Chromium not found: browser tests skipped (apt-get install chromium, or set CHROMIUM_PATH)');

const ORG = 'Office of the Police and Crime Commissioner for Warwickshire';
const ADDRESS = '1 Example Street, Warwick, CV34 0AA';
const WEBSITE = 'https://www.example.org';
const LOGO = path.join(ROOT, 'config', 'examples', 'logo.png');
const HEADLINE = 'PCC funds new rural crime team for Warwickshire';
const SHOTS = process.env.UPDATE_SCREENSHOTS === '1' ? path.join(ROOT, 'docs') : mkdtempSync(path.join(os.tmpdir(), 'crier-shots-'));

const orgYaml = [
  'organisation:',
  `  name: ${ORG}`,
  `  address: "${ADDRESS}"`,
  `  website: ${WEBSITE}`,
  `  logo: ${LOGO}`,
  '  press_contact: { name: Press office, email: press@example.org, phone: "01926 000000" }',
].join('\n');

describe.skipIf(!executable)('press room, pages and emails carry the organisation (headless Chromium)', () => {
  let rig: Rig | undefined;
  let browser: Browser | undefined;
  let newsletterMail: SinkMessage | undefined;
  let pressMail: SinkMessage | undefined;
  const offHost: string[] = [];
  const r = (): Rig => rig!;

  async function newPage(width = 1000, height = 800): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser!.newContext({ viewport: { width, height } });
    await context.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (url.hostname === '127.0.0.1' || url.protocol === 'data:' || url.protocol === 'about:') return route.continue();
      offHost.push(url.href);
      return route.abort();
    });
    const page = await context.newPage();
    page.setDefaultTimeout(5000);
    return { context, page };
  }

  async function shot(page: Page, name: string): Promise<void> {
    mkdirSync(SHOTS, { recursive: true });
    const file = path.join(SHOTS, name);
    await page.screenshot({ path: file, fullPage: true });
    expect(readFileSync(file).subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    expect(statSync(file).size).toBeGreaterThan(5000);
  }

  /** Every image on the page loaded (naturalWidth > 0). */
  async function imagesLoaded(page: Page): Promise<void> {
    const broken = await page.$$eval('img', (imgs) => imgs.filter((i) => !(i as HTMLImageElement).complete || (i as HTMLImageElement).naturalWidth === 0).map((i) => (i as HTMLImageElement).src));
    expect(broken).toEqual([]);
  }

  beforeAll(async () => {
    const [started, launched] = await Promise.all([startRig(orgYaml), launchChromium()]);
    rig = started;
    browser = launched;
    const { config, handle } = rig.crier;
    const csv = (name: string, text: string) => {
      const f = path.join(config.dataDir, name);
      writeFileSync(f, text);
      return f;
    };
    await importSubscribers(handle.redis, config.redis_prefix, csv('news.csv', 'email,name,area,topics\namira.khan@example.org,Amira Khan,Rugby,\n'), 'newsletter', { rejectsDir: config.dataDir });
    await importSubscribers(handle.redis, config.redis_prefix, csv('media.csv', 'email,name,area,topics\nnewsdesk@example-news.org,Newsdesk,,\n'), 'media', { rejectsDir: config.dataDir });

    // Two releases from earlier weeks, published as the worker publishes them.
    const day = 24 * 3600_000;
    const older = [
      { headline: 'Commissioner awards £42,000 to community safety projects', body: 'Nine community groups across the county will share £42,000 from the Commissioner’s community safety fund.', at: new Date(Date.now() - 12 * day) },
      { headline: 'Have your say on next year’s policing budget', body: 'Residents are invited to give their views on the policing precept in the Commissioner’s budget consultation, open until 31 January.', at: new Date(Date.now() - 4 * day) },
    ];
    for (const [i, o] of older.entries()) {
      const md = `${o.body}${releaseTail(['Interviews are available on request.'], config.org)}`;
      await publishRelease(handle.redis, config.redis_prefix, { campaignId: `cold${i}`, slug: slugify(o.headline, o.at), headline: o.headline, bodyHtml: markdownToHtml(md, undefined), bodyText: markdownToText(md, undefined), publishedAt: o.at });
    }

    const body = readFileSync(path.join(ROOT, 'config', 'examples', 'newsletter.md'), 'utf8');
    const newsletter = await rig.crier.create(
      ['title: December newsletter', 'kind: newsletter', `send_at: ${londonIn(500)}`, 'channels:', '  email:', '    list: newsletter', '    subject: "Your PCC newsletter: December"', `    body: ${JSON.stringify(body)}`].join('\n'),
    );
    const pressYaml = (embargo: string) => [
        'title: New rural crime team',
        'kind: press',
        `send_at: ${londonIn(500)}`,
        'channels:',
        '  press:',
        '    list: media',
        `    headline: "${HEADLINE}"`,
        `    embargo_until: ${embargo}`,
        '    body: |',
        '      The Police and Crime Commissioner has funded a dedicated rural crime team of six officers, starting in January.',
        '',
        '      The team will patrol farms and villages across Stratford and North Warwickshire, working with the farming community on machinery theft, hare coursing and fly-tipping.',
        '    notes:',
        '      - Interviews with the Commissioner are available on request.',
        '      - The team is funded for three years from the Commissioner’s community safety budget.',
      ].join('\n');
    // One release whose embargo lifts a few seconds in (published during the test), and the same
    // release as a newsroom usually gets it: embargoed until 00:01 a week ahead (the email screenshot).
    const press = await rig.crier.create(pressYaml(londonIn(4000)));
    const embargoed = await rig.crier.create(pressYaml(`${londonIn(7 * day).slice(0, 10)} 00:01`));
    for (const id of [newsletter.id, press.id]) expect((await rig.crier.waitForStatus(id, ['sent', 'partially_failed', 'failed'])).status).toBe('sent');
    newsletterMail = rig.sink.messages.find((m) => m.to.includes('amira.khan@example.org'));
    // The embargoed one is sent now but stays "sending" until it publishes next week: wait for its email.
    const isEmbargoedMail = (m: SinkMessage) => m.to.includes('newsdesk@example-news.org') && m.parsed?.headerLines.some((h) => h.key === 'x-crier-campaign' && h.line.includes(embargoed.id));
    for (const deadline = Date.now() + 15_000; !(pressMail = rig.sink.messages.find(isEmbargoedMail)); await new Promise((res) => setTimeout(res, 50))) {
      if (Date.now() > deadline) throw new Error('the embargoed release was never emailed');
    }
    // The embargo lifts a few seconds in: wait for the release to be public.
    for (const deadline = Date.now() + 15_000; ; await new Promise((res) => setTimeout(res, 100))) {
      if ((await listReleases(handle.redis, config.redis_prefix, 10, new Date())).length === 3) break;
      if (Date.now() > deadline) throw new Error('the embargoed release was never published');
    }
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await rig?.close();
  });

  it('the press room (/press and /) lists published releases newest first, with the masthead, footer and press contact', async () => {
    const { context, page } = await newPage();
    try {
      for (const where of ['/press', '/']) {
        const res = await page.goto(`${r().baseUrl}${where}`);
        expect(res?.status(), where).toBe(200);
        expect(res?.headers()['content-type']).toMatch(/^text\/html/);
        expect(await page.title()).toBe(`Press releases – ${ORG}`);
        expect(await page.getByRole('heading', { level: 1 }).innerText()).toBe('Press releases');
        const headlines = await page.locator('ol.releases h2').allInnerTexts();
        expect(headlines).toEqual([HEADLINE, 'Have your say on next year’s policing budget', 'Commissioner awards £42,000 to community safety projects']);
        const times = await page.locator('ol.releases time').evaluateAll((ts) => ts.map((t) => Date.parse(t.getAttribute('datetime') ?? '')));
        expect([...times].sort((a, b) => b - a)).toEqual(times);
        expect(await page.locator('header.masthead').innerText()).toContain(ORG);
        const footer = await page.locator('footer').innerText();
        for (const s of [ORG, ADDRESS, 'www.example.org', 'Media enquiries: Press office · press@example.org · 01926 000000', 'RSS feed']) expect(footer).toContain(s);
        await imagesLoaded(page);
      }
      await page.goto(`${r().baseUrl}/press`);
      await shot(page, 'press-room.png');
    } finally {
      await context.close();
    }
    expect(offHost).toEqual([]);
  });

  it('a release page: headline, date, body, ENDS, notes to editors and media enquiries, under the masthead', async () => {
    const { context, page } = await newPage();
    try {
      await page.goto(`${r().baseUrl}/press`);
      await page.getByRole('link', { name: HEADLINE }).click();
      await page.waitForURL(/\/press\/\d{4}-\d{2}-\d{2}-pcc-funds-new-rural-crime-team-for-warwickshire$/);
      expect(await page.getByRole('heading', { level: 1 }).innerText()).toBe(HEADLINE);
      const article = await page.locator('article').innerText();
      expect(article).toMatch(/Press release · \d{1,2} \w+ \d{4}, \d{2}:\d{2}/);
      expect(article).toContain('dedicated rural crime team of six officers');
      expect(article.indexOf('ENDS')).toBeGreaterThan(article.indexOf('fly-tipping'));
      expect(article.indexOf('Notes to editors')).toBeGreaterThan(article.indexOf('ENDS'));
      expect(await page.locator('article ol li').allInnerTexts()).toEqual(['Interviews with the Commissioner are available on request.', 'The team is funded for three years from the Commissioner’s community safety budget.']);
      expect(article).toContain('Media enquiries: Press office · press@example.org · 01926 000000');
      expect(await page.locator('header.masthead').innerText()).toContain(ORG);
      expect(await page.locator('footer').innerText()).toContain(ADDRESS);
      await imagesLoaded(page);
      await shot(page, 'press-release-page.png');
    } finally {
      await context.close();
    }
    expect(offHost).toEqual([]);
  });

  it('every link on the pages and in the feeds answers 2xx; the only links elsewhere are the website, mailto: and tel:', async () => {
    const base = r().baseUrl;
    const { context, page } = await newPage();
    const seen = new Set<string>();
    const external = new Set<string>();
    const queue = [`${base}/`, `${base}/press`, `${base}/press/`, `${base}/press/no-such-release`, `${base}/press.rss`, `${base}/press.atom`];
    const header = newsletterMail!.parsed!.headerLines.find((h) => h.key === 'list-unsubscribe')?.line ?? '';
    const unsubscribe = /<(http[^>]+\/u\/[^>]+)>/.exec(header)?.[1];
    expect(unsubscribe).toBeTruthy();
    queue.push(unsubscribe!);
    try {
      while (queue.length) {
        const url = queue.shift()!;
        if (seen.has(url)) continue;
        seen.add(url);
        const res = await fetch(url);
        const text = await res.text();
        // A page that says "not found" may answer 404; everything it links to must answer 2xx.
        if (!url.endsWith('/no-such-release')) expect(res.status, url).toBeGreaterThanOrEqual(200);
        if (!url.endsWith('/no-such-release')) expect(res.status, url).toBeLessThan(300);
        const type = res.headers.get('content-type') ?? '';
        let links: string[] = [];
        if (type.startsWith('text/html')) {
          await page.goto(url);
          expect(await page.locator('body').innerText(), `the organisation's name on ${url}`).toContain(ORG);
          links = await page.$$eval('a[href], link[href], img[src]', (els) => els.map((e) => (e as HTMLAnchorElement).href || (e as HTMLImageElement).src));
        } else if (/xml/.test(type)) {
          links = [...text.matchAll(/<link>([^<]+)<\/link>|href="([^"]+)"|<(?:guid|id)[^>]*>(http[^<]+)</g)].map((m) => (m[1] ?? m[2] ?? m[3] ?? '').replace(/&amp;/g, '&'));
        }
        for (const link of links) {
          const u = new URL(link, url);
          u.hash = '';
          if (u.origin === base) {
            if (!seen.has(u.href)) queue.push(u.href);
          } else external.add(u.href);
        }
      }
    } finally {
      await context.close();
    }
    // The pages, the three releases, both feeds, the logo, the unsubscribe page.
    expect([...seen].filter((u) => /\/press\/\d{4}-/.test(u))).toHaveLength(3);
    expect(seen.has(`${base}/organisation/logo`)).toBe(true);
    for (const e of external) expect(e, e).toMatch(/^(https:\/\/www\.example\.org\/|mailto:press@example\.org|tel:01926000000)/);
    expect(offHost).toEqual([]);
  });

  it('the newsletter email carries the masthead (logo, name) and a footer with the address and website, in both parts', async () => {
    const mail = newsletterMail!.parsed!;
    // Without MAIL_FROM, the sender's name is the organisation's, not "Crier".
    expect(mail.from?.value[0]?.name).toBe(ORG);
    const html = String(mail.html);
    expect(html).toContain(`>${ORG}</div>`);
    expect(html).toContain(`${r().baseUrl}/organisation/logo`);
    expect(html).toContain('1 Example Street, Warwick, CV34 0AA');
    expect(html).toContain(`href="${WEBSITE}"`);
    expect(mail.text).toContain(`--\n${ORG}\n${ADDRESS}\n${WEBSITE}\n`);
    const { context, page } = await newPage(720, 300);
    try {
      await page.setContent(html, { waitUntil: 'load' });
      expect(await page.locator('body').innerText()).toContain('Dear Amira Khan');
      await imagesLoaded(page);
      await shot(page, 'newsletter-email.png');
    } finally {
      await context.close();
    }
    expect(offHost).toEqual([]);
  });

  it('the press release email leads with the embargo line and the headline and ends with ENDS, notes to editors and the press contact', async () => {
    const mail = pressMail!.parsed!;
    expect(mail.subject).toMatch(new RegExp(`^EMBARGOED UNTIL 00:01 (GMT|BST) \\w{3} \\d{1,2} \\w+ \\d{4}: ${HEADLINE}$`));
    const text = mail.text ?? '';
    expect(text).toMatch(new RegExp(`^EMBARGOED UNTIL [^\\n]+\\n\\n${HEADLINE}\\n\\nThe Police and Crime Commissioner`));
    const order = ['fly-tipping', '\nENDS\n', 'Notes to editors', '1. Interviews with the Commissioner', 'Media enquiries: Press office · press@example.org · 01926 000000', `--\n${ORG}`];
    const at = order.map((s) => text.indexOf(s));
    expect(at.every((i) => i >= 0), `${JSON.stringify(at)}\n${text}`).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    const { context, page } = await newPage(720, 300);
    try {
      await page.setContent(String(mail.html), { waitUntil: 'load' });
      expect(await page.getByRole('heading', { level: 1 }).innerText()).toBe(HEADLINE);
      const body = await page.locator('body').innerText();
      expect(body).toContain('PRESS RELEASE');
      expect(body).toContain(ORG);
      await imagesLoaded(page);
      await shot(page, 'press-release-email.png');
    } finally {
      await context.close();
    }
    expect(offHost).toEqual([]);
  });
});
