import type { Campaign } from './campaigns.js';

/**
 * An embargo binds the whole campaign, not just its press channel: a campaign
 * that carries an embargoed press release publishes nothing before the
 * embargo instant. Only the media list's email (the press channel's
 * deliveries, marked EMBARGOED) goes at send_at; every public channel (X,
 * Mastodon, webhook, newsletter and community email) and the release's
 * publication to the feeds wait for the embargo.
 */

/** The campaign's embargo instant, or undefined when it carries no embargoed release. */
export function campaignEmbargo(c: Pick<Campaign, 'channels'>): Date | undefined {
  const iso = c.channels.press?.embargo_until_iso;
  if (typeof iso !== 'string') return undefined;
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? undefined : at;
}

/** The channel that may go before the embargo: the media list's EMBARGOED email. */
export const EMBARGOED_EMAIL_CHANNEL = 'press';

/**
 * When a channel's deliveries may start: send_at, or the embargo instant for a
 * public channel of an embargoed campaign whose embargo is later than send_at.
 */
export function channelStartsAt(c: Pick<Campaign, 'channels' | 'sendAt'>, channel: string): Date {
  const embargo = campaignEmbargo(c);
  if (!embargo || channel === EMBARGOED_EMAIL_CHANNEL || embargo <= c.sendAt) return c.sendAt;
  return embargo;
}

/** Channels that wait for the embargo, with the instant; the press release's publication is listed as `press (publication)`. */
export function embargoWaits(c: Pick<Campaign, 'channels' | 'sendAt'>): Array<{ channel: string; until: Date }> {
  const embargo = campaignEmbargo(c);
  if (!embargo || embargo <= c.sendAt) return [];
  const waits = Object.keys(c.channels)
    .filter((ch) => ch !== EMBARGOED_EMAIL_CHANNEL)
    .map((channel) => ({ channel, until: embargo }));
  return [...waits, { channel: `${EMBARGOED_EMAIL_CHANNEL} (publication)`, until: embargo }];
}
