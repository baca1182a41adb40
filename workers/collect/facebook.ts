import { channelErrorOf, graphClient } from '../../channels/facebook/graph.js';
import type { ObservationInput } from '../../src/domain/observations.js';
import { localDate, periodOf, previousPeriod } from '../../src/domain/periods.js';
import { postObservations, sentPosts, type PostReading } from './sent-posts.js';
import { PermanentError, TransientError, type CollectContext, type CollectorDefinition, type CollectResult } from './types.js';

/**
 * Facebook Page (Graph API, the Page token the channel posts with):
 *  - followers: `GET /{page}?fields=followers_count` → facebook.followers today
 *  - Page insights `page_media_view` and `page_follows` by day since the start
 *    of last week → facebook.page_views per week (everything on the Page), and
 *    facebook.followers for earlier days Crier did not read itself. Only these names: Meta
 *    removed page_impressions* and page_fans* on 15 November 2025 (asking for
 *    them is error 100, "invalid metric").
 *  - per post Crier sent in the last POST_DAYS days: `post_media_view`
 *    (lifetime) and reactions + comments + shares → facebook.views and
 *    facebook.engagements, per post and per week sent, the way every social
 *    collector keeps them (postObservations).
 * A deleted post is a warning, not a failed run.
 */

export const PAGE_METRICS = ['page_media_view', 'page_follows'] as const;
export const POST_METRIC = 'post_media_view';
/** Posts sent in the last this many days get their figures refreshed. */
const POST_DAYS = 30;
const SOURCE = 'facebook';

interface InsightsAnswer {
  data?: Array<{ name?: unknown; values?: Array<{ value?: unknown; end_time?: unknown }> }>;
}

const count = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined);

/** Meta's day ends at Pacific midnight: the day a daily value belongs to is the local date half a day before its end_time. */
function dayOf(endTime: unknown, zone: string): string | undefined {
  const t = Date.parse(String(endTime).replace(/\+0000$/, 'Z'));
  return Number.isFinite(t) ? localDate(new Date(t - 12 * 3600_000), zone) : undefined;
}

export async function collectFacebook(ctx: CollectContext): Promise<CollectResult> {
  const graph = graphClient(ctx.config, ctx.fetch);
  if (!graph) throw new PermanentError('FACEBOOK_PAGE_ID and FACEBOOK_PAGE_TOKEN are not set');
  const zone = ctx.config.timezone;
  const now = ctx.now();
  const page = `/${encodeURIComponent(graph.pageId)}`;
  const warnings: string[] = [];
  const out: ObservationInput[] = [];
  let calls = 0;
  const get = (path: string, params: Record<string, string>) =>
    ctx.limited(async () => {
      calls += 1;
      try {
        return await graph.get(path, params, ctx.now());
      } catch (err) {
        throw channelErrorOf(err);
      }
    });
  const obs = (o: Omit<ObservationInput, 'source' | 'collectedAt'>) => out.push({ ...o, source: SOURCE, collectedAt: now });

  const followers = count(((await get(page, { fields: 'followers_count' })) as { followers_count?: unknown }).followers_count);
  if (followers === undefined) throw new TransientError('Facebook answered without followers_count');
  const today = periodOf('day', now, zone);
  obs({ measure: 'facebook.followers', period: today, value: followers });

  const lastWeek = previousPeriod(periodOf('week', now, zone));
  let insights: InsightsAnswer = {};
  try {
    insights = (await get(`${page}/insights`, {
      metric: PAGE_METRICS.join(','),
      period: 'day',
      since: localDate(lastWeek.start, zone),
      until: localDate(new Date(now.getTime() + 86_400_000), zone),
    })) as InsightsAnswer;
  } catch (err) {
    // Meta keeps insights only for Pages with 100 or more followers: the rest of the run still counts.
    if (!(err instanceof PermanentError)) throw err;
    warnings.push(`Page insights: ${err.message}`);
  }
  const weekViews = new Map<string, number>();
  for (const series of insights.data ?? []) {
    for (const v of series.values ?? []) {
      const day = dayOf(v.end_time, zone);
      const value = count(v.value);
      if (!day || value === undefined) continue;
      if (series.name === 'page_media_view') {
        const week = periodOf('week', new Date(`${day}T12:00:00Z`), zone).key;
        weekViews.set(week, (weekViews.get(week) ?? 0) + value);
      } else if (series.name === 'page_follows' && day < today.key) {
        // Crier's own reading of a day stands; the insight fills days nobody read.
        if (!(await ctx.store.get({ measure: 'facebook.followers', period: day }))) {
          obs({ measure: 'facebook.followers', period: day, value, meta: { from: 'page_follows' } });
        }
      }
    }
  }
  for (const [week, value] of weekViews) obs({ measure: 'facebook.page_views', period: week, value, meta: { from: 'page_media_view' } });

  const since = new Date(now.getTime() - POST_DAYS * 86_400_000);
  const readings: PostReading[] = [];
  for (const post of await sentPosts(ctx.redis, ctx.prefix, 'facebook', since, now)) {
    const postPath = `/${encodeURIComponent(post.postId)}`;
    try {
      const views = (await get(`${postPath}/insights`, { metric: POST_METRIC, period: 'lifetime' })) as InsightsAnswer;
      const p = (await get(postPath, { fields: 'reactions.summary(total_count).limit(0),comments.summary(total_count).limit(0),shares' })) as {
        reactions?: { summary?: { total_count?: unknown } };
        comments?: { summary?: { total_count?: unknown } };
        shares?: { count?: unknown };
      };
      const reactions = count(p.reactions?.summary?.total_count);
      const comments = count(p.comments?.summary?.total_count);
      readings.push({
        post,
        values: {
          'facebook.views': count(views.data?.find((d) => d.name === POST_METRIC)?.values?.[0]?.value),
          // Graph leaves `shares` out for a post nobody shared.
          'facebook.engagements': reactions !== undefined && comments !== undefined ? reactions + comments + (count(p.shares?.count) ?? 0) : undefined,
        },
      });
    } catch (err) {
      // A deleted or hidden post (error 100) is that post's problem; a refused token or a rate limit stops the run.
      if (!(err instanceof PermanentError)) throw err;
      warnings.push(`post ${post.postId} (campaign ${post.campaignId}): ${err.message}`);
    }
  }
  out.push(...postObservations({ network: 'facebook', source: SOURCE, readings, now, zone, windowStart: since }));

  await ctx.store.recordMany(out);
  return { observations: out.length, warnings, calls };
}

export const facebookCollector: CollectorDefinition = {
  source: SOURCE,
  description: 'Facebook Page: followers, views (page_media_view, post_media_view), engagements of the posts Crier sent',
  measures: ['facebook.followers', 'facebook.views', 'facebook.engagements', 'facebook.page_views'],
  cron: '35 */6 * * *',
  unconfigured: (config) => (config.facebook.pageId && config.facebook.pageToken ? undefined : 'set FACEBOOK_PAGE_ID and FACEBOOK_PAGE_TOKEN'),
  create: () => ({ source: SOURCE, run: collectFacebook }),
};
