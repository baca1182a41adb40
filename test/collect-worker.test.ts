import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../src/config.js';
import { connectRedis, type RedisHandle } from '../src/redis/connection.js';
import { readStatus } from '../workers/collect/status.js';
import { collectQueue, reconcileCollectors, schedulerId, startCollectWorker } from '../workers/collect/worker.js';
import { startFakeMastodonApi, type FakeMastodonApi } from './fakes/mastodon-api.js';
import { silentLogger, testConfig } from './helpers/context.js';
import { waitFor } from './helpers/metrics.js';

/** The `collect` queue: job schedulers from the config, and a worker that moves a rate-limited job to its reset. */

let fake: FakeMastodonApi;
let config: Config;
let handle: RedisHandle;

beforeAll(async () => {
  fake = await startFakeMastodonApi();
  config = testConfig({
    env: { MASTODON_URL: fake.url, MASTODON_TOKEN: fake.token },
    yaml: 'timezone: Europe/London\nmetrics:\n  max_rate_limit_wait_seconds: 0\n  collectors:\n    mastodon: { cron: "5 4 * * *" }\n    email: { enabled: false }\n',
  });
  handle = await connectRedis(config, silentLogger());
});

afterAll(async () => {
  await handle?.close();
  await fake?.close();
});

describe('collect queue', () => {
  it('schedules each configured, enabled source on its cron in Europe/London; the rest have none', async () => {
    const scheduled = await reconcileCollectors(config, handle, silentLogger());
    expect(scheduled).toEqual(['mastodon']);
    const q = collectQueue(config, handle);
    try {
      const s = await q.getJobScheduler(schedulerId('mastodon'));
      expect(s).toMatchObject({ pattern: '5 4 * * *', tz: 'Europe/London' });
      // 04:05 London time, whichever side of the clock change.
      const next = new Date(s!.next!);
      expect(new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/London', hour: '2-digit', minute: '2-digit' }).format(next)).toBe('04:05');
      expect(await q.getJobScheduler(schedulerId('email'))).toBeUndefined();
      expect(await q.getJobScheduler(schedulerId('x'))).toBeUndefined();
      // Idempotent: a second process doing the same changes nothing.
      await reconcileCollectors(config, handle, silentLogger());
      expect(await q.getJobSchedulersCount()).toBe(1);
    } finally {
      await q.close();
    }
  });

  it('a cron BullMQ cannot read is a config error naming the key', async () => {
    const bad = testConfig({ env: { MASTODON_URL: fake.url, MASTODON_TOKEN: fake.token }, yaml: 'metrics:\n  collectors:\n    mastodon: { cron: "every hour please" }\n' });
    await expect(reconcileCollectors(bad, handle, silentLogger())).rejects.toThrow(/field "metrics\.collectors\.mastodon\.cron".*not a cron pattern/);
  });

  it('a job answered 429 is moved to the reset time, not failed, and then runs', async () => {
    const q = collectQueue(config, handle);
    const w = startCollectWorker({ config, handle, log: silentLogger() });
    try {
      fake.failNext(429, { path: '/api/v1/accounts/verify_credentials', resetInSeconds: 3 });
      const job = await q.add('collect', { source: 'mastodon' }, { attempts: 3, backoff: { type: 'exponential', delay: 60_000 } });
      const delayed = await waitFor(async () => ((await job.isDelayed()) ? true : undefined), 'job delayed to the reset');
      expect(delayed).toBe(true);
      const st = await readStatus(handle.redis, config.redis_prefix, 'mastodon');
      expect(st.last_failure_kind).toBe('rate_limited');
      expect(Date.parse(st.rate_limited_until!)).toBeGreaterThan(Date.now() - 1000);
      await waitFor(async () => ((await q.getJob(job.id!))?.finishedOn ? true : undefined), 'job done after the reset', 20_000);
      const done = await q.getJob(job.id!);
      expect(await done!.isCompleted()).toBe(true);
      expect(done!.attemptsMade).toBeLessThanOrEqual(1);
      const after = await readStatus(handle.redis, config.redis_prefix, 'mastodon');
      expect(Date.parse(after.last_success_at!)).toBeGreaterThan(Date.parse(after.last_failure_at!));
      expect(after.rate_limited_until).toBeUndefined();
    } finally {
      await w.close();
      await q.close();
    }
  });
});
