import type { Redis } from 'ioredis';
import { listCampaigns, sentIds } from '../../src/domain/campaigns.js';
import type { ObservationInput } from '../../src/domain/observations.js';
import { periodOf } from '../../src/domain/periods.js';

/** A post Crier sent on a social channel, found from the campaign's delivery records. */
export interface SentPost {
  campaignId: string;
  /** The network's id for the post (the first post of a thread). */
  postId: string;
  /** When the campaign was due to send: the post went out at or just after it. */
  sentAt: Date;
}

/**
 * The posts a channel (`twitter`, `mastodon`, …) sent for campaigns due since
 * `since`, newest campaign first. Reads the ids the deliver worker kept
 * (`<channel>:-` → post id) — the post ids Crier stores for collectors.
 */
export async function sentPosts(redis: Redis, prefix: string, channel: string, since: Date, until: Date, limit = 10_000): Promise<SentPost[]> {
  const out: SentPost[] = [];
  const campaigns = (await listCampaigns(redis, prefix, limit)).filter((c) => channel in c.channels && c.sendAt >= since && c.sendAt <= until);
  // One round trip for all of them (the connection pipelines concurrent commands).
  const ids = await Promise.all(campaigns.map((c) => sentIds(redis, prefix, c.id)));
  campaigns.forEach((c, i) => {
    for (const [k, id] of Object.entries(ids[i]!)) {
      if (k.startsWith(`${channel}:`) && id) out.push({ campaignId: c.id, postId: id, sentAt: c.sendAt });
    }
  });
  return out;
}

/** One post's counts read this run, by measure name (undefined = the network did not report it). */
export interface PostReading {
  post: SentPost;
  values: Readonly<Record<string, number | undefined>>;
}

/**
 * Observations from one run's readings of sent posts, the same way for every
 * network: per post (subject `<network>:<id>`), the day of collection, its
 * lifetime counts so far; per week, the totals so far of the posts sent in
 * that week — only for weeks wholly inside the window read (`windowStart`),
 * so a week half outside it is never overwritten with a partial sum.
 */
export function postObservations(opts: {
  network: string;
  source: string;
  readings: readonly PostReading[];
  now: Date;
  zone: string;
  windowStart: Date;
}): ObservationInput[] {
  const today = periodOf('day', opts.now, opts.zone);
  const out: ObservationInput[] = [];
  const weekly = new Map<string, Map<string, number>>();
  for (const { post, values } of opts.readings) {
    const meta = { campaign: post.campaignId };
    const week = periodOf('week', post.sentAt, opts.zone);
    const inWindow = week.start >= opts.windowStart;
    for (const [measure, value] of Object.entries(values)) {
      if (value === undefined) continue;
      out.push({ measure, subject: `${opts.network}:${post.postId}`, period: today, value, source: opts.source, collectedAt: opts.now, meta });
      if (!inWindow) continue;
      const sums = weekly.get(week.key) ?? new Map<string, number>();
      sums.set(measure, (sums.get(measure) ?? 0) + value);
      weekly.set(week.key, sums);
    }
  }
  for (const [week, sums] of weekly) {
    for (const [measure, value] of sums) out.push({ measure, period: week, value, source: opts.source, collectedAt: opts.now });
  }
  return out;
}
