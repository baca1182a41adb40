import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishRelease } from '../channels/press/store.js';
import type { Config } from '../src/config.js';
import { saveNewCampaign } from '../src/domain/campaigns.js';
import { ObservationStore } from '../src/domain/observations.js';
import { parsePeriod } from '../src/domain/periods.js';
import { buildDigest, weekBefore, type Digest, type MeasureRow } from '../src/digest/model.js';
import { composeDigest, sendDigest, type DigestDeps } from '../src/digest/send.js';
import { catalogueFor } from '../src/metrics-config.js';
import { connectRedis, type RedisHandle } from '../src/redis/connection.js';
import { testConfig, silentLogger } from './helpers/context.js';
import { runCli } from './helpers/cli-run.js';
import { seedMention } from './helpers/digest-demo.js';
import { completedJob } from './helpers/jobs.js';
import { startSmtpSink, type SmtpSink } from './helpers/smtp-sink.js';

/**
 * The weekly digest from a seeded observations dataset (private Redis):
 * numbers equal the data, week boundaries in Europe/London (including the
 * weeks the clocks change), "no data", both parts, every cid: attached, and
 * once per week per recipient through a real SMTP server.
 */

const ZONE = 'Europe/London';
const W48 = parsePeriod('2026-W48', ZONE); // Mon 23 – Sun 29 Nov 2026
const collected = new Date('2026-11-30T06:00:00Z');
const YAML = `organisation: Office of the Police and Crime Commissioner
digest:
  recipients: [comms@example.org, pcc@example.org]
metrics:
  targets:
    x.followers: 1500
    website.visits: 4000
    media.mentions: 8
`;

let sink: SmtpSink;
let config: Config;
let handle: RedisHandle;
let store: ObservationStore;
let deps: DigestDeps;

/** The seeded dataset: day-kept followers, week-kept visits and impressions, tone-broken mentions, a rollup-none measure for W48 only. */
async function seed(): Promise<void> {
  // x.followers, daily (rollup last): 1000 + day index; W48's Sunday is day 62 of the 63 seeded.
  const start = new Date('2026-09-28T12:00:00Z'); // Monday of W40
  for (let i = 0; i < 63; i++) {
    const day = new Date(start.getTime() + i * 86_400_000).toISOString().slice(0, 10);
    await store.record({ measure: 'x.followers', period: day, value: 1000 + i, source: 'x', collectedAt: collected });
  }
  // website.visits per week: W41..W48, W45 missing.
  for (const [w, v] of [[41, 3000], [42, 3100], [43, 3200], [44, 3300], [46, 3500], [47, 3600], [48, 3900]] as const) {
    await store.record({ measure: 'website.visits', period: `2026-W${w}`, value: v, source: 'website', collectedAt: collected });
  }
  // website.visitors (rollup none): only this week.
  await store.record({ measure: 'website.visitors', period: '2026-W48', value: 2100, source: 'website', collectedAt: collected });
  // media.mentions by tone: this week 3 + 5 + 1 = 9, last week 4 + 6 = 10.
  for (const [w, tone, v] of [[48, 'positive', 3], [48, 'neutral', 5], [48, 'negative', 1], [47, 'positive', 4], [47, 'neutral', 6]] as const) {
    await store.record({ measure: 'media.mentions', period: `2026-W${w}`, dimensions: { tone }, value: v, source: 'media', collectedAt: collected });
  }
  // Manual monthly measure: shown for November against October.
  await store.record({ measure: 'engagement.events', period: '2026-11', value: 12, source: 'manual', collectedAt: collected });
  await store.record({ measure: 'engagement.events', period: '2026-10', value: 9, source: 'manual', collectedAt: collected });
  // The week's campaign and press release, with coverage linked to the release.
  const c = await saveNewCampaign(handle.redis, config.redis_prefix, { title: 'November newsletter', kind: 'newsletter', sendAt: new Date('2026-11-24T09:00:00Z'), timezone: ZONE, essential: false, channels: { email: { list: 'newsletter', subject: 's', body: 'b' } } }, 'sent', 'alice', new Date('2026-11-20T09:00:00Z'));
  await handle.redis.hset(`${config.redis_prefix}:campaign:${c.id}:counts`, { 'email:total': '1250', 'email:sent': '1247', 'email:failed': '3', 'email:planned': '1' });
  await publishRelease(handle.redis, config.redis_prefix, { campaignId: 'cpress1', slug: '2026-11-25-rural-crime-team', headline: 'New rural crime team', bodyHtml: '<p>x</p>', bodyText: 'x', publishedAt: new Date('2026-11-25T10:00:00Z') });
  for (const [i, tone] of ['positive', 'positive', 'neutral', 'negative'].entries()) {
    await seedMention(handle.redis, config.redis_prefix, { id: `m${i}`, title: `Rural crime story ${i}`, link: `https://news.example.org/${i}`, tone, release: '2026-11-25-rural-crime-team', published: new Date(`2026-11-2${6 + i}T12:00:00Z`), collected });
  }
  // Linked to another release, and one before the week: neither counts here.
  await seedMention(handle.redis, config.redis_prefix, { id: 'other', title: 'Other', link: 'https://news.example.org/o', tone: 'neutral', release: '2026-11-01-other', published: new Date('2026-11-26T12:00:00Z'), collected });
}

beforeAll(async () => {
  sink = await startSmtpSink();
  config = testConfig({ env: { SMTP_URL: sink.url, MAIL_FROM: 'Crier <crier@example.org>' }, yaml: YAML });
  handle = await connectRedis(config, silentLogger());
  store = new ObservationStore(handle.redis, config.redis_prefix, catalogueFor(config.metrics), { zone: ZONE });
  deps = { config, redis: handle.redis, log: silentLogger(), now: () => new Date('2026-11-30T08:00:00Z') };
  await seed();
});

afterAll(async () => {
  await handle?.close();
  await sink?.close();
});

async function digestFor(week = W48): Promise<Digest> {
  return buildDigest({ store, catalogue: catalogueFor(config.metrics), redis: handle.redis, prefix: config.redis_prefix, publicUrl: config.publicUrl, zone: ZONE, now: deps.now() }, week);
}

function row(d: Digest, name: string): MeasureRow {
  const r = d.headings.flatMap((h) => h.rows).find((x) => x.measure.name === name);
  if (!r) throw new Error(`no row for ${name}`);
  return r;
}

describe('digest numbers', () => {
  it('equal the data: last reading, weekly values, tone total, targets, trend with a gap', async () => {
    const d = await digestFor();
    expect(d.headings.map((h) => h.heading)).toEqual(expect.arrayContaining(['Social media growth', 'Website growth', 'Media coverage', 'Direct engagement']));
    const followers = row(d, 'x.followers');
    expect(followers.current?.value).toBe(1062); // Sunday 29 Nov
    expect(followers.last?.value).toBe(1055); // Sunday 22 Nov
    expect(followers.status).toBe('off track'); // 1062 is more than 10% short of 1500
    expect(followers.current?.sources).toEqual(['x']);
    expect(followers.current?.collectedAt.toISOString()).toBe(collected.toISOString());
    expect(followers.trend).toEqual([1013, 1020, 1027, 1034, 1041, 1048, 1055, 1062]);
    const visits = row(d, 'website.visits');
    expect(visits.current?.value).toBe(3900);
    expect(visits.status).toBe('at risk'); // within 10% of 4000
    expect(visits.trend).toEqual([3000, 3100, 3200, 3300, undefined, 3500, 3600, 3900]);
    const mentions = row(d, 'media.mentions');
    expect(mentions.current?.value).toBe(9);
    expect(mentions.last?.value).toBe(10);
    expect(mentions.status).toBe('on track');
    const visitors = row(d, 'website.visitors');
    expect(visitors.current?.value).toBe(2100);
    expect(visitors.last).toBeUndefined();
    expect(row(d, 'website.bounce_rate').current).toBeUndefined();
    const events = row(d, 'engagement.events');
    expect(events.period.key).toBe('2026-11');
    expect([events.current?.value, events.last?.value]).toEqual([12, 9]);
    expect(d.campaigns.map((c) => [c.title, c.channels.email?.sent, c.channels.email?.failed])).toEqual([['November newsletter', 1247, 3]]);
    expect(d.releases.map((r) => [r.headline, r.mentions.length])).toEqual([['New rural crime team', 4]]);
  });

  it('week boundaries are Europe/London midnights, including the weeks the clocks change', async () => {
    // W43 2026 holds Sunday 25 October, when the clocks go back: 7 × 24 + 1 hours.
    const w43 = weekBefore(new Date('2026-10-26T08:00:00Z'), ZONE);
    expect(w43.key).toBe('2026-W43');
    expect([w43.start.toISOString(), w43.end.toISOString()]).toEqual(['2026-10-18T23:00:00.000Z', '2026-10-26T00:00:00.000Z']);
    // W12 2027 (22–28 March) holds Sunday 28 March, when they go forward: 7 × 24 − 1 hours.
    const w12 = parsePeriod('2027-W12', ZONE);
    expect((w12.end.getTime() - w12.start.getTime()) / 3_600_000).toBe(167);
    expect((w43.end.getTime() - w43.start.getTime()) / 3_600_000).toBe(169);
    // Sum rollup over the clock-change week: each day's figure counted once, the neighbours' not at all.
    const days = ['2026-10-18', '2026-10-19', '2026-10-20', '2026-10-21', '2026-10-22', '2026-10-23', '2026-10-24', '2026-10-25', '2026-10-26'];
    for (const [i, day] of days.entries()) await store.record({ measure: 'x.impressions', period: day, value: 100 + i, source: 'x', collectedAt: collected });
    const d = await digestFor(w43);
    expect(row(d, 'x.impressions').current?.value).toBe(101 + 102 + 103 + 104 + 105 + 106 + 107);
    expect(row(d, 'x.followers').current?.value).toBe(1027); // Sunday 25 Oct: day 27 of the seed
  });
});

describe('the digest email', () => {
  it('HTML and text parts carry every number; "no data" is never 0; every cid: is an attached PNG', async () => {
    const r = await composeDigest(deps, W48);
    expect(r.subject).toBe('Measures of success: week 2026-W48');
    for (const part of [r.html, r.text]) {
      expect(part).toContain('1,062');
      expect(part).toContain('1,055');
      expect(part).toContain('▲ +7 (+0.7%)');
      expect(part).toContain('3,900');
      expect(part).toContain('▼ −1 (−10.0%)'); // media mentions 10 → 9
      expect(part).toContain('off track');
      expect(part).toContain('at risk');
      expect(part).toContain('on track');
      expect(part).toContain('no data');
      expect(part).toContain('source: x, collected 30 Nov 06:00');
      expect(part).toContain('November newsletter');
      expect(part).toContain('1,247 sent, 3 failed');
      expect(part).toContain('New rural crime team');
      expect(part).toContain('4 media mentions (2 positive, 1 neutral, 1 negative)');
      expect(part).toContain('Rural crime story 3');
    }
    expect(r.text).toContain('- Website bounce rate: no data (none in the last 8 periods)');
    expect(r.html).toMatch(/<i>no data<\/i> in the last 8 periods: [^<]*Website bounce rate/);
    expect(r.text).toContain('- Website visitors: 2,100 (last week: no data)');
    expect(r.text).toContain('trend, oldest first: 3,000, 3,100, 3,200, 3,300, no data, 3,500, 3,600, 3,900');
    expect(r.html).toContain('<b>Website visits</b>: 3,000 · 3,100 · 3,200 · 3,300 · no data · 3,500 · 3,600 · 3,900');
    expect(r.html).not.toContain('<svg');
    const cids = [...r.html.matchAll(/src="cid:([^"]+)"/g)].map((m) => m[1]);
    expect(cids.length).toBeGreaterThan(3);
    expect(new Set(r.images.map((i) => i.cid))).toEqual(new Set(cids));
    expect(cids).not.toContain('trend-website.bounce_rate@crier');
  });

  it('sent once per week per recipient through a real SMTP server; --force sends again', async () => {
    const first = await sendDigest(deps, W48);
    expect(first.sent.sort()).toEqual(['comms@example.org', 'pcc@example.org']);
    const msgs = await sink.waitFor(2);
    const m = msgs[0]!;
    expect(m.raw.toString()).toMatch(/Content-Type: multipart\/related/i);
    const parsed = m.parsed!;
    expect(parsed.subject).toBe('Measures of success: week 2026-W48');
    expect(parsed.text).toContain('X followers: 1,062');
    const html = String(parsed.html);
    const cids = [...html.matchAll(/src="cid:([^"]+)"/g)].map((x) => x[1]);
    const attached = new Map(parsed.attachments.map((a) => [a.cid, a]));
    for (const cid of cids) {
      const a = attached.get(cid!);
      expect(a, cid).toBeDefined();
      expect(a!.contentType).toBe('image/png');
      expect(a!.content.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    }
    // A retry, a restart, a second --send: nobody gets it twice.
    const again = await sendDigest(deps, W48);
    expect(again.sent).toEqual([]);
    expect(again.skipped.sort()).toEqual(['comms@example.org', 'pcc@example.org']);
    expect(sink.count).toBe(2);
    // Another week is another digest.
    const next = await sendDigest(deps, parsePeriod('2026-W47', ZONE));
    expect(next.sent).toHaveLength(2);
    const forced = await sendDigest(deps, W48, { force: true });
    expect(forced.sent).toHaveLength(2);
    await sink.waitFor(6);
    expect(sink.count).toBe(6);
  });
});

describe('the weekly job', () => {
  it('Monday 08:00 Europe/London on a BullMQ job scheduler; a run mails last week once', async () => {
    const { DIGEST_QUEUE, DIGEST_SCHEDULER_ID, digestJob, registerSchedules } = await import('../workers/schedules.js');
    const { Queue, Worker } = await import('bullmq');
    const { nextOccurrence } = await import('../src/domain/recurrence.js');
    const queue = new Queue(DIGEST_QUEUE, { connection: handle.options, prefix: config.redis_prefix });
    try {
      await registerSchedules(config, [DIGEST_QUEUE], () => queue);
      const s = await queue.getJobScheduler(DIGEST_SCHEDULER_ID);
      expect([s?.pattern, s?.tz]).toEqual(['0 8 * * 1', ZONE]);
      // 08:00 BST before the clocks go back, 08:00 GMT after.
      expect(nextOccurrence('0 8 * * 1', ZONE, new Date('2026-10-13T00:00:00Z'))?.toISOString()).toBe('2026-10-19T07:00:00.000Z');
      expect(nextOccurrence('0 8 * * 1', ZONE, new Date('2026-10-20T00:00:00Z'))?.toISOString()).toBe('2026-10-26T08:00:00.000Z');
      await queue.removeJobScheduler(DIGEST_SCHEDULER_ID);

      const jobDeps = { ...deps, now: () => new Date('2026-11-09T08:00:00Z') }; // reports W45
      const worker = new Worker(DIGEST_QUEUE, (job) => digestJob(job, jobDeps), { connection: handle.options, prefix: config.redis_prefix });
      try {
        const before = sink.count;
        const results: unknown[] = [];
        for (let i = 0; i < 2; i++) {
          const job = await queue.add('digest', {});
          results.push((await completedJob(queue, job.id!)).returnvalue);
        }
        expect(results).toEqual([
          { week: '2026-W45', sent: 2, skipped: 0, failed: 0 },
          { week: '2026-W45', sent: 0, skipped: 2, failed: 0 },
        ]);
        expect(sink.count).toBe(before + 2);
      } finally {
        await worker.close();
      }
    } finally {
      await queue.close();
    }
  });
});

describe('crier digest', () => {
  const run = (args: string[]) => runCli(config, ['digest', ...args], { SMTP_URL: sink.url });

  it('--preview writes the HTML (pictures inline) and the text; --send twice reaches each recipient once', async () => {
    const file = path.join(config.dataDir, 'digest.html');
    const p = await run(['--week', '2026-W48', '--preview', file]);
    expect(p.code, p.err).toBe(0);
    const html = readFileSync(file, 'utf8');
    expect(html).toContain('data:image/png;base64,');
    expect(html).not.toContain('cid:');
    expect(readFileSync(file.replace(/\.html$/, '.txt'), 'utf8')).toContain('X followers: 1,062');
    const before = sink.count;
    const s1 = await run(['--week', '2026-W46', '--send']);
    expect(s1.code, s1.err).toBe(0);
    expect(s1.out).toContain('digest 2026-W46: sent to 2');
    const s2 = await run(['--week', '2026-W46', '--send']);
    expect(s2.out).toContain('sent to 0, already had it 2');
    expect(sink.count).toBe(before + 2);
    const bad = await run(['--week', '2026-48', '--send']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^crier: .*--week.*YYYY-Www/);
    const neither = await run([]);
    expect(neither.code).toBe(1);
  });
});
