import { markdownToHtml, markdownToText } from '../channels/email/markdown.js';
import { parseNotes, releaseTail } from '../channels/press/release.js';
import { publishRelease, slugify } from '../channels/press/store.js';
import type { Config } from '../src/config.js';
import type { Campaign } from '../src/domain/campaigns.js';
import type { RedisHandle } from '../src/redis/connection.js';
import type { DeliverDeps } from './deliver.js';

export type SpecialDelivery = (c: Campaign, deps: DeliverDeps) => Promise<void>;

/**
 * Deliveries that are not a message to someone. `publish`: a press release
 * goes to the public feeds at its embargo time (the job is delayed until
 * then); it is dated at the embargo instant, and the feeds never show an entry
 * dated in the future, so it cannot appear a second early.
 */
export function specialDeliveries(config: Config, handle: RedisHandle): Record<string, SpecialDelivery> {
  return {
    async publish(c, deps) {
      const content = c.channels.press ?? {};
      const headline = String(content.headline ?? c.title);
      // The published release ends as the emailed one does: ENDS, notes to editors, media enquiries.
      const body = `${String(content.body ?? '')}${releaseTail(parseNotes(content.notes), config.org)}`;
      const embargo = typeof content.embargo_until_iso === 'string' ? new Date(content.embargo_until_iso) : undefined;
      const now = deps.now();
      const publishedAt = embargo && embargo > now ? embargo : now;
      await publishRelease(handle.redis, config.redis_prefix, {
        campaignId: c.id,
        slug: slugify(headline, publishedAt, config.timezone),
        headline,
        bodyHtml: markdownToHtml(body, undefined),
        bodyText: markdownToText(body, undefined),
        publishedAt,
      });
    },
  };
}
