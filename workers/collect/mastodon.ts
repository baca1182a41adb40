import { mapMastodonError } from '../../channels/mastodon/index.js';
import type { ObservationInput } from '../../src/domain/observations.js';
import { periodOf } from '../../src/domain/periods.js';
import { num, requestJson } from './http.js';
import { postObservations, sentPosts, type PostReading } from './sent-posts.js';
import { NeedsReauthError, PermanentError, type CollectContext, type CollectorDefinition, type CollectResult } from './types.js';

/**
 * Mastodon (plain fetch): followers from GET /api/v1/accounts/verify_credentials,
 * and for each status Crier posted in the last `metrics.mastodon.post_days`
 * days GET /api/v1/statuses/:id → reblogs, favourites, replies. A status that
 * is gone (404) is a warning; its earlier figures stay. Mastodon's
 * X-RateLimit-Reset is an ISO time (read by the channel's error mapper).
 */

const DAY = 86_400_000;

export async function collectMastodon(ctx: CollectContext): Promise<CollectResult> {
  const { url, token } = ctx.config.mastodon;
  const now = ctx.now();
  const warnings: string[] = [];
  let calls = 0;
  const get = (path: string) =>
    ctx.limited(() => {
      calls++;
      return requestJson(ctx, { service: 'Mastodon', url: `${url}${path}`, headers: { authorization: `Bearer ${token}` }, mapError: mapMastodonError });
    });

  const account = (await get('/api/v1/accounts/verify_credentials')) as { followers_count?: unknown };
  const inputs: ObservationInput[] = [
    { measure: 'mastodon.followers', period: periodOf('day', now, ctx.config.timezone), value: num('Mastodon', account?.followers_count, 'followers_count'), source: 'mastodon', collectedAt: now },
  ];
  const since = new Date(now.getTime() - ctx.config.metrics.mastodon.post_days * DAY);
  const readings: PostReading[] = [];
  for (const post of await sentPosts(ctx.redis, ctx.prefix, 'mastodon', since, now)) {
    try {
      const s = (await get(`/api/v1/statuses/${encodeURIComponent(post.postId)}`)) as Record<string, unknown>;
      readings.push({
        post,
        values: {
          'mastodon.boosts': num('Mastodon', s.reblogs_count, 'reblogs_count'),
          'mastodon.favourites': num('Mastodon', s.favourites_count, 'favourites_count'),
          'mastodon.replies': num('Mastodon', s.replies_count, 'replies_count'),
        },
      });
    } catch (err) {
      // A deleted or hidden status; a refused token fails the run.
      if (!(err instanceof PermanentError) || err instanceof NeedsReauthError) throw err;
      warnings.push(`status ${post.postId} (campaign ${post.campaignId}): ${err.message}`);
    }
  }
  inputs.push(...postObservations({ network: 'mastodon', source: 'mastodon', readings, now, zone: ctx.config.timezone, windowStart: since }));
  await ctx.store.recordMany(inputs);
  return { observations: inputs.length, warnings, calls };
}

export const mastodonCollector: CollectorDefinition = {
  source: 'mastodon',
  description: 'Mastodon followers and the boosts, favourites and replies of statuses Crier posted',
  measures: ['mastodon.followers', 'mastodon.boosts', 'mastodon.favourites', 'mastodon.replies'],
  cron: '20 * * * *',
  unconfigured: (config) => (config.mastodon.url && config.mastodon.token ? undefined : 'needs MASTODON_URL and MASTODON_TOKEN'),
  create: () => ({ source: 'mastodon', run: collectMastodon }),
};
