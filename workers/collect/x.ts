import type { TweetV2 } from 'twitter-api-v2';
import type { XClient } from '../../channels/twitter/client.js';
import { lazyXClient } from '../../channels/twitter/index.js';
import type { ObservationInput } from '../../src/domain/observations.js';
import { periodOf } from '../../src/domain/periods.js';
import { postObservations, sentPosts, type PostReading, type SentPost } from './sent-posts.js';
import { RateLimitedError, TransientError, type CollectContext, type CollectorDefinition, type CollectResult } from './types.js';

/**
 * X: the account's followers (GET /2/users/me, public_metrics) and, for each
 * post Crier sent in the last `metrics.x.post_days` days, its metrics
 * (GET /2/tweets?ids=…, 100 ids a call — twitter-api-v2 does not split them):
 * public_metrics for all in one pass; non_public_metrics (impressions, link
 * clicks as X counts them for the author) in a second pass for posts under
 * 30 days old only, as X allows. 2,000 posts = 20 + 20 calls + 1.
 *
 * A post X reports in `errors[]` (deleted, protected) is a warning, not a
 * failure: its earlier observations stay. Per post: subject `x:<id>`, the day
 * of collection, lifetime counts so far. Per week: the totals so far of the
 * posts sent that week (only weeks wholly inside the window, so a week half
 * outside it is never overwritten with a partial sum).
 */

const CHUNK = 100;
const NON_PUBLIC_DAYS = 30;
const DAY = 86_400_000;

interface PostMetrics {
  impressions?: number;
  engagements: number;
  linkClicks?: number;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

const n = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

export async function collectX(ctx: CollectContext, { client, mapError }: XClient): Promise<CollectResult> {
  const now = ctx.now();
  const warnings: string[] = [];
  let calls = 0;
  const call = async <T>(f: () => Promise<T>): Promise<T> =>
    ctx.limited(async () => {
      calls++;
      try {
        return await f();
      } catch (err) {
        throw mapError(err, ctx.now());
      }
    });

  const me = await call(() => client.v2.me({ 'user.fields': ['public_metrics'] }));
  const followers = n(me.data?.public_metrics?.followers_count);
  if (followers === undefined) throw new TransientError('X answered /2/users/me without public_metrics.followers_count');
  const inputs: ObservationInput[] = [{ measure: 'x.followers', period: periodOf('day', now, ctx.config.timezone), value: followers, source: 'x', collectedAt: now }];

  const days = ctx.config.metrics.x.post_days;
  const since = new Date(now.getTime() - days * DAY);
  const posts = await sentPosts(ctx.redis, ctx.prefix, 'twitter', since, now);
  const byId = new Map<string, SentPost>(posts.map((p) => [p.postId, p]));
  const metrics = new Map<string, PostMetrics>();

  const noteErrors = (errors: ReadonlyArray<{ resource_id?: string; value?: string; title?: string; detail?: string }> | undefined) => {
    for (const e of errors ?? []) {
      const id = e.resource_id ?? e.value ?? '?';
      const post = byId.get(id);
      warnings.push(`post ${id}${post ? ` (campaign ${post.campaignId})` : ''}: ${e.detail ?? e.title ?? 'not returned'}`);
    }
  };

  for (const ids of chunks([...byId.keys()], CHUNK)) {
    const res = await call(() => client.v2.tweets(ids, { 'tweet.fields': ['public_metrics', 'created_at'] }));
    noteErrors(res.errors as Parameters<typeof noteErrors>[0]);
    for (const t of (res.data ?? []) as TweetV2[]) {
      const pm = t.public_metrics;
      if (!pm) continue;
      metrics.set(t.id, {
        impressions: n(pm.impression_count),
        engagements: (n(pm.retweet_count) ?? 0) + (n(pm.reply_count) ?? 0) + (n(pm.like_count) ?? 0) + (n(pm.quote_count) ?? 0),
      });
    }
  }

  const recent = [...byId.values()].filter((p) => now.getTime() - p.sentAt.getTime() < NON_PUBLIC_DAYS * DAY && metrics.has(p.postId)).map((p) => p.postId);
  for (const ids of chunks(recent, CHUNK)) {
    try {
      const res = await call(() => client.v2.tweets(ids, { 'tweet.fields': ['non_public_metrics'] }));
      for (const t of (res.data ?? []) as TweetV2[]) {
        const m = metrics.get(t.id);
        const np = t.non_public_metrics;
        if (!m || !np) continue;
        const imp = n(np.impression_count);
        if (imp !== undefined) m.impressions = imp;
        const clicks = n(np.url_link_clicks);
        if (clicks !== undefined) m.linkClicks = clicks;
      }
    } catch (err) {
      // Impressions and clicks need the author's user context; without them the public figures stand.
      if (err instanceof TransientError || err instanceof RateLimitedError) throw err;
      warnings.push(`non-public metrics not available: ${(err as Error).message}`);
      break;
    }
  }

  const readings: PostReading[] = [...metrics].map(([id, m]) => ({
    post: byId.get(id)!,
    values: { 'x.impressions': m.impressions, 'x.engagements': m.engagements, 'x.link_clicks': m.linkClicks },
  }));
  inputs.push(...postObservations({ network: 'x', source: 'x', readings, now, zone: ctx.config.timezone, windowStart: since }));
  await ctx.store.recordMany(inputs);
  return { observations: inputs.length, warnings, calls };
}

export const xCollector: CollectorDefinition = {
  source: 'x',
  description: 'X account followers and the metrics of posts Crier sent (twitter-api-v2)',
  measures: ['x.followers', 'x.impressions', 'x.engagements', 'x.link_clicks'],
  cron: '10 */6 * * *',
  unconfigured(config) {
    const t = config.twitter;
    return t.appKey && t.appSecret && t.accessToken && t.accessSecret ? undefined : 'needs TWITTER_APP_KEY, TWITTER_APP_SECRET, TWITTER_ACCESS_TOKEN and TWITTER_ACCESS_SECRET';
  },
  create(config, opts = {}) {
    const t = config.twitter;
    const x = lazyXClient({ appKey: t.appKey ?? '', appSecret: t.appSecret ?? '', accessToken: t.accessToken ?? '', accessSecret: t.accessSecret ?? '' }, t.apiBase, opts.ca);
    return {
      source: 'x',
      run: async (ctx) => collectX(ctx, await x.get()),
      async close() {
        x.close();
      },
    };
  },
};
