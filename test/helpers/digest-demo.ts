import type { Redis } from 'ioredis';
import { publishRelease } from '../../channels/press/store.js';
import { saveNewCampaign } from '../../src/domain/campaigns.js';
import type { ObservationStore, ObservationInput } from '../../src/domain/observations.js';
import { periodOf, previousPeriod, type Period } from '../../src/domain/periods.js';

/** A media mention as the media collector (workers/collect/media.ts) keeps it, linked to a press release. */
export async function seedMention(redis: Redis, prefix: string, m: { id: string; title: string; link: string; tone: string; release: string; published: Date; collected: Date }): Promise<void> {
  await redis
    .multi()
    .hset(`${prefix}:media:mention:${m.id}`, { feed: 'https://news.example.org/rss', title: m.title, link: m.link, tone: m.tone, release: m.release, published_at: m.published.toISOString(), collected_at: m.collected.toISOString() })
    .zadd(`${prefix}:media:mentions`, m.published.getTime(), m.id)
    .exec();
}

/**
 * A plausible quarter of a PCC office's measures, for looking at the digest
 * (the screenshot in docs/): daily followers, weekly web and social figures,
 * mentions by tone, list sizes, monthly engagement, a quarterly consultation,
 * this week's campaigns and press releases. Deterministic (no randomness).
 */
export async function seedDemo(store: ObservationStore, redis: Redis, prefix: string, week: Period): Promise<void> {
  const zone = week.zone;
  const at = new Date(week.end.getTime() + 6 * 3600_000);
  const rows: ObservationInput[] = [];
  const wave = (i: number, amp: number) => Math.round(Math.sin(i * 1.3) * amp);
  for (let d = 0; d < 70; d++) {
    const day = periodOf('day', new Date(week.end.getTime() - (70 - d) * 86_400_000 + 3600_000), zone);
    rows.push({ measure: 'x.followers', period: day, value: 4210 + d * 6 + wave(d, 4), source: 'x', collectedAt: at });
    rows.push({ measure: 'mastodon.followers', period: day, value: 388 + Math.floor(d / 3), source: 'mastodon', collectedAt: at });
  }
  for (let i = 0; i < 9; i++) {
    const w = previousPeriod(week, 8 - i);
    rows.push({ measure: 'x.impressions', period: w, value: 18_400 + i * 900 + wave(i, 2500), source: 'x', collectedAt: at });
    rows.push({ measure: 'x.engagements', period: w, value: 610 + wave(i, 120) + i * 10, source: 'x', collectedAt: at });
    rows.push({ measure: 'mastodon.boosts', period: w, value: 40 + wave(i, 9), source: 'mastodon', collectedAt: at });
    rows.push({ measure: 'website.visitors', period: w, value: 3020 + i * 55 + wave(i, 160), source: 'website', collectedAt: at });
    rows.push({ measure: 'website.visits', period: w, value: 4100 + i * 70 + wave(i, 200), source: 'website', collectedAt: at });
    rows.push({ measure: 'website.pageviews', period: w, value: 11_900 + i * 150 + wave(i, 600), source: 'website', collectedAt: at });
    rows.push({ measure: 'website.bounce_rate', period: w, value: 48.2 - i * 0.6 + wave(i, 2), source: 'website', collectedAt: at });
    if (i !== 5) rows.push({ measure: 'website.mobile_share', period: w, value: 61 + wave(i, 3), source: 'website', collectedAt: at });
    for (const [tone, base] of [['positive', 4], ['neutral', 7], ['negative', 2]] as const) {
      rows.push({ measure: 'media.mentions', period: w, dimensions: { tone }, value: Math.max(0, base + wave(i + base, 2)), source: 'media', collectedAt: at });
    }
    rows.push({ measure: 'email.list_size', period: w, dimensions: { list: 'newsletter' }, value: 2480 + i * 31, source: 'email', collectedAt: at });
    rows.push({ measure: 'email.list_size', period: w, dimensions: { list: 'community' }, value: 910 + i * 12, source: 'email', collectedAt: at });
    rows.push({ measure: 'email.unsubscribed', period: w, value: 3 + (i % 3), source: 'email', collectedAt: at });
  }
  rows.push({ measure: 'email.delivered', period: week, value: 3361, source: 'email', collectedAt: at });
  rows.push({ measure: 'email.failed', period: week, value: 14, source: 'email', collectedAt: at });
  const month = periodOf('month', new Date(week.end.getTime() - 1), zone);
  for (let i = 0; i < 6; i++) {
    const m = previousPeriod(month, 5 - i);
    rows.push({ measure: 'engagement.events', period: m, value: 7 + (i % 3) + i, source: 'manual', collectedAt: at });
    rows.push({ measure: 'engagement.attendees', period: m, value: 160 + i * 22, source: 'manual', collectedAt: at });
  }
  const quarter = periodOf('quarter', new Date(week.end.getTime() - 1), zone);
  rows.push({ measure: 'consultation.margin_of_error', period: quarter, value: 4.4, source: 'derived', collectedAt: at });
  rows.push({ measure: 'consultation.margin_of_error', period: previousPeriod(quarter), value: 6.1, source: 'derived', collectedAt: at });
  rows.push({ measure: 'reference_groups.active_volunteers', period: quarter, value: 37, source: 'manual', collectedAt: at });
  await store.recordMany(rows);

  const tue = new Date(week.start.getTime() + 33 * 3600_000);
  const thu = new Date(week.start.getTime() + 81 * 3600_000);
  const news = await saveNewCampaign(redis, prefix, { title: 'November newsletter', kind: 'newsletter', sendAt: tue, timezone: zone, essential: false, channels: { email: { list: 'newsletter', subject: 's', body: 'b' } } }, 'sent', 'comms', tue);
  await redis.hset(`${prefix}:campaign:${news.id}:counts`, { 'email:total': '2728', 'email:sent': '2719', 'email:failed': '9', 'email:planned': '1' });
  const alert = await saveNewCampaign(redis, prefix, { title: 'Rugby: catalytic converter thefts', kind: 'community', sendAt: thu, timezone: zone, essential: false, channels: { community: { subject: 's', body: 'b' }, twitter: { text: 't' }, mastodon: { text: 't' } } }, 'sent', 'comms', thu);
  await redis.hset(`${prefix}:campaign:${alert.id}:counts`, { 'community:total': '642', 'community:sent': '642', 'community:planned': '1', 'twitter:total': '1', 'twitter:sent': '1', 'twitter:planned': '1', 'mastodon:total': '1', 'mastodon:sent': '1', 'mastodon:planned': '1' });
  const slug = `${thu.toISOString().slice(0, 10)}-commissioner-funds-new-rural-crime-team`;
  await publishRelease(redis, prefix, { campaignId: alert.id, slug, headline: 'Commissioner funds new rural crime team', bodyHtml: '<p>x</p>', bodyText: 'x', publishedAt: thu });
  const stories = [
    ['Rural crime team gets green light from commissioner', 'positive'],
    ['New officers to patrol Warwickshire farms', 'neutral'],
    ['Farmers welcome rural crime funding', 'positive'],
    ['Rural crime: is £400,000 enough?', 'neutral'],
  ] as const;
  for (const [i, [title, tone]] of stories.entries()) {
    await seedMention(redis, prefix, { id: `demo${i}`, title, link: `https://news.example.org/story-${i}`, tone, release: slug, published: new Date(thu.getTime() + (i + 1) * 3 * 3600_000), collected: at });
  }
  const fri = new Date(week.start.getTime() + 105 * 3600_000);
  await publishRelease(redis, prefix, { campaignId: 'cdemo2', slug: `${fri.toISOString().slice(0, 10)}-police-and-crime-plan-consultation-opens`, headline: 'Police and crime plan consultation opens', bodyHtml: '<p>x</p>', bodyText: 'x', publishedAt: fri });
}
