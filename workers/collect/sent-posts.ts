import type { Redis } from 'ioredis';
import { listCampaigns, sentIds } from '../../src/domain/campaigns.js';

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
  for (const c of await listCampaigns(redis, prefix, limit)) {
    if (!(channel in c.channels) || c.sendAt < since || c.sendAt > until) continue;
    for (const [k, id] of Object.entries(await sentIds(redis, prefix, c.id))) {
      if (k.startsWith(`${channel}:`) && id) out.push({ campaignId: c.id, postId: id, sentAt: c.sendAt });
    }
  }
  return out;
}
