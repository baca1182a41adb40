import { writeFileSync } from 'node:fs';
import path from 'node:path';
import Parser from 'rss-parser';
import { afterEach, describe, expect, it } from 'vitest';
import { slugify } from '../channels/press/store.js';
import { importSubscribers } from '../src/domain/audience.js';
import { testConfig } from './helpers/context.js';
import { londonIn, startCrier, type TestCrier } from './helpers/crier.js';
import { startSmtpSink, type SmtpSink } from './helpers/smtp-sink.js';

/**
 * Press releases: the media list gets the release before the embargo, marked
 * EMBARGOED; the public feeds and the release page show nothing until the
 * embargo second, and show it from then on. Real clock, real queue: the
 * embargo is a few seconds ahead and the boundary is polled, not slept over.
 */

let crier: TestCrier | undefined;
let sink: SmtpSink | undefined;

afterEach(async () => {
  await crier?.close();
  await sink?.close();
  crier = undefined;
  sink = undefined;
});

async function start(): Promise<{ crier: TestCrier; sink: SmtpSink }> {
  sink = await startSmtpSink();
  crier = await startCrier(testConfig({ env: { SMTP_URL: sink.url } }), { server: true });
  const csv = path.join(crier.config.dataDir, 'media.csv');
  writeFileSync(csv, 'email,name,area,topics\ndesk@newsroom.example,News Desk,,\n');
  await importSubscribers(crier.handle.redis, crier.config.redis_prefix, csv, 'media', { rejectsDir: crier.config.dataDir });
  return { crier, sink };
}

interface Probe {
  /** When the answer arrived: the server's clock read happened before this. */
  at: number;
  rss: boolean;
  atom: boolean;
  page: boolean;
}

async function probe(baseUrl: string, headline: string, slug: string): Promise<Probe> {
  const [rss, atom, page] = await Promise.all([
    fetch(`${baseUrl}/press.rss`).then((r) => r.text()),
    fetch(`${baseUrl}/press.atom`).then((r) => r.text()),
    fetch(`${baseUrl}/press/${slug}`).then(async (r) => ({ status: r.status, text: await r.text() })),
  ]);
  return { at: Date.now(), rss: rss.includes(headline), atom: atom.includes(headline), page: page.status === 200 && page.text.includes(headline) };
}

const parser = new Parser();

describe('press release with an embargo', () => {
  it('emails the media list marked EMBARGOED before the embargo and publishes the feeds and page from the embargo second', async () => {
    const { crier, sink } = await start();
    const headline = 'New funding for youth diversion projects';
    const yaml = [
      'title: Youth funding release',
      'kind: press',
      `send_at: ${londonIn(1000)}`,
      'channels:',
      '  press:',
      `    headline: "${headline}"`,
      '    body: "The commissioner announced **new funding** today."',
      `    embargo_until: "${londonIn(4000)}"`,
      '    list: media',
      '',
    ].join('\n');
    const c = await crier.create(yaml);
    const embargo = new Date(String(c.channels.press!.embargo_until_iso));
    expect(embargo.getTime() % 1000).toBe(0);
    expect(embargo.getTime()).toBeGreaterThan(Date.now() + 2000);
    const slug = slugify(headline, embargo, crier.config.timezone);
    const base = crier.baseUrl!;

    const mail = (await sink.waitFor(1, 5000))[0]!;
    const arrived = Date.now();
    expect(arrived).toBeLessThan(embargo.getTime());
    expect(mail.to).toEqual(['desk@newsroom.example']);
    expect(mail.parsed?.subject).toMatch(/^EMBARGOED UNTIL \d{2}:\d{2}(:\d{2})? (GMT|BST) .*: New funding for youth diversion projects$/);
    expect(mail.parsed?.text).toContain('EMBARGOED UNTIL');
    expect(String(mail.parsed?.html)).toContain('EMBARGOED UNTIL');

    const probes: Probe[] = [];
    while (Date.now() < embargo.getTime() + 2000) {
      const p = await probe(base, headline, slug);
      probes.push(p);
      if (p.rss && p.atom && p.page) break;
      await new Promise((r) => setTimeout(r, 40));
    }
    const before = probes.filter((p) => p.at < embargo.getTime());
    expect(before.length).toBeGreaterThan(5);
    expect(before.some((p) => p.rss || p.atom || p.page)).toBe(false);
    for (const key of ['rss', 'atom', 'page'] as const) {
      const first = probes.find((p) => p[key]);
      expect(first, `${key} never showed the release`).toBeDefined();
      expect(first!.at).toBeGreaterThanOrEqual(embargo.getTime());
      expect(first!.at - embargo.getTime(), key).toBeLessThanOrEqual(1500);
    }

    const rss = await parser.parseString(await (await fetch(`${base}/press.rss`)).text());
    expect(rss.items).toHaveLength(1);
    expect(rss.items[0]).toMatchObject({ title: headline, link: `${crier.config.publicUrl}/press/${slug}` });
    // Dated at the embargo, or at the moment the publish job ran when that was a little later.
    const rssDate = new Date(rss.items[0]!.pubDate!).getTime();
    expect(rssDate).toBeGreaterThanOrEqual(embargo.getTime());
    expect(rssDate - embargo.getTime()).toBeLessThan(1500);
    const atom = await parser.parseString(await (await fetch(`${base}/press.atom`)).text());
    expect(atom.items).toHaveLength(1);
    expect(atom.items[0]).toMatchObject({ title: headline, link: `${crier.config.publicUrl}/press/${slug}` });
    const atomDate = new Date(atom.items[0]!.isoDate!).getTime();
    expect(atomDate).toBeGreaterThanOrEqual(embargo.getTime());
    expect(atomDate - embargo.getTime()).toBeLessThan(1500);

    const done = await crier.waitForStatus(c.id, ['sent', 'partially_failed', 'failed']);
    expect(done.status).toBe('sent');
    expect(sink.count).toBe(1);
  });

  it('without an embargo publishes at send time and the email carries no EMBARGOED marking', async () => {
    const { crier, sink } = await start();
    const headline = 'Commissioner visits rural community hub';
    const sendAt = londonIn(1000);
    const c = await crier.create(
      `title: Rural hub\nkind: press\nsend_at: ${sendAt}\nchannels:\n  press: { headline: "${headline}", body: "A visit to the hub.", list: media }\n`,
    );
    const mail = (await sink.waitFor(1, 5000))[0]!;
    expect(mail.parsed?.subject).toBe(headline);
    expect(mail.parsed?.text).not.toContain('EMBARGOED');
    const done = await crier.waitForStatus(c.id, ['sent', 'partially_failed', 'failed']);
    expect(done.status).toBe('sent');

    const rss = await parser.parseString(await (await fetch(`${crier.baseUrl!}/press.rss`)).text());
    expect(rss.items.map((i) => i.title)).toEqual([headline]);
    const published = new Date(rss.items[0]!.pubDate!).getTime();
    expect(published).toBeGreaterThanOrEqual(c.sendAt.getTime() - 1000);
    expect(published - c.sendAt.getTime()).toBeLessThan(3000);
    const slug = rss.items[0]!.link!.split('/press/')[1]!;
    const page = await fetch(`${crier.baseUrl!}/press/${slug}`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain(headline);
  });
});
