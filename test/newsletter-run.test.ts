import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishRelease } from '../channels/press/store.js';
import type { Config } from '../src/config.js';
import { findCampaign } from '../src/domain/campaigns.js';
import { UserError } from '../src/errors.js';
import { monthOf, runNewsletter, templatePath as templatePathOf, type NewsletterDeps } from '../src/newsletter.js';
import { NEWSLETTER_QUEUE, newsletterJob } from '../workers/schedules.js';
import { testConfig, silentLogger } from './helpers/context.js';
import { startCrier, type TestCrier } from './helpers/crier.js';
import { runCli } from './helpers/cli-run.js';
import { completedJob } from './helpers/jobs.js';
import { rssWith, startFeedServer, type FeedServer } from './helpers/feed-server.js';

/**
 * The monthly newsletter run against a local website (the real-world feeds in
 * test/fixtures/feeds, served on 127.0.0.1) and published press releases
 * in the private Redis, on a fake clock.
 */

let feeds: FeedServer;
beforeAll(async () => {
  feeds = await startFeedServer();
});
afterAll(async () => {
  await feeds?.close();
});

async function crierWith(feed: string, extra = ''): Promise<{ crier: TestCrier; deps: NewsletterDeps; clock: { now: Date }; sleeps: number[] }> {
  const clock = { now: new Date('2018-02-06T09:00:00Z') };
  const config = testConfig({ yaml: `organisation: Office of the PCC\nnewsletter:\n  feed_url: ${feeds.base}/${feed}\n  template: ${path.resolve('config/templates/newsletter.md')}\n  feed_retry_ms: 10\n${extra}` });
  const crier = await startCrier(config, { workers: false, now: () => clock.now });
  const sleeps: number[] = [];
  const deps: NewsletterDeps = {
    config,
    redis: crier.handle.redis,
    scheduler: crier.scheduler,
    log: silentLogger(),
    now: () => clock.now,
    sleep: async (ms) => void sleeps.push(ms),
  };
  return { crier, deps, clock, sleeps };
}

async function release(config: Config, crier: TestCrier, headline: string, at: string): Promise<void> {
  const slug = `${at.slice(0, 10)}-${headline.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  await publishRelease(crier.handle.redis, config.redis_prefix, { campaignId: `c${slug.replace(/[^a-z0-9]/g, '')}`.slice(0, 30), slug, headline, bodyHtml: '<p>x</p>', bodyText: 'x', publishedAt: new Date(at) });
}

const body = (c: { channels: Record<string, Record<string, unknown>> }) => String(c.channels.email?.body ?? '');

describe('newsletter run', () => {
  it("first Tuesday of February 2018: the Guardian feed's January stories and January's press releases, awaiting approval", async () => {
    const { crier, deps, clock } = await crierWith('guardian.rss');
    try {
      await release(deps.config, crier, 'New rural crime team', '2018-01-15T10:00:00Z');
      await release(deps.config, crier, 'Old news', '2017-12-20T10:00:00Z');
      const r = await runNewsletter(deps);
      expect(r.created).toBe(true);
      expect(r.month).toBe('2018-02');
      expect(r.since.toISOString()).toBe('2018-01-01T00:00:00.000Z');
      expect(r.news).toBe(20); // max_items of the feed's 55 January stories
      expect(r.pressReleases).toBe(1);
      expect(r.missing).toBe('');
      const c = r.campaign;
      expect(c.title).toBe('February 2018 newsletter');
      expect(c.status).toBe('awaiting_approval');
      expect(c.author).toBe('newsletter-run');
      expect(c.channels.email?.subject).toBe('Office of the PCC newsletter: February 2018');
      expect(c.channels.email?.list).toBe('newsletter');
      const md = body(c);
      expect(md).toContain('Dear {{name}},');
      expect(md).toContain('- [Super blue blood moon - in pictures](https://www.theguardian.com/science/gallery/2018/jan/31/super-blue-blood-moon-in-pictures) (31 January)');
      expect(md).toContain(`[New rural crime team](${deps.config.publicUrl}/press/2018-01-15-new-rural-crime-team) (15 January)`);
      expect(md).not.toContain('Old news');
      expect(md).not.toMatch(/<script|\{\{news\}\}/);

      // The same month again: the same draft, nothing new.
      const again = await runNewsletter(deps);
      expect(again.created).toBe(false);
      expect(again.campaign.id).toBe(c.id);

      // Across the month boundary: March's run covers only what came after February's.
      clock.now = new Date('2018-03-06T09:00:00Z');
      await release(deps.config, crier, 'Surgery dates', '2018-02-20T10:00:00Z');
      const march = await runNewsletter(deps);
      expect(march.month).toBe('2018-03');
      expect(march.since.toISOString()).toBe('2018-02-06T09:00:00.000Z');
      expect(march.news).toBe(0);
      expect(body(march.campaign)).toContain('No new stories on our website since the last newsletter');
      expect(body(march.campaign)).toContain('[Surgery dates]');
      expect(body(march.campaign)).not.toContain('New rural crime team');

      // Approved by someone other than the run: scheduled.
      const approved = await crier.scheduler.approve(c.id, 'alice');
      expect(approved.status).toBe('scheduled');
    } finally {
      await crier.close();
    }
  });

  it('the month is read in Europe/London: late on the last day of a month in BST or GMT', () => {
    expect(monthOf(new Date('2026-03-31T23:30:00Z'), 'Europe/London')).toBe('2026-04'); // 00:30 BST, 1 April
    expect(monthOf(new Date('2026-10-31T23:30:00Z'), 'Europe/London')).toBe('2026-10'); // 23:30 GMT
  });

  it('a feed in ISO-8859-1 (declared only in its XML prolog) is decoded', async () => {
    const { crier, deps, clock } = await crierWith('encoding.rss');
    try {
      clock.now = new Date('2018-01-09T09:00:00Z');
      const r = await runNewsletter(deps);
      expect(body(r.campaign)).toContain('Mãe de utente é a nova presidente da Raríssimas');
    } finally {
      await crier.close();
    }
  });

  it('a feed that is down: retried with backoff, then drafted with the press releases and a note of what is missing', async () => {
    const { crier, deps, sleeps } = await crierWith('guardian.rss');
    try {
      await release(deps.config, crier, 'Knife amnesty', '2018-01-22T10:00:00Z');
      feeds.failNext(2);
      const recovered = await runNewsletter(deps, { month: '2018-01' });
      expect(sleeps).toEqual([10, 20]);
      expect(recovered.news).toBe(20);
      expect(recovered.missing).toBe('');

      feeds.failNext(3);
      const r = await runNewsletter(deps, { month: '2018-02' });
      expect(r.created).toBe(true);
      expect(r.missing).toContain('could not be read: HTTP 503');
      expect(r.missing).toContain('missing from this draft');
      expect((await findCampaign(crier.handle.redis, deps.config.redis_prefix, r.campaign.id))?.note).toBe(r.missing);
      expect(body(r.campaign)).toContain('No website news this time');
    } finally {
      await crier.close();
    }
  });

  it('the scheduled run on BullMQ: each try that finds the feed down fails the job and is retried; the last try drafts without it', async () => {
    const { crier, deps } = await crierWith('down.rss', '  feed_attempts: 3\n');
    try {
      const queue = crier.scheduler.queue(NEWSLETTER_QUEUE);
      const { Worker } = await import('bullmq');
      const worker = new Worker(NEWSLETTER_QUEUE, (job) => newsletterJob(job, deps), { connection: crier.handle.options, prefix: deps.config.redis_prefix });
      try {
        feeds.hits.delete('/down.rss');
        const job = await queue.add('newsletter', {}, { attempts: 3, backoff: { type: 'fixed', delay: 20 } });
        const j = await completedJob(queue, job.id!);
        const value = j.returnvalue as { campaign: string; missing: string };
        expect(value.missing).toContain('HTTP 404');
        expect(j.attemptsMade).toBe(3);
        expect(feeds.hits.get('/down.rss')).toBe(3);
      } finally {
        await worker.close();
      }
    } finally {
      await crier.close();
    }
  });

  it('a template with an unknown placeholder: refused, naming the file and line, before anything is drafted', async () => {
    const { crier, deps } = await crierWith('guardian.rss');
    try {
      const file = path.join(deps.config.dataDir, 'bad-template.md');
      writeFileSync(file, '# {{month}}\n\n{{news}}\n{{weather}}\n');
      const bad = { ...deps, config: { ...deps.config, newsletter: { ...deps.config.newsletter, template: file } } };
      const err = await runNewsletter(bad).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      expect((err as UserError).where).toMatchObject({ file, line: 4 });
      expect((err as UserError).message).toContain('{{weather}}');
    } finally {
      await crier.close();
    }
  });
});

describe('configuration and schedule', () => {
  it('config/crier.example.yaml loads; defaults are the first Tuesday 09:00 and Monday 08:00; a bad cron names its key', async () => {
    const { loadConfig } = await import('../src/config.js');
    const dir = path.dirname(testConfig().configFile!);
    const example = loadConfig({ CRIER_CONFIG: path.resolve('config/crier.example.yaml'), CRIER_DATA_DIR: dir }, process.cwd());
    expect([example.newsletter.cron, example.digest.cron, example.newsletter.approval]).toEqual(['0 9 * * 2#1', '0 8 * * 1', true]);
    expect(templatePathOf(example)).toBe(path.resolve('config/templates/newsletter.md'));
    const file = path.join(dir, 'bad-cron.yaml');
    writeFileSync(file, 'newsletter:\n  cron: "0 9 1-7 * 2"\n');
    let err: unknown;
    try {
      loadConfig({ CRIER_CONFIG: file, CRIER_DATA_DIR: dir }, dir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).where).toMatchObject({ file, field: 'newsletter.cron' });
    expect((err as UserError).message).toContain('2#1');
  });

  it('with a feed configured, the worker registers the monthly job scheduler; without, it removes it', async () => {
    const { registerSchedules } = await import('../workers/schedules.js');
    const { crier, deps } = await crierWith('guardian.rss');
    try {
      const queue = crier.scheduler.queue(NEWSLETTER_QUEUE);
      await registerSchedules(deps.config, [NEWSLETTER_QUEUE], () => queue);
      const s = await queue.getJobScheduler('newsletter-monthly');
      expect([s?.pattern, s?.tz]).toEqual(['0 9 * * 2#1', 'Europe/London']);
      const off = { ...deps.config, newsletter: { ...deps.config.newsletter, enabled: false } };
      await registerSchedules(off, [NEWSLETTER_QUEUE], () => queue);
      expect(await queue.getJobScheduler('newsletter-monthly')).toBeUndefined();
    } finally {
      await crier.close();
    }
  });
});

describe('crier newsletter run', () => {
  it('drafts from a live feed and prints the campaign id last', async () => {
    feeds.set('/fresh.rss', rssWith([{ title: 'Rural crime week of action', link: 'https://www.example.org/news/rural', ageMs: 3_600_000 }]));
    const config = testConfig({ yaml: `newsletter:\n  feed_url: ${feeds.base}/fresh.rss\n  template: ${path.resolve('config/templates/newsletter.md')}\n` });
    const run = (args: string[]) => runCli(config, args);
    const r = await run(['newsletter', 'run']);
    expect(r.code, r.err).toBe(0);
    const id = r.out.trim().split('\n').at(-1)!;
    expect(id).toMatch(/^c[a-z0-9]+$/);
    expect(r.out).toContain('1 website story and 0 press releases');
    expect(r.out).toContain('awaiting approval');
    const show = await run(['campaign', 'show', id, '--json']);
    expect(JSON.parse(show.out)).toMatchObject({ id, kind: 'newsletter', status: 'awaiting_approval' });
    const bad = await run(['newsletter', 'run', '--month', '2026-13']);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('--month');
  });
});
