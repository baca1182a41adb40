import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.js';
import { importSubscribers } from '../../src/domain/audience.js';
import { listCampaigns } from '../../src/domain/campaigns.js';
import { testConfig } from '../helpers/context.js';
import { londonIn, startCrier, type TestCrier } from '../helpers/crier.js';
import { spawnWorker, type WorkerChild } from '../helpers/worker-child.js';
import { startFakeMastodonApi } from '../fakes/mastodon-api.js';
import { startFakeXApi, twitterEnv } from '../fakes/x-api.js';
import { startFaultySink, type FaultySink } from './faulty-sink.js';
import { startKillableRedis } from './redis-proc.js';

/**
 * The reliability suite (`npm run test:reliability`): a large campaign through
 * crashes and faults, each ending with every recipient mailed once except the
 * messages in flight at a kill (counted, bounded by the concurrency), nothing
 * lost, no campaign left in `sending`, and `campaign show` counting exactly
 * what the relay accepted.
 */

const N = Number(process.env.RELIABILITY_N ?? 20_000);
const CONCURRENCY = 10;
const STATS = process.env.RELIABILITY_STATS !== '0';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
});

function audience(config: Config, list: string, n: number, domain = (_i: number) => 'example.org'): { file: string; emails: string[] } {
  const emails = Array.from({ length: n }, (_, i) => `r${i}@${domain(i)}`);
  const file = path.join(config.dataDir, `${list}.csv`);
  writeFileSync(file, `email,name,area,topics\n${emails.map((e, i) => `${e},Resident ${i},Rugby,roads`).join('\n')}\n`);
  return { file, emails };
}

async function importList(crier: TestCrier, list: string, n: number, domain?: (i: number) => string): Promise<string[]> {
  const { file, emails } = audience(crier.config, list, n, domain);
  const res = await importSubscribers(crier.handle.redis, crier.config.redis_prefix, file, list, { rejectsDir: crier.config.dataDir });
  expect(res.imported).toBe(n);
  return emails;
}

const yaml = (list: string, title: string) =>
  `title: ${title}\nkind: newsletter\nsend_at: ${londonIn(1500)}\nchannels:\n  email: { list: ${list}, subject: "Hello {{name}}", body: "Roads news for {{name}}." }\n`;

function outcome(sink: FaultySink, emails: string[]): { missing: string[]; duplicates: number } {
  const missing = emails.filter((e) => !sink.perRecipient.has(e));
  let duplicates = 0;
  for (const n of sink.perRecipient.values()) duplicates += n - 1;
  return { missing, duplicates };
}

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function noneSending(crier: TestCrier): Promise<string[]> {
  return (await listCampaigns(crier.handle.redis, crier.config.redis_prefix)).filter((c) => c.status === 'sending').map((c) => c.id);
}

function workers(config: Config, env?: Record<string, string>): { start(): WorkerChild; all: WorkerChild[] } {
  const all: WorkerChild[] = [];
  cleanups.push(async () => {
    for (const w of all) await w.kill('SIGKILL');
  });
  return {
    all,
    start() {
      const w = spawnWorker(config, env ? { env } : {});
      all.push(w);
      return w;
    },
  };
}

describe('reliability', () => {
  it(`kill -9 of workers at random points of a ${N}-recipient campaign, three times`, async () => {
    const sink = await startFaultySink();
    cleanups.push(() => sink.close());
    const config = testConfig({ env: { SMTP_URL: sink.url }, yaml: `worker_lock_ms: 2000\nchannels:\n  email: { concurrency: ${CONCURRENCY}, backoff_ms: 200 }\n` });
    const crier = await startCrier(config, { workers: false });
    cleanups.push(() => crier.close());
    const emails = await importList(crier, 'kills', N);
    const pool = workers(config);
    let current = [pool.start(), pool.start()];
    await Promise.all(current.map((w) => w.ready));
    const c = await crier.create(yaml('kills', 'Kill -9'));
    const kills: number[] = [];
    for (const fraction of [0.15 + Math.random() * 0.15, 0.4 + Math.random() * 0.15, 0.65 + Math.random() * 0.15]) {
      await until(() => sink.accepted >= N * fraction, 120_000, `${Math.round(fraction * 100)}% of the messages`);
      const victim = current[Math.floor(Math.random() * current.length)]!;
      await victim.kill('SIGKILL');
      kills.push(sink.accepted);
      const fresh = pool.start();
      current = [...current.filter((w) => w !== victim), fresh];
      await fresh.ready;
    }
    const done = await crier.waitForStatus(c.id, ['sent', 'partially_failed', 'failed'], 180_000);
    const { missing, duplicates } = outcome(sink, emails);
    if (STATS) console.info(`kill -9 ×3 at ${kills.join(', ')} of ${N}: ${duplicates} repeated (bound ${kills.length * CONCURRENCY}), ${missing.length} missing`);
    expect(done.status).toBe('sent');
    expect(missing).toEqual([]);
    expect(duplicates).toBeLessThanOrEqual(kills.length * CONCURRENCY);
    expect(done.counts.email).toMatchObject({ sent: N, failed: 0, pending: 0 });
    expect(sink.accepted).toBe(N + duplicates);
    expect(await noneSending(crier)).toEqual([]);
  }, 300_000);

  it('Redis killed with SIGKILL mid-campaign and restarted on its AOF: the same workers finish the send', async () => {
    const redis = await startKillableRedis();
    cleanups.push(() => redis.stop());
    const sink = await startFaultySink();
    cleanups.push(() => sink.close());
    const n = Math.min(N, 5000);
    const config = testConfig({ env: { SMTP_URL: sink.url, REDIS_URL: redis.url }, yaml: `channels:\n  email: { concurrency: ${CONCURRENCY}, backoff_ms: 200 }\n` });
    const crier = await startCrier(config, { workers: false });
    cleanups.push(() => crier.close());
    const emails = await importList(crier, 'crash', n);
    const pool = workers(config);
    const w = pool.start();
    await w.ready;
    const c = await crier.create(yaml('crash', 'Redis crash'));
    await until(() => sink.accepted >= n / 3, 120_000, 'a third of the messages');
    await redis.crash();
    const atCrash = sink.accepted;
    await new Promise((r) => setTimeout(r, 3000));
    await redis.start();
    const done = await crier.waitForStatus(c.id, ['sent', 'partially_failed', 'failed'], 180_000);
    const { missing, duplicates } = outcome(sink, emails);
    if (STATS) console.info(`redis SIGKILL at ${atCrash} of ${n}, down 3 s: ${duplicates} repeated (bound ${CONCURRENCY}), ${missing.length} missing`);
    expect(done.status).toBe('sent');
    expect(missing).toEqual([]);
    expect(duplicates).toBeLessThanOrEqual(CONCURRENCY);
    expect(done.counts.email).toMatchObject({ sent: n, failed: 0, pending: 0 });
    expect(await noneSending(crier)).toEqual([]);
    expect(w.process.exitCode).toBeNull();
  }, 300_000);

  it('a relay that tempfails every 7th message, refuses a domain and drops connections: each deliverable recipient once, the refused ones failed with the reason', async () => {
    const sink = await startFaultySink({ tempfailEvery: 7, rejectDomain: 'blocked.example.net', dropEvery: 97 });
    cleanups.push(() => sink.close());
    // About one message in seven fails (451 every 7th, a dropped connection every 97th): with 4 tries a
    // recipient or two of 3,000 runs out of tries by chance (0.14^4 × 3,000 ≈ 1); 10 tries make that negligible.
    const n = Math.min(N, 3000);
    const blocked = (i: number) => i % 50 === 0;
    const config = testConfig({ env: { SMTP_URL: sink.url }, yaml: `channels:\n  email: { concurrency: ${CONCURRENCY}, backoff_ms: 50, attempts: 10 }\n` });
    const crier = await startCrier(config, { workers: false });
    cleanups.push(() => crier.close());
    const emails = await importList(crier, 'faulty', n, (i) => (blocked(i) ? 'blocked.example.net' : 'example.org'));
    const pool = workers(config);
    await pool.start().ready;
    const c = await crier.create(yaml('faulty', 'Faulty relay'));
    const done = await crier.waitForStatus(c.id, ['sent', 'partially_failed', 'failed'], 180_000);
    const deliverable = emails.filter((_, i) => !blocked(i));
    const refused = emails.length - deliverable.length;
    const { missing, duplicates } = outcome(sink, deliverable);
    if (STATS) console.info(`faulty relay: ${sink.tempfailed} tempfails, ${sink.dropped} drops, ${sink.rejected} refusals; ${duplicates} repeated, ${missing.length} missing`);
    expect(done.status).toBe('partially_failed');
    expect(missing).toEqual([]);
    expect(duplicates).toBe(0);
    expect(done.counts.email).toMatchObject({ sent: deliverable.length, failed: refused, pending: 0 });
    expect(sink.accepted).toBe(deliverable.length);
    expect(await noneSending(crier)).toEqual([]);
  }, 300_000);
  it('X and Mastodon fakes that rate-limit, fail with 5xx and drop answers: every post once, nothing lost', async () => {
    const creds = { appKey: 'rel-app-key', appSecret: 'rel-app-secret', accessToken: 'rel-access-token', accessSecret: 'rel-access-secret' };
    const [x, mastodon] = await Promise.all([startFakeXApi({ credentials: creds }), startFakeMastodonApi()]);
    cleanups.push(() => Promise.all([x.close(), mastodon.close()]).then(() => undefined));
    const env = { ...twitterEnv(x.url, creds), MASTODON_URL: mastodon.url, MASTODON_TOKEN: mastodon.token };
    const config = testConfig({ env, yaml: 'channels:\n  twitter: { backoff_ms: 200, attempts: 10 }\n  mastodon: { backoff_ms: 200, attempts: 10 }\n' });
    const crier = await startCrier(config, { workers: false });
    cleanups.push(() => crier.close());
    // The X fake's certificate is made now: the worker processes trust it through NODE_EXTRA_CA_CERTS.
    const pool = workers(config, { ...env, NODE_EXTRA_CA_CERTS: x.certFile });
    await Promise.all([pool.start().ready, pool.start().ready]);
    // Faults taken by the first requests, in this order: a rate limit (reset in 2 s), server errors, a lost
    // connection, and a post that is made but whose answer never arrives (the retry must find it, not repost).
    for (const fault of [429, 500, 503, 0, -1]) {
      if (fault === 429) {
        x.failNext(429, { path: '/2/tweets', resetInSeconds: 2 });
        mastodon.failNext(429, { path: '/api/v1/statuses', resetInSeconds: 2 });
      } else if (fault > 0) {
        x.failNext(fault, { path: '/2/tweets' });
        mastodon.failNext(fault, { path: '/api/v1/statuses' });
      } else {
        x.failNext(0, { path: '/2/tweets', ...(fault === 0 ? { drop: true } : { afterEffect: true }) });
        mastodon.failNext(0, { path: '/api/v1/statuses', ...(fault === 0 ? { drop: true } : { afterEffect: true }) });
      }
    }
    const posts = 12;
    const ids: string[] = [];
    for (let i = 0; i < posts; i++) {
      const c = await crier.create(
        `title: Social ${i}\nkind: social\nsend_at: ${londonIn(1500)}\nchannels:\n  twitter: { text: "Road closure update ${i} on X" }\n  mastodon: { text: "Road closure update ${i} on Mastodon" }\n`,
      );
      ids.push(c.id);
    }
    const finals = await Promise.all(ids.map((id) => crier.waitForStatus(id, ['sent', 'partially_failed', 'failed'], 120_000)));
    const count = (texts: string[], want: string) => texts.filter((t) => t === want).length;
    const tweets = x.tweets.map((t) => t.text);
    const statuses = mastodon.statuses.map((t) => t.text);
    const perPost = Array.from({ length: posts }, (_, i) => [count(tweets, `Road closure update ${i} on X`), count(statuses, `Road closure update ${i} on Mastodon`)]);
    const tries = [x.requests.filter((r) => r.method === 'POST' && r.path === '/2/tweets').length, mastodon.requests.filter((r) => r.method === 'POST' && r.path === '/api/v1/statuses').length];
    if (STATS) console.info(`social faults: ${tries[0]} X and ${tries[1]} Mastodon post requests for ${posts} posts each (5 faults each); ${tweets.length} tweets, ${statuses.length} statuses`);
    expect(finals.map((f) => f.status)).toEqual(ids.map(() => 'sent'));
    expect(perPost).toEqual(ids.map(() => [1, 1]));
    // Every fault was taken: four cost a request more than the posts; the fifth made its post, found by the retry, not reposted.
    expect(tries).toEqual([posts + 4, posts + 4]);
    expect(tweets).toHaveLength(posts);
    expect(statuses).toHaveLength(posts);
    for (const f of finals) expect([f.counts.twitter, f.counts.mastodon]).toMatchObject([{ sent: 1, failed: 0, pending: 0 }, { sent: 1, failed: 0, pending: 0 }]);
    expect(await noneSending(crier)).toEqual([]);
  }, 300_000);
});
