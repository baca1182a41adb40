import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../src/config.js';
import { buildCatalogue } from '../src/domain/measures.js';
import { ObservationStore } from '../src/domain/observations.js';
import { periodOf, previousPeriod } from '../src/domain/periods.js';
import { connectRedis, type RedisHandle } from '../src/redis/connection.js';
import { readStatus } from '../workers/collect/status.js';
import { startFakeMastodonApi, type FakeMastodonApi } from './fakes/mastodon-api.js';
import { startFakeMatomo, type FakeMatomo } from './fakes/matomo-api.js';
import { startFakePlausible, type FakePlausible } from './fakes/plausible-api.js';
import { silentLogger, testConfig } from './helpers/context.js';
import { collectOnce, seedSentPost } from './helpers/metrics.js';

/** Mastodon, Plausible v2 and Matomo collectors against local fakes of their APIs. */

const DAY = 86_400_000;
const now = new Date();
const today = periodOf('day', now);
const thisWeek = periodOf('week', now);

async function setup(config: Config): Promise<{ handle: RedisHandle; store: ObservationStore }> {
  const handle = await connectRedis(config, silentLogger());
  return { handle, store: new ObservationStore(handle.redis, config.redis_prefix, buildCatalogue()) };
}

describe('Mastodon collector', () => {
  let fake: FakeMastodonApi;
  let config: Config;
  let handle: RedisHandle;
  let store: ObservationStore;

  beforeAll(async () => {
    fake = await startFakeMastodonApi();
    config = testConfig({ env: { MASTODON_URL: fake.url, MASTODON_TOKEN: fake.token }, yaml: 'metrics:\n  max_rate_limit_wait_seconds: 30\n' });
    ({ handle, store } = await setup(config));
    fake.account.followers_count = 321;
    fake.statuses.push(
      { id: '113000000000000101', text: 'a', visibility: 'public', spoilerText: '', mediaIds: [], reblogs: 5, favourites: 9, replies: 2 },
      { id: '113000000000000102', text: 'b', visibility: 'public', spoilerText: '', mediaIds: [], deleted: true },
    );
    await seedSentPost(handle, config.redis_prefix, 'mastodon', '113000000000000101', new Date(now.getTime() - DAY));
    await seedSentPost(handle, config.redis_prefix, 'mastodon', '113000000000000102', new Date(now.getTime() - DAY));
  });
  afterAll(async () => {
    await handle?.close();
    await fake?.close();
  });

  it('stores followers and per-status counts; a deleted status is a warning; twice is still one observation', async () => {
    const r = await collectOnce(config, handle, 'mastodon');
    expect(r.warnings).toEqual([expect.stringMatching(/113000000000000102.*Record not found/)]);
    expect((await store.get({ measure: 'mastodon.followers', period: today }))?.value).toBe(321);
    const s = { subject: 'mastodon:113000000000000101', period: today };
    expect((await store.get({ ...s, measure: 'mastodon.boosts' }))?.value).toBe(5);
    expect((await store.get({ ...s, measure: 'mastodon.favourites' }))?.value).toBe(9);
    expect((await store.get({ ...s, measure: 'mastodon.replies' }))?.value).toBe(2);
    const counts = await Promise.all(['mastodon.followers', 'mastodon.boosts'].map((m) => store.count(m)));
    fake.account.followers_count = 330;
    await collectOnce(config, handle, 'mastodon');
    expect(await Promise.all(['mastodon.followers', 'mastodon.boosts'].map((m) => store.count(m)))).toEqual(counts);
    const f = await store.get({ measure: 'mastodon.followers', period: today });
    expect(f?.value).toBe(330);
    expect(f?.history.map((h) => h.value)).toEqual([321]);
  });

  it('500, garbage JSON and 401 keep earlier data and are recorded; a 429 waits for its ISO reset', async () => {
    const key = { measure: 'mastodon.followers', period: today };
    for (const [status, opts, reason] of [
      [500, {}, /Mastodon error 500/],
      [200, { garbage: true }, /not JSON/],
      [401, {}, /reconnect account: Mastodon rejected the token/],
    ] as const) {
      fake.failNext(status, { path: '/api/v1/accounts/verify_credentials', ...opts });
      await expect(collectOnce(config, handle, 'mastodon')).rejects.toThrow(reason);
      expect((await store.get(key))?.value).toBe(330);
      expect((await readStatus(handle.redis, config.redis_prefix, 'mastodon')).last_failure_reason).toMatch(reason);
    }
    fake.failNext(429, { path: '/api/v1/statuses/113000000000000101', resetInSeconds: 2 });
    const started = Date.now();
    await collectOnce(config, handle, 'mastodon');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    const st = await readStatus(handle.redis, config.redis_prefix, 'mastodon');
    expect(st.last_failure_kind).toBe('rate_limited');
    expect(Date.parse(st.last_success_at!)).toBeGreaterThan(Date.parse(st.last_failure_at!));
  });
});

describe('website collector: Plausible Stats API v2', () => {
  let fake: FakePlausible;
  let config: Config;
  let handle: RedisHandle;
  let store: ObservationStore;

  beforeAll(async () => {
    fake = await startFakePlausible();
    config = testConfig({ env: { PLAUSIBLE_URL: fake.url, PLAUSIBLE_API_KEY: fake.apiKey, PLAUSIBLE_SITE_ID: fake.siteId }, yaml: 'metrics:\n  max_rate_limit_wait_seconds: 0\n' });
    ({ handle, store } = await setup(config));
  });
  afterAll(async () => {
    await handle?.close();
    await fake?.close();
  });

  it('reads days, weeks and months, metrics in the order asked, mobile share from visit:device', async () => {
    const r = await collectOnce(config, handle, 'website');
    expect(r.calls).toBe(12);
    expect(fake.queries[0]).toMatchObject({ site_id: fake.siteId, metrics: ['visitors', 'visits', 'pageviews', 'bounce_rate', 'visit_duration'] });
    expect(fake.queries[1]).toMatchObject({ metrics: ['visits'], dimensions: ['visit:device'] });
    expect((await store.get({ measure: 'website.visits', period: today }))?.value).toBe(100);
    expect((await store.get({ measure: 'website.pageviews', period: today }))?.value).toBe(250);
    expect((await store.get({ measure: 'website.visitors', period: previousPeriod(thisWeek) }))?.value).toBe(560);
    expect((await store.get({ measure: 'website.bounce_rate', period: thisWeek }))?.value).toBe(40);
    expect((await store.get({ measure: 'website.visit_duration', period: today }))?.value).toBe(95);
    expect((await store.get({ measure: 'website.mobile_share', period: thisWeek }))?.value).toBe(40);
    const n = await store.count('website.visits');
    fake.perDay.visits = 120;
    await collectOnce(config, handle, 'website');
    expect(await store.count('website.visits')).toBe(n);
    expect((await store.get({ measure: 'website.visits', period: today }))?.value).toBe(120);
  });

  it('401, 402, 500, garbage and 429 leave the figures and say why in status', async () => {
    const key = { measure: 'website.visits', period: today };
    for (const [status, opts, reason, kind] of [
      [401, { error: 'Invalid API key or site ID.' }, /Plausible refused the credentials \(401: Invalid API key/, 'needs_reauth'],
      [402, { error: 'The account that owns this API key does not have access to Stats API.' }, /402: The account/, 'permanent'],
      [500, {}, /Plausible answered 500/, 'transient'],
      [200, { garbage: true }, /not JSON/, 'transient'],
      [429, {}, /Plausible rate limit \(429: Too many API requests/, 'rate_limited'],
    ] as const) {
      fake.failNext(status, opts);
      await expect(collectOnce(config, handle, 'website')).rejects.toThrow(reason);
      expect((await store.get(key))?.value).toBe(120);
      const st = await readStatus(handle.redis, config.redis_prefix, 'website');
      expect(st.last_failure_reason).toMatch(reason);
      expect(st.last_failure_kind).toBe(kind);
    }
    // Plausible sends no reset time: Crier waits the default minute before trying again.
    const st = await readStatus(handle.redis, config.redis_prefix, 'website');
    expect(Date.parse(st.rate_limited_until!) - Date.now()).toBeGreaterThan(30_000);
  });
});

describe('website collector: Matomo', () => {
  let fake: FakeMatomo;
  let config: Config;
  let handle: RedisHandle;
  let store: ObservationStore;

  beforeAll(async () => {
    fake = await startFakeMatomo();
    config = testConfig({ env: { MATOMO_URL: fake.url, MATOMO_TOKEN: fake.token, MATOMO_SITE_ID: fake.siteId } });
    ({ handle, store } = await setup(config));
  });
  afterAll(async () => {
    await handle?.close();
    await fake?.close();
  });

  it('token in the POST body; summary and device types; no unique visitors for weeks stays missing', async () => {
    fake.empty.add(`month:${previousPeriod(periodOf('month', now)).key}-01`);
    const r = await collectOnce(config, handle, 'website');
    expect(r.warnings).toEqual([expect.stringMatching(/matomo has no data for \d{4}-\d{2}$/)]);
    expect(fake.calls[0]).toMatchObject({ module: 'API', format: 'JSON', method: 'VisitsSummary.get', token_auth: fake.token, idSite: fake.siteId, period: 'day' });
    expect((await store.get({ measure: 'website.visits', period: today }))?.value).toBe(60);
    expect((await store.get({ measure: 'website.visitors', period: today }))?.value).toBe(48);
    expect(await store.get({ measure: 'website.visitors', period: thisWeek })).toBeUndefined();
    expect((await store.get({ measure: 'website.pageviews', period: thisWeek }))?.value).toBe(1260);
    expect((await store.get({ measure: 'website.bounce_rate', period: today }))?.value).toBe(45);
    expect((await store.get({ measure: 'website.visit_duration', period: today }))?.value).toBe(120);
    expect((await store.get({ measure: 'website.mobile_share', period: today }))?.value).toBe(35);
  });

  it('an error as HTTP 200 {result: "error"} fails the run and keeps the data', async () => {
    fake.failNext(200, { message: "You can't access this resource as it requires 'view' access for the website id = 3." });
    await expect(collectOnce(config, handle, 'website')).rejects.toThrow(/Matomo refused the token/);
    fake.failNext(500, { garbage: true });
    await expect(collectOnce(config, handle, 'website')).rejects.toThrow(/Matomo answered 500/);
    expect((await store.get({ measure: 'website.visits', period: today }))?.value).toBe(60);
    expect((await readStatus(handle.redis, config.redis_prefix, 'website')).last_failure_kind).toBe('transient');
  });
});
