import { afterEach, describe, expect, it } from 'vitest';
import { graphClient, GraphRequestError } from '../channels/facebook/graph.js';
import { localDate, periodOf, previousPeriod } from '../src/domain/periods.js';
import { collectFacebook, PAGE_METRICS } from '../workers/collect/facebook.js';
import { collectorDefinition } from '../workers/collect/registry.js';
import { collectContext } from '../workers/collect/run.js';
import { NeedsReauthError, PermanentError, RateLimitedError, type CollectContext } from '../workers/collect/types.js';
import { collectYoutube, nextQuotaReset } from '../workers/collect/youtube.js';
import { facebookEnv, startFakeGraphApi, type FakeGraphApi } from './fakes/graph-api.js';
import { startFakeYoutubeApi, youtubeEnv, type FakeVideo } from './fakes/youtube-api.js';
import { silentLogger, testConfig } from './helpers/context.js';
import { runCrier } from './helpers/metrics.js';
import { londonIn, startCrier, type TestCrier } from './helpers/crier.js';

/**
 * The Facebook and YouTube collectors against fakes speaking the Graph API
 * and the YouTube Data API: what they store, that a removed Facebook metric
 * is never asked for (the fake answers error 100 for them, as Meta does since
 * 15 Nov 2025, and counts the asking), hidden counts missing not 0, videos in
 * chunks of 50, and the daily quota waiting for Pacific midnight.
 */

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
});

/** The context the collect worker gives a collector (real store and catalogue), on the test's clock. */
function context(crier: TestCrier, source: string, now: () => Date = () => new Date()): CollectContext {
  return collectContext(collectorDefinition(source)!, { config: crier.config, redis: crier.handle.redis, log: silentLogger(), now });
}

async function withGraph(): Promise<{ graph: FakeGraphApi; crier: TestCrier }> {
  const graph = await startFakeGraphApi({ followers: 5120 });
  cleanups.push(() => graph.close());
  const crier = await startCrier(testConfig({ env: facebookEnv(graph) }));
  cleanups.push(() => crier.close());
  return { graph, crier };
}

describe('Facebook collector', () => {
  it('stores followers, Page views by week and each sent post’s views and engagements; never asks for a removed metric', async () => {
    const { graph, crier } = await withGraph();
    const zone = crier.config.timezone;
    // Two posts Crier sent (through the real channel and worker); the network's ids are kept for the collector.
    const ids: string[] = [];
    for (const text of ['Surgery in Rugby on Friday', 'Budget consultation opens']) {
      const c = await crier.create(`title: ${text}\nkind: social\nsend_at: ${londonIn(300)}\nchannels:\n  facebook: { text: "${text}" }\n`);
      await crier.waitForStatus(c.id, ['sent']);
      ids.push(graph.posts.at(-1)!.id);
    }
    const now = new Date();
    Object.assign(graph.posts[0]!, { views: 1500, reactions: 40, comments: 7, shares: 3 });
    Object.assign(graph.posts[1]!, { views: 220, reactions: 5, comments: 0, shares: 0 });
    const thisWeek = periodOf('week', now, zone);
    const lastWeek = previousPeriod(thisWeek);
    const day = (d: Date) => localDate(d, zone);
    const lastWeekDays = [0, 1, 2].map((i) => day(new Date(lastWeek.start.getTime() + (i * 24 + 12) * 3600_000)));
    lastWeekDays.forEach((d, i) => graph.pageDaily.set(d, { views: 100 * (i + 1), follows: 5000 + i }));
    graph.pageDaily.set(day(now), { views: 70, follows: 5119 });

    const ctx = context(crier, 'facebook', () => now);
    // A day Crier read itself is not overwritten by the insight.
    await ctx.store.record({ measure: 'facebook.followers', period: lastWeekDays[1]!, value: 4999, source: 'facebook' });
    const result = await collectFacebook(ctx);
    expect(result.warnings).toEqual([]);

    const get = async (measure: string, period: string, subject?: string) => (await ctx.store.get({ measure, period, subject }))?.value;
    expect(await get('facebook.followers', periodOf('day', now, zone).key)).toBe(5120);
    expect(await get('facebook.followers', lastWeekDays[0]!)).toBe(5000);
    expect(await get('facebook.followers', lastWeekDays[1]!)).toBe(4999);
    expect(await get('facebook.followers', lastWeekDays[2]!)).toBe(5002);
    expect(await get('facebook.page_views', lastWeek.key)).toBe(600);
    expect(await get('facebook.page_views', thisWeek.key)).toBe(70);
    // Per post: its figures so far, on the day collected; per week sent: the totals of Crier's posts.
    const today = periodOf('day', now, zone).key;
    expect(await get('facebook.views', today, `facebook:${ids[0]}`)).toBe(1500);
    expect(await get('facebook.engagements', today, `facebook:${ids[0]}`)).toBe(50);
    expect(await get('facebook.engagements', today, `facebook:${ids[1]}`)).toBe(5);
    expect(await get('facebook.views', thisWeek.key)).toBe(1720);
    expect(await get('facebook.engagements', thisWeek.key)).toBe(55);

    // Only the current metric names went out, and the fake would have refused the removed ones.
    const asked = graph.requests.filter((r) => r.path.endsWith('/insights')).flatMap((r) => (r.query.metric ?? '').split(','));
    expect(new Set(asked)).toEqual(new Set([...PAGE_METRICS, 'post_media_view']));
    expect(graph.removedMetricRequests).toEqual([]);
    const client = graphClient(crier.config)!;
    const refused = await client.get(`/${graph.pageId}/insights`, { metric: 'page_impressions,page_fans', period: 'day' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(GraphRequestError);
    expect((refused as GraphRequestError).failure.graph).toMatchObject({ code: 100, message: '(#100) The value must be a valid insights metric' });
    expect((refused as GraphRequestError).failure.error).toBeInstanceOf(PermanentError);
    expect(graph.removedMetricRequests).toEqual(['page_impressions', 'page_fans']);

    // A second run replaces, never doubles.
    graph.followers = 5125;
    await collectFacebook(ctx);
    expect(await get('facebook.followers', periodOf('day', now, zone).key)).toBe(5125);
    expect(await ctx.store.count('facebook.engagements')).toBe(3);
  });

  it('a deleted post is a warning; an expired token stops the run with "reconnect account"', async () => {
    const { graph, crier } = await withGraph();
    const c = await crier.create(`title: Gone\nkind: social\nsend_at: ${londonIn(300)}\nchannels:\n  facebook: { text: "Soon deleted" }\n`);
    await crier.waitForStatus(c.id, ['sent']);
    const id = graph.posts[0]!.id;
    graph.posts.splice(0, 1);
    const ctx = context(crier, 'facebook');
    const result = await collectFacebook(ctx);
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings[0]).toMatch(new RegExp(`^post ${id} \\(campaign ${c.id}\\): .*code 100`));
    expect(await ctx.store.get({ measure: 'facebook.followers', period: periodOf('day', new Date(), crier.config.timezone) })).toBeDefined();

    // Insights refused (a Page under 100 followers): a warning; followers still stored.
    graph.failNext(100, { path: `${graph.pageId}/insights`, message: '(#100) Insights are not available for this Page' });
    graph.followers = 99;
    const partial = await collectFacebook(ctx);
    expect(partial.warnings[0]).toMatch(/^Page insights: Facebook refused the request: \(#100\) Insights are not available/);
    expect((await ctx.store.get({ measure: 'facebook.followers', period: periodOf('day', new Date(), crier.config.timezone) }))?.value).toBe(99);

    graph.failNext(190);
    const err = await collectFacebook(ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NeedsReauthError);
    expect((err as Error).message).toMatch(/^reconnect account: /);
  });
});

function videos(n: number, now: Date): FakeVideo[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `vid${String(i).padStart(8, '0')}`,
    publishedAt: new Date(now.getTime() - i * 86_400_000 * 0.5).toISOString(),
    views: 1000 + i,
    ...(i === 3 ? {} : { likes: 10 + i, comments: i % 5 }),
  }));
}

describe('YouTube collector', () => {
  it('stores subscribers, views and videos (string counts), per-video figures in chunks of 50 ids', async () => {
    const now = new Date();
    const yt = await startFakeYoutubeApi({ videos: videos(200, now) });
    cleanups.push(() => yt.close());
    const crier = await startCrier(testConfig({ env: youtubeEnv(yt) }), { workers: false });
    cleanups.push(() => crier.close());
    const ctx = context(crier, 'youtube', () => now);
    const result = await collectYoutube(ctx);
    const today = periodOf('day', now, crier.config.timezone).key;
    const get = async (measure: string, subject?: string) => (await ctx.store.get({ measure, period: today, subject }))?.value;
    expect(await get('youtube.subscribers')).toBe(2750);
    expect(await get('youtube.views')).toBe(918_204);
    expect(await get('youtube.videos')).toBe(200);
    // Uploads from the last 90 days: one every 12 hours → 181 of them (the one exactly 90 days old included).
    const recent = 181;
    expect(yt.videoCalls).toEqual([50, 50, 50, 31]);
    expect(await get('youtube.views', 'youtube:vid00000007')).toBe(1007);
    expect(await get('youtube.engagements', 'youtube:vid00000007')).toBe(17 + 2);
    expect(await get('youtube.engagements', 'youtube:vid00000003')).toBeUndefined();
    expect(await get('youtube.views', 'youtube:vid00000190')).toBeUndefined();
    expect(await ctx.store.count('youtube.views')).toBe(1 + recent);
    expect(result.warnings).toEqual([]);
    // 1 channels + 4 playlist pages + 4 videos calls: 9 quota units.
    expect(yt.unitsUsed).toBe(9);
  });

  it('a hidden subscriber count is missing, not 0', async () => {
    const yt = await startFakeYoutubeApi({ videos: [] });
    cleanups.push(() => yt.close());
    yt.hiddenSubscribers = true;
    const crier = await startCrier(testConfig({ env: youtubeEnv(yt) }), { workers: false });
    cleanups.push(() => crier.close());
    const ctx = context(crier, 'youtube');
    const result = await collectYoutube(ctx);
    expect(result.warnings).toEqual(['the channel hides its subscriber count: youtube.subscribers is missing for today']);
    expect(await ctx.store.count('youtube.subscribers')).toBe(0);
    expect(await ctx.store.count('youtube.views')).toBe(1);
  });

  it('quotaExceeded waits for midnight Pacific time; a bad key says reconnect account', async () => {
    const yt = await startFakeYoutubeApi({ videos: [] });
    cleanups.push(() => yt.close());
    yt.quota = 0;
    const crier = await startCrier(testConfig({ env: youtubeEnv(yt) }), { workers: false });
    cleanups.push(() => crier.close());
    const now = new Date('2026-11-23T17:00:00Z'); // 09:00 in California (PST)
    const err = await collectYoutube(context(crier, 'youtube', () => now)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateLimitedError);
    expect((err as RateLimitedError).resetAt.toISOString()).toBe('2026-11-24T08:00:00.000Z');
    expect((err as Error).message).toMatch(/^YouTube daily quota used up: waiting for the reset at midnight Pacific time \(2026-11-24T08:00:00\.000Z\)/);
    // In summer Pacific midnight is 07:00 UTC.
    expect(nextQuotaReset(new Date('2026-07-01T20:00:00Z')).toISOString()).toBe('2026-07-02T07:00:00.000Z');

    const bad = await startCrier(testConfig({ env: { ...youtubeEnv(yt), YOUTUBE_API_KEY: 'wrong' } }), { workers: false });
    cleanups.push(() => bad.close());
    const reauth = await collectYoutube(context(bad, 'youtube')).catch((e: unknown) => e);
    expect(reauth).toBeInstanceOf(NeedsReauthError);
    expect((reauth as Error).message).toMatch(/^reconnect account: YouTube refused the API key: API key not valid/);
  });
});

describe('crier metrics collect --source facebook|youtube (the built CLI)', () => {
  it('collects both sources into the store; a spent YouTube quota shows in metrics status until Pacific midnight', async () => {
    const graph = await startFakeGraphApi({ followers: 777 });
    const yt = await startFakeYoutubeApi({ videos: videos(3, new Date()) });
    cleanups.push(() => graph.close(), () => yt.close());
    const env = { ...facebookEnv(graph), ...youtubeEnv(yt) };
    const crier = await startCrier(testConfig({ env }), { workers: false });
    cleanups.push(() => crier.close());

    const fb = await runCrier(crier.config, ['metrics', 'collect', '--source', 'facebook'], env);
    expect(fb.code, fb.stderr).toBe(0);
    expect(fb.stdout).toMatch(/^facebook: \d+ observations/m);
    const ytRun = await runCrier(crier.config, ['metrics', 'collect', '--source', 'youtube'], env);
    expect(ytRun.code, ytRun.stderr).toBe(0);
    expect(ytRun.stdout).toMatch(/^youtube: 9 observations/m);

    const exported = await runCrier(crier.config, ['metrics', 'export', '--format', 'ndjson'], env);
    const rows = exported.stdout.trim().split('\n').map((l) => JSON.parse(l) as { measure: string; subject: string; value: number });
    const value = (measure: string) => rows.find((r) => r.measure === measure && r.subject === '')?.value;
    expect(value('facebook.followers')).toBe(777);
    expect(value('youtube.subscribers')).toBe(2750);
    expect(value('youtube.views')).toBe(918_204);
    expect(value('youtube.videos')).toBe(3);
    expect(graph.removedMetricRequests).toEqual([]);

    yt.quota = 0;
    const spent = await runCrier(crier.config, ['metrics', 'collect', '--source', 'youtube'], env);
    expect(spent.code).not.toBe(0);
    expect(spent.stderr).toMatch(/youtube: failed: YouTube daily quota used up: waiting for the reset at midnight Pacific time/);
    const status = await runCrier(crier.config, ['metrics', 'status'], env);
    const reset = nextQuotaReset(new Date());
    const block = status.stdout.slice(status.stdout.indexOf('youtube:'));
    expect(block).toMatch(/last failure: .*YouTube daily quota used up/);
    expect(block).toContain(`rate limited until ${localDate(reset, crier.config.timezone)}`);
    // The earlier figures stay.
    expect(await crier.handle.redis.exists(`${crier.config.redis_prefix}:obs:youtube.subscribers`)).toBe(1);
  }, 60_000);
});
