import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../src/config.js';
import { buildCatalogue } from '../src/domain/measures.js';
import { ObservationStore } from '../src/domain/observations.js';
import { periodOf } from '../src/domain/periods.js';
import { connectRedis, type RedisHandle } from '../src/redis/connection.js';
import { readStatus } from '../workers/collect/status.js';
import { startFakeXApi, twitterEnv, type FakeXApi } from './fakes/x-api.js';
import { silentLogger, testConfig } from './helpers/context.js';
import { collectOnce, runCrier, seedSentPost } from './helpers/metrics.js';

/**
 * The X collector against the local X API v2 fake (HTTPS, OAuth 1.0a checked,
 * the real twitter-api-v2 client): followers, per-post public and non-public
 * metrics, deleted posts, idempotent re-collection, and the failures that
 * must leave earlier data alone.
 */

const creds = { appKey: 'ck', appSecret: 'cs', accessToken: 'at', accessSecret: 'as' };
const DAY = 86_400_000;

let fake: FakeXApi;
let config: Config;
let handle: RedisHandle;
let store: ObservationStore;
const now = new Date();
const posts: string[] = [];

beforeAll(async () => {
  fake = await startFakeXApi({ credentials: creds, followers: 1234 });
  config = testConfig({ env: twitterEnv(fake.url, creds), yaml: 'metrics:\n  x:\n    post_days: 60\n  max_rate_limit_wait_seconds: 30\n' });
  handle = await connectRedis(config, silentLogger());
  store = new ObservationStore(handle.redis, config.redis_prefix, buildCatalogue());
  // Three posts Crier sent: two recent (one since deleted), one 40 days old (public metrics only).
  const mk = (id: string, ageDays: number, metrics: FakeXApi['tweets'][number]['metrics'], deleted = false) => {
    fake.tweets.push({ id, text: `post ${id}`, mediaIds: [], metrics, nonPublic: { impression_count: 900 + Number(id.slice(-1)), url_link_clicks: 7, user_profile_clicks: 1 }, deleted });
    posts.push(id);
    return seedSentPost(handle, config.redis_prefix, 'twitter', id, new Date(now.getTime() - ageDays * DAY));
  };
  await mk('1870000000000000001', 1, { like_count: 10, retweet_count: 2, reply_count: 1, quote_count: 1, impression_count: 500 });
  await mk('1870000000000000002', 2, { like_count: 4 }, true);
  await mk('1870000000000000003', 40, { like_count: 3, impression_count: 77 });
});

afterAll(async () => {
  await handle?.close();
  await fake?.close();
});

const ca = () => ({ collectorOptions: { ca: fake.ca } });

describe('X collector', () => {
  it('stores followers and per-post metrics; a deleted post is a warning; two passes of 100-id calls', async () => {
    fake.requests.length = 0;
    const r = await collectOnce(config, handle, 'x', ca());
    expect(r.warnings.join('\n')).toMatch(/1870000000000000002.*Could not find tweet/);
    // me + one public_metrics call + one non_public_metrics call (recent posts only)
    expect(r.calls).toBe(3);
    const tweetCalls = fake.requests.filter((q) => q.path === '/2/tweets');
    expect(tweetCalls).toHaveLength(2);
    const today = periodOf('day', now);
    expect((await store.get({ measure: 'x.followers', period: today }))?.value).toBe(1234);
    const p1 = { subject: 'x:1870000000000000001', period: today };
    // Non-public impressions (author's view) win over the public count for a recent post.
    expect((await store.get({ ...p1, measure: 'x.impressions' }))?.value).toBe(901);
    expect((await store.get({ ...p1, measure: 'x.engagements' }))?.value).toBe(14);
    expect((await store.get({ ...p1, measure: 'x.link_clicks' }))?.value).toBe(7);
    const old = { subject: 'x:1870000000000000003', period: today };
    expect((await store.get({ ...old, measure: 'x.impressions' }))?.value).toBe(77);
    expect(await store.get({ ...old, measure: 'x.link_clicks' })).toBeUndefined();
    // The deleted post has no figure: missing, not 0.
    expect(await store.get({ measure: 'x.engagements', subject: 'x:1870000000000000002', period: today })).toBeUndefined();
    const week = periodOf('week', new Date(now.getTime() - DAY));
    const weekly = await store.get({ measure: 'x.engagements', period: week });
    expect(weekly?.value).toBeGreaterThanOrEqual(14);
  });

  it('collecting the same period twice leaves one observation, the earlier value in history', async () => {
    const before = await store.count('x.engagements');
    fake.tweets.find((t) => t.id === '1870000000000000001')!.metrics!.like_count = 20;
    await collectOnce(config, handle, 'x', ca());
    expect(await store.count('x.engagements')).toBe(before);
    const o = await store.get({ measure: 'x.engagements', subject: 'x:1870000000000000001', period: periodOf('day', now) });
    expect(o?.value).toBe(24);
    expect(o?.history[0]?.value).toBe(14);
  });

  it('500, garbage JSON and 401 leave earlier data intact and are recorded in status', async () => {
    const key = { measure: 'x.followers', period: periodOf('day', now) };
    const cases: Array<[number, { garbage?: boolean }, RegExp, string]> = [
      [500, {}, /X API error 500/, 'transient'],
      [200, { garbage: true }, /followers_count|JSON|parse/i, 'transient'],
      [401, {}, /credentials/, 'needs_reauth'],
    ];
    for (const [status, opts, reason, kind] of cases) {
      fake.failNext(status, { path: '/2/users/me', ...opts });
      await expect(collectOnce(config, handle, 'x', ca())).rejects.toThrow(reason);
      expect((await store.get(key))?.value).toBe(1234);
      const s = await readStatus(handle.redis, config.redis_prefix, 'x');
      expect(s.last_failure_reason).toMatch(reason);
      expect(s.last_failure_kind).toBe(kind);
    }
  });

  it('a 429 waits for its reset, then finishes the run', async () => {
    fake.failNext(429, { path: '/2/tweets', resetInSeconds: 2 });
    const started = Date.now();
    const r = await collectOnce(config, handle, 'x', ca());
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(r.observations).toBeGreaterThan(0);
    const s = await readStatus(handle.redis, config.redis_prefix, 'x');
    expect(s.last_failure_kind).toBe('rate_limited');
    expect(Date.parse(s.last_success_at!)).toBeGreaterThan(Date.parse(s.last_failure_at!));
  });

  it('`crier metrics collect --source x` trusts the fake through NODE_EXTRA_CA_CERTS; status shows the success', async () => {
    const r = await runCrier(config, ['metrics', 'collect', '--source', 'x'], { ...twitterEnv(fake.url, creds), NODE_EXTRA_CA_CERTS: fake.certFile });
    expect(r.stderr).toMatch(/warning: post 1870000000000000002/);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^x: \d+ observations, 3 API calls, 1 warning$/m);
    const st = await runCrier(config, ['metrics', 'status', '--json'], twitterEnv(fake.url, creds));
    expect(st.code, st.stderr).toBe(0);
    const rows = JSON.parse(st.stdout) as Array<{ source: string; last_success_at?: string; state: string }>;
    const x = rows.find((row) => row.source === 'x')!;
    expect(Date.now() - Date.parse(x.last_success_at!)).toBeLessThan(60_000);
    expect(rows.find((row) => row.source === 'mastodon')?.state).toMatch(/not configured/);
    const text = await runCrier(config, ['metrics', 'status'], twitterEnv(fake.url, creds));
    expect(text.stdout).toMatch(/^x: not scheduled yet/m);
    expect(text.stdout).toMatch(/^ {2}schedule: {5}10 \*\/6 \* \* \* \(Europe\/London\); next run none$/m);
    expect(text.stdout).toMatch(/^ {2}last success: \d{4}-\d\d-\d\d \d\d:\d\d \(\d+ observations\)$/m);
    // The earlier 429 of this file is the last failure, with its reason.
    expect(text.stdout).toMatch(/^ {2}last failure: \d{4}-\d\d-\d\d \d\d:\d\d: X rate limit/m);
    expect(text.stdout).toMatch(/^mastodon: not configured: needs MASTODON_URL and MASTODON_TOKEN$/m);
  }, 60_000);
});
